# SPDX-License-Identifier: Apache-2.0
"""How the gateway's HTTP protocol writes its answers: a whole answer in one write (its head
is not sent on its own, which would cost a second system call and wake the client twice),
a streamed answer's head at once, before its first frame."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from haechi.config import default_config
from haechi.proxy.server import uvicorn_options
from tests.test_proxy import until_closed
from tests.test_proxy_write_timeout import chat_request
from tests.upstream_server import Gateway, gateway_in_front


class _RecordingTransport:
    """The connection's real transport, keeping a copy of each write."""

    def __init__(self, transport: Any, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[Gateway, list[bytes]]]:
    """A gateway whose connections record what the protocol writes to them."""
    writes: list[bytes] = []
    gateway_protocol = uvicorn_options(default_config())["http"]

    class Recording(gateway_protocol):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(_RecordingTransport(transport, writes))

    config = {"streaming": {"requestMode": "inspect"}}
    with gateway_in_front(tmp_path, config, http=Recording) as gateway:
        yield gateway, writes


def _closing(request: bytes) -> bytes:
    return request.replace(b"host: gw\r\n", b"host: gw\r\nconnection: close\r\n", 1)


def test_a_whole_answer_is_one_write(recorded: tuple[Gateway, list[bytes]]) -> None:
    gateway, writes = recorded
    body = {"model": "m", "messages": [{"role": "user", "content": "mail ana@example.com"}]}
    received = until_closed(gateway, _closing(chat_request(body)))
    assert received.startswith(b"HTTP/1.1 200")
    answer = received.partition(b"\r\n\r\n")[2]
    assert b"ana@example.com" not in gateway.upstream.received[-1].body
    assert json.loads(answer)["choices"]
    assert writes == [received]


def test_a_refusal_is_one_write(recorded: tuple[Gateway, list[bytes]]) -> None:
    gateway, writes = recorded
    request = chat_request({"model": "m", "messages": []}).replace(b'{"model"', b'["model"')
    received = until_closed(gateway, _closing(request))
    assert received.startswith(b"HTTP/1.1 400")
    assert json.loads(received.partition(b"\r\n\r\n")[2])["error"] == "haechi_invalid_json_request"
    assert not gateway.upstream.received
    assert writes == [received]


def test_a_streamed_answer_sends_its_head_before_its_frames(
    recorded: tuple[Gateway, list[bytes]],
) -> None:
    gateway, writes = recorded
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hello"}]}
    received = until_closed(gateway, _closing(chat_request(body)))
    assert received.startswith(b"HTTP/1.1 200")
    assert b"data: [DONE]" in received
    assert len(writes) > 2
    assert writes[0].endswith(b"\r\n\r\n")
    assert writes[0] == received.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert b"".join(writes) == received
