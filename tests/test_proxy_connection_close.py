# SPDX-License-Identifier: Apache-2.0
"""A client that asks to close its connection gets an answer saying so, and the connection
ends after it, whatever the letter case or the other options of its ``Connection`` field
(a real gateway on a real socket)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.upstream_server import Gateway, gateway_in_front, read_message

_BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with gateway_in_front(tmp_path_factory.mktemp("connection-close"), {}) as running:
        yield running


@pytest.mark.parametrize("value", ["close", "Close", "keep-alive, close", "close "])
def test_a_request_asking_to_close_ends_its_connection(gateway: Gateway, value: str) -> None:
    host, port = gateway.url.removeprefix("http://").split(":")
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\nconnection: {value}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(_BODY)}\r\n\r\n"
    ).encode() + _BODY
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(request)
        answer = read_message(client)
        head = answer.partition(b"\r\n\r\n")[0].lower().split(b"\r\n")
        assert head[0].startswith(b"http/1.1 200")
        assert b"connection: close" in head
        assert client.recv(65536) == b""  # the gateway closed the connection
