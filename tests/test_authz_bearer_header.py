# SPDX-License-Identifier: Apache-2.0
"""Which ``Authorization`` values the bearer provider reads as a token.

``Bearer``, in any letter case, then spaces or tabs, then the token (RFC 6750 ``b64token``
characters), with spaces or tabs around: nothing else. A value with any other character in
the token's place — a no-break space or next-line byte after it, a Unicode space between
the scheme and it — is a credential other than the token, and is refused; it is never
counted as the token's identity. Requests are written on raw sockets, so the bytes reach the
gateway as written.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from haechi.auth import BearerAuthProvider, add_token
from haechi.crypto import LocalCryptoProvider, init_key_file
from tests.upstream_server import Gateway, gateway_in_front

BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _status(gateway: Gateway, authorization: bytes) -> int:
    host, port = gateway.url.removeprefix("http://").split(":")
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\nauthorization: %s\r\n\r\n"
        % (len(BODY), authorization)
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + BODY)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    with gateway_in_front(tmp_path, {"auth": {"provider": "bearer"}}) as running:
        yield running


def test_only_spaces_and_tabs_separate_and_surround_the_token(gateway: Gateway) -> None:
    _record, text = add_token(
        gateway.runtime.config.auth.store, gateway.runtime.crypto, token_type="user"
    )
    token = text.encode()
    accepted = [b"Bearer " + token, b"bEaReR \t " + token + b" \t"]
    assert [_status(gateway, value) for value in accepted] == [200, 200]
    refused = [
        b"Bearer\xa0" + token,
        b"Bearer " + token + b"\xa0",
        b"Bearer " + token + b"\x85",
        b"\xa0Bearer " + token,
        b"Bearer " + token + b"\xa0\xa0",
    ]
    assert [_status(gateway, value) for value in refused] == [401] * len(refused)
    assert len(gateway.upstream.received) == len(accepted)
    denials = [r for r in gateway.audit() if r.get("decision") == "auth_denied"]
    # A value that does not start with the scheme names no bearer token at all.
    reasons = ["invalid_token"] * 3 + ["no_token", "invalid_token"]
    assert [r["reason"] for r in denials] == reasons
    assert text not in gateway.audit_text()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "spelling",
    [
        "Bearer\u3000{token}",
        "Bearer {token}\u2028",
        "Bearer {token}\u200b",
        "Bearer\u2009{token}",
        "\u00a0Bearer {token}",
        "Bearer {token}\x1f",
        "Bearer {token}\n",
        "Bearer\n{token}",
    ],
)
async def test_the_library_provider_refuses_other_spaces(tmp_path: Path, spelling: str) -> None:
    key_file = tmp_path / "keys.json"
    init_key_file(key_file)
    crypto = LocalCryptoProvider(key_file)
    store = tmp_path / "auth.json"
    _record, token = add_token(store, crypto, token_type="user")
    provider = BearerAuthProvider(store, crypto)
    assert await provider.authenticate({"authorization": f"Bearer\t{token} "}) is not None
    assert await provider.authenticate({"authorization": spelling.format(token=token)}) is None
