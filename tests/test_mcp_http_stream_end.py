# SPDX-License-Identifier: Apache-2.0
"""A server's event stream for a posted request that ends before the request's answer.

The upstream is a raw TCP server (real socket) writing the answer byte for byte, so that it
can close the connection in the middle of a chunked event stream, as a server process that
dies does, or end the stream without the answer. The gateway runs under uvicorn (real
socket) in front of it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.auth import add_token, revoke_token
from haechi.crypto import LocalCryptoProvider
from haechi.mcp import STDIO_ERROR
from haechi.mcp._sessions import MAX_EVENT_ID_BYTES, event_id_limit, session_id_limit
from haechi.testing import merge_config
from tests.test_mcp_http import REQUEST, bound_event, decisions, event, gateway_at, post, posting
from tests.test_mcp_http_sessions import BEARER
from tests.test_proxy_upstream import RawUpstream, answer, json_answer

PROGRESS = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}
RESULT = {"jsonrpc": "2.0", "id": 7, "result": {"content": []}}


@contextlib.contextmanager
def cutting(*events: str, finished: bool = False) -> Iterator[RawUpstream]:
    """An upstream answering every request with a chunked event stream holding ``events``
    and then closing the connection: in the middle of the body (a server process that went
    away), or after its last chunk when ``finished``."""
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(e.encode()), e.encode()) for e in events)
    reply = answer(
        chunks + (b"0\r\n\r\n" if finished else b""),
        "Content-Type: text/event-stream",
        "Transfer-Encoding: chunked",
    )
    server = RawUpstream(lambda _request: (reply, True))
    try:
        yield server
    finally:
        server.close()


def _messages(response: httpx.Response) -> list[dict[str, Any]]:
    frames = [frame for frame in response.text.split("\n\n") if frame]
    return [json.loads(frame.split("data: ", 1)[1]) for frame in frames if "data: " in frame]


@pytest.mark.parametrize(
    ("finished", "reason"),
    [
        (False, "the upstream event stream broke off before the answer"),
        (True, "the upstream event stream ended before the answer"),
    ],
    ids=["broken", "ended"],
)
def test_a_stream_cut_before_the_answer_ends_with_an_error_for_the_request(
    tmp_path: Path, finished: bool, reason: str
) -> None:
    """The server's stream stops after a progress notification, before the answer: the
    client gets the notification and then the error for its request, instead of waiting
    for ever."""
    with (
        cutting(event(PROGRESS), finished=finished) as upstream,
        gateway_at(upstream.url, tmp_path) as url,
    ):
        response = post(url, REQUEST)
    assert response.status_code == 200
    progress, refusal = _messages(response)
    assert progress == PROGRESS
    assert refusal["id"] == REQUEST["id"]
    assert refusal["error"]["code"] == STDIO_ERROR
    assert refusal["error"]["data"] == {"reason": reason}


def test_a_stream_cut_after_the_answer_owes_nothing(tmp_path: Path) -> None:
    with cutting(event(RESULT)) as upstream, gateway_at(upstream.url, tmp_path) as url:
        response = post(url, REQUEST)
    assert _messages(response) == [RESULT]


def test_a_stream_the_client_can_resume_is_left_to_it(tmp_path: Path) -> None:
    """After an event with an id the client resumes the stream from it (``GET`` with
    ``Last-Event-ID``) and gets the answer then; an error now would end its request first."""
    with cutting(event(PROGRESS, "e1")) as upstream, gateway_at(upstream.url, tmp_path) as url:
        response = post(url, REQUEST)
    assert _messages(response) == [PROGRESS]
    assert f"id: {bound_event(tmp_path, None, 'e1')}" in response.text


#: ``limits.maxHeaderBytes`` of the tests of long event ids, and the longest id it lets the
#: gateway hand out.
HEAD_BYTES = 2048
LONGEST_ID = event_id_limit(HEAD_BYTES)


@pytest.mark.parametrize(
    ("event_id", "head_bytes"),
    [
        ("e\x001", None),
        ("e" * (LONGEST_ID + 1), HEAD_BYTES),
        ("e" * (MAX_EVENT_ID_BYTES + 1), None),
        ("e\x01", None),
        ("e\t1", None),
        ("e\x7f", None),
        ("e\u00e9", None),
        ("e\u20ac", None),
        (" e1", None),
        ("e1 ", None),
    ],
    ids=[
        "nul",
        "longer-than-the-head-allows",
        "longer-than-any-head-allows",
        "control",
        "tab",
        "del",
        "latin-1",
        "past-latin-1",
        "leading-space",
        "trailing-space",
    ],
)
def test_an_id_a_client_cannot_send_back_is_no_id_to_resume_from(
    tmp_path: Path, event_id: str, head_bytes: int | None
) -> None:
    """A client cannot resume from an ``id`` it ignores (one holding NUL), one whose
    ``Last-Event-ID`` would be refused as too large, nor one a header field does not carry
    back to the server as it is: the line is dropped (audited), not handed out bound as an
    id to resume with, and the request gets its error."""
    limits = {} if head_bytes is None else {"limits": {"maxHeaderBytes": head_bytes}}
    with (
        cutting(event(PROGRESS, event_id)) as upstream,
        gateway_at(upstream.url, tmp_path, limits) as url,
    ):
        response = post(url, REQUEST)
    assert "id:" not in response.text
    progress, refusal = _messages(response)
    assert progress == PROGRESS
    assert refusal["id"] == REQUEST["id"]
    assert refusal["error"]["data"] == {
        "reason": "the upstream event stream broke off before the answer"
    }
    assert ("mcp_refused", "mcp_sse_field_dropped") in decisions(tmp_path)


def test_the_longest_id_the_head_allows_is_one_to_resume_from(tmp_path: Path) -> None:
    """An id as long as ``limits.maxHeaderBytes`` allows goes out bound, and the client's
    request to resume from it gets through to the server with the server's id."""
    longest = "e" * LONGEST_ID
    limits = {"limits": {"maxHeaderBytes": HEAD_BYTES}}
    with (
        cutting(event(PROGRESS, longest)) as upstream,
        gateway_at(upstream.url, tmp_path, limits) as url,
    ):
        response = post(url, REQUEST)
        bound = bound_event(tmp_path, None, longest)
        assert f"id: {bound}" in response.text
        assert _messages(response) == [PROGRESS]
        headers = {"accept": "text/event-stream", "last-event-id": bound}
        resumed = httpx.get(url, headers=headers, timeout=10)
    assert resumed.status_code == 200
    assert f"last-event-id: {longest}\r\n".encode() in upstream.requests[-1]


def test_a_stream_cut_while_its_error_goes_out_answers_the_request_once(tmp_path: Path) -> None:
    """The server ends the stream before the answer, and the gateway's error for the request
    is more than the sockets of a loopback connection hold (about 4 MiB on Linux): the
    request's id is that long. With the client not reading, the gateway waits to write the
    end of the stream. The caller's token is revoked then; the re-check must not send the
    request a second error."""
    request = {**REQUEST, "id": "r" * 6_000_000}
    overrides = merge_config(
        BEARER, {"auth": {"streamRecheckMs": 50}, "limits": {"maxRequestBytes": 16 << 20}}
    )
    with cutting(finished=True) as upstream, gateway_at(upstream.url, tmp_path, overrides) as url:
        store = tmp_path / ".haechi" / "auth.json"
        crypto = LocalCryptoProvider(tmp_path / ".haechi" / "dev.keys.json")
        record, token = add_token(store, crypto, token_type="agent")
        with posting(url, request, authorization=f"Bearer {token}") as response:
            assert response.status_code == 200
            time.sleep(0.5)  # the gateway's writes are held up by the client
            revoke_token(store, record["id"])
            time.sleep(0.5)  # ten re-check intervals
            response.read()
    (refusal,) = _messages(response)
    assert refusal["id"] == request["id"]
    assert refusal["error"]["data"] == {
        "reason": "the upstream event stream ended before the answer"
    }


@pytest.mark.parametrize(
    "session",
    [
        "s" * (session_id_limit(HEAD_BYTES) + 1),
        "s" * (MAX_EVENT_ID_BYTES + 1),
        "s\tt",
        "",
        "s\u00e9",
    ],
    ids=[
        "longer-than-the-head-allows",
        "longer-than-any-head-allows",
        "tab",
        "empty",
        "latin-1",
    ],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["json", "event-stream"])
def test_a_session_id_no_client_could_send_back_refuses_the_answer(
    tmp_path: Path, session: str, streamed: bool
) -> None:
    """Every later request of the session would carry it: too long for the head, or bytes
    a header line cannot take back to the server. The answer is refused, not a session
    handed out that breaks on the next request."""
    head = "Mcp-Session-Id: " + session
    if streamed:
        body = event(RESULT).encode()
        reply = answer(
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body),
            "Content-Type: text/event-stream",
            "Transfer-Encoding: chunked",
            head,
        )
    else:
        reply = json_answer(RESULT, head)
    upstream = RawUpstream(lambda _request: (reply, True))
    limits = {"limits": {"maxHeaderBytes": HEAD_BYTES}}
    try:
        with gateway_at(upstream.url, tmp_path, limits) as url:
            response = post(url, REQUEST)
    finally:
        upstream.close()
    assert response.status_code == 502
    assert response.json()["reason"] == "unusable_session_id"
    assert "mcp-session-id" not in response.headers
    assert ("response_unprotected_blocked", "unusable_session_id") in decisions(tmp_path)


def test_the_longest_session_id_the_head_allows_is_handed_out(tmp_path: Path) -> None:
    session = "s" * session_id_limit(HEAD_BYTES)
    upstream = RawUpstream(
        lambda _request: (json_answer(RESULT, f"Mcp-Session-Id: {session}"), True)
    )
    try:
        with gateway_at(upstream.url, tmp_path, {"limits": {"maxHeaderBytes": HEAD_BYTES}}) as url:
            response = post(url, REQUEST)
            bound = response.headers["mcp-session-id"]
            post(url, REQUEST, **{"mcp-session-id": bound})
    finally:
        upstream.close()
    assert response.status_code == 200
    assert f"mcp-session-id: {session}".encode() in upstream.requests[-1].lower()
