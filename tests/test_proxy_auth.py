# SPDX-License-Identifier: Apache-2.0
"""Authentication, profiles, rate limits and the model allowlist at the gateway (§13.3)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.auth import add_token
from haechi.models import Identity
from tests.upstream_server import Gateway, Reply, gateway_in_front


def chat(text: str = "hello", model: str = "m") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def new_token(gateway: Gateway, **options: Any) -> tuple[str, str]:
    record, token = add_token(
        gateway.runtime.config.auth.store,
        gateway.runtime.crypto,
        token_type=options.pop("token_type", "user"),
        **options,
    )
    return record["id"], token


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def post_chat(gateway: Gateway, token: str, model: str = "m") -> httpx.Response:
    """A chat request for ``model`` to ``gateway`` with ``token`` as the bearer token."""
    return httpx.post(
        f"{gateway.url}/v1/chat/completions", json=chat(model=model), headers=bearer(token)
    )


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    with gateway_in_front(tmp_path, {"auth": {"provider": "bearer"}}) as running:
        yield running


def _denials(gateway: Gateway) -> list[dict[str, Any]]:
    return [r for r in gateway.audit() if r.get("decision") == "auth_denied"]


def test_missing_token_is_401_before_the_body_is_read(gateway: Gateway) -> None:
    # Headers announce a body that never comes: a gateway that read it would hang.
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
            b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401")
    assert b"www-authenticate: bearer" in answer.lower()
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat())
    assert response.json() == {"error": "haechi_auth_denied", "message": "Authentication required"}
    assert gateway.upstream.received == []
    denial = _denials(gateway)[-1]
    assert denial["reason"] == "no_token"
    assert denial["identity"] is None
    assert denial["blocked"] is True


@pytest.mark.parametrize("header", ["Bearer hae_wrong", "Basic dXNlcjpwYXNz"])
def test_wrong_token_is_401_and_never_audited_in_clear(gateway: Gateway, header: str) -> None:
    new_token(gateway)
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=chat(), headers={"authorization": header}
    )
    assert response.status_code == 401
    assert gateway.upstream.received == []
    reason = _denials(gateway)[-1]["reason"]
    assert reason == ("invalid_token" if header.startswith("Bearer") else "no_token")
    assert header.split()[1] not in gateway.audit_text()


def test_valid_token_passes_and_is_never_forwarded(gateway: Gateway) -> None:
    token_id, token = new_token(gateway)
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json=chat(),
        headers={**bearer(token), "x-api-key": "upstream-key"},
    )
    assert response.status_code == 200
    seen = gateway.upstream.last.headers
    assert "authorization" not in seen
    assert seen["x-api-key"] == "upstream-key"
    assert token not in gateway.audit_text()
    event = gateway.audit()[-1]
    assert event["identity"]["id"] == token_id
    assert set(event["identity"]) == {"id", "type", "subjectHash", "issuerHash", "provider"}


def test_revoked_token_is_refused_on_the_next_request(gateway: Gateway) -> None:
    from haechi.auth import revoke_token

    token_id, token = new_token(gateway)
    url = f"{gateway.url}/v1/chat/completions"
    assert httpx.post(url, json=chat(), headers=bearer(token)).status_code == 200
    revoke_token(gateway.runtime.config.auth.store, token_id)
    assert httpx.post(url, json=chat(), headers=bearer(token)).status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/models"), ("POST", "/v2/anything"), ("DELETE", "/v1/files/file-1")],
)
def test_unknown_routes_need_a_token_too(gateway: Gateway, method: str, path: str) -> None:
    response = httpx.request(method, f"{gateway.url}{path}", json={"a": 1})
    assert response.status_code == 401
    assert response.json()["error"] == "haechi_auth_denied"
    assert gateway.upstream.received == []
    denial = _denials(gateway)[-1]
    assert (denial["routeId"], denial["reason"]) == ("unknown", "no_token")


def test_health_needs_no_token(gateway: Gateway) -> None:
    assert httpx.get(f"{gateway.url}/__haechi/health").status_code == 200


class _ExplodingAuth:
    name = "exploding"

    async def authenticate(self, headers: Mapping[str, str]) -> Identity | None:
        raise RuntimeError("lookup failed for jane.doe@example.com with AKIAIOSFODNN7EXAMPLE")


def test_a_raising_provider_denies_without_leaking(tmp_path: Path) -> None:
    config = {"auth": {"provider": "external"}}
    with gateway_in_front(tmp_path, config, providers={"auth": _ExplodingAuth()}) as gateway:
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions", json=chat(), headers=bearer("anything")
        )
        assert response.status_code == 401
        assert response.json()["message"] == "Authentication failed"
        assert "AKIA" not in response.text
        assert "jane" not in response.text
        assert gateway.upstream.received == []
        denial = _denials(gateway)[-1]
        assert denial["reason"] == "provider_error"
        assert denial["identity"] is None
        assert denial["profile"] is None
        assert "AKIA" not in gateway.audit_text()


PROFILES = {
    "policy": {
        "profiles": {
            "strict": {"actions": {"email": "block"}},
            "eng": {
                "actions": {"email": "redact"},
                "modelAllowlist": ["gpt-4o"],
                "rate": {"requestsPerMinute": 2},
            },
        },
        "profileBinding": {"default": "strict", "byScope": {"team:eng": "eng"}},
    },
    "auth": {"provider": "bearer"},
}


def test_scope_selects_a_profile(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, PROFILES) as gateway:
        _id, eng = new_token(gateway, scopes=["team:eng"])
        _id, other = new_token(gateway)
        url = f"{gateway.url}/v1/chat/completions"
        mail = chat("write to jane.doe@example.com", model="gpt-4o")
        assert httpx.post(url, json=mail, headers=bearer(eng)).status_code == 200
        assert gateway.audit()[-1]["profile"] == "eng"
        blocked = httpx.post(url, json=mail, headers=bearer(other))
        assert blocked.status_code == 403
        assert blocked.json()["error"] == "haechi_policy_block"


def test_model_allowlist_refuses_other_models_and_missing_ones(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, PROFILES) as gateway:
        _id, eng = new_token(gateway, scopes=["team:eng"])
        url = f"{gateway.url}/v1/chat/completions"
        sneaky = chat(model="jane.doe@example.com-model")
        response = httpx.post(url, json=sneaky, headers=bearer(eng))
        assert response.status_code == 403
        assert response.json()["error"] == "haechi_model_not_allowed"
        assert "jane" not in response.text
        no_model = {"messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(url, json=no_model, headers=bearer(eng)).status_code == 403
        assert gateway.upstream.received == []
        decisions = [r for r in gateway.audit() if r.get("decision") == "model_not_allowed"]
        assert len(decisions) == 2
        assert "jane" not in gateway.audit_text()


def test_model_allowlist_checks_the_gemini_path_model(tmp_path: Path) -> None:
    config = {"target": {"type": "gemini"}, "policy": {"modelAllowlist": ["gemini-1.5-flash"]}}
    with gateway_in_front(tmp_path, config) as gateway:
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        denied = httpx.post(f"{gateway.url}/v1beta/models/gemini-ultra:generateContent", json=body)
        assert denied.status_code == 403
        assert gateway.upstream.received == []
        allowed = httpx.post(
            f"{gateway.url}/v1beta/models/gemini-1.5-flash:generateContent", json=body
        )
        assert allowed.status_code == 200
        assert gateway.upstream.last.path == "/v1beta/models/gemini-1.5-flash:generateContent"
        # The upstream serves the path's model: an allowed model in the body changes nothing.
        smuggled = httpx.post(
            f"{gateway.url}/v1beta/models/gemini-ultra:generateContent",
            json={**body, "model": "gemini-1.5-flash"},
        )
        assert smuggled.status_code == 403
        assert smuggled.json()["error"] == "haechi_model_not_allowed"
        assert len(gateway.upstream.received) == 1


@pytest.mark.parametrize("target", ["ollama", "openai-compatible"])
def test_model_allowlist_sees_a_model_named_in_another_letter_case(
    tmp_path: Path, target: str
) -> None:
    """Ollama's Go decoder (on its own API and its OpenAI-compatible one) binds ``MODEL`` to
    ``model``, the last one winning: every such member must name an allowed model."""
    config = {"target": {"type": target}, "policy": {"modelAllowlist": ["llama3"]}}
    path = "/api/chat" if target == "ollama" else "/v1/chat/completions"
    body = {**chat("hi", model="llama3"), "stream": False}
    unnamed = {key: value for key, value in body.items() if key != "model"}
    with gateway_in_front(tmp_path, config) as gateway:
        for smuggled in ({**body, "MODEL": "forbidden"}, {**unnamed, "Model": "forbidden"}):
            denied = httpx.post(f"{gateway.url}{path}", json=smuggled)
            assert denied.status_code == 403
            assert denied.json()["error"] == "haechi_model_not_allowed"
        assert gateway.upstream.received == []
        for allowed in (body, {**body, "Model": "llama3"}):
            assert httpx.post(f"{gateway.url}{path}", json=allowed).status_code == 200
        assert len(gateway.upstream.received) == 2


def test_empty_model_allowlist_allows_every_model(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"policy": {"modelAllowlist": []}}) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(model="any"))
        assert response.status_code == 200


def test_rate_limit_per_identity(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, PROFILES) as gateway:
        _id, first = new_token(gateway, scopes=["team:eng"])
        _id, second = new_token(gateway, scopes=["team:eng"])
        url = f"{gateway.url}/v1/chat/completions"
        body = chat(model="gpt-4o")
        codes = [httpx.post(url, json=body, headers=bearer(first)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert httpx.post(url, json=body, headers=bearer(second)).status_code == 200
        limited = [r for r in gateway.audit() if r.get("decision") == "rate_limited"]
        assert limited[-1]["reason"] == "rate:2"
        assert "haechi_rate_limited_total 1.0" in gateway.metrics("haechi_rate_limited_total 1.0")


def test_anonymous_callers_share_one_budget(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"policy": {"rate": {"requestsPerMinute": 1}}}) as gateway:
        url = f"{gateway.url}/v1/chat/completions"
        assert httpx.post(url, json=chat()).status_code == 200
        limited = httpx.post(url, json=chat())
        assert limited.status_code == 429
        assert limited.json()["error"] == "haechi_rate_limited"


class _AsyncDenyLimiter:
    name = "deny"
    calls: list[tuple[str, float]] = []

    async def allow(self, key: str, requests_per_minute: float) -> bool:
        self.calls.append((key, requests_per_minute))
        return False


def test_injected_limiter_is_consulted_and_its_answer_awaited(tmp_path: Path) -> None:
    limiter = _AsyncDenyLimiter()
    config = {"policy": {"rate": {"requestsPerMinute": 30}}}
    with gateway_in_front(tmp_path, config, providers={"rate_limiter": limiter}) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat())
        assert response.status_code == 429
        assert limiter.calls == [("anonymous", 30.0)]
        assert gateway.upstream.received == []


def test_auth_none_forwards_the_upstream_key(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path) as gateway:
        gateway.upstream.queue(Reply(text="ok"))
        httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(), headers=bearer("sk-upstream"))
        assert gateway.upstream.last.headers["authorization"] == "Bearer sk-upstream"
        assert json.loads(gateway.audit_text().splitlines()[-1])["identity"] is None
