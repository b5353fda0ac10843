# SPDX-License-Identifier: Apache-2.0
"""A signed auth plugin in front of a real upstream: uvicorn on a real socket, httpx client."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.auth import IDENTITY_HASH_DOMAIN
from tests.plugins.auth.kit import confinement_skip_reason, plugin_config_document, sign_plugin
from tests.upstream_server import Gateway, gateway_in_front

MODE = "required" if confinement_skip_reason() is None else "best-effort"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


def plugin_gateway(tmp_path: Path, fixture: str) -> Any:
    signed = sign_plugin(tmp_path / "plugin", fixture)
    config = {**plugin_config_document(signed, confinement=MODE, timeoutMs=1000)}
    return gateway_in_front(tmp_path, config)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    with plugin_gateway(tmp_path, "good_auth.py") as running:
        yield running
        running.runtime.auth.close()


def post(gateway: Gateway, authorization: str | None) -> httpx.Response:
    headers = {} if authorization is None else {"authorization": authorization}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=headers)


def decisions(gateway: Gateway, decision: str) -> list[dict[str, Any]]:
    return [r for r in gateway.audit() if r.get("decision") == decision]


def test_the_right_credential_is_forwarded(gateway: Gateway) -> None:
    response = post(gateway, "Bearer let-me-in")
    assert response.status_code == 200
    [received] = gateway.upstream.received
    assert "authorization" not in {name.lower() for name in received.headers}
    forwarded = [r for r in gateway.audit() if r.get("identity")]
    identity = forwarded[-1]["identity"]
    assert identity["provider"] == "plugin:test-auth"
    crypto = gateway.runtime.crypto
    assert identity["subjectHash"] == crypto.hmac("svc-reporting@example.com", IDENTITY_HASH_DOMAIN)
    assert decisions(gateway, "plugin.load.accepted")[0]["pluginId"] == "test-auth"


@pytest.mark.parametrize("authorization", ["Bearer wrong", None])
def test_a_wrong_or_missing_credential_gets_401(
    gateway: Gateway, authorization: str | None
) -> None:
    response = post(gateway, authorization)
    assert response.status_code == 401
    assert response.json()["error"] == "haechi_auth_denied"
    assert gateway.upstream.received == []
    assert decisions(gateway, "auth_denied")
    assert decisions(gateway, "plugin.authenticate.deny")
    assert "wrong" not in gateway.audit_text()


@pytest.mark.skipif(MODE != "required", reason=str(confinement_skip_reason()))
def test_a_hostile_plugin_cannot_reach_the_gateways_loopback(tmp_path: Path) -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener,
        plugin_gateway(tmp_path, "hostile_auth.py") as running,
    ):
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        try:
            assert post(running, f"Bearer connect:{port}").status_code == 401
            assert (
                post(running, f"Bearer connect:{running.url.rsplit(':', 1)[1]}").status_code == 401
            )
            assert post(running, "Bearer spin:").status_code == 401
            assert post(running, "Bearer hello").status_code == 200
        finally:
            running.runtime.auth.close()
        with pytest.raises(BlockingIOError):
            listener.accept()
        reasons = [r["reason"] for r in decisions(running, "plugin.authenticate.deny")]
        assert reasons == ["plugin-error", "plugin-error", "timeout"]
        assert [r["cause"] for r in decisions(running, "plugin.worker.terminated")] == ["timeout"]
