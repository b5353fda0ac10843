# SPDX-License-Identifier: Apache-2.0
"""The ``.done`` events of a Responses API stream repeat each part's whole text: the client
must find there exactly what the deltas of that part delivered.

A client may join those texts (or the SDK may rebuild its final response from the
``response.output_item.done`` events), so a value cut between two parts, which the window
read joined and protected, must not come back whole from texts each protected alone; and a
value an upstream put only in a ``.done`` event, never streamed, must not reach the client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import openai
import pytest

from haechi.runtime import Runtime
from haechi.streaming import StreamInspector
from tests.stream_fixtures import (
    EMAIL,
    INSPECT_REDACTING,
    REDACTED,
    ResponsesEvent,
    chunked,
    collect,
    read_sse,
    responses_sse,
    route,
)
from tests.upstream_server import Reply, gateway_in_front

RESPONSES = route("openai-compatible", "/v1/responses")
INSPECT = {**INSPECT_REDACTING, "target": {"type": "openai-compatible"}}
CUT = ("Contact: jane.doe@", "example.com thanks")
PROTECTED = ["Contact: jane.doe@", f"{REDACTED} thanks"]


class Kind(NamedTuple):
    """How a kind of text read across parts is streamed and repeated."""

    index: str  # the field naming the part within its output
    field: str  # the field of its ``.done`` event (and of its part) holding the text
    part_event: str  # the event closing its part
    part_type: str
    item_type: str
    item_list: str  # the list of the output item holding its parts


KINDS = {
    "output_text": Kind(
        "content_index", "text", "content_part", "output_text", "message", "content"
    ),
    "refusal": Kind("content_index", "refusal", "content_part", "refusal", "message", "content"),
    "reasoning_text": Kind(
        "content_index", "text", "content_part", "reasoning_text", "reasoning", "content"
    ),
    "reasoning_summary_text": Kind(
        "summary_index", "text", "reasoning_summary_part", "summary_text", "reasoning", "summary"
    ),
}
#: The fields an output item of each type has besides its parts.
ITEMS: dict[str, dict[str, Any]] = {"message": {"role": "assistant"}, "reasoning": {"summary": []}}


def _output(
    kind: str, output: int, streamed: str, repeated: str | None = None
) -> list[ResponsesEvent]:
    """One output with one part of ``kind``: ``streamed`` in deltas of five characters, then
    ``repeated`` (``streamed`` by default) in each event that closes the part or the item."""
    shape = KINDS[kind]
    whole = streamed if repeated is None else repeated
    place = {"item_id": f"item_{output}", "output_index": output, shape.index: 0}
    part = {"type": shape.part_type, shape.field: whole}
    item = {"type": shape.item_type, "id": f"item_{output}", **ITEMS[shape.item_type]}
    pieces = (streamed[at : at + 5] for at in range(0, len(streamed), 5))
    return [
        ("output_item.added", {"output_index": output, "item": {**item, shape.item_list: []}}),
        (f"{shape.part_event}.added", {**place, "part": {**part, shape.field: ""}}),
        *((f"{kind}.delta", {**place, "delta": piece}) for piece in pieces),
        (f"{kind}.done", {**place, shape.field: whole}),
        (f"{shape.part_event}.done", {**place, "part": part}),
        ("output_item.done", {"output_index": output, "item": {**item, shape.item_list: [part]}}),
    ]


class Read(NamedTuple):
    """What a client reads of one kind: the deltas of each part, and each repeated text."""

    deltas: list[str]
    done: list[str]
    parts: list[str]
    items: list[str]


def _read(out: bytes, kind: str) -> Read:
    shape = KINDS[kind]
    deltas: dict[int, str] = {}
    read = Read([], [], [], [])
    for frame in read_sse(out):
        event = json.loads(frame.data or "{}")
        name = event.get("type")
        if name == f"response.{kind}.delta":
            output = event["output_index"]
            deltas[output] = deltas.get(output, "") + event["delta"]
        elif name == f"response.{kind}.done":
            read.done.append(event[shape.field])
        elif name == f"response.{shape.part_event}.done":
            read.parts.append(event["part"][shape.field])
        elif name == "response.output_item.done":
            read.items.extend(part[shape.field] for part in event["item"][shape.item_list])
    read.deltas.extend(deltas.values())
    return read


async def _run(redacting_runtime: Runtime, wire: str, *, reason: str = "stream_inspected") -> bytes:
    inspector = StreamInspector(redacting_runtime, RESPONSES, mode="enforce")
    out = await collect(inspector.run(chunked(wire.encode(), 11)))
    assert inspector.reason == reason
    return out


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(KINDS))
async def test_a_value_cut_between_two_outputs_is_in_no_repeated_text(
    redacting_runtime: Runtime, kind: str
) -> None:
    """Each repeated text is what its part's deltas delivered, so the texts joined read as
    the deltas joined: the address's later half redacted."""
    wire = responses_sse(*_output(kind, 0, CUT[0]), *_output(kind, 1, CUT[1]))
    read = _read(await _run(redacting_runtime, wire), kind)
    assert read.deltas == PROTECTED
    assert read.done == read.parts == read.items == PROTECTED


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(KINDS))
async def test_a_value_only_in_the_repeated_text_is_not_sent(
    redacting_runtime: Runtime, kind: str
) -> None:
    wire = responses_sse(*_output(kind, 0, "hello", f"hello {EMAIL}"))
    read = _read(await _run(redacting_runtime, wire), kind)
    assert read.deltas == read.done == read.parts == read.items == ["hello"]


@pytest.mark.anyio
async def test_a_part_never_streamed_keeps_its_text_protected_alone(
    redacting_runtime: Runtime,
) -> None:
    """No delta named the part: its repeated texts are protected within their events."""
    events = [
        event for event in _output("output_text", 0, f"Mail {EMAIL}.") if "delta" not in event[1]
    ]
    read = _read(await _run(redacting_runtime, responses_sse(*events)), "output_text")
    assert read.done == read.parts == read.items == [f"Mail {REDACTED}."]


@pytest.mark.anyio
async def test_a_part_repeated_after_its_output_item_is_done_stops_the_stream(
    redacting_runtime: Runtime,
) -> None:
    """Its text was let go with the item; no real server repeats it later."""
    events = _output("output_text", 0, "hello")
    late = ("output_text.done", {"output_index": 0, "content_index": 0, "text": EMAIL})
    out = await _run(
        redacting_runtime, responses_sse(*events, late), reason="stream_inspection_error"
    )
    assert EMAIL not in out.decode()


@pytest.mark.anyio
async def test_an_ordinary_stream_repeats_its_text_unchanged(redacting_runtime: Runtime) -> None:
    text = "Sure, here is the draft you asked for."
    read = _read(
        await _run(redacting_runtime, responses_sse(*_output("output_text", 0, text))),
        "output_text",
    )
    assert read.deltas == read.done == read.parts == read.items == [text]


def test_the_openai_client_joining_the_done_texts_reads_no_address(tmp_path: Path) -> None:
    wire = responses_sse(*_output("output_text", 0, CUT[0]), *_output("output_text", 1, CUT[1]))
    with gateway_in_front(tmp_path, INSPECT) as gw:
        gw.upstream.queue(Reply(wire=[wire.encode()]))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        done, parts, items = [], [], []
        for event in client.responses.create(model="m", input="hi", stream=True):
            if event.type == "response.output_text.done":
                done.append(event.text)
            elif event.type == "response.content_part.done":
                parts.append(getattr(event.part, "text", ""))
            elif event.type == "response.output_item.done":
                items.extend(getattr(part, "text", "") for part in event.item.content)
    for texts in (done, parts, items):
        assert texts == PROTECTED
        assert EMAIL not in "".join(texts)


# -- The parts a stream keeps ------------------------------------------------------------------

#: More parts than a stream keeps the delivered text of at once.
MANY_PARTS = 1100


def _stream_reason(wire: str, tmp_path: Path) -> tuple[str, bytes]:
    """The reason the gateway's stream ended with, and what the client received."""
    with gateway_in_front(tmp_path, INSPECT) as gw:
        gw.upstream.queue(Reply(wire=[wire.encode()]))
        with httpx.Client(timeout=60) as client:
            body = {"model": "m", "input": "hi", "stream": True}
            out = client.post(f"{gw.url}/v1/responses", json=body).content
        (event,) = [
            e for e in gw.audit() if str(e.get("operation", "")).startswith("response-stream:")
        ]
    return event["reason"], out


def _parts(count: int, text: str) -> list[ResponsesEvent]:
    """``count`` content parts of output 0, each streamed as one delta of ``text``."""
    return [
        ("output_text.delta", {"output_index": 0, "content_index": at, "delta": text})
        for at in range(count)
    ]


def test_a_stream_keeping_too_many_parts_open_stops(tmp_path: Path) -> None:
    """Every part whose text was delivered is kept until its output item is done: a stream
    that opens parts without end stops rather than grow without bound."""
    item = {"type": "message", "id": "item_0", "role": "assistant", "content": []}
    wire = responses_sse(
        ("output_item.added", {"output_index": 0, "item": item}), *_parts(MANY_PARTS, "a")
    )
    reason, out = _stream_reason(wire, tmp_path)
    assert reason == "stream_inspection_error"
    assert b"response.completed" not in out


def test_parts_that_delivered_no_text_are_not_kept(tmp_path: Path) -> None:
    """Empty deltas open no part to keep: such a part reads as one no delta streamed."""
    item = {"type": "message", "id": "item_0", "role": "assistant", "content": []}
    wire = responses_sse(
        ("output_item.added", {"output_index": 0, "item": item}), *_parts(MANY_PARTS * 3, "")
    )
    reason, out = _stream_reason(wire, tmp_path)
    assert reason == "stream_inspected"
    assert b"response.completed" in out


def test_parts_of_finished_outputs_are_not_kept(tmp_path: Path) -> None:
    """The parts of an output whose item is done are let go: a long stream of short outputs
    runs to its end."""
    events = [
        event for output in range(MANY_PARTS) for event in _output("output_text", output, "hi")
    ]
    reason, out = _stream_reason(responses_sse(*events), tmp_path)
    assert reason == "stream_inspected"
    assert b"response.completed" in out
