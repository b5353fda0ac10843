# SPDX-License-Identifier: Apache-2.0
"""Key-name context on real LLM API shapes, through the runtime in enforce mode.

LLM APIs put ordinary text under keys that look like secret names: every log-probability
entry has a ``token`` holding one vocabulary piece, vLLM adds ``decoded_token``, MCP
progress notifications carry a ``progressToken``. None of that may be treated as a
credential, or every such response behind the gateway is blocked. A real credential under
``token`` and any value under an unambiguous key (``password``, ``api_key``, ...) must still
be caught, in both directions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from haechi.detect import KEY_NAME_RULE_ID, DetectionEngine, default_rules
from haechi.detect.catalog_secrets import is_sensitive_key, key_names_secret
from haechi.models import Entry
from haechi.runtime import Runtime

#: Vocabulary pieces as models emit them, including the long and odd ones real tokenizers
#: have (runs of punctuation, glued camel-case identifiers, byte fallbacks, special tokens).
PIECES = (
    "Hello", " world", "\n\n", "<|endoftext|>", "<|eot_id|>", " SolidGoldMagikarp",
    "ForCanBeConvertedToForeach", "rawdownloadcloneembedreportprint", "----------------",
    "================================", "bytes:\\xe2\\x80", "token_id:128000", " 2024", "ing",
    "\u3053\u3093\u306b\u3061\u306f", "\u00e9t\u00e9", "externalActionCode", "",
    "<|reserved_special_token_0|>", "<0x0A>", "<unused42>",
    "\u2581the", "\u0120world", "(((((((((((((((((",
)  # fmt: skip
#: Chat-template pieces: no secret under ``token`` either, but in a response the injection
#: rules report them (as they report a model emitting a template marker anywhere).
TEMPLATE_PIECES = ("<|start_header_id|>", "[INST]", "<<SYS>>")
#: 40 characters of a random credential.
CREDENTIAL = "Zq3" + "x9LmP2vR7tK4wN8bY1cF6hJ0dS5gA2eU" + "7Qo9W"


def _logprob(piece: str) -> dict[str, Any]:
    return {
        "token": piece,
        "logprob": -0.25,
        "bytes": list(piece.encode()),
        "top_logprobs": [
            {"token": alt, "logprob": -1.5, "bytes": list(alt.encode())} for alt in PIECES[:4]
        ],
    }


def _openai_chat() -> dict[str, Any]:
    return {
        "id": "chatcmpl-A1b2C3",
        "object": "chat.completion",
        "created": 1718000000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello world", "refusal": None},
                "logprobs": {"content": [_logprob(p) for p in PIECES], "refusal": None},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 9,
            "completion_tokens": 18,
            "total_tokens": 27,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "accepted_prediction_tokens": 0},
        },
    }


def _openai_chunk() -> dict[str, Any]:
    return {
        "id": "chatcmpl-A1b2C3",
        "object": "chat.completion.chunk",
        "choices": [
            {
                "index": 0,
                "delta": {"content": "ForCanBeConvertedToForeach"},
                "logprobs": {"content": [_logprob("ForCanBeConvertedToForeach")]},
                "finish_reason": None,
            }
        ],
    }


def _openai_completion() -> dict[str, Any]:
    return {
        "object": "text_completion",
        "choices": [
            {
                "text": "Hello world",
                "index": 0,
                "logprobs": {
                    "tokens": list(PIECES),
                    "token_logprobs": [-0.1] * len(PIECES),
                    "top_logprobs": [{piece: -0.1, " world": -2.0} for piece in PIECES],
                    "text_offset": list(range(len(PIECES))),
                },
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 18, "total_tokens": 23},
    }


def _openai_responses() -> dict[str, Any]:
    return {
        "id": "resp_67ccd2bed1ec8190",
        "object": "response",
        "status": "completed",
        "output": [
            {
                "type": "reasoning",
                "id": "rs_67ccd2bf17f08190",
                "summary": [{"type": "summary_text", "text": "Greeting the user."}],
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [
                    {
                        "type": "output_text",
                        "text": "Hello world",
                        "annotations": [],
                        "logprobs": [_logprob(p) for p in PIECES],
                    }
                ],
            },
        ],
        "usage": {
            "input_tokens": 36,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 87,
            "output_tokens_details": {"reasoning_tokens": 64},
            "total_tokens": 123,
        },
    }


def _anthropic_message() -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [
            {"type": "thinking", "thinking": "The user greets me.", "signature": "EqQBCkYIBxgC"},
            {"type": "text", "text": "Hello world"},
        ],
        "stop_reason": "stop_sequence",
        "stop_sequence": "\n\nHuman:",
        "usage": {
            "input_tokens": 2095,
            "output_tokens": 503,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _ollama_chat() -> dict[str, Any]:
    return {
        "model": "llama3.2",
        "created_at": "2025-01-01T00:00:00.000000Z",
        "message": {"role": "assistant", "content": "Hello world"},
        "logprobs": [_logprob(p) for p in PIECES],
        "done": True,
        "done_reason": "stop",
        "total_duration": 4883583458,
        "load_duration": 1334875,
        "prompt_eval_count": 26,
        "eval_count": 18,
        "context": [128006, 9125, 128007],
    }


def _gemini() -> dict[str, Any]:
    chosen = [
        {"token": p, "tokenId": 9906 + i, "logProbability": -0.1} for i, p in enumerate(PIECES)
    ]
    return {
        "candidates": [
            {
                "content": {"parts": [{"text": "Hello world"}], "role": "model"},
                "finishReason": "STOP",
                "avgLogprobs": -0.12,
                "logprobsResult": {
                    "topCandidates": [{"candidates": chosen[:3]}],
                    "chosenCandidates": chosen,
                },
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 4,
            "candidatesTokenCount": 18,
            "totalTokenCount": 22,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 4}],
        },
        "modelVersion": "gemini-2.0-flash",
    }


def _llama_cpp() -> dict[str, Any]:
    return {
        "content": "Hello world",
        "completion_probabilities": [{"id": 9906 + i, **_logprob(p)} for i, p in enumerate(PIECES)],
        "stop": True,
        "stopping_word": "",
        "tokens_predicted": 18,
        "tokens_evaluated": 5,
    }


def _vllm_prompt_logprobs() -> dict[str, Any]:
    return {
        "object": "text_completion",
        "choices": [{"index": 0, "text": "Hello", "finish_reason": "stop"}],
        "prompt_logprobs": [
            None,
            *(
                {str(9906 + i): {"logprob": -1.2, "rank": 1, "decoded_token": p}}
                for i, p in enumerate(PIECES)
            ),
        ],
    }


def _mcp_progress() -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {
            "progressToken": "6f1c2b9e-3a4d-4c8e-9f1a-2b3c4d5e6f70",
            "progress": 50,
            "total": 100,
        },
    }


RESPONSES: dict[str, Callable[[], dict[str, Any]]] = {
    "openai-chat": _openai_chat,
    "openai-chunk": _openai_chunk,
    "openai-completion": _openai_completion,
    "openai-responses": _openai_responses,
    "anthropic": _anthropic_message,
    "ollama": _ollama_chat,
    "gemini": _gemini,
    "llama.cpp": _llama_cpp,
    "vllm": _vllm_prompt_logprobs,
    "mcp-progress": _mcp_progress,
}

REQUESTS: dict[str, Callable[[], dict[str, Any]]] = {
    "openai-request": lambda: {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello"}],
        "logprobs": True,
        "top_logprobs": 3,
        "max_tokens": 64,
        "max_completion_tokens": 64,
        "stop": ["\n\n", "END"],
        "logit_bias": {"50256": -100, "1734": 5},
    },
    "anthropic-request": lambda: {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 1024,
        "stop_sequences": ["\n\nHuman:", "END"],
        "messages": [{"role": "user", "content": "Say hello"}],
    },
    "ollama-request": lambda: {
        "model": "llama3.2",
        "prompt": "Say hello",
        "options": {"num_predict": 64, "stop": ["<|eot_id|>"]},
        "logprobs": True,
        "top_logprobs": 3,
    },
    "gemini-request": lambda: {
        "contents": [{"role": "user", "parts": [{"text": "Say hello"}]}],
        "generationConfig": {
            "maxOutputTokens": 64,
            "stopSequences": ["END"],
            "responseLogprobs": True,
        },
    },
    "mcp-progress-request": lambda: {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "search", "arguments": {"q": "x"}, "_meta": {"progressToken": 17}},
    },
}


@pytest.fixture(scope="module")
def runtime(memory_runtime: Runtime) -> Runtime:
    return memory_runtime


@pytest.mark.parametrize("shape", sorted(RESPONSES))
def test_llm_responses_pass_untouched(runtime: Runtime, shape: str) -> None:
    payload = RESPONSES[shape]()
    result = runtime.protect_sync(payload, direction="response")
    assert result.findings == ()
    assert not result.blocked
    assert result.payload == payload


@pytest.mark.parametrize("shape", sorted(REQUESTS))
def test_llm_requests_pass_untouched(runtime: Runtime, shape: str) -> None:
    payload = REQUESTS[shape]()
    result = runtime.protect_sync(payload, direction="request")
    assert result.findings == ()
    assert result.payload == payload


@pytest.mark.parametrize("direction", ["request", "response"])
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("token", CREDENTIAL),
        ("token", "ya29-" + CREDENTIAL[:20]),
        ("token", "A1b2C3d4E5f6G7h8"),
        ("decoded_token", CREDENTIAL),
        ("password", "hunter2"),
        ("api_key", "abc"),
        ("client_secret", "not a real secret, but a secret all the same"),
        ("authorization", "Token hello"),
        ("private_key", "short"),
        ("access_token", "Hello"),
        ("refresh_token", "r"),
        ("github_token", "Hello"),
    ],
)
def test_credentials_under_secret_keys_are_still_caught(
    runtime: Runtime, direction: str, key: str, value: str
) -> None:
    result = runtime.protect_sync({"data": {"nested": [{key: value}]}}, direction=direction)
    assert [(f.type, f.path[-1]) for f in result.findings] == [("secret", key)]
    assert value not in str(result.payload)


def test_a_credential_inside_a_logprobs_response_is_caught(runtime: Runtime) -> None:
    payload = _openai_chat()
    payload["choices"][0]["logprobs"]["content"][1]["token"] = CREDENTIAL
    result = runtime.protect_sync(payload, direction="response")
    assert [(f.type, f.rule_id) for f in result.findings] == [("secret", KEY_NAME_RULE_ID)]
    assert result.findings[0].path[-3:] == ("content", 1, "token")


class TestKeyNamesSecret:
    """``key_names_secret(key, value)``: the decision the engine makes per value leaf."""

    @pytest.mark.parametrize("piece", PIECES + TEMPLATE_PIECES)
    def test_vocabulary_pieces_under_token_are_not_secrets(self, piece: str) -> None:
        for key in ("token", "decoded_token", "sampled_token", "chosenToken", "Token"):
            assert not key_names_secret(key, piece)

    @pytest.mark.parametrize(
        "value",
        [
            CREDENTIAL,
            "0123456789abcdef0123456789abcdef",
            "eyJhbGciOiJIUzI1NiJ9.e30.abc123",
            "hvs.CAESIJ0123456789abcdefghij",
            "AbCdEfGhIjKlMnOpQrStUvWxYz",
            "abcdef-ghijkl_mnopqr.STUVWX",
        ],
    )
    def test_credential_shaped_values_under_token_are_secrets(self, value: str) -> None:
        assert key_names_secret("token", value)

    @pytest.mark.parametrize(
        "value",
        [
            "a1b2c3d4e5f6g7h",  # 15 characters: too short
            "a1b2c3d4 e5f6g7h8i9",  # whitespace
            "rawdownloadcloneembedreportprint",  # one letter class
            "ForCanBeConvertedToForeach",  # camel case words
            "0123456789012345678",  # digits only
            "\u30c8\u30fc\u30af\u30f3\u30c8\u30fc\u30af\u30f3\u30c8\u30fc\u30af\u30f3\u30c8\u30fc\u30af\u30f3",
        ],
    )
    def test_other_values_under_token_are_not(self, value: str) -> None:
        assert not key_names_secret("token", value)

    @pytest.mark.parametrize(
        "key",
        ["password", "api_key", "client_secret", "authorization", "private_key",
         "access_token", "refresh_token", "id_token", "session_token", "github_token",
         "csrf_token", "secret", "cookie"],
    )  # fmt: skip
    def test_unambiguous_keys_take_any_value(self, key: str) -> None:
        assert key_names_secret(key, "x")
        assert key_names_secret(key, "Hello world")

    def test_non_secret_keys_and_blank_values_never_do(self) -> None:
        assert not key_names_secret("content", CREDENTIAL)
        assert not key_names_secret("max_tokens", CREDENTIAL)
        assert not key_names_secret("progressToken", CREDENTIAL)
        assert not key_names_secret("password", "   ")
        assert is_sensitive_key("token")

    def test_the_engine_uses_the_same_decision(self) -> None:
        engine = DetectionEngine(default_rules())
        entries = [
            Entry(("choices", 0, "logprobs", "content", 0, "token"), "ForCanBeConvertedToForeach"),
            Entry(("choices", 0, "logprobs", "content", 1, "token"), CREDENTIAL),
        ]
        found = engine.detect(entries, direction="response")
        assert [(d.path[-2], d.rule_id) for d in found] == [(1, KEY_NAME_RULE_ID)]
