# SPDX-License-Identifier: Apache-2.0
"""An MCP server that gives a posted message no answer, or cuts its answer short, is audited
as the gateway's other upstream failures are: the message's own record is in the chain, and
the next one tells that no answer reached the client.

The MCP server is a raw TCP server (real socket) that writes exactly the bytes scripted; the
gateway runs under uvicorn (real socket) in front of it.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from tests.test_mcp_http import REQUEST, decisions, event, gateway_at, post
from tests.test_mcp_http_stream_end import PROGRESS, cutting
from tests.test_proxy_upstream import RawUpstream, answer


def test_a_server_that_cannot_be_reached_is_recorded(tmp_path: Path) -> None:
    with socket.socket() as bound:  # bound, never listening: every connection is refused
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}"
        with gateway_at(url, tmp_path) as gateway:
            response = post(gateway, REQUEST)
    assert response.status_code == 502
    assert response.json()["error"] == "haechi_upstream_unreachable"
    assert decisions(tmp_path)[-1] == ("upstream_error", "upstream_no_response")


def test_an_answer_cut_short_is_a_502_and_recorded(tmp_path: Path) -> None:
    """The server says 200 bytes of JSON and closes the connection after 20."""
    reply = answer(
        b'{"jsonrpc": "2.0", "id',
        "Content-Type: application/json",
        "Content-Length: 200",
    )
    upstream = RawUpstream(lambda _request: (reply, True))
    try:
        with gateway_at(upstream.url, tmp_path) as gateway:
            response = post(gateway, REQUEST)
    finally:
        upstream.close()
    assert response.status_code == 502
    assert response.json()["error"] == "haechi_upstream_unreachable"
    assert decisions(tmp_path)[-1] == ("upstream_error", "upstream_response_incomplete")


def test_an_event_stream_that_breaks_off_is_recorded(tmp_path: Path) -> None:
    """The request still gets its error in the stream (see test_mcp_http_stream_end), and
    the audit log says the server's stream broke off."""
    with cutting(event(PROGRESS)) as upstream, gateway_at(upstream.url, tmp_path) as gateway:
        response = post(gateway, REQUEST)
    assert response.status_code == 200
    assert ("upstream_error", "upstream_response_incomplete") in decisions(tmp_path)


def _leave_after_posting(gateway: str, upstream: RawUpstream, count: int) -> None:
    """POST the tools/call on a raw connection, and close it once the server has it."""
    host, _, rest = gateway.removeprefix("http://").partition(":")
    port, _, path = rest.partition("/")
    body = json.dumps(REQUEST).encode()
    head = (
        f"POST /{path} HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"
        f"accept: application/json, text/event-stream\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(head.encode() + body)
        deadline = time.monotonic() + 10
        while len(upstream.requests) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(upstream.requests) == count


def test_a_client_that_leaves_gives_up_the_servers_answer_and_its_slot(tmp_path: Path) -> None:
    """A tool call can run for minutes: a client that leaves while it waits has the request
    to the server closed, and its slot under limits.maxInFlight freed for the next one."""
    upstream = RawUpstream(lambda _request: (b"", False))  # reads requests, never answers
    try:
        with gateway_at(upstream.url, tmp_path, {"limits": {"maxInFlight": 1}}) as gateway:
            _leave_after_posting(gateway, upstream, 1)
            upstream.wait_closed(1, timeout=10)
            # Not refused for load: the second request reaches the server too.
            _leave_after_posting(gateway, upstream, 2)
            upstream.wait_closed(2, timeout=10)
    finally:
        upstream.close()
    assert decisions(tmp_path).count(("client_gone", "client_disconnected")) == 2
