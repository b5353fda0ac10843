# SPDX-License-Identifier: Apache-2.0
"""MCP over streamable HTTP through the gateway (``target.type: "mcp-http"``).

The SDK tests put the official server (streamable HTTP under uvicorn, real socket) behind
the gateway (uvicorn, real socket) and drive it with the official client. The wire tests use
a small scripted upstream for answers the SDK server never gives (server requests carrying
secrets, malformed events, non-JSON bodies) and a plain HTTP client for requests the SDK
client never sends.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.mcp import METHOD_NOT_ALLOWED, POLICY_BLOCK, STDIO_ERROR
from haechi.mcp._sessions import bind_event, bind_session
from haechi.proxy.app import GatewayApp
from haechi.proxy.background import serve_in_thread
from haechi.runtime import create_runtime
from haechi.testing import merge_config
from tests.mcp_servers.harness import SDK_METHODS, TIMEOUT_S, recorded
from tests.mcp_servers.tool_server import github_token, http_app
from tests.upstream_server import gateway_config

EMAIL = "jane.doe@example.com"
CARD = "4111111111111111"
MCP_TARGET = {"target": {"type": "mcp-http"}, "mcp": {"allowedMethods": SDK_METHODS}}


@contextlib.contextmanager
def gateway_at(
    upstream_url: str, workdir: Path, overrides: Mapping[str, Any] | None = None
) -> Iterator[str]:
    """Serve an ``mcp-http`` gateway in front of ``upstream_url``; yield the MCP URL."""
    settings = gateway_config(workdir, upstream_url, merge_config(MCP_TARGET, overrides or {}))
    init_key_file(settings["keys"]["keyFile"])
    runtime = create_runtime(settings)
    with serve_in_thread(GatewayApp(runtime), lifespan="on") as gateway:
        yield f"{gateway.url}/mcp"


@contextlib.contextmanager
def gateway_before(
    upstream: Any, workdir: Path, overrides: Mapping[str, Any] | None = None
) -> Iterator[str]:
    """Serve ``upstream`` and an ``mcp-http`` gateway in front of it; yield the MCP URL."""
    with (
        serve_in_thread(upstream, lifespan="on") as up,
        gateway_at(up.url, workdir, overrides) as url,
    ):
        yield url


def bound_session(workdir: Path, session: str) -> str:
    """The ``Mcp-Session-Id`` the gateway of ``workdir`` (no authentication) hands a client for
    the server's ``session``, and takes back from it."""
    crypto = LocalCryptoProvider(workdir / ".haechi" / "dev.keys.json")
    return bind_session(crypto, None, session.encode()).decode()


def bound_event(workdir: Path, session: str | None, event_id: str) -> str:
    """The event id the gateway of ``workdir`` (no authentication) hands a client for the
    server's ``event_id`` of a stream of the server's ``session``, and takes back from it."""
    crypto = LocalCryptoProvider(workdir / ".haechi" / "dev.keys.json")
    where = None if session is None else session.encode()
    return bind_event(crypto, None, where, event_id.encode()).decode()


# -- the official SDK on both ends ---------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("json_response", [False, True], ids=["event-stream", "json"])
async def test_sdk_session_through_the_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, json_response: bool
) -> None:
    record = tmp_path / "received.jsonl"
    monkeypatch.setenv("HAECHI_TEST_RECORD", str(record))
    with (
        gateway_before(http_app(json_response=json_response), tmp_path) as url,
        anyio.fail_after(TIMEOUT_S),
    ):
        async with (
            streamable_http_client(url) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert {"echo", "get_secret"} <= tools
            echoed = await session.call_tool("echo", {"text": f"write to {EMAIL}"})
            assert echoed.content[0].text == "write to [REDACTED:email]"
            with pytest.raises(MCPError) as blocked:
                await session.call_tool("get_secret", {})
            assert blocked.value.code == POLICY_BLOCK
            with pytest.raises(MCPError) as refused:
                await session.send_ping()
            assert refused.value.code == METHOD_NOT_ALLOWED
            after = await session.call_tool("echo", {"text": "still here"})
            assert after.content[0].text == "still here"
    seen = recorded(record)
    assert "[REDACTED:email]" in seen
    assert EMAIL not in seen
    assert '"ping"' not in seen


@pytest.mark.anyio
async def test_sdk_session_with_a_redacting_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAECHI_TEST_RECORD", str(tmp_path / "received.jsonl"))
    policy = {"policy": {"presets": ["llm-redact"]}}
    with gateway_before(http_app(), tmp_path, policy) as url, anyio.fail_after(TIMEOUT_S):
        async with (
            streamable_http_client(url) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool("get_secret", {})
            text = result.content[0].text
            assert text == "the deploy token is [REDACTED:secret]"


# -- the wire, with a scripted upstream -----------------------------------------------------


@dataclass
class Reply:
    """One canned upstream answer."""

    status: int = 200
    content_type: str = "application/json"
    body: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass
class ScriptedUpstream:
    """An ASGI MCP endpoint that records requests and answers from a queue of replies."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append((scope["method"], headers, body))
        reply = self.replies.pop(0) if self.replies else Reply(status=202)
        response_headers = [(b"content-type", reply.content_type.encode()), *reply.headers]
        await send(
            {"type": "http.response.start", "status": reply.status, "headers": response_headers}
        )
        await send({"type": "http.response.body", "body": reply.body})


def sse(*events: str) -> bytes:
    return "".join(events).encode()


def event(message: Any, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    data = message if isinstance(message, str) else json.dumps(message)
    return f"{head}event: message\ndata: {data}\n\n"


REQUEST = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo"}}


@contextlib.contextmanager
def posting(url: str, message: Any, **headers: str) -> Iterator[httpx.Response]:
    """POST ``message`` like an MCP client; the answer is left unread, so that its bytes can
    be taken as they came (``iter_raw``), before any decoding its headers ask for."""
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    base = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    merged = {**base, **headers}
    with httpx.stream("POST", url, content=body, headers=merged, timeout=TIMEOUT_S) as response:
        yield response


def post(url: str, message: Any, **headers: str) -> httpx.Response:
    with posting(url, message, **headers) as response:
        response.read()
        return response


def decisions(workdir: Path) -> list[tuple[str, str]]:
    """The ``(decision, reason)`` of every gateway decision in the audit log, in order."""
    audit = workdir / ".haechi" / "audit.jsonl"
    records = [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]
    return [(r["decision"], r["reason"]) for r in records if "decision" in r]


def test_an_event_stream_is_inspected_message_by_message(tmp_path: Path) -> None:
    token = github_token()
    sampling = {
        "jsonrpc": "2.0",
        "id": "s1",
        "method": "sampling/createMessage",
        "params": {"messages": [{"content": {"type": "text", "text": token}}]},
    }
    progress = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": EMAIL}}
    result = {"jsonrpc": "2.0", "id": 7, "result": {"content": [{"text": f"hi {EMAIL}"}]}}
    stream = sse(
        ": keep-alive\n\n",
        "id: p0\ndata: \n\n",
        event(sampling),
        event(progress, "e1"),
        event(result, "e2"),
    )
    upstream = ScriptedUpstream([Reply(content_type="text/event-stream", body=stream)])
    with gateway_before(upstream, tmp_path) as url:
        response = post(url, REQUEST)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    text = response.text
    assert token not in text
    assert EMAIL not in text
    assert "keep-alive" not in text
    frames = [frame for frame in text.split("\n\n") if frame]
    assert frames[0] == f"id: {bound_event(tmp_path, None, 'p0')}\ndata:"
    relayed = [json.loads(frame.split("data: ", 1)[1]) for frame in frames[1:]]
    assert [m.get("id") for m in relayed] == [None, 7]
    assert relayed[0]["params"]["data"] == "[REDACTED:email]"
    assert relayed[1]["result"]["content"][0]["text"] == "hi [REDACTED:email]"
    assert frames[1].startswith(f"id: {bound_event(tmp_path, None, 'e1')}\nevent: message\n")
    # The refused server request was answered to the server, never shown to the client.
    answers = [json.loads(body) for method, _h, body in upstream.requests[1:] if method == "POST"]
    assert [(a["id"], a["error"]["code"]) for a in answers] == [("s1", POLICY_BLOCK)]


def test_only_checked_fields_of_an_event_reach_the_client(tmp_path: Path) -> None:
    """Field lines are not part of the message: a client gets an event's name, id and
    reconnection delay when nothing is found in them, and no other field."""
    token = github_token()
    note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "hi"}}
    result = {"jsonrpc": "2.0", "id": 7, "result": {"text": "ok"}}
    stream = sse(
        f"event: {token}\nid: {CARD}\nx-note: {EMAIL}\nretry: 1500\ndata: {json.dumps(note)}\n\n",
        f"id: {token}\nevent: message\ndata: {json.dumps(result)}\n\n",
    )
    upstream = ScriptedUpstream([Reply(content_type="text/event-stream", body=stream)])
    with gateway_before(upstream, tmp_path) as url:
        response = post(url, REQUEST)
    frames = [frame for frame in response.text.split("\n\n") if frame]
    assert [frame.split("\ndata: ")[0] for frame in frames] == ["retry: 1500", "event: message"]
    assert [json.loads(frame.split("data: ", 1)[1]) for frame in frames] == [note, result]


@pytest.mark.parametrize("breaker", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c"])
def test_a_field_line_a_client_would_cut_ends_the_stream(tmp_path: Path, breaker: str) -> None:
    """A client splitting lines with ``str.splitlines`` reads ``id: 1<U+2028>data: ...`` as
    an id and a whole message nobody inspected."""
    hidden = {"jsonrpc": "2.0", "id": 7, "result": {"text": f"mail {EMAIL}"}}
    stream = f"id: 1{breaker}data: {json.dumps(hidden)}\n\n".encode()
    upstream = ScriptedUpstream([Reply(content_type="text/event-stream", body=stream)])
    with gateway_before(upstream, tmp_path) as url:
        response = post(url, REQUEST)
    assert EMAIL not in response.text
    frames = [frame for frame in response.text.splitlines() if frame]
    assert len(frames) == 1
    message = json.loads(frames[0].removeprefix("data: "))
    assert (message["id"], message["error"]["code"]) == (7, STDIO_ERROR)


def test_line_breakers_inside_a_message_are_escaped(tmp_path: Path) -> None:
    result = {"jsonrpc": "2.0", "id": 7, "result": {"text": "one\u2028two\x85three"}}
    body = sse(event(json.dumps(result, ensure_ascii=False)))
    upstream = ScriptedUpstream([Reply(content_type="text/event-stream", body=body)])
    with gateway_before(upstream, tmp_path) as url:
        response = post(url, REQUEST)
    lines = [line for line in response.text.splitlines() if line]
    assert lines[0] == "event: message"
    assert json.loads(lines[1].removeprefix("data: ")) == result


def test_a_blocked_result_in_a_stream_becomes_an_error_event(tmp_path: Path) -> None:
    result = {"jsonrpc": "2.0", "id": 7, "result": {"text": github_token()}}
    upstream = ScriptedUpstream([Reply(content_type="text/event-stream", body=sse(event(result)))])
    with gateway_before(upstream, tmp_path) as url:
        response = post(url, REQUEST)
    message = json.loads(response.text.split("data: ", 1)[1])
    assert (message["id"], message["error"]["code"]) == (7, POLICY_BLOCK)


def test_an_uninspectable_event_ends_the_stream_with_an_error(tmp_path: Path) -> None:
    after = {"jsonrpc": "2.0", "id": 7, "result": {"text": EMAIL}}
    body = sse(event("{not json"), event(after))
    upstream = ScriptedUpstream([Reply(content_type="text/event-stream", body=body)])
    with gateway_before(upstream, tmp_path) as url:
        response = post(url, REQUEST)
    frames = [frame for frame in response.text.split("\n\n") if frame]
    assert len(frames) == 1
    message = json.loads(frames[0].split("data: ", 1)[1])
    assert (message["id"], message["error"]["code"]) == (7, STDIO_ERROR)


def test_a_field_line_the_detector_fails_on_ends_the_stream_with_an_error(
    tmp_path: Path,
) -> None:
    """A custom rule running out of time on an ``event:`` line fails the inspection of that
    event: it is withheld, the refusal audited and the request answered with its error,
    instead of the connection dropping with the client left waiting."""
    slow = {"id": "slow", "type": "slow", "pattern": r"q(?:a|aa)*b?(?:a|aa)*!"}
    answer = json.dumps({"jsonrpc": "2.0", "id": 7, "result": {}})
    body = f"event: q{'a' * 400}1!\ndata: {answer}\n\n".encode()
    upstream = ScriptedUpstream([Reply(content_type="text/event-stream", body=body)])
    overrides = {"filters": {"customRules": [slow]}}
    with gateway_before(upstream, tmp_path, overrides) as url:
        response = post(url, REQUEST)
    frames = [frame for frame in response.text.split("\n\n") if frame]
    assert len(frames) == 1
    message = json.loads(frames[0].split("data: ", 1)[1])
    assert (message["id"], message["error"]["code"]) == (7, STDIO_ERROR)
    assert decisions(tmp_path) == [("mcp_refused", "mcp_protection_failed")]


def test_a_request_answered_before_the_stream_ends_is_not_answered_again(
    tmp_path: Path,
) -> None:
    """JSON-RPC answers a request once: a stream that ends early after its answer went out
    ends without a second, contradicting error for the same id."""
    answer = {"jsonrpc": "2.0", "id": 7, "result": {"text": "done"}}
    body = sse(event(answer), event("{not json"))
    upstream = ScriptedUpstream([Reply(content_type="text/event-stream", body=body)])
    with gateway_before(upstream, tmp_path) as url:
        response = post(url, REQUEST)
    frames = [frame for frame in response.text.split("\n\n") if frame]
    assert [json.loads(frame.split("data: ", 1)[1]) for frame in frames] == [answer]
    assert ("mcp_refused", "mcp_sse_event_unparseable") in decisions(tmp_path)


def test_json_in_a_string_that_repeats_a_key_goes_on_as_inspected(tmp_path: Path) -> None:
    """Parsing keeps the last copy of a repeated key, so only that one is inspected; a
    receiver keeping the first would read the other, so the document goes on re-encoded."""
    token = github_token()
    text = '{"k":"' + token + '","k":""}'
    result = {"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": text}]}}
    upstream = ScriptedUpstream([Reply(body=json.dumps(result).encode())])
    envelope = '{"to": "' + EMAIL + '", "to": "nobody"}'
    params = {"name": "send", "arguments": {"envelope": envelope}}
    with gateway_before(upstream, tmp_path) as url:
        response = post(url, {**REQUEST, "params": params})
    forwarded = upstream.requests[0][2].decode()
    assert EMAIL not in forwarded
    assert json.loads(forwarded)["params"]["arguments"]["envelope"] == '{"to": "nobody"}'
    assert token not in response.text
    assert response.json()["result"]["content"][0]["text"] == '{"k":""}'


def test_numbers_of_json_in_a_string_are_inspected_in_answers(tmp_path: Path) -> None:
    """A number of a document inside a string was text on the wire: it is inspected
    whatever the direction, unlike a number of the answer itself."""
    row = json.dumps({"customer": "c-17", "card": int(CARD), "visits": 3})
    plain = json.dumps({"customer": "c-17", "visits": 3, "since": 1700000000})
    content = [{"type": "text", "text": row}, {"type": "text", "text": plain}]
    result = {"jsonrpc": "2.0", "id": 7, "result": {"content": content}}
    upstream = ScriptedUpstream([Reply(body=json.dumps(result).encode())] * 2)
    redact = {"policy": {"actions": {"card": "redact"}}}
    with gateway_before(upstream, tmp_path / "block") as url:
        blocked = post(url, REQUEST)
    with gateway_before(upstream, tmp_path / "redact", redact) as url:
        redacted = post(url, REQUEST)
    assert CARD not in blocked.text
    assert blocked.json()["error"]["code"] == POLICY_BLOCK
    texts = [part["text"] for part in redacted.json()["result"]["content"]]
    assert json.loads(texts[0]) == {"customer": "c-17", "card": "[REDACTED:card]", "visits": 3}
    assert texts[1] == plain, "a document without findings goes on as it came"


def test_json_answers_are_inspected(tmp_path: Path) -> None:
    blocked = {"jsonrpc": "2.0", "id": 7, "result": {"text": github_token()}}
    redacted = {"jsonrpc": "2.0", "id": 7, "result": {"text": EMAIL}}
    upstream = ScriptedUpstream(
        [
            Reply(body=json.dumps(blocked).encode(), headers=((b"mcp-session-id", b"abc"),)),
            Reply(body=json.dumps(redacted).encode()),
            Reply(content_type="text/plain", body=f"oops {EMAIL}".encode()),
            Reply(body=b'{"not": "json-rpc"}'),
        ]
    )
    with gateway_before(upstream, tmp_path) as url:
        first = post(url, REQUEST)
        second = post(url, REQUEST)
        plain = post(url, REQUEST)
        odd = post(url, REQUEST)
    assert first.status_code == 200
    assert first.headers["mcp-session-id"] == bound_session(tmp_path, "abc")
    assert first.json()["error"]["code"] == POLICY_BLOCK
    assert second.json()["result"] == {"text": "[REDACTED:email]"}
    assert plain.status_code == 502
    assert plain.json()["error"] == "haechi_response_unprotected"
    assert EMAIL not in plain.text
    assert odd.status_code == 502
    assert (odd.json()["id"], odd.json()["error"]["code"]) == (7, STDIO_ERROR)


@pytest.mark.parametrize("media", ["application/json", "text/event-stream"])
def test_an_answer_in_another_charset_never_reaches_the_client(tmp_path: Path, media: str) -> None:
    """In UTF-7 ``+AEA-`` is ``@``: a client decoding the declared charset would read an
    address the gateway, inspecting UTF-8, never saw."""
    result = {"jsonrpc": "2.0", "id": 7, "result": {"text": "jane.doe+AEA-example.com"}}
    body = json.dumps(result).encode() if media == "application/json" else sse(event(result))
    upstream = ScriptedUpstream([Reply(content_type=f"{media}; charset=utf-7", body=body)])
    with gateway_before(upstream, tmp_path) as url:
        response = post(url, REQUEST)
    assert response.status_code == 502
    assert response.json()["error"] == "haechi_response_unprotected"
    assert response.json()["reason"] == "unsupported_charset"
    assert "jane" not in response.text
    assert decisions(tmp_path)[-1] == ("response_unprotected_blocked", "unsupported_charset")


#: Codings and how the upstream applies them. ``br`` is declared over bytes left as they are:
#: a coding whose bytes happen to read as messages, which the gateway could inspect and relay
#: for the client to decode into something else.
CODINGS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": lambda plain: plain,
}


@pytest.mark.parametrize("coding", list(CODINGS))
@pytest.mark.parametrize("media", ["application/json", "text/event-stream"])
def test_a_compressed_answer_never_reaches_the_client(
    tmp_path: Path, media: str, coding: str
) -> None:
    """The gateway inspects an answer's bytes as UTF-8 text; a client decodes a coded answer
    first, into text the gateway never inspected."""
    result = {"jsonrpc": "2.0", "id": 7, "result": {"text": f"write to {EMAIL}"}}
    plain = json.dumps(result).encode() if media == "application/json" else sse(event(result))
    body = CODINGS[coding](plain)
    coded = ((b"content-encoding", coding.encode()),)
    upstream = ScriptedUpstream([Reply(content_type=media, body=body, headers=coded)])
    with gateway_before(upstream, tmp_path) as url, posting(url, REQUEST) as response:
        raw = b"".join(response.iter_raw())
    assert response.status_code == 502
    assert "content-encoding" not in response.headers
    refusal = json.loads(raw)
    assert (refusal["error"], refusal["reason"]) == (
        "haechi_response_unprotected",
        "compressed_response",
    )
    assert EMAIL.encode() not in raw
    assert body not in raw
    assert decisions(tmp_path)[-1] == ("response_unprotected_blocked", "compressed_response")


def test_an_identity_coded_stream_is_inspected(tmp_path: Path) -> None:
    result = {"jsonrpc": "2.0", "id": 7, "result": {"text": EMAIL}}
    identity = ((b"content-encoding", b"Identity"),)
    reply = Reply(content_type="text/event-stream", body=sse(event(result)), headers=identity)
    with gateway_before(ScriptedUpstream([reply]), tmp_path) as url:
        response = post(url, REQUEST)
    assert response.status_code == 200
    message = json.loads(response.text.split("data: ", 1)[1])
    assert message["result"] == {"text": "[REDACTED:email]"}


def test_client_requests_refused_at_the_gateway(tmp_path: Path) -> None:
    upstream = ScriptedUpstream()
    with gateway_before(upstream, tmp_path) as url:
        batch = post(url, [REQUEST])
        broken = post(url, b"{nope")
        disallowed = post(url, {"jsonrpc": "2.0", "id": 1, "method": "resources/list"})
        note = post(url, {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})
        secret = post(
            url, {**REQUEST, "params": {"name": "echo", "arguments": {"t": github_token()}}}
        )
        put = httpx.put(url, content=b"{}", timeout=TIMEOUT_S)
    assert batch.status_code == 200
    [refusal] = batch.json()
    assert (refusal["id"], refusal["error"]["data"]["reason"]) == (
        7,
        "JSON-RPC batch messages are not supported",
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == STDIO_ERROR
    assert disallowed.json()["error"]["code"] == METHOD_NOT_ALLOWED
    assert note.status_code == 202
    assert note.content == b""
    assert secret.json()["error"]["code"] == POLICY_BLOCK
    assert put.status_code == 405
    assert upstream.requests == [], "nothing refused reached the server"


def test_a_model_allowlist_leaves_mcp_paths_alone(tmp_path: Path) -> None:
    """A model allowlist refuses LLM requests on paths servers read in several ways; an MCP
    endpoint names no model, so its path, whatever it holds, is forwarded as sent."""
    upstream = ScriptedUpstream()
    overrides = {"policy": {"modelAllowlist": ["gpt-4o"]}}
    with gateway_before(upstream, tmp_path, overrides) as url:
        note = post(f"{url};x%2F..", {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert note.status_code == 202
    assert len(upstream.requests) == 1


def test_answers_of_the_client_are_inspected_as_requests(tmp_path: Path) -> None:
    """What the client answers to a server request (an elicitation form, an error) goes to
    the server like a request: its numbers are inspected too."""
    form = {"action": "accept", "content": {"card_number": int(CARD), "note": "hi"}}
    accepted = {"jsonrpc": "2.0", "id": "e1", "result": form}
    failed = {
        "jsonrpc": "2.0",
        "id": "e2",
        "error": {"code": -1, "message": "x", "data": {"n": int(CARD)}},
    }
    plain = {"jsonrpc": "2.0", "id": "e3", "result": {"action": "accept", "content": {"age": 42}}}
    upstream = ScriptedUpstream()
    with gateway_before(upstream, tmp_path) as url:
        for answer in (accepted, failed, plain):
            assert post(url, answer).status_code == 202
    received = [json.loads(body) for _method, _headers, body in upstream.requests]
    assert CARD not in json.dumps(received)
    assert [(m["id"], m["error"]["code"]) for m in received[:2]] == [
        ("e1", POLICY_BLOCK),
        ("e2", POLICY_BLOCK),
    ]
    assert received[2] == plain


def test_a_lone_surrogate_escape_is_refused(tmp_path: Path) -> None:
    """``\\ud800`` is no text: each decoder reads it its own way (one drops it and reads
    ``jane.doe@example.com``), so the receiver would not read what was inspected."""
    cut = "jane.doe\\ud800@example.com"
    request = '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"a":"' + cut + '"}}'
    answer = '{"jsonrpc":"2.0","id":7,"result":{"text":"' + cut + '"}}'
    embedded = json.dumps({"jsonrpc": "2.0", "id": 7, "result": {"text": '{"a":"' + cut + '"}'}})
    upstream = ScriptedUpstream([Reply(body=answer.encode()), Reply(body=embedded.encode())])
    with gateway_before(upstream, tmp_path) as url:
        refused = post(url, request.encode())
        unreadable = post(url, REQUEST)
        inside = post(url, REQUEST)
    assert refused.status_code == 400
    assert refused.json()["error"]["data"]["reason"] == "MCP message holds a lone UTF-16 surrogate"
    assert [json.loads(body)["id"] for _m, _h, body in upstream.requests] == [7, 7]
    assert unreadable.status_code == 502
    assert (inside.json()["id"], inside.json()["error"]["code"]) == (7, STDIO_ERROR)
    assert "jane" not in unreadable.text + inside.text


def test_ids_and_methods_holding_protected_values_are_refused(tmp_path: Path) -> None:
    """An id and a method go on as they came: one in which the detector finds something is
    refused, and the refusal does not repeat the id."""
    token = github_token()
    notification = {"jsonrpc": "2.0", "method": f"notifications/{token}", "params": {}}
    sampling = {"jsonrpc": "2.0", "id": f"{CARD}-{EMAIL}", "method": "sampling/createMessage"}
    result = {"jsonrpc": "2.0", "id": 7, "result": {"content": []}}
    stream = sse(event(notification), event(sampling), event(result))
    upstream = ScriptedUpstream([Reply(content_type="text/event-stream", body=stream)])
    ordinary = {**REQUEST, "id": "0b1c7e6a-3f7e-4d7c-9b5e-2f1d8a6c4e21"}
    with gateway_before(upstream, tmp_path) as url:
        streamed = post(url, REQUEST)
        refused = post(url, {**REQUEST, "id": f"req-{token}"})
        passed = post(url, ordinary)
    relayed = [
        json.loads(frame.split("data: ", 1)[1]) for frame in streamed.text.split("\n\n")[:-1]
    ]
    assert relayed == [result]
    sent = [json.loads(body) for method, _h, body in upstream.requests if method == "POST"]
    assert [message.get("id") for message in sent] == [7, None, ordinary["id"]]
    assert sent[1]["error"]["code"] == STDIO_ERROR, "the server's request was answered"
    assert (refused.json()["id"], refused.json()["error"]["code"]) == (None, STDIO_ERROR)
    assert passed.status_code == 202
    everything = streamed.text + refused.text + json.dumps(sent)
    assert all(value not in everything for value in (token, CARD, EMAIL))


def test_headers_of_the_streamable_transport(tmp_path: Path) -> None:
    uri = f"file:///home/{EMAIL}/notes.txt"
    message = {"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": uri}}
    upstream = ScriptedUpstream(
        [Reply(body=b'{"jsonrpc":"2.0","id":3,"result":{}}'), Reply(status=204)]
    )
    allowed = {"mcp": {"allowedMethods": ["resources/read"]}}
    with gateway_before(upstream, tmp_path, allowed) as url:
        post(
            url,
            message,
            **{
                "mcp-session-id": bound_session(tmp_path, "s-1"),
                "mcp-protocol-version": "2025-11-25",
                "mcp-method": "resources/read",
                "mcp-name": uri,
                "mcp-param-owner": EMAIL,
                "accept": "text/plain",
                "accept-encoding": "gzip, deflate, br",
            },
        )
        session = {"mcp-session-id": bound_session(tmp_path, "s-1")}
        deleted = httpx.delete(url, headers=session, timeout=TIMEOUT_S)
    (_m, headers, body), (delete_method, delete_headers, _b) = upstream.requests
    forwarded_uri = json.loads(body)["params"]["uri"]
    assert forwarded_uri == "file:///home/[REDACTED:email]/notes.txt"
    assert headers["mcp-session-id"] == "s-1"
    assert headers["mcp-protocol-version"] == "2025-11-25"
    assert headers["mcp-method"] == "resources/read"
    assert headers["mcp-name"] == forwarded_uri
    assert "mcp-param-owner" not in headers
    assert headers["accept"] == "application/json, text/event-stream"
    assert headers["accept-encoding"] == "identity", "an answer the gateway can inspect"
    assert EMAIL not in json.dumps(headers)
    assert (delete_method, delete_headers["mcp-session-id"]) == ("DELETE", "s-1")
    assert deleted.status_code == 204


def test_transport_headers_named_in_connection_stay_with_the_gateway(tmp_path: Path) -> None:
    """A header the client's ``Connection`` names is for the next hop alone."""
    message = {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}
    upstream = ScriptedUpstream([Reply(body=b'{"jsonrpc":"2.0","id":3,"result":{}}')])
    with gateway_before(upstream, tmp_path) as url:
        post(
            url,
            message,
            **{
                "connection": "Mcp-Session-Id, last-event-id",
                "mcp-session-id": "s-1",
                "last-event-id": "e1",
                "mcp-protocol-version": "2025-11-25",
            },
        )
    headers = upstream.requests[0][1]
    assert "mcp-session-id" not in headers
    assert "last-event-id" not in headers
    assert headers["mcp-protocol-version"] == "2025-11-25"


def test_a_name_header_outside_ascii_is_encoded(tmp_path: Path) -> None:
    message = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "café"}}
    upstream = ScriptedUpstream([Reply(body=b'{"jsonrpc":"2.0","id":3,"result":{}}')])
    with gateway_before(upstream, tmp_path) as url:
        post(url, message, **{"mcp-name": "cafe", "mcp-method": "tools/call"})
    headers = upstream.requests[0][1]
    assert headers["mcp-name"] == "=?base64?" + base64.b64encode("café".encode()).decode() + "?="


def test_a_method_header_no_header_can_carry_is_encoded(tmp_path: Path) -> None:
    method = "tools/call\r\nX-Injected: 1"
    message = {"jsonrpc": "2.0", "id": 3, "method": method, "params": {}}
    upstream = ScriptedUpstream([Reply(body=b'{"jsonrpc":"2.0","id":3,"result":{}}')])
    with gateway_before(upstream, tmp_path, {"mcp": {"allowedMethods": ["*"]}}) as url:
        answer = post(url, message, **{"mcp-method": "tools/call"})
    assert answer.status_code == 200
    headers = upstream.requests[0][1]
    assert headers["mcp-method"] == "=?base64?" + base64.b64encode(method.encode()).decode() + "?="
    assert "x-injected" not in headers


def test_the_server_event_stream_is_inspected(tmp_path: Path) -> None:
    note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": EMAIL}}
    body = sse(event(note, "e7"), event("{broken"), event(note, "e8"))
    upstream = ScriptedUpstream([Reply(content_type="text/event-stream", body=body)])
    with gateway_before(upstream, tmp_path) as url:
        session = bound_session(tmp_path, "s-9")
        resume = bound_event(tmp_path, "s-9", "e6")
        headers = {
            "mcp-session-id": session,
            "last-event-id": resume,
            "accept": "text/event-stream",
        }
        response = httpx.get(url, headers=headers, timeout=TIMEOUT_S)
    method, sent, _body = upstream.requests[0]
    assert (method, sent["mcp-session-id"], sent["last-event-id"]) == ("GET", "s-9", "e6")
    frames = [frame for frame in response.text.split("\n\n") if frame]
    # The malformed event ends the stream; there is no request to answer on this one.
    assert len(frames) == 1
    assert frames[0].startswith(f"id: {bound_event(tmp_path, 's-9', 'e7')}\n")
    assert json.loads(frames[0].split("data: ", 1)[1])["params"]["data"] == "[REDACTED:email]"
