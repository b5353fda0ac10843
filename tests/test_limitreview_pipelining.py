# SPDX-License-Identifier: Apache-2.0
"""The header deadline of a request that waits behind another on its connection (pipelining):
the gateway stops reading then, which is not the client's delay (a real gateway on a real
socket)."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from tests.upstream_server import Gateway, Reply, gateway_in_front

_BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
_REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n" % len(_BODY) + _BODY
)
#: Cut inside the head of the third request.
_CUT = 20


def _answers(sock: socket.socket, wanted: int) -> bytes:
    """What the gateway sends until ``wanted`` answers are in, or it closes the connection."""
    received = b""
    try:
        while received.count(b"HTTP/1.1 ") < wanted and (chunk := sock.recv(65536)):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def _pipelined(gateway: Gateway, rest_of_third: bytes, second_delay: float = 0.0) -> bytes:
    """Send a chat request the upstream answers after 3 s; once it is in flight, a second
    one (answered after ``second_delay`` s) and the first bytes of a third in one write, then
    ``rest_of_third`` in another; what is answered (until three answers came, or the gateway
    closed the connection)."""
    gateway.upstream.queue(Reply(delay=3, text="slow"))
    gateway.upstream.queue(Reply(delay=second_delay, text="second"))
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(_REQUEST)
        for _ in range(1000):
            if gateway.upstream.received:
                break
            threading.Event().wait(0.01)
        assert len(gateway.upstream.received) == 1
        sock.sendall(_REQUEST + _REQUEST[:_CUT])
        threading.Event().wait(0.2)  # its own read
        sock.sendall(rest_of_third)
        return _answers(sock, 3)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    workdir = tmp_path_factory.mktemp("pipelining")
    with gateway_in_front(workdir, {"limits": {"headersTimeoutMs": 1000}}) as running:
        yield running


def test_a_head_the_gateway_leaves_unread_is_not_cut_by_its_deadline(gateway: Gateway) -> None:
    gateway.upstream.clear()
    answers = _pipelined(gateway, _REQUEST[_CUT:])
    assert answers.count(b"HTTP/1.1 200 OK") == 3
    assert len(gateway.upstream.received) == 3


def test_a_head_the_client_leaves_unfinished_is_still_cut(gateway: Gateway) -> None:
    gateway.upstream.clear()
    answers = _pipelined(gateway, _REQUEST[_CUT : -len(_BODY) - 4])
    assert answers.count(b"HTTP/1.1 200 OK") == 2
    assert len(gateway.upstream.received) == 2


def test_an_unfinished_head_does_not_cut_the_answer_in_front_of_it(gateway: Gateway) -> None:
    """The third head's deadline runs out while the second request, read whole, is still
    being answered: that answer is sent, then the connection is closed."""
    gateway.upstream.clear()
    answers = _pipelined(gateway, _REQUEST[_CUT : -len(_BODY) - 4], second_delay=1.5)
    assert answers.count(b"HTTP/1.1 200 OK") == 2
    assert b"second" in answers
    assert len(gateway.upstream.received) == 2
