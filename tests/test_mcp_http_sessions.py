# SPDX-License-Identifier: Apache-2.0
"""MCP sessions over streamable HTTP are bound to the caller that opened them.

The official SDK server (streamable HTTP under uvicorn, real socket) sits behind the gateway
(uvicorn, real socket), with bearer authentication unless a test says otherwise. The server
cannot tell the gateway's callers apart (their ``Authorization`` is not forwarded), so the
gateway hands out session ids bound to the caller and refuses any other before forwarding.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from haechi.auth import add_token
from haechi.cli import main
from haechi.crypto import init_key_file
from haechi.proxy.app import GatewayApp
from haechi.proxy.background import serve_in_thread
from haechi.proxy.errors import CATALOGUE
from haechi.runtime import create_runtime
from haechi.testing import merge_config
from tests.mcp_servers.harness import SDK_METHODS, TIMEOUT_S
from tests.mcp_servers.tool_server import http_app
from tests.test_proxy_server import _proxy_process, _write_config
from tests.test_proxy_workers import _served_connections, _workers
from tests.upstream_server import gateway_config

MCP_TARGET = {"target": {"type": "mcp-http"}, "mcp": {"allowedMethods": SDK_METHODS}}
BEARER = {"auth": {"provider": "bearer"}}
PREFIX = "hmcp1."
ACCEPT = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


@dataclass
class Recorder:
    """The SDK's streamable-HTTP app, noting the method and ``Mcp-Session-Id`` of every
    request it receives, the ``Last-Event-ID`` of those resuming a stream and the session
    ids it answers with."""

    app: Any
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    resumed_from: list[str] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)  # the server repeats it on each answer
    stream_opened: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        session = headers.get(b"mcp-session-id")
        self.requests.append((scope["method"], session.decode() if session else None))
        if b"last-event-id" in headers:
            self.resumed_from.append(headers[b"last-event-id"].decode())
        if scope["method"] == "GET":
            self.stream_opened.set()

        async def noting(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                issued = dict(message["headers"]).get(b"mcp-session-id")
                if issued:
                    self.issued.append(issued.decode())
            await send(message)

        await self.app(scope, receive, noting)


@dataclass
class Front:
    """A gateway in front of a recorded SDK server."""

    url: str
    upstream: Recorder
    audit: Path
    tokens: dict[str, str]

    def bearer(self, who: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[who]}"} if self.tokens else {}

    def refusals(self, reason: str = "mcp_session_not_owned") -> list[dict[str, Any]]:
        records = [json.loads(line) for line in self.audit.read_text().splitlines() if line]
        return [r for r in records if r.get("reason") == reason]


@contextlib.contextmanager
def front(
    workdir: Path, overrides: Mapping[str, Any] | None = None, **options: Any
) -> Iterator[Front]:
    """Serve the SDK server (answering with JSON bodies unless ``json_response=False``, the
    other ``options`` of its app as given) and an ``mcp-http`` gateway in front of it, with
    a token for callers ``a`` and ``b`` when ``overrides`` turn bearer authentication on."""
    upstream = Recorder(http_app(**{"json_response": True, **options}))
    with serve_in_thread(upstream, lifespan="on") as up:
        settings = gateway_config(workdir, up.url, merge_config(MCP_TARGET, overrides or {}))
        init_key_file(settings["keys"]["keyFile"])
        runtime = create_runtime(settings)
        tokens: dict[str, str] = {}
        if runtime.config.auth.provider == "bearer":
            for who in ("a", "b"):
                store = runtime.config.auth.store
                tokens[who] = add_token(store, runtime.crypto, token_type="user")[1]
        with serve_in_thread(GatewayApp(runtime), lifespan="on") as gateway:
            yield Front(f"{gateway.url}/mcp", upstream, Path(settings["audit"]["path"]), tokens)


def post(
    url: str, message: Any, headers: Mapping[str, str] | list[tuple[str, str]] = ()
) -> httpx.Response:
    """POST ``message`` like an MCP client, with ``headers`` (a list may repeat a name)."""
    given = list(headers.items()) if isinstance(headers, Mapping) else headers
    merged = [*ACCEPT.items(), *given]
    return httpx.post(url, content=json.dumps(message), headers=merged, timeout=TIMEOUT_S)


def get(url: str, headers: Mapping[str, str]) -> httpx.Response:
    """Open the server's event stream like an MCP client; a refusal is read whole, a stream
    that opened is left unread (it does not end)."""
    merged = {**headers, "accept": "text/event-stream"}
    with httpx.stream("GET", url, headers=merged, timeout=TIMEOUT_S) as response:
        if response.status_code != 200:
            response.read()
        return response


def open_session(gateway: Front, who: str) -> str:
    """Initialize a session as ``who``; the session id the gateway handed out."""
    answer = post(gateway.url, INITIALIZE, gateway.bearer(who))
    assert answer.status_code == 200
    session = answer.headers["mcp-session-id"]
    done = post(gateway.url, INITIALIZED, {**gateway.bearer(who), "mcp-session-id": session})
    assert done.status_code == 202
    return session


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 404
    assert response.json()["error"] == "haechi_mcp_session_not_found"
    assert "mcp-session-id" not in response.headers


# -- a session as the SDK client runs it ------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("json_response", [False, True], ids=["event-stream", "json"])
async def test_an_sdk_session_works_with_bound_ids(tmp_path: Path, json_response: bool) -> None:
    """initialize, a tool call, the server's event stream and the closing DELETE all work;
    the client only ever sees the bound id and the server only ever its own."""
    seen: list[str] = []

    async def note(response: httpx2.Response) -> None:
        if "mcp-session-id" in response.headers:
            seen.append(response.headers["mcp-session-id"])

    with (
        front(tmp_path, BEARER, json_response=json_response) as gateway,
        anyio.fail_after(TIMEOUT_S),
    ):
        hooks = {"response": [note]}
        async with httpx2.AsyncClient(headers=gateway.bearer("a"), event_hooks=hooks) as client:
            async with (
                streamable_http_client(gateway.url, http_client=client) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                echoed = await session.call_tool("echo", {"text": "hello"})
                assert echoed.content[0].text == "hello"
                opened = await anyio.to_thread.run_sync(
                    gateway.upstream.stream_opened.wait, TIMEOUT_S
                )
                assert opened, "the client's GET reached the server"
            sent = list(gateway.upstream.requests)
    (issued,) = set(gateway.upstream.issued)
    assert seen
    assert all(value.startswith(PREFIX) for value in seen)
    assert issued not in seen
    methods = {method for method, _session in sent}
    assert {"POST", "GET", "DELETE"} <= methods
    assert sent[0] == ("POST", None)
    assert all(session == issued for _method, session in sent[1:])
    assert gateway.refusals() == []


# -- other callers' and made-up ids ----------------------------------------------------------


def test_another_caller_cannot_use_a_session(tmp_path: Path) -> None:
    with front(tmp_path, BEARER) as gateway:
        bound = open_session(gateway, "a")
        before = list(gateway.upstream.requests)
        as_b = {**gateway.bearer("b"), "mcp-session-id": bound}
        posted = post(gateway.url, LIST_TOOLS, as_b)
        streamed = get(gateway.url, as_b)
        deleted = httpx.delete(gateway.url, headers=as_b, timeout=TIMEOUT_S)
        for refused in (posted, streamed, deleted):
            assert_refused(refused)
        assert gateway.upstream.requests == before, "nothing of b's reached the server"
        # The owner's session is untouched.
        own = post(gateway.url, LIST_TOOLS, {**gateway.bearer("a"), "mcp-session-id": bound})
        assert own.status_code == 200
        assert {tool["name"] for tool in own.json()["result"]["tools"]} >= {"echo"}
        refusals = gateway.refusals()
        audit = gateway.audit.read_text()
    assert [(r["decision"], r["blocked"]) for r in refusals] == [("mcp_refused", True)] * 3
    assert {r["identity"]["id"] for r in refusals} == {refusals[0]["identity"]["id"]}
    (issued,) = set(gateway.upstream.issued)
    assert bound not in audit
    assert issued not in audit


def _tampered(bound: str) -> str:
    last = "0" if bound[-1] != "0" else "1"
    return bound[:-1] + last


@pytest.mark.parametrize("auth", [BEARER, {}], ids=["bearer", "no-auth"])
def test_ids_the_gateway_did_not_hand_out_are_refused(
    tmp_path: Path, auth: Mapping[str, Any]
) -> None:
    """The server's own id (even from its owner), a forged or altered bound id and a request
    naming two sessions are refused before anything is forwarded."""
    with front(tmp_path, auth) as gateway:
        bound = open_session(gateway, "a")
        (issued,) = set(gateway.upstream.issued)
        before = list(gateway.upstream.requests)
        owner = gateway.bearer("a")
        encoded = base64.urlsafe_b64encode(issued.encode()).rstrip(b"=").decode()
        forged = f"{PREFIX}{encoded}.{'0' * 64}"
        answers = [
            post(gateway.url, LIST_TOOLS, {**owner, "mcp-session-id": value})
            for value in (issued, forged, _tampered(bound), "not-a-session", PREFIX)
        ]
        answers.append(
            post(
                gateway.url,
                LIST_TOOLS,
                [*owner.items(), ("mcp-session-id", bound), ("mcp-session-id", bound)],
            )
        )
        answers.append(get(gateway.url, {**owner, "mcp-session-id": issued}))
        answers.append(
            httpx.delete(
                gateway.url, headers={**owner, "mcp-session-id": issued}, timeout=TIMEOUT_S
            )
        )
        for answer in answers:
            assert_refused(answer)
        assert gateway.upstream.requests == before
        assert len(gateway.refusals()) == len(answers)
        kept = post(gateway.url, LIST_TOOLS, {**owner, "mcp-session-id": bound})
    assert kept.status_code == 200
    assert bound.startswith(PREFIX)
    assert CATALOGUE["haechi_mcp_session_not_found"][0] == 404


# -- several worker processes ----------------------------------------------------------------


def test_workers_accept_each_others_bound_ids(tmp_path: Path) -> None:
    """``haechi proxy --workers 2`` deals connections to its workers in turn: a session
    opened on one connection goes on over a second one, served by the other worker."""
    upstream = Recorder(http_app(json_response=True))
    with serve_in_thread(upstream, lifespan="on") as up:
        config = _write_config(tmp_path, up.url, MCP_TARGET)
        with _proxy_process(config, "--workers", "2") as (process, url, _lines):
            port = int(url.rsplit(":", 1)[1])
            first = httpx.Client(limits=httpx.Limits(max_connections=1), timeout=TIMEOUT_S)
            second = httpx.Client(limits=httpx.Limits(max_connections=1), timeout=TIMEOUT_S)
            try:
                opened = first.post(f"{url}/mcp", json=INITIALIZE, headers=ACCEPT)
                bound = opened.headers["mcp-session-id"]
                session = {**ACCEPT, "mcp-session-id": bound}
                done = second.post(f"{url}/mcp", json=INITIALIZED, headers=session)
                listed = second.post(f"{url}/mcp", json=LIST_TOOLS, headers=session)
                again = first.post(f"{url}/mcp", json=LIST_TOOLS, headers=session)
                held = sorted(_served_connections(pid, port) for pid in _workers(process.pid))
            finally:
                first.close()
                second.close()
    assert bound.startswith(PREFIX)
    assert held == [1, 1], "each connection was served by another worker"
    assert [done.status_code, listed.status_code, again.status_code] == [202, 200, 200]
    (issued,) = set(upstream.issued)
    assert [session for _method, session in upstream.requests] == [None] + [issued] * 3


# -- the audit records of refusals -----------------------------------------------------------


def test_refusals_past_the_budget_are_counted_in_one_record(tmp_path: Path) -> None:
    """A caller sending ids the gateway did not hand it, as fast as it can, gets every
    request refused, but only ``mcp.deniedRecordsPerSecond`` records a second of its own;
    the others are counted, by reason, in one record written within the second (or when
    the gateway stops)."""
    budget = {"mcp": {"deniedRecordsPerSecond": 1}}
    with front(tmp_path, merge_config(BEARER, budget)) as gateway:
        bound = open_session(gateway, "a")
        own = open_session(gateway, "b")
        before = list(gateway.upstream.requests)
        as_b = gateway.bearer("b")
        foreign = {**as_b, "mcp-session-id": bound}
        made_up = {**as_b, "mcp-session-id": own, "last-event-id": f"hevt1.MQ.{'0' * 64}"}
        with httpx.Client(timeout=TIMEOUT_S) as client:
            answers = [
                client.post(gateway.url, json=LIST_TOOLS, headers={**ACCEPT, **headers})
                for headers in [foreign, made_up] * 10
            ]
        assert [answer.status_code for answer in answers] == [404, 400] * 10
        assert gateway.upstream.requests == before
    records = [json.loads(line) for line in gateway.audit.read_text().splitlines() if line]
    refused = [r for r in records if r.get("decision") == "mcp_refused"]
    single = [r for r in refused if r["reason"] != "aggregated"]
    summaries = [r for r in refused if r["reason"] == "aggregated"]
    assert single
    assert summaries
    assert len(single) < 20
    counted: dict[str, int] = {r["reason"]: 0 for r in single}
    for record in single:
        counted[record["reason"]] += 1
    for summary in summaries:
        assert [summary[name] for name in ("correlationId", "identity", "routeId")] == [None] * 3
        assert summary["operation"] == "mcp:session"
        assert summary["summary"]["byAction"] == {
            "mcp_refused": sum(summary["summary"]["byReason"].values())
        }
        for reason, count in summary["summary"]["byReason"].items():
            counted[reason] = counted.get(reason, 0) + count
    assert counted == {"mcp_session_not_owned": 10, "mcp_event_not_owned": 10}
    assert main(["audit-verify", "--audit", str(gateway.audit)]) == 0
