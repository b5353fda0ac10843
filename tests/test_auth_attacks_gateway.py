# SPDX-License-Identifier: Apache-2.0
"""Getting past the gateway's bearer authentication or its per-identity rate limit.

Requests are written on raw sockets, so header spellings no HTTP client would send (odd
spacing, a tab, the header twice) reach the gateway as written.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from haechi.auth import add_token
from tests.upstream_server import Gateway, gateway_in_front

BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _status(gateway: Gateway, headers: list[tuple[str, str]], target: str) -> int:
    host, port = gateway.url.removeprefix("http://").split(":")
    head = (
        f"POST {target} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {len(BODY)}\r\nconnection: close\r\n"
    )
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + BODY)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    config = {"auth": {"provider": "bearer"}, "policy": {"rate": {"requestsPerMinute": 3}}}
    with gateway_in_front(tmp_path, config) as running:
        yield running


def test_spellings_of_one_token_share_one_budget(gateway: Gateway) -> None:
    _record, token = add_token(
        gateway.runtime.config.auth.store, gateway.runtime.crypto, token_type="user"
    )
    target = "/v1/chat/completions"
    spellings = [
        [("authorization", f"Bearer {token}")],
        [("authorization", f"bearer   {token}  ")],
        [("Authorization", f"BEARER\t{token}")],
        # The token with the token again as x-api-key: still the same identity and budget.
        [("authorization", f"Bearer {token}"), ("x-api-key", token)],
    ]
    statuses = [_status(gateway, headers, target) for headers in spellings]
    assert statuses == [200, 200, 200, 429]
    # Spellings that are not the token are not the identity: refused, never counted as it.
    refused = [
        [("authorization", f"Bearer {token.upper()}")],
        # Two credentials, in either order: which one counts is up to each reader.
        [("authorization", "Bearer another"), ("authorization", f"Bearer {token}")],
        [("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}")],
        [("authorization", f"Bearer {token}, Bearer {token}")],
        [("authorization", f"Basic {token}")],
        [("authorization", token)],
    ]
    assert [_status(gateway, headers, target) for headers in refused] == [401] * len(refused)
    assert _status(gateway, [], f"{target}?access_token={token}") == 401
    assert len(gateway.upstream.received) == 3
    for received in gateway.upstream.received:
        assert "authorization" not in received.headers
        assert token not in received.query
    audit = gateway.audit_text()
    assert token not in audit
    assert token.upper() not in audit
    decisions = [record.get("decision") for record in gateway.audit()]
    assert decisions.count("rate_limited") == 1
    assert decisions.count("auth_denied") == len(refused) + 1


def test_reserved_endpoints_show_no_identity_or_token(gateway: Gateway) -> None:
    import httpx

    _record, token = add_token(
        gateway.runtime.config.auth.store, gateway.runtime.crypto, token_type="user"
    )
    assert _status(gateway, [("authorization", f"Bearer {token}")], "/v1/chat/completions") == 200
    for endpoint in ("live", "ready", "health", "metrics"):
        answer = httpx.get(
            f"{gateway.url}/__haechi/{endpoint}", headers={"authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200
        assert token not in answer.text
        assert "tok_auth_" not in answer.text
