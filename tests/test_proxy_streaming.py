# SPDX-License-Identifier: Apache-2.0
"""Streaming decisions at the gateway (§13.6): block, inspect, pass-through, disconnects."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from haechi._canonical import short_hash
from haechi.audit import keyed_path_hash
from haechi.proxy.logs import LOGGER
from tests.stream_fixtures import delta_text, read_ndjson, read_sse
from tests.upstream_server import Gateway, Reply, UpstreamServer, gateway_in_front

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
INSPECT = {"streaming": {"requestMode": "inspect"}}
PASS_THROUGH = {"streaming": {"requestMode": "pass-through"}}
#: Fields of a gateway decision event (inventory §4.9): metadata only, no payload field.
DECISION_EVENT_FIELDS = {
    "schemaVersion",
    "id",
    "correlationId",
    "timestamp",
    "protocol",
    "operation",
    "mode",
    "identity",
    "profile",
    "enforced",
    "blocked",
    "decision",
    "reason",
    "routeId",
    "pathHash",
    "summary",
    "auditIntegrity",
}


def chat(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


def streamed_chat(gateway: Gateway) -> contextlib.AbstractContextManager[httpx.Response]:
    """A streamed chat request to ``gateway``, its answer not read yet."""
    return httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=chat(stream=True))


def stream_events(gateway: Gateway) -> list[dict[str, Any]]:
    """The audit events written by the stream inspector."""
    return [
        r for r in gateway.audit() if str(r.get("operation", "")).startswith("response-stream:")
    ]


class HangUpAwareUpstream(UpstreamServer):
    """An upstream that notices when the gateway hangs up before its answer is complete.

    uvicorn silently drops what an app sends after the peer went away, so the plain upstream
    would go on producing; this one watches for the disconnect and stops pulling frames, as
    a real model server stops generating. ``pulled`` counts the frames actually produced.
    """

    def __init__(self) -> None:
        super().__init__()
        self.hung_up = threading.Event()
        self.pulled = 0

    def frames(self, count: int, frame: bytes) -> Iterator[bytes]:
        """Offer ``frame`` ``count`` times, stopping once the gateway hung up."""
        for _ in range(count):
            if self.hung_up.is_set():
                return
            self.pulled += 1
            yield frame

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body_read = asyncio.Event()
        complete = False

        async def receive_body() -> Any:
            message = await receive()
            if not message.get("more_body"):
                body_read.set()
            return message

        async def send_answer(message: dict[str, Any]) -> None:
            nonlocal complete
            if message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True
            await send(message)
            # Yield as a generating model does between chunks: when the gateway's hang-up
            # makes a write fail at once, the event loop reports the lost connection only on
            # its next turn, and a producer that never yields would spin through every frame.
            await asyncio.sleep(0)

        async def watch_for_hang_up() -> None:
            await body_read.wait()
            while (await receive())["type"] != "http.disconnect":
                pass
            if not complete:
                self.hung_up.set()

        watcher = asyncio.ensure_future(watch_for_hang_up())
        try:
            await super().__call__(scope, receive_body, send_answer)
        finally:
            watcher.cancel()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def gateway_log_records() -> Iterator[list[logging.LogRecord]]:
    """Collect the gateway's log records with a handler on its own logger, so they are seen
    whatever propagation another test configured."""
    handler = _Collect()
    LOGGER.addHandler(handler)
    try:
        yield handler.records
    finally:
        LOGGER.removeHandler(handler)


def test_streaming_is_refused_by_default(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(stream=True))
        assert response.status_code == 501
        assert response.json()["error"] == "haechi_streaming_unsupported"
        assert gateway.upstream.received == []
        assert 'decision="streaming_blocked"' in gateway.metrics('decision="streaming_blocked"')


def test_inspect_needs_a_stream_format(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, INSPECT) as gateway:
        response = httpx.post(
            f"{gateway.url}/v1/embeddings", json={"model": "e", "input": "x", "stream": True}
        )
        assert response.status_code == 501
        assert response.json()["error"] == "haechi_streaming_uninspectable_route"
        assert gateway.upstream.received == []


def test_inspect_protects_a_plain_error_answer_to_a_stream_request(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, INSPECT) as gateway:
        error = {"error": {"message": f"bad request from {EMAIL}"}}
        gateway.upstream.queue(Reply(body=json.dumps(error).encode(), status=400))
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(stream=True))
        assert response.status_code == 400
        assert EMAIL not in response.text


def test_pass_through_still_protects_the_request_body(tmp_path: Path) -> None:
    wire = [
        b'data: {"choices": [{"delta": {"content": "raw "}}]}\n\n',
        f'data: {{"choices": [{{"delta": {{"content": "{EMAIL} ANSWER-TEXT"}}}}]}}\n\n'.encode(),
        b"data: [DONE]\n\n",
    ]
    with gateway_in_front(tmp_path, PASS_THROUGH) as gateway:
        gateway.upstream.queue(Reply(wire=wire, headers={"etag": '"v1"'}))
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions", json=chat(f"mail {EMAIL}", stream=True)
        )
        assert response.status_code == 200
        assert gateway.upstream.last.json()["messages"][0]["content"] == "mail [REDACTED:email]"
        # Pass-through relays the upstream's bytes exactly (uninspected), so its etag holds.
        assert response.content == b"".join(wire)
        assert response.headers["etag"] == '"v1"'
        (record,) = [
            r for r in gateway.audit() if r.get("decision") == "streaming_request_pass_through"
        ]
        assert set(record) == DECISION_EVENT_FIELDS
        assert record["pathHash"] == keyed_path_hash(gateway.runtime.crypto, "/v1/chat/completions")
        assert record["pathHash"] != short_hash("/v1/chat/completions")
        assert record["enforced"] is False
        assert record["blocked"] is False
        assert record["summary"] == {
            "detectionCount": 0,
            "byType": {},
            "byAction": {"streaming_request_pass_through": 1},
        }
        assert stream_events(gateway) == []  # nothing inspected the answer
        audit = gateway.audit_text()
        assert EMAIL not in audit
        assert "ANSWER-TEXT" not in audit
        assert 'decision="streaming_pass_through"' in gateway.metrics(
            'decision="streaming_pass_through"'
        )


def test_pass_through_stream_is_cut_at_the_size_cap(tmp_path: Path) -> None:
    config = {**PASS_THROUGH, "responseProtection": {"maxBytes": 2000}}
    frame = b"data: " + b"x" * 100 + b"\n\n"
    offered = 1000
    upstream = HangUpAwareUpstream()
    with (
        gateway_log_records() as logs,
        gateway_in_front(tmp_path, config, upstream=upstream) as gateway,
    ):
        # Paced, so an uncut stream would still be running when the assertions below look.
        upstream.queue(Reply(wire=upstream.frames(offered, frame), chunk_delay=0.002))
        received: list[bytes] = []
        correlation_ids: list[str] = []

        def read() -> None:
            with streamed_chat(gateway) as response:
                correlation_ids.append(response.headers["x-haechi-correlation-id"])
                received.extend(response.iter_raw())

        with pytest.raises(httpx.RemoteProtocolError):
            read()
        body = b"".join(received)
        # The chunk that would cross the cap is never sent; what was sent is the upstream's.
        assert 0 < len(body) <= 2000
        assert (frame * offered).startswith(body)
        assert upstream.hung_up.wait(1.0), "the gateway kept reading the upstream"
        assert upstream.pulled < offered
        assert "haechi_response_stream_truncated_total 1.0" in gateway.metrics(
            "haechi_response_stream_truncated_total 1.0"
        )
        assert 'decision="stream_truncated"' in gateway.metrics('decision="stream_truncated"')
    (record,) = [r for r in logs if r.getMessage() == "proxy_stream_pass_through_too_large"]
    fields: dict[str, Any] = record.haechi_fields  # type: ignore[attr-defined]
    assert fields == {"correlationId": correlation_ids[0], "maxBytes": 2000}


def assert_released(
    upstream: HangUpAwareUpstream, gateway: Gateway, offered: int, *, within: float
) -> None:
    """The gateway hung up on the upstream before it produced everything, and no request
    is left in flight, within ``within`` seconds."""
    assert upstream.hung_up.wait(within), "the upstream request outlived its client"
    assert upstream.pulled < offered
    deadline = time.monotonic() + within
    while gateway.app.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gateway.app.in_flight == 0


@pytest.mark.parametrize("request_mode", ["inspect", "pass-through"])
def test_client_disconnect_cancels_the_upstream_stream(tmp_path: Path, request_mode: str) -> None:
    frame = b'data: {"choices": [{"index": 0, "delta": {"content": "tick "}}]}\n\n'
    offered = 150
    upstream = HangUpAwareUpstream()
    config = {"streaming": {"requestMode": request_mode}}
    with gateway_in_front(tmp_path, config, upstream=upstream) as gateway:
        upstream.queue(Reply(wire=upstream.frames(offered, frame), chunk_delay=0.02))
        with streamed_chat(gateway) as response:
            next(response.iter_raw())
        assert_released(upstream, gateway, offered, within=1.0)
        events = stream_events(gateway)
        if request_mode == "inspect":
            assert [e["reason"] for e in events] == ["stream_closed_early"]
            path_hash = keyed_path_hash(gateway.runtime.crypto, "/v1/chat/completions")
            assert [e["pathHash"] for e in events] == [path_hash]
        else:
            assert events == []
            decisions = [r.get("decision") for r in gateway.audit()]
            assert decisions.count("streaming_request_pass_through") == 1


def _stalled(upstream: HangUpAwareUpstream, offered: int) -> int:
    """Wait until the upstream stops being pulled (the gateway waits on its client); the count."""
    last, still_since = -1, time.monotonic()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pulled = upstream.pulled
        if pulled != last:
            last, still_since = pulled, time.monotonic()
        elif time.monotonic() - still_since > 0.3:
            return pulled
        time.sleep(0.02)
    raise AssertionError(f"the gateway never stopped pulling ({upstream.pulled} of {offered})")


@pytest.mark.parametrize("request_mode", ["inspect", "pass-through"])
def test_a_client_that_stops_reading_then_hangs_up_releases_the_upstream(
    tmp_path: Path, request_mode: str
) -> None:
    """F5 under back-pressure: the gateway is blocked writing to a client that does not read;
    the client's hang-up still cancels the upstream read at once."""
    frame = b'data: {"choices": [{"index": 0, "delta": {"content": "%s"}}]}\n\n' % (b"x" * 16000)
    offered = 4000  # about 64 MB: far more than the socket buffers between the three hold
    upstream = HangUpAwareUpstream()
    config = {
        "streaming": {"requestMode": request_mode},
        "responseProtection": {"maxBytes": 128 * 1024 * 1024},
    }
    with gateway_in_front(tmp_path, config, upstream=upstream) as gateway:
        upstream.queue(Reply(wire=upstream.frames(offered, frame)))
        host, port = gateway.url.removeprefix("http://").split(":")
        body = json.dumps(chat(stream=True)).encode()
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect((host, int(port)))
        client.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )
        assert client.recv(4096).startswith(b"HTTP/1.1 200")
        pulled = _stalled(upstream, offered)
        assert pulled < offered
        assert gateway.app.in_flight == 1
        client.close()  # unread data in the receive buffer: the kernel resets the connection
        assert_released(upstream, gateway, offered, within=2.0)


def assert_one_card_block(gateway: Gateway, route_id: str) -> None:
    """The stream's single audit event and the counters say it was blocked for a card."""
    (event,) = stream_events(gateway)
    assert event["decision"] == "stream_blocked"
    assert event["reason"] == "stream_policy_block"
    assert event["blocked"] is True
    assert event["summary"]["byType"] == {"card": 1}
    blocked = f'decision="stream_blocked",mode="enforce",route="{route_id}"}} 1.0'
    metrics = gateway.metrics(blocked)
    assert blocked in metrics
    assert "haechi_blocks_total 1.0" in metrics


def test_plain_text_frame_with_a_card_stops_the_stream(tmp_path: Path) -> None:
    # Longer than the window (256 characters), so some text is released before the block.
    filler = ["lorem ipsum dolor sit amet " for _ in range(12)]
    wire = [f"data: {text}\n\n".encode() for text in filler]
    wire += [f"data: my card is {CARD} ok\n\n".encode(), b"data: AFTER-THE-BLOCK\n\n"]
    wire.append(b"data: [DONE]\n\n")
    with gateway_in_front(tmp_path, INSPECT) as gateway:
        gateway.upstream.queue(Reply(wire=wire))
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(stream=True))
        assert response.status_code == 200
        body = response.content
        assert b"4111" not in body
        assert b"AFTER-THE-BLOCK" not in body
        assert b"[DONE]" not in body
        released = "".join(frame.data or "" for frame in read_sse(body))
        assert released
        assert "".join(filler).startswith(released)
        assert_one_card_block(gateway, "chat-completions")


def test_ollama_stream_stops_at_the_frame_with_a_card(tmp_path: Path) -> None:
    filler = ["lorem ipsum dolor sit amet " for _ in range(12)]
    chunks = [*filler, f"card {CARD}.", " AFTER-THE-BLOCK", " more"]
    config = {**INSPECT, "target": {"type": "ollama"}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(text="".join(chunks), chunks=chunks))
        # No "stream" field: Ollama's chat streams by default.
        response = httpx.post(
            f"{gateway.url}/api/chat",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.status_code == 200
        body = response.content
        assert b"4111" not in body
        assert b"AFTER-THE-BLOCK" not in body
        values = read_ndjson(body)  # every line sent is a complete frame
        assert [value["done"] for value in values] == [False] * len(values)
        released = delta_text(values, ("message", "content"))
        assert released
        assert "".join(filler).startswith(released)
        assert_one_card_block(gateway, "chat")


VALIDATORS = {
    "etag": '"v1"',
    "last-modified": "Wed, 21 Oct 2015 07:28:00 GMT",
    "content-md5": "x",
    "digest": "sha-256=x",
    "content-digest": "sha-256=:x:",
    "repr-digest": "sha-256=:y:",
}


def test_inspected_stream_drops_validators_and_is_not_stored(tmp_path: Path) -> None:
    # docs/gateway.md: inspected streams are sent "validators dropped, Cache-Control: no-store";
    # the digests described the upstream's bytes, not the re-written ones.
    headers = {**VALIDATORS, "cache-control": "max-age=60"}
    with gateway_in_front(tmp_path, INSPECT) as gateway:
        gateway.upstream.queue(Reply(text=f"mail {EMAIL}", headers=headers))
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(stream=True))
        assert response.status_code == 200
        assert EMAIL not in response.text
        for name in VALIDATORS:
            assert name not in response.headers
        assert response.headers.get_list("cache-control") == ["no-store"]


def _chunk_frame(text: str) -> bytes:
    """One OpenAI chat-completions stream frame carrying ``text``."""
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


def _deflated(frames: list[bytes]) -> list[bytes]:
    """``frames`` as a deflate stream, one flushed piece per frame (as a server streams)."""
    compressor = zlib.compressobj()
    pieces = [compressor.compress(frame) + compressor.flush(zlib.Z_SYNC_FLUSH) for frame in frames]
    pieces.append(compressor.flush())
    return pieces


MAIL_FRAMES = [_chunk_frame("write to "), _chunk_frame(EMAIL), b"data: [DONE]\n\n"]
DEFLATED = {"content-type": "text/event-stream", "content-encoding": "deflate"}
UTF7 = {"content-type": "text/event-stream; charset=utf-7"}
UTF7_FRAMES = [
    _chunk_frame("write to "),
    _chunk_frame("jane.doe+AEA-example.com"),
    b"data: [DONE]\n\n",
]


def _decisions(gateway: Gateway) -> list[tuple[str, str]]:
    return [(r["decision"], r["reason"]) for r in gateway.audit() if "decision" in r]


@pytest.mark.parametrize(
    ("wire", "headers", "reason"),
    [
        (_deflated(MAIL_FRAMES), DEFLATED, "compressed_response"),
        (UTF7_FRAMES, UTF7, "unsupported_charset"),
    ],
)
def test_a_stream_that_cannot_be_read_as_sent_is_refused(
    tmp_path: Path, wire: list[bytes], headers: dict[str, str], reason: str
) -> None:
    """A compressed stream would be inspected in its encoded form and decoded by the client;
    one in another charset read by the client as other text. Refused before anything of it
    is sent, whatever ``responseProtection`` says about whole answers."""
    with gateway_in_front(tmp_path, INSPECT) as gateway:
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
        gateway.upstream.queue(Reply(wire=wire, headers=headers))
        with pytest.raises(openai.InternalServerError) as refused:
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        document = refused.value.response.json()
        assert document["error"] == "haechi_response_unprotected"
        assert document["reason"] == reason
        gateway.upstream.queue(Reply(wire=wire, headers=headers))
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(stream=True))
        assert response.status_code == 502
        assert "content-encoding" not in response.headers
        assert "jane" not in response.text
        assert _decisions(gateway) == [("response_unprotected_blocked", reason)] * 2
        assert stream_events(gateway) == []
        assert "jane" not in gateway.audit_text()


def test_a_stream_declared_utf8_is_inspected(tmp_path: Path) -> None:
    headers = {"content-type": 'text/event-stream; charset="UTF-8"'}
    with gateway_in_front(tmp_path, INSPECT) as gateway:
        gateway.upstream.queue(Reply(wire=MAIL_FRAMES, headers=headers))
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text == "write to [REDACTED:email]"


def test_failure_mode_allow_relays_an_unreadable_stream_as_sent(tmp_path: Path) -> None:
    """Like a whole answer that cannot be inspected: relayed unchanged and audited."""
    config = {**INSPECT, "responseProtection": {"failureMode": "allow"}}
    wire = _deflated(MAIL_FRAMES)
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(wire=wire, headers=DEFLATED))
        with streamed_chat(gateway) as response:
            assert response.status_code == 200
            assert response.headers["content-encoding"] == "deflate"
            assert b"".join(response.iter_raw()) == b"".join(wire)
        assert _decisions(gateway) == [("response_unprotected_allowed", "compressed_response")]
        assert stream_events(gateway) == []


@pytest.mark.parametrize(
    ("answers", "streams", "dropped"),
    [("dry-run", "enforce", True), ("enforce", "dry-run", False)],
)
def test_the_header_fields_of_a_stream_follow_the_mode_of_its_body(
    tmp_path: Path, answers: str, streams: str, dropped: bool
) -> None:
    """``streaming.responseMode``, not ``responseProtection.mode``, decides for a stream's
    fields as for its frames: an enforced stream does not carry a value in a field."""
    config = {
        "streaming": {"requestMode": "inspect", "responseMode": streams},
        "responseProtection": {"mode": answers},
    }
    headers = {"content-type": "text/event-stream", "x-request-id": EMAIL}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(wire=MAIL_FRAMES, headers=headers))
        with streamed_chat(gateway) as response:
            assert response.status_code == 200
            body = b"".join(response.iter_bytes())
    assert (EMAIL.encode() in body) is not dropped
    assert (response.headers.get("x-request-id") == EMAIL) is not dropped


def test_the_header_fields_of_an_unreadable_stream_let_through_are_inspected(
    tmp_path: Path,
) -> None:
    """Its body goes on as it came (failureMode: allow), but a value in a header field is
    dropped, as from such a whole answer: the fields were readable all along."""
    config = {**INSPECT, "responseProtection": {"failureMode": "allow"}}
    headers = {**DEFLATED, "x-request-id": EMAIL, "openai-processing-ms": "12"}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(wire=_deflated(MAIL_FRAMES), headers=headers))
        with streamed_chat(gateway) as response:
            assert response.status_code == 200
            b"".join(response.iter_raw())
        assert EMAIL not in str(response.headers.raw)
        assert response.headers["openai-processing-ms"] == "12"
        assert response.headers["content-encoding"] == "deflate"
        assert _decisions(gateway) == [
            ("response_unprotected_allowed", "compressed_response"),
            ("response_header_dropped", "header_value_finding"),
        ]
