# SPDX-License-Identifier: Apache-2.0
"""Event ids of MCP streams over streamable HTTP are bound to the caller and the session.

The official SDK server, resumable with one event store for all its sessions, sits behind
the gateway (both under uvicorn, real sockets). The server replays the events after any id
it knows, whichever session asks, so the gateway hands out event ids bound to the caller and
the session, and refuses any other ``Last-Event-ID`` before forwarding.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from haechi.crypto import LocalCryptoProvider
from haechi.mcp._sessions import bind_event, unbind_session
from haechi.proxy.errors import CATALOGUE
from tests.mcp_servers.event_store import MemoryEventStore
from tests.mcp_servers.harness import TIMEOUT_S
from tests.test_mcp_http_sessions import BEARER, Front, front, get, open_session, post

EVENT_PREFIX = "hevt1."
SECRET_TEXT = "for a only"
#: The revision whose streams start with an event carrying an id (so they can be resumed).
RESUMABLE = {"mcp-protocol-version": "2025-11-25"}


def _resumable(workdir: Path, overrides: Mapping[str, Any]) -> Any:
    """A gateway before a resumable SDK server answering with event streams."""
    return front(
        workdir, overrides, json_response=False, event_store=MemoryEventStore(), retry_interval=100
    )


def _call(gateway: Front, who: str, session: str) -> list[str]:
    """Call ``echo`` with :data:`SECRET_TEXT` in ``session`` as ``who``; the event ids of
    its answer's stream."""
    message = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": SECRET_TEXT}},
    }
    answer = post(
        gateway.url, message, {**gateway.bearer(who), "mcp-session-id": session, **RESUMABLE}
    )
    assert answer.status_code == 200
    assert SECRET_TEXT in answer.text
    return [line[4:] for line in answer.text.splitlines() if line.startswith("id: ")]


def _server_id(bound: str) -> str:
    """The server's event id a bound one carries (in the clear)."""
    encoded = bound.removeprefix(EVENT_PREFIX).split(".")[0]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()


def _resume(gateway: Front, who: str, session: str, event: str) -> tuple[int, str]:
    """``GET`` with ``Last-Event-ID: event`` as ``who``: the status and what came, up to the
    first event holding :data:`SECRET_TEXT` (a resumed stream stays open)."""
    headers = {
        **gateway.bearer(who),
        **RESUMABLE,
        "mcp-session-id": session,
        "last-event-id": event,
        "accept": "text/event-stream",
    }
    with httpx.stream("GET", gateway.url, headers=headers, timeout=TIMEOUT_S) as response:
        if response.status_code != 200:
            return response.status_code, response.read().decode()
        text = ""
        for chunk in response.iter_text():
            text += chunk
            if SECRET_TEXT in text:
                break
        return response.status_code, text


def test_another_caller_cannot_resume_a_stream(tmp_path: Path) -> None:
    """Caller ``b``, with a session of its own, cannot have the events of ``a``'s stream
    replayed: not with ``a``'s event id, nor with the server's own id behind it (which a
    server counting its ids makes easy to guess), nor with a forged one; nothing of it
    reaches the server. ``a`` resumes its own stream, but not from another of its sessions."""
    with _resumable(tmp_path, BEARER) as gateway:
        first = open_session(gateway, "a")
        ids = _call(gateway, "a", first)
        assert ids
        assert all(value.startswith(EVENT_PREFIX) for value in ids)
        other = open_session(gateway, "a")
        own = open_session(gateway, "b")
        before = list(gateway.upstream.requests)
        raw = _server_id(ids[0])
        forged = ids[0].rsplit(".", 1)[0] + "." + "0" * 64
        refused = [
            _resume(gateway, "b", own, ids[0]),
            _resume(gateway, "b", own, raw),
            _resume(gateway, "b", own, forged),
            _resume(gateway, "a", first, raw),
            _resume(gateway, "a", other, ids[0]),
        ]
        assert gateway.upstream.requests == before, "no refused request reached the server"
        status, replayed = _resume(gateway, "a", first, ids[0])
        refusals = gateway.refusals("mcp_event_not_owned")
        audit = gateway.audit.read_text()
    for status_code, body in refused:
        assert status_code == 400
        assert '"haechi_mcp_event_id_refused"' in body
        assert SECRET_TEXT not in body
    assert status == 200
    assert SECRET_TEXT in replayed
    assert [(r["decision"], r["operation"]) for r in refusals] == [
        ("mcp_refused", "mcp:session")
    ] * 5
    assert ids[0] not in audit
    assert CATALOGUE["haechi_mcp_event_id_refused"][0] == 400


def test_without_authentication_ids_are_bound_to_the_session(tmp_path: Path) -> None:
    """Every caller is the same anonymous caller: an event id still resumes only the session
    it was handed in, and the server's own id is refused."""
    with _resumable(tmp_path, {}) as gateway:
        first = open_session(gateway, "a")
        ids = _call(gateway, "a", first)
        other = open_session(gateway, "a")
        raw = _server_id(ids[0])
        refused = [_resume(gateway, "a", other, ids[0]), _resume(gateway, "a", first, raw)]
        resumed = _resume(gateway, "a", first, ids[0])
    assert [status for status, _text in refused] == [400, 400]
    assert resumed[0] == 200
    assert SECRET_TEXT in resumed[1]


def test_an_empty_last_event_id_resumes_nothing_and_is_not_refused(tmp_path: Path) -> None:
    """An empty ``Last-Event-ID`` names no event: the stream opens as without it (as the
    server answers it directly), no refusal is recorded and the server sees it empty."""
    with _resumable(tmp_path, BEARER) as gateway:
        session = open_session(gateway, "a")
        headers = {**gateway.bearer("a"), **RESUMABLE, "mcp-session-id": session}
        opened = get(gateway.url, {**headers, "last-event-id": ""})
        refusals = gateway.refusals("mcp_event_not_owned")
    assert opened.status_code == 200
    assert refusals == []
    assert gateway.upstream.resumed_from == [""]


@pytest.mark.parametrize("server_id", [b"7\x00x", b"7\r\nx-injected: 1", b"7\x7f"])
def test_a_bound_id_no_client_could_send_back_is_refused(tmp_path: Path, server_id: bytes) -> None:
    """An id whose server id a header field cannot carry (bound before such ids were
    dropped, or under the same key by anything else) is refused as not the caller's (400),
    not sent on as a field line the upstream client refuses (500) or splits."""
    with _resumable(tmp_path, {}) as gateway:
        session = open_session(gateway, "a")
        crypto = LocalCryptoProvider(tmp_path / ".haechi" / "dev.keys.json")
        server_session = unbind_session(crypto, None, session.encode())
        assert server_session is not None
        bound = bind_event(crypto, None, server_session, server_id).decode()
        before = list(gateway.upstream.requests)
        status, body = _resume(gateway, "a", session, bound)
        reached = gateway.upstream.requests[len(before) :]
        refusals = gateway.refusals("mcp_event_not_owned")
    assert status == 400
    assert '"haechi_mcp_event_id_refused"' in body
    assert reached == []
    assert len(refusals) == 1


@pytest.mark.anyio
async def test_the_sdk_client_resumes_with_bound_ids(tmp_path: Path) -> None:
    """The server closes a call's stream before answering; the client resumes it with the
    bound id it was given and gets the answer, the server seeing its own id."""
    with _resumable(tmp_path, BEARER) as gateway, anyio.fail_after(TIMEOUT_S):
        async with (
            httpx2.AsyncClient(headers=gateway.bearer("a")) as client,
            streamable_http_client(gateway.url, http_client=client) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            answer = await session.call_tool("resumed", {"text": "after the break"})
            assert answer.content[0].text == "after the break"
        refusals = gateway.refusals("mcp_event_not_owned")
    assert gateway.upstream.resumed_from, "the client resumed the stream"
    assert not any(EVENT_PREFIX in value for value in gateway.upstream.resumed_from)
    assert refusals == []
