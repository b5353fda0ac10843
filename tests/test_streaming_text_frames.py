# SPDX-License-Identifier: Apache-2.0
"""Text frames (data that is not one JSON value) leave with the upstream's own boundaries.

An upstream can send frames that hold a whole chat chunk plus the start of the next one, so
that the gateway cannot parse them and inspects them as text. Cut anywhere else than where
the upstream cut them, such frames could become JSON chunks that a client parses and joins
(``jane.doe@`` + ``example.com``) although the detector never saw the value joined. These
tests run the official clients against such streams through a real gateway socket, and check
the inspector's frames against the frames it was given.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haechi.crypto import init_key_file
from haechi.runtime import Runtime, create_runtime
from haechi.streaming import StreamInspector
from tests.stream_fixtures import chunked, collect, openai_chunk, read_sse, route, sse
from tests.upstream_server import Gateway, Reply, gateway_in_front

EMAIL = "jane.doe@example.com"
REDACTED = "[REDACTED:email]"
INSPECT: dict[str, Any] = {"streaming": {"requestMode": "inspect"}}
OLLAMA: dict[str, Any] = {**INSPECT, "target": {"type": "ollama"}}
CHAT = route("openai-compatible", "/v1/chat/completions")
#: The default ``streaming.maxMatchBytes``: the window the attacks below are sized to.
WINDOW = 256


def _padded(make: Any, size: int) -> str:
    """``make(pad)`` (compact JSON with ``pad`` filler characters) made exactly ``size`` long."""
    text: str = make(size - len(make(0)))
    assert len(text) == size
    return text


def _openai_chunk(content: str | None, finish: str | None, size: int) -> str:
    def make(pad: int) -> str:
        chunk = openai_chunk(content, finish=finish)
        chunk["id"] += "x" * pad
        return json.dumps(chunk, separators=(",", ":"))

    return _padded(make, size)


def _ollama_chunk(content: str, done: bool, size: int) -> str:
    def make(pad: int) -> str:
        chunk = {"model": "m" + "x" * pad, "message": {"role": "assistant", "content": content}}
        return json.dumps({**chunk, "done": done}, separators=(",", ":"))

    return _padded(make, size)


def _straddling(first: str, second: str, last: str) -> list[str]:
    """Two frames, each one whole chunk plus part of the next, cut so that what a window of
    ``WINDOW`` characters would release from them is ``first``, ``second``, ``last``."""
    return [first + second[:WINDOW], second[WINDOW:] + last]


def _read(texts: Iterator[str | None]) -> tuple[str, bool]:
    """The text a client reads from a stream, and whether it could parse the whole stream."""
    received: list[str] = []
    try:
        for text in texts:
            received.append(text or "")
    except json.JSONDecodeError:
        return "".join(received), False
    return "".join(received), True


def _stream_events(gateway: Gateway, count: int = 1) -> list[dict[str, Any]]:
    """The stream audit events, once ``count`` of them have been written."""
    deadline = time.monotonic() + 10
    while True:
        events = [
            event
            for event in gateway.audit()
            if str(event.get("operation", "")).startswith("response-stream:")
        ]
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.02)


# --- the official clients through a real gateway -------------------------------------------


def test_openai_client_never_joins_a_value_cut_between_text_frames(tmp_path: Path) -> None:
    frames = _straddling(
        _openai_chunk("Contact: jane.doe@", None, 300),
        _openai_chunk("example.com thanks", None, 300),
        _openai_chunk(None, "stop", WINDOW),
    )
    wire = [*(sse(frame).encode() for frame in frames), sse("[DONE]").encode()]
    with gateway_in_front(tmp_path, INSPECT) as gateway:
        gateway.upstream.queue(Reply(wire=wire), Reply(wire=wire))
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-test", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        received, complete = _read(c.choices[0].delta.content for c in stream if c.choices)
        assert EMAIL not in received
        assert not complete  # the upstream's frames are no JSON chunks, nor are those sent on

        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        with httpx.Client(base_url=gateway.url, timeout=30) as raw:
            response = raw.post("/v1/chat/completions", json=body)
        assert [frame.data for frame in read_sse(response.content)] == [*frames, "[DONE]"]
        assert EMAIL.encode() not in response.content
        events = _stream_events(gateway, 2)
        assert len(events) == 2
        assert events[-1]["decision"] == "stream_inspected"


def test_ollama_client_never_joins_a_value_cut_between_ndjson_lines(tmp_path: Path) -> None:
    lines = _straddling(
        _ollama_chunk("Contact: jane.doe@", False, 300),
        _ollama_chunk("example.com thanks", False, 300),
        _ollama_chunk("", True, WINDOW),
    )
    wire = [f"{line}\n".encode() for line in lines]
    reply = Reply(wire=wire, headers={"content-type": "application/x-ndjson"})
    with gateway_in_front(tmp_path, OLLAMA) as gateway:
        gateway.upstream.queue(reply, reply)
        client = ollama.Client(host=gateway.url)
        stream = client.chat(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
        received, complete = _read(part.message.content for part in stream)
        assert EMAIL not in received
        assert not complete  # the upstream's lines are no JSON chunks, nor are those sent on

        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(base_url=gateway.url, timeout=30) as raw:
            response = raw.post("/api/chat", json=body)
        assert response.text.splitlines() == lines
        events = _stream_events(gateway, 2)
        assert len(events) == 2
        assert events[-1]["decision"] == "stream_inspected"


def test_ollama_client_reads_no_line_that_a_unicode_line_break_hides(tmp_path: Path) -> None:
    # The ollama client's line reader (httpx) also ends a line at U+2028; the gateway's
    # does not, so this line is one text frame to the gateway and two chunks to the client.
    first = _ollama_chunk("Contact: jane.doe@", False, 120)
    second = _ollama_chunk("example.com thanks", False, 120)
    wire = [f"{first}\u2028{second}\n".encode(), f"{_ollama_chunk('', True, 80)}\n".encode()]
    with gateway_in_front(tmp_path, OLLAMA) as gateway:
        gateway.upstream.queue(Reply(wire=wire, headers={"content-type": "application/x-ndjson"}))
        client = ollama.Client(host=gateway.url)
        stream = client.chat(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
        parts = list(stream)
        assert EMAIL not in "".join(part.message.content or "" for part in parts)
        assert not any(part.done for part in parts)
        (event,) = _stream_events(gateway)
        assert event["decision"] == "stream_blocked"
        assert event["reason"] == "stream_inspection_error"


#: JSON that Python's parser refuses but others read: nesting deeper than its recursion limit
#: (JavaScript's ``JSON.parse`` has none, Go's ``encoding/json`` allows 10000 levels), and an
#: integer longer than its 4300 digits (JavaScript reads it as a float, Go as a float64).
_UNREADABLE_TO_PYTHON = {"deep": "[" * 3000 + "]" * 3000, "long-integer": "1" * 5000}


@pytest.mark.parametrize("extra", _UNREADABLE_TO_PYTHON.values(), ids=_UNREADABLE_TO_PYTHON)
@pytest.mark.parametrize("target", ["openai", "ollama"])
def test_a_json_chunk_python_cannot_read_stops_the_stream(
    tmp_path: Path, target: str, extra: str
) -> None:
    # Each frame is a chat chunk to a JavaScript or Go client, which joins the two halves of
    # the address; read as text frames, the halves were never seen joined.
    if target == "openai":
        chunks = [openai_chunk("Contact: jane.doe@"), openai_chunk("example.com thanks")]
        tail = b',"x":%s}\n\n' % extra.encode()
        wire = [sse(chunk)[:-3].encode() + tail for chunk in chunks]
        wire.append(sse("[DONE]").encode())
        config, path = INSPECT, "/v1/chat/completions"
        headers = {"content-type": "text/event-stream"}
    else:
        chunks = [
            {"model": "m", "message": {"role": "assistant", "content": text}, "done": done}
            for text, done in (("Contact: jane.doe@", False), ("example.com thanks", True))
        ]
        tail = b',"x":%s}\n' % extra.encode()
        wire = [json.dumps(chunk)[:-1].encode() + tail for chunk in chunks]
        config, path = OLLAMA, "/api/chat"
        headers = {"content-type": "application/x-ndjson"}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(wire=wire, headers=headers))
        with httpx.Client(base_url=gateway.url, timeout=30) as raw:
            response = raw.post(path, json=body)
        assert b"jane.doe@" not in response.content
        assert b"example.com" not in response.content
        (event,) = _stream_events(gateway)
        assert event["decision"] == "stream_blocked"
        assert event["reason"] == "stream_inspection_error"


# --- the inspector ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


def _make_runtime(state: Path, **sections: Any) -> Runtime:
    init_key_file(state / "keys.json")
    config: dict[str, Any] = {
        "mode": "enforce",
        "policy": {"mode": "enforce"},
        "keys": {"keyFile": str(state / "keys.json")},
        "audit": {"path": str(state / "audit.jsonl")},
        "tokenVault": {"path": str(state / "vault.json")},
    }
    config.update(sections)
    return create_runtime(config)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, loop: asyncio.Runner) -> Iterator[Runtime]:
    runtime = _make_runtime(tmp_path_factory.mktemp("text-frames"))
    yield runtime
    loop.run(runtime.aclose())


def _inspect(
    loop: asyncio.Runner, runtime: Runtime, wire: bytes, sizes: int | list[int] = 7
) -> tuple[bytes, StreamInspector]:
    inspector = StreamInspector(runtime, CHAT, mode="enforce")
    return loop.run(collect(inspector.run(chunked(wire, sizes)))), inspector


def _text_wire(frames: list[str]) -> bytes:
    return "".join(sse(frame) for frame in [*frames, "[DONE]"]).encode()


def _sent(out: bytes) -> list[str | None]:
    """The data of every frame sent but ``[DONE]``."""
    return [frame.data for frame in read_sse(out) if frame.data != "[DONE]"]


def test_a_value_cut_between_text_frames_is_replaced_in_the_frame_where_it_starts(
    loop: asyncio.Runner, runtime: Runtime
) -> None:
    frames = ["write to jane.", "doe@exa", "mple.com please", " and thanks"]
    out, inspector = _inspect(loop, runtime, _text_wire(frames))
    assert _sent(out) == [f"write to {REDACTED}", "", " please", " and thanks"]
    assert read_sse(out)[-1].data == "[DONE]"
    assert inspector.reason == "stream_inspected"
    assert inspector.summary()["byType"] == {"email": 1}


def test_a_text_frame_that_protection_would_turn_into_a_json_chunk_stops_the_stream(
    loop: asyncio.Runner, runtime: Runtime
) -> None:
    # Without its first e-mail, which belongs to the frame before, the second frame would be
    # a chat chunk whose text a client joins with the next chunk's.
    hidden = json.dumps(openai_chunk("jane.doe@"), separators=(",", ":"))
    wire = (
        sse("mail jane.doe@")
        + sse(f"example.com{hidden}")
        + sse(openai_chunk("example.com"))
        + sse("[DONE]")
    ).encode()
    out, inspector = _inspect(loop, runtime, wire)
    assert inspector.reason == "stream_inspection_error"
    assert b"jane.doe@" not in out
    assert b"example.com" not in out


def test_text_frames_and_json_frames_keep_their_order(
    loop: asyncio.Runner, runtime: Runtime
) -> None:
    wire = (
        sse(openai_chunk("mail jane.doe@"))
        + sse("example.com ok")
        + sse(openai_chunk(" bye"))
        + sse("[DONE]")
    ).encode()
    out, inspector = _inspect(loop, runtime, wire)
    pieces = []
    for frame in read_sse(out):
        if frame.data in (None, "[DONE]"):
            continue
        try:
            pieces.append(json.loads(frame.data)["choices"][0]["delta"].get("content", ""))
        except ValueError:
            pieces.append(frame.data)
    assert [piece for piece in pieces if piece] == [f"mail {REDACTED}", " ok", " bye"]
    assert inspector.reason == "stream_inspected"


def test_a_field_line_that_line_readers_split_stops_the_stream(
    loop: asyncio.Runner, runtime: Runtime
) -> None:
    hidden = json.dumps(openai_chunk("jane.doe@"))
    wire = f": x\u2028data: {hidden}\u2028\u2028\n\n".encode()
    wire += (sse(openai_chunk("example.com")) + sse("[DONE]")).encode()
    out, inspector = _inspect(loop, runtime, wire)
    assert out == b""
    assert inspector.reason == "stream_inspection_error"


def test_field_lines_of_held_text_frames_count_against_the_frame_limit(
    loop: asyncio.Runner, tmp_path: Path
) -> None:
    runtime = _make_runtime(tmp_path, responseProtection={"maxBytes": 200})
    frame = f"id: {'7' * 40}\ndata: a\n\n"
    try:
        out, inspector = _inspect(loop, runtime, (frame * 10 + sse("[DONE]")).encode())
    finally:
        loop.run(runtime.aclose())
    assert out == b""  # the text is still held when the limit is reached
    assert inspector.reason == "stream_frame_too_large"


def test_empty_text_frames_held_behind_text_are_bounded(
    loop: asyncio.Runner, tmp_path: Path
) -> None:
    runtime = _make_runtime(tmp_path, streaming={"maxMatchBytes": 4})
    try:
        wire = (sse("abc") + sse("") * 1000 + sse("[DONE]")).encode()
        out, inspector = _inspect(loop, runtime, wire, sizes=4096)
    finally:
        loop.run(runtime.aclose())
    assert out == b""
    assert inspector.reason == "stream_inspection_error"


# --- property -----------------------------------------------------------------------------

_EMAILS = st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,6})?@[a-z]{2,8}\.(com|org|net|io)", fullmatch=True)
_CARDS = st.sampled_from(["4111 1111 1111 1111", "5555555555554444"])
_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 ,.!?\n", max_size=40)


@st.composite
def _frames(draw: st.DrawFn) -> list[str]:
    """A random answer with e-mail addresses (and sometimes a card), cut at random places
    into text frames (some of them empty)."""
    parts = draw(st.lists(st.one_of(_WORDS, _EMAILS, _EMAILS, _CARDS), min_size=1, max_size=10))
    text = " ".join(parts)
    points = sorted(draw(st.lists(st.integers(0, len(text)), max_size=max(1, len(text) // 2))))
    return [text[a:b] for a, b in itertools.pairwise([0, *points, len(text)])]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=_frames(), sizes=st.lists(st.integers(1, 97), min_size=1, max_size=6))
def test_text_frames_leave_one_for_one_and_protected_as_a_whole(
    runtime: Runtime, loop: asyncio.Runner, frames: list[str], sizes: list[int]
) -> None:
    text = "".join(frames)
    whole = loop.run(runtime.protect({"t": text}, direction="response", mode="enforce"))
    out, inspector = _inspect(loop, runtime, _text_wire(frames), sizes)
    sent = [data or "" for data in _sent(out)]
    if whole.blocked:
        assert inspector.blocked
        assert len(sent) <= len(frames)
        assert b"[DONE]" not in out
    else:
        assert not inspector.blocked
        assert len(sent) == len(frames)  # one frame out for every frame in, in order
        assert "".join(sent) == whole.payload["t"]
    findings = runtime.scan({"t": text}, direction="response")
    spans = [(finding.start, finding.end) for finding in findings]
    starts = itertools.accumulate((len(frame) for frame in frames), initial=0)
    for number, (start, frame) in enumerate(zip(starts, frames, strict=False)):
        touched = any(a < start + len(frame) and start < b for a, b in spans)
        if number < len(sent) and not touched:
            assert sent[number] == frame  # a frame no value reaches leaves as it came
    for a, b in spans:
        assert text[a:b] not in "".join(sent)
        assert text[a:b].encode() not in out
