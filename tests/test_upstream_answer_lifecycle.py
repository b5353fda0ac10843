# SPDX-License-Identifier: Apache-2.0
"""What becomes of a non-streamed request whose answer does not come as it should: an
upstream that cuts the body short, a body of several gzip members, and a client that leaves
while the upstream is still working on its answer.

A real gateway sits on a real socket in front of an upstream that writes raw bytes, and each
test reads what the client got, the audit log and the counters.
"""

from __future__ import annotations

import gzip
import json
import logging
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_proxy_upstream import answer
from tests.upstream_server import (
    Answer,
    Gateway,
    Reply,
    ScriptedUpstream,
    SharedGateways,
    gateway_in_front,
)

EMAIL = "jane.doe@example.com"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
PROTECTED = {"responseProtection": {"enabled": True}}


def _whole(conn: socket.socket) -> None:
    body = json.dumps({"choices": [{"message": {"content": "all good"}}]}).encode()
    conn.sendall(answer(body, "Content-Type: application/json", f"Content-Length: {len(body)}"))


#: An answer body holding a value, of which only the first half is ever sent.
_HALF = json.dumps({"choices": [{"message": {"content": f"mail {EMAIL} " * 40}}]}).encode()[:500]


def _cut_after_half(conn: socket.socket) -> None:
    """``Content-Length: 1000``, 500 bytes, then an orderly close."""
    conn.sendall(answer(_HALF, "Content-Type: application/json", "Content-Length: 1000"))


def _reset_mid_chunk(conn: socket.socket) -> None:
    """A chunk of 1000 bytes announced, 500 sent, then the connection reset."""
    framed = b"%x\r\n%s" % (1000, _HALF)
    conn.sendall(answer(framed, "Content-Type: application/json", "Transfer-Encoding: chunked"))
    time.sleep(0.2)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _logged(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    return [r.haechi_fields for r in caplog.records if r.getMessage() == event]  # type: ignore[attr-defined]


def _records_of(gateway: Gateway, correlation_id: str) -> list[dict[str, Any]]:
    return [r for r in gateway.audit() if r.get("correlationId") == correlation_id]


# -- an answer cut short ----------------------------------------------------------------------


@pytest.mark.parametrize("cut", [_cut_after_half, _reset_mid_chunk], ids=["short", "reset"])
@pytest.mark.parametrize("config", [PROTECTED, {}], ids=["protected", "unprotected"])
def test_an_answer_cut_short_is_a_502_recorded_as_the_requests_outcome(
    tmp_path: Path,
    scripted_upstream: Callable[..., ScriptedUpstream],
    caplog: pytest.LogCaptureFixture,
    cut: Answer,
    config: dict[str, Any],
) -> None:
    """Nothing of a body that broke off is relayed, and the request, whose own record is in
    the chain already, is recorded as having got no answer: the audit log, a log line and
    the counter say so."""
    server = scripted_upstream(cut, _whole)
    with (
        caplog.at_level(logging.WARNING, logger="haechi.proxy"),
        gateway_in_front(tmp_path, config, upstream_url=server.url) as gateway,
        httpx.Client(base_url=gateway.url, timeout=10) as client,
    ):
        response = client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 502
        assert response.json()["error"] == "haechi_upstream_unreachable"
        assert EMAIL not in response.text
        # The next request is answered on a connection of its own.
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
        assert "haechi_upstream_error_total 1.0" in gateway.metrics(
            "haechi_upstream_error_total 1.0"
        )
    cid = response.headers["x-haechi-correlation-id"]
    protect, outcome = _records_of(gateway, cid)
    assert protect["operation"] == "request:POST chat-completions"
    assert (outcome["decision"], outcome["reason"]) == (
        "upstream_error",
        "upstream_response_incomplete",
    )
    assert outcome["blocked"] is True
    assert _logged(caplog, "proxy_upstream_error") == [
        {"correlationId": cid, "reason": "upstream_response_incomplete", "statusCode": 502}
    ]
    assert EMAIL not in gateway.audit_text()
    assert EMAIL not in caplog.text


def test_an_upstream_that_cannot_be_reached_is_recorded_too(tmp_path: Path) -> None:
    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
        with gateway_in_front(tmp_path, upstream_url=url) as gateway:
            response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
    assert response.status_code == 502
    outcome = _records_of(gateway, response.headers["x-haechi-correlation-id"])[-1]
    assert (outcome["decision"], outcome["reason"]) == ("upstream_error", "upstream_no_response")


def test_an_upstream_timeout_is_recorded_as_one(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"limits": {"upstreamTimeoutMs": 200}}) as gateway:
        gateway.upstream.queue(Reply(delay=2.0))
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
    assert response.status_code == 504
    outcome = _records_of(gateway, response.headers["x-haechi-correlation-id"])[-1]
    assert (outcome["decision"], outcome["reason"]) == ("upstream_timeout", "upstream_no_response")


def test_a_plain_answer_to_a_streaming_request_cut_short_is_a_502_too(
    tmp_path: Path, scripted_upstream: Callable[..., ScriptedUpstream]
) -> None:
    """An upstream may answer a streaming request with one body (an error, say), which is
    read whole and inspected: cut short, it is no more relayed than any other answer."""
    server = scripted_upstream(_cut_after_half)
    config = {"streaming": {"requestMode": "inspect"}}
    with gateway_in_front(tmp_path, config, upstream_url=server.url) as gateway:
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions", json={**CHAT, "stream": True}, timeout=10
        )
    assert response.status_code == 502
    assert response.json()["error"] == "haechi_upstream_unreachable"
    outcome = _records_of(gateway, response.headers["x-haechi-correlation-id"])[-1]
    assert (outcome["decision"], outcome["reason"]) == (
        "upstream_error",
        "upstream_response_incomplete",
    )


_SSE = ("Content-Type: text/event-stream", "Transfer-Encoding: chunked")


def _stream_then_reset(conn: socket.socket) -> None:
    """The head of an event stream and one frame of it, then the connection reset."""
    frame = b'data: {"choices": [{"index": 0, "delta": {"content": "hel"}}]}\n\n'
    conn.sendall(answer(b"%x\r\n%s\r\n" % (len(frame), frame), *_SSE))
    time.sleep(0.2)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_a_stream_relayed_uninspected_that_breaks_off_is_recorded(
    tmp_path: Path, scripted_upstream: Callable[..., ScriptedUpstream]
) -> None:
    """A pass-through stream has its record written before it is relayed; an upstream that
    breaks it off is recorded after it, as any answer cut short is (an inspected stream's
    own record tells so: stream_upstream_error)."""
    server = scripted_upstream(_stream_then_reset)
    config = {"streaming": {"requestMode": "pass-through"}}
    with gateway_in_front(tmp_path, config, upstream_url=server.url) as gateway:
        with (
            httpx.Client(base_url=gateway.url, timeout=10) as client,
            client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as cut,
        ):
            assert cut.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                cut.read()  # the stream ends without its last chunk
        assert "haechi_upstream_error_total 1.0" in gateway.metrics(
            "haechi_upstream_error_total 1.0"
        )
    records = _records_of(gateway, cut.headers["x-haechi-correlation-id"])
    assert [(r.get("decision"), r.get("reason")) for r in records[1:]] == [
        ("streaming_request_pass_through", "streaming_request_pass_through"),
        ("upstream_error", "upstream_response_incomplete"),
    ]


# -- gzip members -------------------------------------------------------------------------------

#: A small cap, so that members can pass it together and not alone.
DECODED = {"responseProtection": {"enabled": True, "allowCompressed": True, "maxBytes": 4096}}


def _encoded(shared_gateway: SharedGateways, body: bytes, encoding: str) -> httpx.Response:
    """The gateway's answer to an upstream answering ``body`` in ``encoding``."""
    gateway = shared_gateway(DECODED)
    gateway.upstream.queue(Reply(body=body, headers={"content-encoding": encoding}))
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)


def test_every_gzip_member_is_decoded_and_inspected(shared_gateway: SharedGateways) -> None:
    """A gzip body may be several members one after the other (``gzip.decompress`` and
    ``zcat`` read them all): the answer is all of them, the value in the second included."""
    document = {"choices": [{"message": {"content": f"write to {EMAIL} today"}}]}
    text = json.dumps(document).encode()
    cut = text.index(EMAIL.encode()) + 4
    members = gzip.compress(text[:cut]) + gzip.compress(text[cut:])
    response = _encoded(shared_gateway, members, "gzip")
    assert response.status_code == 200
    content = response.json()["choices"][0]["message"]["content"]
    assert content.startswith("write to ")
    assert content.endswith(" today")
    assert EMAIL not in response.text


#: A JSON document of its own, and a whole gzip member of it.
_DOCUMENT = b'{"a": 1}'
_MEMBER = gzip.compress(_DOCUMENT)


@pytest.mark.parametrize(
    ("body", "encoding", "reason"),
    [
        # Every member is read: two documents together are no JSON document ...
        (_MEMBER + gzip.compress(b'{"b": 2}'), "gzip", "invalid_json_response"),
        # ... and the cap counts them together (3 KiB of JSON, then 3 KiB of white space).
        (
            gzip.compress(b'["' + b"x" * 3000 + b'"]') + gzip.compress(b" " * 3000),
            "gzip",
            "response_body_too_large",
        ),
        # Bytes after a member that are no whole member.
        (_MEMBER + b"garbage", "gzip", "compressed_response"),
        (_MEMBER + b"\0" * 8, "gzip", "compressed_response"),
        (_MEMBER + gzip.compress(b"more")[:10], "gzip", "compressed_response"),
        # A deflate body is one stream: nothing may follow it.
        (zlib.compress(_DOCUMENT) + zlib.compress(_DOCUMENT), "deflate", "compressed_response"),
        # More members than a server writes (each empty: the body is a 20-byte document).
        (gzip.compress(_DOCUMENT) + gzip.compress(b"") * 64, "gzip", "compressed_response"),
    ],
    ids=[
        "two-documents",
        "over-the-cap-together",
        "garbage",
        "padding",
        "cut-member",
        "deflate",
        "too-many-members",
    ],
)
def test_what_follows_the_first_gzip_member_never_goes_unread(
    shared_gateway: SharedGateways, body: bytes, encoding: str, reason: str
) -> None:
    response = _encoded(shared_gateway, body, encoding)
    assert response.status_code == 502
    assert response.json()["error"] == "haechi_response_unprotected"
    assert response.json()["reason"] == reason


# -- a client that leaves -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "pipelined"),
    [(False, False), (True, False), (False, True), (True, True)],
    ids=["whole", "stream", "whole-pipelined", "stream-pipelined"],
)
def test_a_client_that_leaves_gives_up_its_upstream_request_and_its_slot(
    tmp_path: Path,
    scripted_upstream: Callable[..., ScriptedUpstream],
    stream: bool,
    pipelined: bool,
) -> None:
    """An answer can take minutes. A client that leaves while it waits (for a whole answer,
    or for the head of a stream) has its upstream request cancelled at once, and its slot
    under limits.maxInFlight freed: the next request is served, not refused for load. So
    does one that sent a second request behind the first (pipelining) before leaving."""
    given_up = threading.Event()

    def never_answers(conn: socket.socket) -> None:
        conn.settimeout(30)
        if conn.recv(1) == b"":  # the gateway closed the connection
            given_up.set()

    server = scripted_upstream(never_answers, _whole)
    config = {"limits": {"maxInFlight": 1}, "streaming": {"requestMode": "inspect"}}
    body = json.dumps({**CHAT, "stream": stream}).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    with gateway_in_front(tmp_path, config, upstream_url=server.url) as gateway:
        host, port = gateway.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as client:
            client.sendall(head.encode() + body)
            assert server.received.acquire(timeout=10)
            if pipelined:
                client.sendall(head.encode() + body)
                time.sleep(0.5)  # read by the gateway, waiting behind the first
        assert given_up.wait(10)
        # Counted once the slot is free again.
        assert 'decision="client_gone"' in gateway.metrics('decision="client_gone"', timeout=10)
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
        assert response.status_code == 200
    first, gone, *_ = gateway.audit()
    assert first["operation"] == "request:POST chat-completions"
    assert (gone["decision"], gone["reason"]) == ("client_gone", "client_disconnected")
    assert gone["correlationId"] == first["correlationId"]
    assert (gone["enforced"], gone["blocked"]) == (False, False)
