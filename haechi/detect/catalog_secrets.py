# SPDX-License-Identifier: Apache-2.0
"""The secret and credential catalogue: every secret rule, in evaluation order.

Rules are grouped by family in ``secrets_*`` modules; this module only fixes their order.
Order breaks ties when two rules match the very same span, so families with specific,
prefixed formats come first and the broad rules last: the reference ``openai-like-key`` /
``openai-api-key`` shapes after Stripe and the other ``sk`` providers, ``private-key-block``
after the service-account JSON rule, generic URLs after the database URLs, and the key-name
assignment rules at the very end, so ``GITHUB_TOKEN=ghp_...`` is reported as a GitHub token.

Types follow one convention: ``api_key`` for provider API keys and access key ids, ``secret``
for every other credential. The fifteen rules that keep the reference's ids also keep the
reference's types (``openai-api-key``, ``anthropic-api-key``, ``github-token`` and
``slack-token`` are ``secret``), so per-type audit counts stay comparable across the two
systems. Both types are hard-block.
"""

from __future__ import annotations

from typing import Final

from haechi.detect.rule import Rule
from haechi.detect.secrets_ai import AI_RULES
from haechi.detect.secrets_cloud import CLOUD_RULES
from haechi.detect.secrets_generic import ASSIGNMENT_RULES, HEADER_RULES, URL_RULES
from haechi.detect.secrets_infra import INFRA_RULES
from haechi.detect.secrets_keys import is_sensitive_key, key_names_secret
from haechi.detect.secrets_messaging import MESSAGING_RULES
from haechi.detect.secrets_observability import OBSERVABILITY_RULES
from haechi.detect.secrets_payments import PAYMENT_RULES
from haechi.detect.secrets_private_keys import PRIVATE_KEY_RULES
from haechi.detect.secrets_registries import REGISTRY_RULES
from haechi.detect.secrets_saas import SAAS_RULES
from haechi.detect.secrets_vcs import VCS_RULES

__all__ = ["SECRET_RULES", "is_sensitive_key", "key_names_secret"]

SECRET_RULES: Final[tuple[Rule, ...]] = (
    VCS_RULES
    + CLOUD_RULES
    + INFRA_RULES
    + SAAS_RULES
    + PAYMENT_RULES
    + MESSAGING_RULES
    + AI_RULES
    + REGISTRY_RULES
    + OBSERVABILITY_RULES
    + PRIVATE_KEY_RULES
    + HEADER_RULES
    + URL_RULES
    + ASSIGNMENT_RULES
)
