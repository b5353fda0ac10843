# SPDX-License-Identifier: Apache-2.0
"""Route classification of every protocol adapter (core inventory §5.2-§5.3)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from haechi.errors import ConfigError
from haechi.protocols import (
    adapter_for,
    is_streaming_request,
    known_adapters,
    plain_stream_flag,
    request_models,
)
from haechi.protocols.member_names import named_like


def test_known_adapters_in_order() -> None:
    assert known_adapters() == (
        "openai-compatible",
        "vllm-openai",
        "llama-cpp",
        "ollama",
        "anthropic",
        "gemini",
    )


def test_llm_http_is_an_alias_of_openai_compatible() -> None:
    assert adapter_for("llm-http") is adapter_for("openai-compatible")
    assert adapter_for("llm-http").protocol == "llm-http"


def test_unknown_adapter_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown protocol adapter"):
        adapter_for("grpc")


@pytest.mark.parametrize(
    ("adapter", "path", "route_id", "fmt", "delta", "by_default"),
    [
        (
            "openai-compatible",
            "/v1/chat/completions",
            "chat-completions",
            "sse",
            ("choices", 0, "delta", "content"),
            False,
        ),
        (
            "openai-compatible",
            "/v1/completions",
            "completions",
            "sse",
            ("choices", 0, "text"),
            False,
        ),
        ("openai-compatible", "/v1/responses", "responses", "sse", None, False),
        ("openai-compatible", "/v1/embeddings", "embeddings", None, None, False),
        (
            "vllm-openai",
            "/v1/chat/completions",
            "chat-completions",
            "sse",
            ("choices", 0, "delta", "content"),
            False,
        ),
        ("llama-cpp", "/completion", "legacy-completion", "sse", ("content",), False),
        ("llama-cpp", "/v1/embeddings", "embeddings", None, None, False),
        ("ollama", "/api/chat", "chat", "ndjson", ("message", "content"), True),
        ("ollama", "/api/generate", "generate", "ndjson", ("response",), True),
        ("ollama", "/api/embed", "embed", None, None, False),
        ("ollama", "/api/embeddings", "embeddings", None, None, False),
        ("anthropic", "/v1/messages", "messages", "sse", ("delta", "text"), False),
        ("anthropic", "/v1/messages/count_tokens", "count-tokens", None, None, False),
        ("anthropic", "/v1/complete", "complete", "sse", ("completion",), False),
        (
            "gemini",
            "/v1beta/models/gemini-pro:generateContent",
            "generate-content",
            None,
            None,
            False,
        ),
        (
            "gemini",
            "/v1beta/models/gemini-pro:streamGenerateContent",
            "stream-generate-content",
            "sse",
            ("candidates", 0, "content", "parts", 0, "text"),
            False,
        ),
        ("gemini", "/v1/models/x:countTokens", "count-tokens", None, None, False),
        ("gemini", "/v1/models/x:embedContent", "embed", None, None, False),
        ("gemini", "/v1/models/x:batchEmbedContents", "batch-embed", None, None, False),
    ],
)
def test_routes(
    adapter: str,
    path: str,
    route_id: str,
    fmt: str | None,
    delta: tuple[object, ...] | None,
    by_default: bool,
) -> None:
    route = adapter_for(adapter).classify("POST", path)
    assert route.route_id == route_id
    assert route.operation == f"POST {route_id}"
    assert route.path == path
    assert route.protect_request
    assert route.protect_response
    assert route.streaming_by_default is by_default
    if fmt is None:
        assert route.streaming is None
    else:
        assert route.streaming is not None
        assert route.streaming.format == fmt
        assert route.streaming.delta_path == delta


def test_anthropic_flushes_before_block_and_message_ends() -> None:
    route = adapter_for("anthropic").classify("POST", "/v1/messages")
    assert route.streaming is not None
    assert route.streaming.flush_on_types == {
        "content_block_stop",
        "message_delta",
        "message_stop",
    }
    assert route.streaming.terminal_types == {"message_stop"}


def test_ollama_streams_end_on_done() -> None:
    route = adapter_for("ollama").classify("POST", "/api/chat")
    assert route.streaming is not None
    assert route.streaming.done_field == "done"


def test_unknown_routes_are_protected_and_keep_no_path_text() -> None:
    route = adapter_for("openai-compatible").classify("GET", "/v1/users/jane@example.com")
    assert route.route_id == "unknown"
    assert route.operation == "GET unknown"
    assert "jane" not in route.operation
    assert route.protect_request
    assert route.protect_response
    assert route.streaming is None


def test_routes_do_not_cross_adapters() -> None:
    assert adapter_for("ollama").classify("POST", "/v1/messages").route_id == "unknown"
    assert adapter_for("anthropic").classify("POST", "/api/chat").route_id == "unknown"
    gemini = adapter_for("gemini")
    assert gemini.classify("POST", "/v1beta/models/x:unknownVerb").route_id == "unknown"
    assert gemini.classify("POST", "/v1beta/models/:generateContent").route_id == "unknown"


def test_streaming_decision() -> None:
    chat = adapter_for("openai-compatible").classify("POST", "/v1/chat/completions")
    assert is_streaming_request(chat, {"stream": True})
    assert not is_streaming_request(chat, {})
    assert not is_streaming_request(chat, {"stream": "true"})
    ollama = adapter_for("ollama").classify("POST", "/api/chat")
    assert is_streaming_request(ollama, {})
    assert not is_streaming_request(ollama, {"stream": False})
    assert is_streaming_request(ollama, [])
    # Gemini's streaming method streams whatever the body says: it has no stream field.
    gemini = adapter_for("gemini").classify("POST", "/v1beta/models/g:streamGenerateContent")
    assert gemini.always_streaming
    assert is_streaming_request(gemini, {"stream": False})
    assert is_streaming_request(gemini, {})
    assert (
        not adapter_for("gemini")
        .classify("POST", "/v1beta/models/g:generateContent")
        .always_streaming
    )


def test_request_models_from_body_or_gemini_path() -> None:
    openai = adapter_for("openai-compatible")
    chat = openai.classify("POST", "/v1/chat/completions")
    assert request_models(openai, chat, {"model": "gpt-4o"}) == ("gpt-4o",)
    assert request_models(openai, chat, {"model": 3}) == (None,)
    assert request_models(openai, chat, {}) == ()
    assert request_models(openai, chat, {"model": "gpt-4o", "mode": "o1"}) == ("gpt-4o",)
    # A router tries the models of `models` when `model` fails.
    assert request_models(openai, chat, {"model": "gpt-4o", "models": "o1"}) == ("gpt-4o", "o1")
    gemini = adapter_for("gemini")
    route = gemini.classify("POST", "/v1beta/models/gemini-1.5-pro:generateContent")
    assert request_models(gemini, route, {"contents": []}) == ("gemini-1.5-pro",)
    assert request_models(gemini, route, {"model": "gemini-1.5-flash"}) == ("gemini-1.5-pro",)


@pytest.mark.parametrize(
    ("body", "models"),
    [
        ({"model": "gpt-4o", "MODEL": "gpt-4o"}, ("gpt-4o", "gpt-4o")),
        ({"model": "gpt-4o", "Model": "o1"}, ("gpt-4o", "o1")),
        ({"Model": "o1", "model": "gpt-4o"}, ("o1", "gpt-4o")),
        ({"MODEL": "gpt-4o"}, ("gpt-4o",)),
    ],
)
def test_every_member_a_server_may_read_as_the_model_is_a_model(
    body: Any, models: tuple[str, ...]
) -> None:
    """Go's decoder (Ollama) binds ``Model`` and ``MODEL`` to ``model``, the last one winning;
    others read only ``model``: each of them may be the model served."""
    openai = adapter_for("openai-compatible")
    chat = openai.classify("POST", "/v1/chat/completions")
    assert request_models(openai, chat, body) == models


def test_each_request_of_an_anthropic_batch_names_a_model() -> None:
    anthropic = adapter_for("anthropic")
    batches = anthropic.classify("POST", "/v1/messages/batches")
    body = {
        "model": "decoy",
        "requests": [
            {"custom_id": "a", "params": {"model": "claude-a", "messages": []}},
            {"custom_id": "b", "params": {"model": 7}},
            {"custom_id": "c"},
            "not a request",
        ],
    }
    assert request_models(anthropic, batches, body) == ("decoy", "claude-a", None)
    assert request_models(anthropic, batches, {"requests": {"*": {"params": {}}}}) == ()


@pytest.mark.parametrize(
    ("body", "plain"),
    [
        ({"model": "m"}, True),
        ({"stream": True}, True),
        ({"stream": False}, True),
        ({"stream": None}, True),
        ({"stream": "true"}, False),
        ({"stream": 1}, False),
        ({"stream": False, "Stream": True}, False),
        ({"STREAM": True}, False),
        ({"\u017ftream": True}, False),  # long s: Go folds it to "S"
        ({"streams": True, "stream": False}, True),
        ([], True),
    ],
)
def test_plain_stream_flag(body: Any, plain: bool) -> None:
    assert plain_stream_flag(body) is plain


@given(st.text(alphabet="modelMODEL", min_size=5, max_size=5))
def test_every_case_spelling_of_a_field_is_named_like_it(name: str) -> None:
    assert named_like(name, "model") is (name.lower() == "model")


def test_repeated_classification_keeps_method_and_path_apart() -> None:
    openai = adapter_for("openai-compatible")
    for _ in range(3):
        assert openai.classify("POST", "/v1/embeddings").operation == "POST embeddings"
        assert openai.classify("GET", "/v1/embeddings").operation == "GET embeddings"
    gemini = adapter_for("gemini")
    for model in ("a", "b", "a"):
        path = f"/v1beta/models/{model}:generateContent"
        route = gemini.classify("POST", path)
        assert route.path == path
        assert gemini.path_model(route.path) == model


def test_llama_cpp_aliases_are_classified_like_their_routes() -> None:
    llama = adapter_for("llama-cpp")
    for alias, route in (
        ("/chat/completions", "/v1/chat/completions"),
        ("/completions", "/completion"),
    ):
        assert llama.classify("POST", alias).route_id == llama.classify("POST", route).route_id
    for path in ("/infill", "/embedding", "/embeddings", "/detokenize"):
        assert llama.classify("POST", path).route_id != "unknown"
