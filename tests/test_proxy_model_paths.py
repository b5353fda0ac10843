# SPDX-License-Identifier: Apache-2.0
"""The model allowlist checks the model the upstream serves, wherever the request names it.

Azure OpenAI and LiteLLM take the model from the path (``/openai/deployments/<model>/…``,
``/engines/<model>/…``) whatever the body says; Ollama reads ``name`` where a request has no
``model``, and its model-management routes change which weights an allowed name serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.protocols import adapter_for, request_models
from haechi.proxy.background import serve_in_thread
from haechi.proxy.pipeline import model_allowed
from tests.upstream_server import UpstreamServer, gateway_in_front

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
OPENAI = {"target": {"type": "openai-compatible"}, "policy": {"modelAllowlist": ["gpt-4o"]}}
OLLAMA = {"target": {"type": "ollama"}, "policy": {"modelAllowlist": ["llama3.2"]}}


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("/openai/deployments/gpt-4o/chat/completions", "gpt-4o"),
        ("/openai/deployments/azure/gpt-4o/chat/completions", "azure/gpt-4o"),
        ("/openai/deployments/gpt-4o/completions", "gpt-4o"),
        ("/deployments/gpt-4o/embeddings", "gpt-4o"),
        ("/engines/gpt-4o/chat/completions/", "gpt-4o"),
        ("/v1/engines//gpt-4o/completions", "gpt-4o"),
        ("/openai/deployments/gpt-4o/images/generations", None),
        ("/openai/deployments/chat/completions", "chat"),  # the completions of "chat"
    ],
)
def test_a_deployment_path_names_the_model(path: str, model: str | None) -> None:
    adapter = adapter_for("openai-compatible")
    route = adapter.classify("POST", path)
    assert request_models(adapter, route, {"model": "other"}) == (model,)


def test_a_deployment_path_gets_the_route_of_its_operation() -> None:
    adapter = adapter_for("openai-compatible")
    chat = adapter.classify("POST", "/openai/deployments/gpt-4o/chat/completions")
    assert chat.route_id == "chat-completions"
    assert chat.streaming is not None
    assert adapter.classify("POST", "/engines/gpt-4o/completions").route_id == "completions"
    assert adapter.classify("POST", "/openai/deployments/x/files").route_id == "unknown"


@pytest.mark.parametrize(
    "path",
    [
        "/openai/deployments/gpt-4-forbidden/chat/completions?api-version=2024-06-01",
        "/engines/gpt-4-forbidden/chat/completions",
        "/openai/deployments/gpt-4o/images/generations",
    ],
)
def test_the_path_model_of_a_deployment_is_checked(tmp_path: Path, path: str) -> None:
    """An allowed model in the body does not let the path's model through."""
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        denied = httpx.post(f"{gateway.url}{path}", json={**CHAT, "model": "gpt-4o"})
        assert denied.status_code == 403
        assert denied.json()["error"] == "haechi_model_not_allowed"
        assert gateway.upstream.received == []


def test_an_allowed_deployment_is_forwarded_as_sent(tmp_path: Path) -> None:
    path = "/openai/deployments/gpt-4o/chat/completions"
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        response = httpx.post(f"{gateway.url}{path}?api-version=2024-06-01", json=CHAT)
        assert response.status_code != 403
        assert gateway.upstream.last.path == path


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/copy", {"model": "llama3.2", "source": "forbidden", "destination": "llama3.2"}),
        ("/api/create", {"model": "llama3.2", "from": "forbidden"}),
        ("/api/pull", {"model": "llama3.2"}),
        ("/api/push", {"model": "llama3.2"}),
        ("/api/delete", {"model": "llama3.2"}),
        ("/api/show", {"name": "forbidden"}),
        ("/api/show", {"model": "llama3.2", "name": "forbidden"}),
        ("/api/chat", {"model": "models/llama3.2", **CHAT}),
        ("/api/chat", {"name": "llama3.2", "model": "forbidden", **CHAT}),
    ],
)
def test_ollama_requests_that_could_serve_another_model_are_refused(
    tmp_path: Path, path: str, body: dict[str, Any]
) -> None:
    with gateway_in_front(tmp_path, OLLAMA) as gateway:
        denied = httpx.post(f"{gateway.url}{path}", json={**body, "stream": False})
        assert denied.status_code == 403
        assert denied.json()["error"] == "haechi_model_not_allowed"
        assert gateway.upstream.received == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/show", {"name": "llama3.2"}),
        ("/api/show", {"model": "llama3.2", "name": "llama3.2"}),
        ("/api/chat", {"model": "llama3.2", **CHAT}),
    ],
)
def test_ollama_requests_naming_an_allowed_model_are_forwarded(
    tmp_path: Path, path: str, body: dict[str, Any]
) -> None:
    with gateway_in_front(tmp_path, OLLAMA) as gateway:
        response = httpx.post(f"{gateway.url}{path}", json={**body, "stream": False})
        assert response.status_code != 403, response.text
        assert gateway.upstream.last.json() == {**body, "stream": False}


@pytest.mark.parametrize(
    ("models", "status"), [(("claude-a", "claude-b"), 403), (("claude-a", "claude-a"), 200)]
)
def test_every_request_of_an_anthropic_batch_is_checked(
    tmp_path: Path, models: tuple[str, ...], status: int
) -> None:
    """A batch names a model per request; an allowed model beside them changes nothing."""
    config = {"target": {"type": "anthropic"}, "policy": {"modelAllowlist": ["claude-a"]}}
    requests = [
        {"custom_id": str(n), "params": {"model": model, "max_tokens": 8, "messages": []}}
        for n, model in enumerate(models)
    ]
    body = {"model": "claude-a", "requests": requests}
    with gateway_in_front(tmp_path, config) as gateway:
        response = httpx.post(f"{gateway.url}/v1/messages/batches", json=body)
        if status == 403:
            assert response.status_code == 403
            assert response.json()["error"] == "haechi_model_not_allowed"
            assert gateway.upstream.received == []
        else:
            assert response.status_code != 403, response.text
            assert gateway.upstream.last.json() == body


def test_ollama_model_management_is_forwarded_without_an_allowlist(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"target": {"type": "ollama"}}) as gateway:
        body = {"source": "llama3.2", "destination": "mine"}
        assert httpx.post(f"{gateway.url}/api/copy", json=body).status_code != 403
        assert gateway.upstream.last.json() == body


def test_models_prefix_is_gemini_resource_name_only() -> None:
    """``models/x`` is ``x`` to Gemini; to Ollama it is ``x`` in the ``models`` namespace."""
    assert model_allowed(["x"], "models/x", resource_names=True)
    assert model_allowed(["models/x"], "x", resource_names=True)
    assert not model_allowed(["x"], "models/x")
    assert not model_allowed(["models/x"], "x")
    assert model_allowed(["models/x"], "models/x")


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("/v1beta/models/gemini-pro:generateContent", "gemini-pro"),
        (
            "/v1/projects/p/locations/l/publishers/google/models/gemini-pro:generateContent",
            "gemini-pro",
        ),
        ("/v1beta/tunedModels/gemini-pro:generateContent", "tunedModels/gemini-pro"),
        ("/v1/projects/p/locations/l/endpoints/gemini-pro:generateContent", "endpoints/gemini-pro"),
    ],
)
def test_a_gemini_path_names_its_model_with_its_collection(path: str, model: str) -> None:
    adapter = adapter_for("gemini")
    route = adapter.classify("POST", path)
    assert route.route_id == "generate-content"
    assert request_models(adapter, route, {"model": "gemini-pro"}) == (model,)


def test_a_tuned_model_named_like_an_allowed_model_is_refused(tmp_path: Path) -> None:
    """A tuned model (``tunedModels/<id>``, trained on whatever its owner gave it) is another
    model than the base model whose name its id repeats."""
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    tuned = "/v1beta/tunedModels/gemini-pro:generateContent"
    config = {"target": {"type": "gemini"}, "policy": {"modelAllowlist": ["gemini-pro"]}}
    with gateway_in_front(tmp_path, config) as gateway:
        denied = httpx.post(f"{gateway.url}{tuned}", json=body)
        assert denied.status_code == 403
        assert denied.json()["error"] == "haechi_model_not_allowed"
        assert gateway.upstream.received == []
        base = httpx.post(f"{gateway.url}/v1beta/models/gemini-pro:generateContent", json=body)
        assert base.status_code == 200
    allowed = {**config, "policy": {"modelAllowlist": ["tunedModels/gemini-pro"]}}
    with gateway_in_front(tmp_path / "tuned", allowed) as gateway:
        assert httpx.post(f"{gateway.url}{tuned}", json=body).status_code != 403
        assert gateway.upstream.last.path == tuned


@pytest.mark.parametrize(
    ("prefix", "path", "allowed"),
    [
        ("/openai/deployments", "/gpt-4-forbidden/chat/completions", False),
        ("/openai/deployments", "/gpt-4o/chat/completions", True),
        ("/openai/deployments/gpt-4-forbidden", "/chat/completions", False),
        ("/openai/deployments/gpt-4o", "/chat/completions", True),
        ("/openai", "/deployments/gpt-4-forbidden/embeddings", False),
        ("/api", "/v1/chat/completions", True),
    ],
)
def test_an_upstream_path_prefix_counts_in_the_path_model(
    tmp_path: Path, prefix: str, path: str, allowed: bool
) -> None:
    """The upstream serves its URL's path followed by the client's: when the two together
    name a deployment, that deployment is the model checked, whatever the body says."""
    upstream = UpstreamServer()
    with (
        serve_in_thread(upstream) as served,
        gateway_in_front(tmp_path, OPENAI, upstream_url=served.url + prefix) as gateway,
    ):
        response = httpx.post(f"{gateway.url}{path}", json={**CHAT, "model": "gpt-4o"})
    if allowed:  # the stand-in answers 404 to paths it does not serve: it was reached
        assert response.status_code != 403
        assert [request.path for request in upstream.received] == [prefix + path]
    else:
        assert response.status_code == 403
        assert response.json()["error"] == "haechi_model_not_allowed"
        assert upstream.received == []


@pytest.mark.parametrize(
    ("config", "prefix", "path"),
    [
        (OLLAMA, "/api", "/create"),
        (OLLAMA, "/api", "/copy"),
        (OPENAI, "/api", "/pull"),
        (OPENAI, "/ollama/api", "/create/"),
    ],
)
def test_model_management_behind_an_upstream_path_prefix_is_refused(
    tmp_path: Path, config: dict[str, Any], prefix: str, path: str
) -> None:
    """Behind an upstream URL ending in ``/api``, the client's ``/create`` is Ollama's
    ``/api/create``: it changes the weights an allowed name serves, so it is refused as the
    whole path is, whatever allowed model the body names."""
    model = config["policy"]["modelAllowlist"][0]
    body = {"model": model, "from": "other-model", "source": "other-model", "destination": model}
    upstream = UpstreamServer()
    with (
        serve_in_thread(upstream) as served,
        gateway_in_front(tmp_path, config, upstream_url=served.url + prefix) as gateway,
    ):
        response = httpx.post(f"{gateway.url}{path}", json=body)
    assert response.status_code == 403
    assert response.json()["error"] == "haechi_model_not_allowed"
    assert upstream.received == []
