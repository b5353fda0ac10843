# SPDX-License-Identifier: Apache-2.0
"""A path no adapter knows may be served like a known route of any server: the model
allowlist reads it as the server that serves it would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.protocols import adapter_for
from tests.upstream_server import Reply, SharedGateways, gateway_in_front

ALLOWED = "llama3.2"


def _refused(shared_gateway: SharedGateways, adapter: str, path: str, body: dict[str, Any]) -> None:
    config = {"target": {"type": adapter}, "policy": {"modelAllowlist": [ALLOWED]}}
    gateway = shared_gateway(config)
    denied = httpx.post(f"{gateway.url}{path}", json=body, timeout=30)
    assert denied.status_code == 403, denied.text
    assert denied.json()["error"] == "haechi_model_not_allowed"
    assert gateway.upstream.received == []


@pytest.mark.parametrize(
    ("adapter", "path", "body"),
    [
        # Ollama's OpenAI-compatible API fronted as openai-compatible: its native model
        # management is served beside it, and reads no ``model``.
        (
            "openai-compatible",
            "/api/copy",
            {"model": ALLOWED, "source": "uncensored", "destination": ALLOWED},
        ),
        ("openai-compatible", "/api/create", {"model": ALLOWED, "from": "uncensored"}),
        ("vllm-openai", "/api/pull/", {"model": ALLOWED}),
        # vLLM serves a LoRA adapter loaded under a name for that name.
        (
            "vllm-openai",
            "/v1/load_lora_adapter",
            {"model": ALLOWED, "lora_name": ALLOWED, "lora_path": "/srv/other"},
        ),
        ("openai-compatible", "/v1//unload_lora_adapter", {"model": ALLOWED, "lora_name": "a"}),
        # SGLang swaps the weights a name serves.
        ("llama-cpp", "/update_weights_from_disk", {"model": ALLOWED, "model_path": "/srv/x"}),
        ("anthropic", "/load_lora_adapter", {"model": ALLOWED, "lora_name": ALLOWED}),
        # ... and passed through under a prefix.
        ("openai-compatible", "/vllm/v1/load_lora_adapter", {"model": ALLOWED}),
        ("gemini", "/ollama/api/copy/", {"model": ALLOWED, "source": "x", "destination": "y"}),
    ],
)
def test_model_management_on_a_path_no_adapter_knows_is_refused(
    shared_gateway: SharedGateways, adapter: str, path: str, body: dict[str, Any]
) -> None:
    """An allowed model named beside the request does not let it change what that name
    serves."""
    _refused(shared_gateway, adapter, path, body)


def test_model_management_paths_are_unknown_routes_that_manage_models() -> None:
    route = adapter_for("openai-compatible").classify("POST", "/api/copy")
    assert route.route_id == "unknown"
    assert route.manages_models
    assert not adapter_for("openai-compatible").classify("POST", "/api/copyx").manages_models


def test_model_management_is_forwarded_without_an_allowlist(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"target": {"type": "openai-compatible"}}) as gateway:
        body = {"source": ALLOWED, "destination": "mine"}
        httpx.post(f"{gateway.url}/api/copy", json=body, timeout=30)
        assert gateway.upstream.last.json() == body


CHAT = {"messages": [{"role": "user", "content": "hi"}]}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.mark.parametrize(
    ("adapter", "path", "body"),
    [
        # LiteLLM serves Azure's deployment paths beside every other API it speaks, and
        # serves the path's model.
        ("anthropic", "/openai/deployments/other/chat/completions", {**CHAT, "model": ALLOWED}),
        ("vllm-openai", "/engines/other/completions", {"prompt": "hi", "model": ALLOWED}),
        ("ollama", "/openai/deployments/other/files", {"model": ALLOWED}),
        # ... under a prefix of its own too, and Bedrock's, the model in the path.
        (
            "openai-compatible",
            "/azure/openai/deployments/other/chat/completions",
            {**CHAT, "model": ALLOWED},
        ),
        ("anthropic", "/bedrock/model/other/converse", {**CHAT, "model": ALLOWED}),
        # ... in any letter case, as a server routing paths whatever their case reads them.
        (
            "openai-compatible",
            "/OpenAI/Deployments/other/Chat/Completions",
            {**CHAT, "model": ALLOWED},
        ),
        ("anthropic", "/Model/other/Converse", {**CHAT, "model": ALLOWED}),
        ("ollama", "/model/other/invoke", {"model": ALLOWED}),
        ("openai-compatible", "/bedrock/model/llama3.2/other", {"model": ALLOWED}),
        # ... and the KServe v2 protocol's (Triton).
        ("vllm-openai", "/v2/models/other/generate", {"text_input": "hi", "model": ALLOWED}),
        ("openai-compatible", "/v2/models/other/versions/1/infer", {"model": ALLOWED}),
        # ... and passes Gemini's API through, the model in the path.
        (
            "openai-compatible",
            "/gemini/v1beta/models/other:generateContent",
            {**GEMINI, "model": ALLOWED},
        ),
        ("anthropic", "/v1beta/models/other:streamGenerateContent", {**GEMINI, "model": ALLOWED}),
        ("llama-cpp", "/v1beta/tunedModels/llama3.2:generateContent", {"model": ALLOWED}),
        # ... and Anthropic's, whose batches name a model per request.
        (
            "openai-compatible",
            "/anthropic/v1/messages/batches",
            {
                "model": ALLOWED,
                "requests": [{"custom_id": "a", "params": {"model": "other", "max_tokens": 8}}],
            },
        ),
    ],
)
def test_a_model_named_on_a_path_no_adapter_knows_is_checked(
    shared_gateway: SharedGateways, adapter: str, path: str, body: dict[str, Any]
) -> None:
    """An allowed model in the body does not let the model the path names through."""
    _refused(shared_gateway, adapter, path, body)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/openai/deployments/llama3.2/chat/completions", CHAT),
        ("/bedrock/model/llama3.2/converse", CHAT),
        ("/v2/models/llama3.2/infer", {"inputs": []}),
        ("/gemini/v1beta/models/llama3.2:generateContent", {**GEMINI, "model": ALLOWED}),
        (
            "/anthropic/v1/messages/batches",
            {"requests": [{"custom_id": "a", "params": {"model": ALLOWED, "max_tokens": 8}}]},
        ),
    ],
)
def test_an_allowed_model_named_on_a_path_no_adapter_knows_is_forwarded(
    shared_gateway: SharedGateways, path: str, body: dict[str, Any]
) -> None:
    config = {"target": {"type": "anthropic"}, "policy": {"modelAllowlist": [ALLOWED]}}
    gateway = shared_gateway(config)
    response = httpx.post(f"{gateway.url}{path}", json=body, timeout=30)
    assert response.status_code != 403, response.text
    assert gateway.upstream.last.path == path
    assert gateway.upstream.last.json() == body


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        # OpenRouter tries ``models`` in turn when ``model`` fails.
        ("/v1/chat/completions", {"models": ["other"]}),
        # LiteLLM serves a fallback when the model fails, as it does on request.
        ("/v1/chat/completions", {"fallbacks": ["other"], "mock_testing_fallbacks": True}),
        ("/v1/completions", {"fallbacks": [{ALLOWED: ["other"]}]}),
        ("/v1/responses", {"context_window_fallbacks": [{ALLOWED: ["other"]}]}),
        ("/v1/embeddings", {"fallbacks": "other"}),
        ("/openai/deployments/llama3.2/chat/completions", {"fallbacks": ["other"]}),
        # ... and a router of the caller's own.
        (
            "/v1/chat/completions",
            {"user_config": {"model_list": [{"model_name": ALLOWED, "litellm_params": {}}]}},
        ),
        ("/chat/completions", {"content_policy_fallbacks": [{ALLOWED: ["other"]}]}),
    ],
)
def test_a_router_s_fallback_models_are_checked(
    shared_gateway: SharedGateways, path: str, extra: dict[str, Any]
) -> None:
    _refused(shared_gateway, "openai-compatible", path, {**CHAT, "model": ALLOWED, **extra})


def test_allowed_fallback_models_are_forwarded(shared_gateway: SharedGateways) -> None:
    config = {"target": {"type": "openai-compatible"}, "policy": {"modelAllowlist": [ALLOWED]}}
    body = {**CHAT, "model": ALLOWED, "models": [ALLOWED], "fallbacks": [{ALLOWED: [ALLOWED]}]}
    gateway = shared_gateway(config)
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert gateway.upstream.last.json() == body


@pytest.mark.parametrize(
    ("adapter", "path", "body"),
    [
        # LiteLLM serves these APIs through its router too.
        (
            "anthropic",
            "/v1/messages",
            {**CHAT, "model": ALLOWED, "max_tokens": 8, "fallbacks": ["other"]},
        ),
        ("gemini", "/v1beta/models/llama3.2:generateContent", {**GEMINI, "models": ["other"]}),
        ("ollama", "/api/chat", {**CHAT, "model": ALLOWED, "stream": False, "fallbacks": ["o"]}),
    ],
)
def test_a_router_s_fallback_models_are_checked_on_every_api(
    shared_gateway: SharedGateways, adapter: str, path: str, body: dict[str, Any]
) -> None:
    _refused(shared_gateway, adapter, path, body)


OLLAMA_CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
STREAMED = [
    # Ollama streams unless told not to, beside its OpenAI-compatible API.
    ("/api/chat", OLLAMA_CHAT),
    ("/api/generate/", {"model": "m", "prompt": "hi"}),
    # Google streams on its streaming methods, Bedrock and TGI on their stream paths, whatever
    # the body says.
    ("/gemini/v1beta/models/m:streamGenerateContent", {**GEMINI, "stream": False}),
    ("/v1/projects/p/locations/l/endpoints/e:streamRawPredict", {"stream": False}),
    ("/bedrock/model/m/converse-stream", CHAT),
    ("/model/m/invoke-with-response-stream", {"prompt": "hi"}),
    ("/generate_stream", {"inputs": "hi"}),
]


@pytest.mark.parametrize(("path", "body"), STREAMED)
@pytest.mark.parametrize("mode", ["block", "inspect"])
def test_a_path_no_adapter_knows_that_streams_is_a_streaming_request(
    shared_gateway: SharedGateways, mode: str, path: str, body: dict[str, Any]
) -> None:
    """Read as one answer, its stream would be a body that ``allowNonJson`` relays
    uninspected."""
    config = {
        "target": {"type": "openai-compatible"},
        "streaming": {"requestMode": mode},
        "responseProtection": {"enabled": True, "allowNonJson": True},
    }
    gateway = shared_gateway(config)
    refused = httpx.post(f"{gateway.url}{path}?alt=sse", json=body, timeout=30)
    assert refused.status_code == 501, refused.text
    assert gateway.upstream.received == []


def test_ollama_s_stream_is_not_relayed_uninspected(tmp_path: Path) -> None:
    config = {
        "target": {"type": "openai-compatible"},
        "streaming": {"requestMode": "inspect"},
        "responseProtection": {"enabled": True, "allowNonJson": True},
    }
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(text="your ssn is 123-45-6789"))
        refused = httpx.post(f"{gateway.url}/api/chat", json=OLLAMA_CHAT, timeout=30)
        assert "45-6" not in refused.text
        # Asked for one answer, it is one JSON body, inspected.
        gateway.upstream.queue(Reply(text="your ssn is 123-45-6789"))
        answer = httpx.post(
            f"{gateway.url}/api/chat", json={**OLLAMA_CHAT, "stream": False}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        assert "123-45-6789" not in answer.text
        assert "your ssn is" in answer.json()["message"]["content"]


@pytest.mark.parametrize(("path", "body"), STREAMED[:3])
def test_a_stream_on_a_path_no_adapter_knows_passes_through_when_configured(
    tmp_path: Path, path: str, body: dict[str, Any]
) -> None:
    config = {"target": {"type": "openai-compatible"}, "streaming": {"requestMode": "pass-through"}}
    with gateway_in_front(tmp_path, config) as gateway:
        httpx.post(f"{gateway.url}{path}?alt=sse", json=body, timeout=30)
        assert gateway.upstream.last.path == path
        assert "streaming_request_pass_through" in gateway.audit_text()
