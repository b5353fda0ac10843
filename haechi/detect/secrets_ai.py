# SPDX-License-Identifier: Apache-2.0
"""Secret rules for LLM and ML providers.

Only distinctive formats get a bare rule. Providers whose keys are a plain run of
alphanumerics (Cohere, Mistral, Weights & Biases) are context-gated on a key naming the
provider, so no rule here fires on an arbitrary 32- or 40-character string. DeepSeek-style
``sk-`` + 32 hex keys are shared by several providers and stay with ``openai-api-key``.

Order matters for identical spans: the specific rules come before the broad reference rules
(``anthropic-api-key``, ``openai-api-key``, ``openai-like-key``) so the finding names the most
specific format.
"""

from __future__ import annotations

from typing import Final

from haechi.detect.patterns import word_start
from haechi.detect.rule import Rule
from haechi.detect.secrets_shapes import (
    API_KEY_TYPE,
    KEY_SEPARATOR,
    SECRET_TYPE,
    TOKEN_CHARS,
    bounded,
    keyed,
    secret_rule,
)
from haechi.detect.secrets_validators import openai_marker_ok

__all__ = ["AI_RULES"]


def _openai(rule_id: str, prefix: str, description: str) -> Rule:
    return secret_rule(
        rule_id,
        API_KEY_TYPE,
        bounded(rf"{prefix}[A-Za-z0-9_-]{{40,}}", TOKEN_CHARS),
        (prefix,),
        description,
        validator=openai_marker_ok,
        confidence=0.98,
    )


def _prefixed(rule_id: str, body: str, prefix: str, description: str) -> Rule:
    return secret_rule(rule_id, API_KEY_TYPE, bounded(body, TOKEN_CHARS), (prefix,), description)


AI_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "anthropic-admin-key",
        API_KEY_TYPE,
        bounded(r"sk-ant-admin01-[A-Za-z0-9_-]{93}AA", TOKEN_CHARS),
        ("sk-ant-admin01-",),
        "Anthropic Admin API key",
        confidence=0.98,
    ),
    secret_rule(
        "anthropic-api-key",
        SECRET_TYPE,
        bounded(r"sk-ant-[A-Za-z0-9_-]{16,}", TOKEN_CHARS),
        ("sk-ant-",),
        "Anthropic API key (sk-ant-api03- and other sk-ant- keys)",
    ),
    _openai("openai-project-key", "sk-proj-", "OpenAI project API key"),
    _openai("openai-service-account-key", "sk-svcacct-", "OpenAI service account API key"),
    _openai("openai-admin-key", "sk-admin-", "OpenAI admin API key"),
    _prefixed("openrouter-api-key", r"sk-or-v1-[a-f0-9]{64}", "sk-or-v1-", "OpenRouter API key"),
    secret_rule(
        "openai-api-key",
        SECRET_TYPE,
        bounded(r"sk-(?:proj-)?[A-Za-z0-9_-]{20,}", TOKEN_CHARS),
        ("sk-",),
        "OpenAI-style sk- key (OpenAI and compatible providers)",
        confidence=0.9,
    ),
    secret_rule(
        "openai-like-key",
        API_KEY_TYPE,
        word_start("(?:sk|rk|pk)_") + r"[A-Za-z0-9_-]{24,}\b",
        ("sk_", "rk_", "pk_"),
        "sk_/rk_/pk_ underscore key (Stripe-style and other providers)",
    ),
    _prefixed("huggingface-token", r"hf_[A-Za-z0-9]{34}", "hf_", "Hugging Face access token"),
    _prefixed(
        "huggingface-org-token",
        r"api_org_[A-Za-z0-9]{34}",
        "api_org_",
        "Hugging Face organization API token",
    ),
    _prefixed("groq-api-key", r"gsk_[A-Za-z0-9]{52}", "gsk_", "Groq API key"),
    _prefixed("replicate-api-token", r"r8_[A-Za-z0-9]{37}", "r8_", "Replicate API token"),
    _prefixed("perplexity-api-key", r"pplx-[A-Za-z0-9]{48}", "pplx-", "Perplexity API key"),
    _prefixed("xai-api-key", r"xai-[A-Za-z0-9]{80}", "xai-", "xAI (Grok) API key"),
    _prefixed("together-api-key", r"tgp_v1_[A-Za-z0-9_-]{43}", "tgp_v1_", "Together AI API key"),
    _prefixed(
        "langsmith-api-key",
        r"lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}",
        "lsv2_",
        "LangSmith personal access token or service key",
    ),
    _prefixed(
        "pinecone-api-key", r"pcsk_[A-Za-z0-9]{4,8}_[A-Za-z0-9]{40,80}", "pcsk_", "Pinecone API key"
    ),
    _prefixed("nvidia-api-key", r"nvapi-[A-Za-z0-9_-]{64}", "nvapi-", "NVIDIA NGC / NIM API key"),
    secret_rule(
        "cohere-api-key",
        API_KEY_TYPE,
        keyed(r"(?:cohere|co)[_.-]?api[_.-]?key|cohere[_.-]?(?:key|token)", r"[A-Za-z0-9]{40}"),
        ("cohere", "co_api", "co-api", "co.api", "coapi"),
        "Cohere API key after a key naming Cohere",
        confidence=0.85,
    ),
    secret_rule(
        "mistral-api-key",
        API_KEY_TYPE,
        keyed(r"mistral[A-Za-z0-9_.-]{0,16}(?:key|token)", r"[A-Za-z0-9]{32}"),
        ("mistral",),
        "Mistral AI API key after a key naming Mistral",
        confidence=0.85,
    ),
    secret_rule(
        "wandb-api-key",
        API_KEY_TYPE,
        rf"(?:(?<!\[)(?i:wandb[_.-]?api[_.-]?key){KEY_SEPARATOR}"
        r"|\bwandb[ \t]+login[ \t]+(?:--relogin[ \t]+)?)"
        r"(?P<value>[a-f0-9]{40})(?![A-Za-z0-9_-])",
        ("wandb",),
        "Weights & Biases API key after WANDB_API_KEY or `wandb login`",
        confidence=0.85,
    ),
)
