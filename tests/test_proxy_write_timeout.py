# SPDX-License-Identifier: Apache-2.0
"""``limits.writeTimeoutMs``: a client that stops reading its answer is cut, which releases
its connection, its in-flight slot and the upstream request; one that lets the gateway's
writes resume in time is not."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.config import parse_config
from haechi.errors import ConfigError
from haechi.proxy.server import uvicorn_options
from tests.test_proxy_streaming import HangUpAwareUpstream, chat, stream_events
from tests.upstream_server import (
    Gateway,
    Reply,
    gateway_config,
    gateway_in_front,
    read_slowly,
)

#: An SSE frame of about 16 KB: a few hundred of them outgrow every buffer between the
#: upstream and a client that does not read.
FRAME = b'data: {"choices": [{"index": 0, "delta": {"content": "%s"}}]}\n\n' % (b"x" * 16000)
WRITE_TIMEOUT_MS = 300


def chat_request(body: dict[str, Any], *, close: bool = False) -> bytes:
    """``body`` as a request to the chat route, on the wire (asking to close the connection
    after the answer with ``close``)."""
    payload = json.dumps(body).encode()
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
        b"%scontent-length: %d\r\n\r\n%s"
        % (b"connection: close\r\n" if close else b"", len(payload), payload)
    )


def open_request(
    gateway: Gateway, body: dict[str, Any], *, receive_buffer: int, close: bool = False
) -> tuple[socket.socket, bytes]:
    """A raw client with a small receive buffer that sent ``body`` to the chat route (see
    :func:`chat_request`), and the first bytes of the answer (a 200 status line, checked
    here)."""
    host, port = gateway.url.removeprefix("http://").split(":")
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    client.connect((host, int(port)))
    client.sendall(chat_request(body, close=close))
    client.settimeout(10)
    first = client.recv(4096)
    assert first.startswith(b"HTTP/1.1 200")
    return client, first


def observed_protocol(tmp_path: Path, config: dict[str, Any]) -> Any:
    """The gateway's HTTP protocol for ``config``, recording its connections (the class's
    ``made``) and fixing each one's send buffer at 16 KiB.

    With the send buffer fixed (not grown by the kernel, up to megabytes, as the connection
    goes) the kernel takes a small, known part of an answer the client does not read, so an
    answer of a few tens of KiB leaves the rest in the gateway's own transport, on every
    machine.
    """
    settings = parse_config(gateway_config(tmp_path, "http://127.0.0.1:9", config))
    gateway_protocol = uvicorn_options(settings)["http"]

    class Observed(gateway_protocol):  # type: ignore[misc,valid-type]
        made: list[Any] = []

        def connection_made(self, transport: Any) -> None:
            raw = transport.get_extra_info("socket")
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
            self.answered = threading.Event()
            self.gone = threading.Event()
            self.made.append(self)
            super().connection_made(transport)

        def on_response_complete(self) -> None:
            # What the transport kept of the answer (the kernel took the rest), and whether
            # that much paused the writes, as the answer is complete.
            self.held_at_end = self.transport.get_write_buffer_size()
            self.paused_at_end = self.flow.write_paused
            self.answered.set()
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self.gone.set()
            super().connection_lost(exc)

    return Observed


def read_until_closed(client: socket.socket) -> int:
    """Read everything the gateway sent until it closed the connection; the byte count.

    The gateway's kernel still delivers what it had accepted before the cut, then the end
    of the connection; a connection that stays open fails on the socket timeout.
    """
    total = 0
    while True:
        try:
            data = client.recv(1 << 20)
        except ConnectionResetError:
            return total
        if not data:
            return total
        total += len(data)


@pytest.fixture(params=["asyncio", "uvloop"])
def loop(request: pytest.FixtureRequest) -> str:
    """The event loop the gateway serves on: ``haechi proxy`` runs on uvloop where it is
    installed, whose transports buffer, write and pause differently from asyncio's."""
    return str(request.param)


@pytest.mark.parametrize("request_mode", ["inspect", "pass-through"])
def test_a_client_that_stops_reading_a_stream_is_cut(
    tmp_path: Path, request_mode: str, loop: str
) -> None:
    offered = 4000  # about 64 MB: far more than the socket buffers on the way hold
    upstream = HangUpAwareUpstream()
    config = {
        "streaming": {"requestMode": request_mode},
        "responseProtection": {"maxBytes": 128 * 1024 * 1024},
        "limits": {"writeTimeoutMs": WRITE_TIMEOUT_MS, "maxInFlight": 1},
    }
    with gateway_in_front(tmp_path, config, upstream=upstream, loop=loop) as gateway:
        upstream.queue(Reply(wire=upstream.frames(offered, FRAME)))
        client, _ = open_request(gateway, chat(stream=True), receive_buffer=4096)
        with client:
            # Buffers fill within a second; the cut follows 0.3 s later (60 s without the
            # setting, and never without a write timeout).
            assert gateway.app.in_flight == 1
            deadline = time.monotonic() + 5.0
            while gateway.app.in_flight and time.monotonic() < deadline:
                time.sleep(0.01)
            assert gateway.app.in_flight == 0, "the request outlived the write timeout"
            assert read_until_closed(client) < offered * len(FRAME)
        # The request ended after the gateway closed its upstream connection; the upstream
        # notices when TCP tells it, at its next read or write: give it more time.
        assert upstream.hung_up.wait(15.0), "the upstream request outlived its client"
        assert upstream.pulled < offered
        # The in-flight slot is free again: with maxInFlight 1 the next request goes through.
        answer = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(), timeout=10)
        assert answer.status_code == 200
        # Audited and counted as a client disconnect is.
        route = 'mode="enforce",route="chat-completions"} 1.0'
        if request_mode == "inspect":
            assert [e["reason"] for e in stream_events(gateway)] == ["stream_closed_early"]
            assert f'decision="stream_inspected",{route}' in gateway.metrics()
        else:
            assert stream_events(gateway) == []
            decisions = [r.get("decision") for r in gateway.audit()]
            assert decisions.count("streaming_request_pass_through") == 1
            assert f'decision="streaming_pass_through",{route}' in gateway.metrics()


def test_a_client_that_does_not_read_a_large_answer_is_cut(tmp_path: Path, loop: str) -> None:
    """A non-streamed answer is handed to the connection whole, so the request is over at
    once; without a write deadline the connection would keep the unsent part forever."""
    size = 32 * 1024 * 1024
    config = {
        "responseProtection": {"enabled": False, "maxBytes": 2 * size},
        "limits": {"writeTimeoutMs": WRITE_TIMEOUT_MS},
    }
    with gateway_in_front(tmp_path, config, loop=loop) as gateway:
        gateway.upstream.queue(
            Reply(body=b"x" * size, headers={"content-type": "application/octet-stream"})
        )
        client, first = open_request(gateway, chat(), receive_buffer=4096)
        with client:
            time.sleep(2.0)  # well past the write timeout once the buffers are full
            assert len(first) + read_until_closed(client) < size


def test_writes_that_resume_in_time_leave_the_connection_open(tmp_path: Path, loop: str) -> None:
    """The deadline counts one uninterrupted stall: a client that lets the gateway's writes
    pause for a while, then reads its whole answer, keeps its connection, also when it then
    stays idle for longer than the write timeout."""
    size = 16 * 1024 * 1024  # far more than the socket buffers hold: writes pause at once
    config = {
        "responseProtection": {"enabled": False, "maxBytes": 2 * size},
        "limits": {"writeTimeoutMs": 1000},
    }
    with gateway_in_front(tmp_path, config, loop=loop) as gateway:
        gateway.upstream.queue(
            Reply(body=b"x" * size, headers={"content-type": "application/octet-stream"})
        )
        client, first = open_request(gateway, chat(), receive_buffer=65536)
        with client:
            time.sleep(0.2)  # the gateway's writes stay paused meanwhile
            head, _, start = first.partition(b"\r\n\r\n")
            assert f"content-length: {size}".encode() in head.lower()
            received = len(start)
            while received < size:
                data = client.recv(1 << 20)
                assert data, "the gateway cut a client that read its answer in time"
                received += len(data)
            time.sleep(1.5)  # idle past the write timeout (keep-alive lasts 5 s)
            client.sendall(chat_request(chat()))
            assert client.recv(4096).startswith(b"HTTP/1.1 200")


def test_a_steady_reader_of_a_large_answer_sent_whole_is_not_cut(tmp_path: Path, loop: str) -> None:
    """An answer sent whole pauses the writes at once, and they resume only once the
    transport holds less than 16 KiB of it: a client that kept reading it, for longer than
    the write timeout in all, was cut as one that reads nothing. The deadline starts again
    whenever the client took more."""
    size = 1024 * 1024
    config = {
        "responseProtection": {"enabled": False, "maxBytes": 2 * size},
        "limits": {"writeTimeoutMs": 1000},
    }
    protocol = observed_protocol(tmp_path, config)
    with gateway_in_front(tmp_path, config, http=protocol, loop=loop) as gateway:
        gateway.upstream.queue(
            Reply(body=b"x" * size, headers={"content-type": "application/octet-stream"})
        )
        client, answer = open_request(gateway, chat(), receive_buffer=4096)
        with client:
            head, _, body = answer.partition(b"\r\n\r\n")
            # 16 KiB per 0.05 s at most: over 3 s in all, taking more all the time.
            while len(body) < size:
                data = client.recv(16 * 1024)
                assert data, "the gateway cut a client that kept reading its answer"
                body += data
                time.sleep(0.05)
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b"x" * size


@pytest.mark.parametrize("close", ["connection: close", "keep-alive timeout"])
def test_a_closed_connection_whose_client_never_reads_the_end_of_its_answer_is_cut(
    tmp_path: Path, close: str, loop: str
) -> None:
    """A connection closed while its transport still holds the end of the answer, too little
    to pause the writes, is cut once the client took nothing for the write timeout; it used
    to wait for the client forever."""
    size = 48 * 1024  # more than the kernel takes, less than pauses the writes
    config = {
        "responseProtection": {"enabled": False},
        "limits": {"writeTimeoutMs": WRITE_TIMEOUT_MS},
    }
    protocol = observed_protocol(tmp_path, config)
    with gateway_in_front(
        tmp_path, config, http=protocol, timeout_keep_alive=1, loop=loop
    ) as gateway:
        gateway.upstream.queue(
            Reply(body=b"x" * size, headers={"content-type": "application/octet-stream"})
        )
        closing = close == "connection: close"
        client, _ = open_request(gateway, chat(), receive_buffer=4096, close=closing)
        with client:
            (connection,) = protocol.made
            assert connection.answered.wait(10.0)
            assert connection.held_at_end > 0
            assert not connection.paused_at_end
            # Closed at once, or after the 1 s keep-alive timeout; cut 0.3 s later.
            assert connection.gone.wait(10.0), "the closed connection waited for its client"


def test_a_closed_connection_lets_a_slow_reader_take_the_end_of_its_answer(
    tmp_path: Path, loop: str
) -> None:
    """The write deadline of a close starts again whenever the client took more: a client
    that reads the rest of its answer slowly, for longer than the write timeout in all,
    gets all of it."""
    size = 72 * 1024  # the gateway's transport keeps some 40 KiB of it
    config = {"responseProtection": {"enabled": False}, "limits": {"writeTimeoutMs": 1500}}
    protocol = observed_protocol(tmp_path, config)
    with gateway_in_front(tmp_path, config, http=protocol, loop=loop) as gateway:
        gateway.upstream.queue(
            Reply(body=b"x" * size, headers={"content-type": "application/octet-stream"})
        )
        client, answer = open_request(gateway, chat(), receive_buffer=4096, close=True)
        with client:
            (connection,) = protocol.made
            assert connection.answered.wait(10.0)
            assert connection.held_at_end > 0
            # 2 KiB per 0.1 s at most: the transport sends what it kept over some 2 s, all
            # of it after the close, taking more every half second or so.
            answer = read_slowly(client, answer, 2048, 0.1)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b"x" * size


@pytest.mark.parametrize(
    ("value", "millis", "seconds"),
    [(None, 60000, 60.0), (0, 0, None), (250, 250, 0.25)],
)
def test_write_timeout_null_is_a_minute_and_zero_turns_it_off(
    tmp_path: Path, value: int | None, millis: int, seconds: float | None
) -> None:
    limits = {"writeTimeoutMs": value}
    assert parse_config({"limits": limits}).limits.write_timeout_ms == millis
    config = parse_config(gateway_config(tmp_path, "http://127.0.0.1:9", {"limits": limits}))
    assert uvicorn_options(config)["http"].write_timeout_s == seconds


def test_write_timeout_is_on_by_default() -> None:
    assert parse_config({}).limits.write_timeout_ms == 60000


def test_a_negative_write_timeout_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"limits\.writeTimeoutMs: .*greater than or equal"):
        parse_config({"limits": {"writeTimeoutMs": -1}})
