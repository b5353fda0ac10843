# SPDX-License-Identifier: Apache-2.0
"""What ``limits.upstreamTimeoutMs`` covers for a whole (non-streamed) answer: the upstream
(its head and its body), not the gateway's own work on the answer once it came.

The inspection is made slow whatever the machine by an audit store that takes seconds to
write the record of an answer's inspection, as a remote store on a slow link may, in front
of an upstream that answers at once; the late upstreams are raw sockets on a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.audit.stores import MemoryAuditStore
from tests.test_mcp_http import REQUEST, decisions, event, gateway_at, post
from tests.test_mcp_http_stream_end import PROGRESS, RESULT
from tests.test_proxy_upstream import answer
from tests.upstream_server import (
    Answer,
    Gateway,
    Reply,
    ScriptedUpstream,
    gateway_in_front,
)

EMAIL = "jane.doe@example.com"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
#: The inspection of an answer outlasts the whole timeout (the store's delay is longer).
SLOW_INSPECTION = {"limits": {"upstreamTimeoutMs": 2000}, "responseProtection": {"enabled": True}}


class SlowAnswerRecords(MemoryAuditStore):
    """A memory audit store that takes ``delay`` seconds to write the record of an answer's
    inspection (operation ``response:...``); every other record is written at once."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self._delay = delay
        #: Set when the record of an answer's inspection starts being written.
        self.writing = threading.Event()

    async def append(self, build: Any, *, committed: Any = None) -> dict[str, Any]:
        if build(None)["operation"].startswith("response:"):
            self.writing.set()
            await asyncio.sleep(self._delay)
        return await super().append(build, committed=committed)

    def all_records(self) -> list[dict[str, Any]]:
        """Every record written, read from a thread that runs no event loop."""

        async def collect() -> list[dict[str, Any]]:
            return [record async for record in self.records()]

        return asyncio.run(collect())


@contextlib.contextmanager
def slow_gateway(tmp_path: Path, store: SlowAnswerRecords, **options: Any) -> Iterator[Gateway]:
    """A gateway with response protection, a 2 s upstream timeout, and ``store``."""
    with gateway_in_front(
        tmp_path, SLOW_INSPECTION, providers={"audit_store": store}, **options
    ) as gateway:
        yield gateway


def test_an_answer_that_came_in_time_is_not_a_timeout_however_long_its_inspection(
    tmp_path: Path,
) -> None:
    """The upstream answered whole at once; inspecting the answer took longer than the
    whole timeout. The client gets the protected answer, and nothing records a timeout."""
    store = SlowAnswerRecords(delay=3.0)
    with slow_gateway(tmp_path, store) as gateway:
        gateway.upstream.queue(Reply(text=f"write to {EMAIL}"))
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=30)
        metrics = gateway.metrics('decision="forwarded"')
    assert response.status_code == 200
    content = response.json()["choices"][0]["message"]["content"]
    assert content.startswith("write to ")
    assert EMAIL not in content
    assert "haechi_upstream_timeout_total 1.0" not in metrics
    cid = response.headers["x-haechi-correlation-id"]
    records = [r for r in store.all_records() if r.get("correlationId") == cid]
    assert [r["operation"] for r in records] == [
        "request:POST chat-completions",
        "response:POST chat-completions",
    ]


def test_a_client_that_leaves_during_the_inspection_is_still_let_go(tmp_path: Path) -> None:
    """The client is watched while its answer is inspected, as while the upstream works:
    one that leaves then is recorded as gone, and its request no longer counts as in flight."""
    store = SlowAnswerRecords(delay=30.0)
    with slow_gateway(tmp_path, store) as gateway:
        body = httpx.Request("POST", "/", json=CHAT).content
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        host, port = gateway.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as client:
            client.sendall(head.encode() + body)
            assert store.writing.wait(10)
        assert 'decision="client_gone"' in gateway.metrics('decision="client_gone"', timeout=10)
        assert gateway.app.in_flight == 0
    first, gone = store.all_records()
    assert first["operation"] == "request:POST chat-completions"
    assert (gone["decision"], gone["reason"]) == ("client_gone", "client_disconnected")
    assert gone["correlationId"] == first["correlationId"]


# -- an upstream that is late -------------------------------------------------------------------


def _paced(pieces: list[bytes], gave_up: threading.Event) -> Answer:
    """An answer of ``pieces``, one every 0.1 s, that stops once the gateway closed the
    connection (setting ``gave_up``)."""

    def respond(conn: socket.socket) -> None:
        for piece in pieces:
            time.sleep(0.1)
            if _closed(conn):
                gave_up.set()
                return
            conn.sendall(piece)

    return respond


def _closed(conn: socket.socket) -> bool:
    """Whether the peer closed ``conn`` (it sends nothing, so anything readable is the end)."""
    conn.setblocking(False)
    try:
        return conn.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        conn.setblocking(True)


def _late(body: bytes, *, head_late: bool) -> list[bytes]:
    """A JSON answer of ``body`` (200 bytes) that takes 10 s: the head comes at the end
    (``head_late``), or at once and then the body two bytes at a time, each piece well
    within the timeout, the whole of it well beyond it."""
    head = answer(b"", "Content-Type: application/json", f"Content-Length: {len(body)}")
    pieces = [body[start : start + 2] for start in range(0, len(body), 2)]
    return [b""] * len(pieces) + [head + body] if head_late else [head, *pieces]


@pytest.mark.parametrize(
    ("head_late", "reason"),
    [(True, "upstream_no_response"), (False, "upstream_response_incomplete")],
    ids=["head", "body"],
)
def test_an_upstream_that_does_not_answer_whole_in_time_is_still_a_timeout(
    tmp_path: Path, scripted_upstream: Callable[..., ScriptedUpstream], head_late: bool, reason: str
) -> None:
    """The head and the body are the upstream's: one whose answer does not come whole
    within limits.upstreamTimeoutMs (also while its body keeps coming) is a 504, recorded
    once, and its connection is closed."""
    gave_up = threading.Event()
    pieces = _late(b'{"choices": []}'.ljust(200), head_late=head_late)
    server = scripted_upstream(_paced(pieces, gave_up))
    store = SlowAnswerRecords(delay=0.0)
    with slow_gateway(tmp_path, store, upstream_url=server.url) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=30)
        assert gave_up.wait(5)
        metrics = gateway.metrics("haechi_upstream_timeout_total 1.0")
    assert response.status_code == 504
    assert response.json()["error"] == "haechi_upstream_timeout"
    assert "haechi_upstream_timeout_total 1.0" in metrics
    records = store.all_records()
    assert [(r.get("decision"), r.get("reason")) for r in records[1:]] == [
        ("upstream_timeout", reason)
    ]


# -- mcp-http -----------------------------------------------------------------------------------

MCP_TIMEOUT = {"limits": {"upstreamTimeoutMs": 1000}}


def test_an_mcp_answer_that_does_not_come_whole_in_time_is_a_timeout(
    tmp_path: Path, scripted_upstream: Callable[..., ScriptedUpstream]
) -> None:
    """A tool's JSON answer is a whole answer too: one whose body keeps coming, but not
    all of it within limits.upstreamTimeoutMs, is a 504 recorded as an answer cut short,
    as on the gateway's other routes (it was waited for as long as its pieces kept
    coming)."""
    gave_up = threading.Event()
    pieces = _late(json.dumps(RESULT).encode().ljust(200), head_late=False)
    server = scripted_upstream(_paced(pieces, gave_up))
    with gateway_at(server.url + "/mcp", tmp_path, MCP_TIMEOUT) as gateway:
        response = post(gateway, REQUEST)
        assert gave_up.wait(5)
    assert response.status_code == 504
    assert response.json()["error"] == "haechi_upstream_timeout"
    assert decisions(tmp_path) == [("upstream_timeout", "upstream_response_incomplete")]


def test_an_mcp_event_stream_has_the_timeout_for_each_wait(
    tmp_path: Path, scripted_upstream: Callable[..., ScriptedUpstream]
) -> None:
    """An event stream is no whole answer: one that goes on for longer than
    limits.upstreamTimeoutMs, each event well within it, is relayed to its end."""
    events = [event(PROGRESS)] * 14 + [event(RESULT)]
    head = answer(b"", "Content-Type: text/event-stream", "Transfer-Encoding: chunked")
    chunks = [b"%x\r\n%s\r\n" % (len(e.encode()), e.encode()) for e in events]
    # 1.6 s in all
    server = scripted_upstream(_paced([head, *chunks, b"0\r\n\r\n"], threading.Event()))
    with gateway_at(server.url + "/mcp", tmp_path, MCP_TIMEOUT) as gateway:
        response = post(gateway, REQUEST)
    assert response.status_code == 200
    assert response.text.count("notifications/progress") == 14
    assert response.text.rstrip().endswith(json.dumps(RESULT, separators=(",", ":")))
    assert decisions(tmp_path) == []
