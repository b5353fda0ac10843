# SPDX-License-Identifier: Apache-2.0
"""What a client can make the gateway hold before it is authenticated, or after its answer.

The request head is bounded in bytes (``limits.maxHeaderBytes``, 431), the bytes a request
may carry after its head are bounded (its body with chunk framing, and trailer fields), and
an answer given before the body was read closes the connection, so that no client keeps it
open by sending the body slowly. Every test talks to the gateway on a real socket.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.upstream_server import Gateway, Reply, gateway_in_front, read_message

HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()


@contextmanager
def _connection(gateway: Gateway) -> Iterator[socket.socket]:
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        yield sock


def _answer_and_close(sock: socket.socket) -> bytes:
    """Everything the gateway sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _send_until_cut(sock: socket.socket, piece: bytes, limit: int) -> int:
    """Send ``piece`` over and over, up to ``limit`` bytes; how many were sent before the
    gateway cut the connection (``limit`` when it never did)."""
    sent = 0
    try:
        while sent < limit:
            sock.sendall(piece)
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError):
        return sent
    return limit


def test_a_head_over_the_limit_is_refused_with_431(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"limits": {"maxHeaderBytes": 4096}}) as gateway:
        with _connection(gateway) as sock:
            fits = b"x-pad: " + b"a" * 3000 + b"\r\n"
            sock.sendall(HEAD + fits + b"content-length: %d\r\n\r\n" % len(BODY) + BODY)
            assert read_message(sock).startswith(b"HTTP/1.1 200 OK")
        with _connection(gateway) as sock:
            sock.sendall(HEAD)
            sent = _send_until_cut(sock, b"x-pad: " + b"a" * 1000 + b"\r\n", 10_000_000)
            answer = _answer_and_close(sock)
        assert sent < 10_000_000
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
        assert b"connection: close" in head
        assert json.loads(body)["error"] == "haechi_request_headers_too_large"
        assert len(gateway.upstream.received) == 1
        refused = 'decision="invalid_request",mode="enforce",route="unknown"'
        assert refused in gateway.metrics(refused)


def test_one_header_field_larger_than_the_limit_is_refused_while_it_arrives(
    tmp_path: Path,
) -> None:
    """The parser holds a field until it ends: the bytes are counted as they arrive."""
    with gateway_in_front(tmp_path, {"limits": {"maxHeaderBytes": 4096}}) as gateway:
        with _connection(gateway) as sock:
            sock.sendall(HEAD + b"x-pad: ")
            sent = _send_until_cut(sock, b"a" * 4096, 50_000_000)
            answer = _answer_and_close(sock)
        assert sent < 50_000_000
        assert answer.startswith(b"HTTP/1.1 431 ")
        assert gateway.upstream.received == []


def test_a_head_over_the_limit_that_arrives_in_one_read_is_refused(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"limits": {"maxHeaderBytes": 4096}}) as gateway:
        with _connection(gateway) as sock:
            pad = b"x-pad: " + b"a" * 5000 + b"\r\n"
            sock.sendall(HEAD + pad + b"content-length: %d\r\n\r\n" % len(BODY) + BODY)
            answer = _answer_and_close(sock)
        assert answer.startswith(b"HTTP/1.1 431 ")
        assert gateway.upstream.received == []


def test_trailer_fields_cannot_grow_without_bound(tmp_path: Path) -> None:
    """A chunked body's trailer fields follow the body the gateway reads; the connection is
    cut once a request carried twice maxRequestBytes plus maxHeaderBytes after its head."""
    limits = {"maxHeaderBytes": 4096, "maxRequestBytes": 4096}
    with gateway_in_front(tmp_path, {"limits": limits}) as gateway:
        with _connection(gateway) as sock:
            sock.sendall(HEAD + b"transfer-encoding: chunked\r\n\r\n")
            sock.sendall(b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\nx-trailer: ")
            sent = _send_until_cut(sock, b"a" * 4096, 50_000_000)
            _answer_and_close(sock)
        assert sent < 50_000_000
        assert gateway.upstream.received == []


@pytest.mark.parametrize(
    ("config", "headers", "status"),
    [
        ({"auth": {"provider": "bearer"}}, b"", b"401"),
        ({"auth": {"provider": "bearer"}}, b"authorization: Bearer nope\r\n", b"401"),
        ({"policy": {"rate": {"requestsPerMinute": 1}}}, b"", b"429"),
    ],
)
def test_an_answer_before_the_body_closes_the_connection(
    tmp_path: Path, config: dict[str, object], headers: bytes, status: bytes
) -> None:
    """Otherwise the server drains the unread body with no deadline: a client sending one
    byte now and then would hold the connection (and its descriptor) for ever."""
    with gateway_in_front(tmp_path, {"limits": {"headersTimeoutMs": 2000}, **config}) as gateway:
        if status == b"429":  # spend the budget first
            with _connection(gateway) as sock:
                sock.sendall(HEAD + b"content-length: %d\r\n\r\n" % len(BODY) + BODY)
                assert read_message(sock).startswith(b"HTTP/1.1 200 ")
        with _connection(gateway) as sock:
            sock.sendall(HEAD + headers + b"content-length: 100000\r\n\r\n")
            started = time.monotonic()
            answer = _answer_and_close(sock)
            assert time.monotonic() - started < 5
        head = answer.partition(b"\r\n\r\n")[0]
        assert head.split(b" ")[1] == status
        assert b"connection: close" in head.lower()


def test_an_answer_after_the_body_keeps_the_connection(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path) as gateway, _connection(gateway) as sock:
        for _ in range(2):
            sock.sendall(HEAD + b"content-length: %d\r\n\r\n" % len(BODY) + BODY)
            answer = read_message(sock)
            assert answer.startswith(b"HTTP/1.1 200 ")
            assert b"connection: close" not in answer.lower()
        assert len(gateway.upstream.received) == 2


def test_empty_lines_after_an_answer_do_not_hold_the_connection(tmp_path: Path) -> None:
    """The parser skips empty lines before a request without beginning one, and uvicorn
    stops its keep-alive timer at any byte: the header deadline closes the connection."""
    config = {"limits": {"headersTimeoutMs": 500}}
    with gateway_in_front(tmp_path, config) as gateway, _connection(gateway) as sock:
        sock.settimeout(60)  # a hang guard: the gateway closes it within a second
        sock.sendall(HEAD + b"content-length: %d\r\n\r\n" % len(BODY) + BODY)
        assert read_message(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"\r\n")
        assert _answer_and_close(sock) == b""


def test_requests_waiting_on_one_connection_are_bounded(tmp_path: Path) -> None:
    """The parser reads every request of a read at once, and each one waiting is held
    whole: past a few, the next is refused (after the answers before it) and the
    connection closed, instead of the gateway holding thousands from one read."""
    probe = b"GET /__haechi/live HTTP/1.1\r\nhost: x\r\n\r\n"
    with gateway_in_front(tmp_path) as gateway, _connection(gateway) as sock:
        sock.settimeout(60)  # a hang guard
        sock.sendall(probe * 1000)
        received = _answer_and_close(sock)
        overloaded = "haechi_overloaded_total 1.0"
        assert overloaded in gateway.metrics(overloaded)
    answers = []
    while received:
        head, _, rest = received.partition(b"\r\n\r\n")
        length = int(head.lower().partition(b"content-length: ")[2].partition(b"\r\n")[0])
        answers.append((head, rest[:length]))
        received = rest[length:]
    *served, (head, body) = answers
    assert 0 < len(served) < 100
    assert all(head.startswith(b"HTTP/1.1 200 ") for head, _body in served)
    assert head.startswith(b"HTTP/1.1 503 ")
    assert b"connection: close" in head
    assert json.loads(body)["error"] == "haechi_overloaded"


@pytest.mark.parametrize("started", [True, False])
@pytest.mark.parametrize(
    ("refused", "status"),
    [
        (HEAD + b"x-pad: " + b"a" * 6000 + b"\r\n\r\n", b"431"),
        (b"NOT A REQUEST\r\n\r\n", b"400"),
    ],
)
def test_a_pipelined_request_is_refused_after_the_answer_before_it(
    tmp_path: Path, refused: bytes, status: bytes, started: bool
) -> None:
    """A request refused while the answer to the one before it is still being sent, or not
    yet begun, is answered once that answer is complete, never inside it or before it."""
    config = {"limits": {"maxHeaderBytes": 4096}, "streaming": {"requestMode": "inspect"}}
    with gateway_in_front(tmp_path, config) as gateway:
        pieces = ["one ", "two ", "three ", "four"]
        delay = 0.0 if started else 0.3
        reply = Reply(text="".join(pieces), chunks=pieces, chunk_delay=0.1, delay=delay)
        gateway.upstream.queue(reply)
        streamed = json.dumps(
            {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        ).encode()
        with _connection(gateway) as sock:
            sock.sendall(HEAD + b"content-length: %d\r\n\r\n" % len(streamed) + streamed)
            time.sleep(0.05)  # the request is in; its answer has started, or is still waited for
            sock.sendall(refused)
            received = _answer_and_close(sock)
    first, _, rest = received.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding: chunked" in first.lower()
    stream, end, after = rest.partition(b"\r\n0\r\n\r\n")
    assert end, received
    assert b"HTTP/1.1" not in stream
    assert b"four" in stream
    assert b"[DONE]" in stream
    head, _, body = after.partition(b"\r\n\r\n")
    assert head.split(b" ")[:2] == [b"HTTP/1.1", status]
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"].startswith("haechi_")
