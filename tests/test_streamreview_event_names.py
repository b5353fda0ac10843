# SPDX-License-Identifier: Apache-2.0
"""Streams whose frames a reader going by the event name reads apart from the windows.

The window releases its text a window behind, into whatever frame is being sent: an
upstream that has a reader skip the frame carrying a separator gets the halves of an
address, which the window saw apart, joined by that reader.

- Chat: the openai SDK hands a frame whose ``event:`` line starts with ``thread.`` (the
  Assistants API's events) on as ``{"event": ..., "data": ...}``: to its caller the chunk
  has no ``choices``, and the usual loop (which skips a chunk without choices, as it must
  for the usage chunk) drops the text in it.
- Responses: the SDK reads an event by its ``type``, a reader dispatching on the event name
  (``if sse.event == "response.output_text.delta"``) by its name; a frame named otherwise
  than the frames of its type is read by one of them only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.stream_fixtures import (
    EMAIL,
    INSPECT_REDACTING,
    REDACTED,
    openai_chunk,
    read_sse,
    sse,
    streamed_through,
)
from tests.upstream_server import Reply, gateway_in_front

WINDOW = 32
#: The first frame fills the window; every one-character frame after it then releases one
#: character, the one ``WINDOW`` characters behind it.
PADDING = "the cat sat on the mat, then ran"
LOCAL, DOMAIN = EMAIL.split("@")
TEXT = f"{LOCAL}|@{DOMAIN} and a few more words after it"
#: The frame (of those carrying ``TEXT`` a character each) the separator is released into.
SEPARATOR_FRAME = WINDOW + len(LOCAL)


def _wire() -> str:
    frames = [sse(openai_chunk(PADDING))]
    for at, character in enumerate(TEXT):
        event = "thread.message.delta" if at == SEPARATOR_FRAME else None
        frames.append(sse(openai_chunk(character), event=event))
    return "".join(frames) + sse(openai_chunk(finish="stop")) + sse("[DONE]")


def test_a_frame_named_as_a_thread_event_stops_the_stream(tmp_path: Path) -> None:
    assert len(PADDING) == WINDOW
    config = {**INSPECT_REDACTING, "streaming": {"requestMode": "inspect", "maxMatchBytes": WINDOW}}
    with gateway_in_front(tmp_path, config) as gw:
        gw.upstream.queue(Reply(wire=[_wire().encode()]))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = ""
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
        (event,) = [e for e in gw.audit() if e["operation"].startswith("response-stream:")]
    assert EMAIL not in text
    assert text == PADDING + LOCAL
    assert (event["decision"], event["reason"]) == ("stream_blocked", "stream_inspection_error")


# -- Responses: event names and types paired ---------------------------------------------------

RESPONSES = {**INSPECT_REDACTING, "target": {"type": "openai-compatible"}}
DELTA = "response.output_text.delta"
PART = {"item_id": "item_0", "output_index": 0, "content_index": 0}


def _event(kind: str, *, event: str | None = "", **data: Any) -> str:
    """A Responses event, named by its type unless ``event`` names it otherwise (``None``:
    not at all)."""
    return sse({"type": kind, **data}, event=kind if event == "" else event)


def _responses(*events: str) -> str:
    created = _event("response.created", response={"id": "resp_1", "output": []})
    completed = _event("response.completed", response={"id": "resp_1", "output": []})
    return created + "".join(events) + completed


def _by_event_name(body: bytes) -> str:
    """The output text a reader dispatching on the event name reads."""
    frames = [frame for frame in read_sse(body) if frame.data is not None]
    named = [frame for frame in frames if frame.meta[-1:] == (f"event: {DELTA}",)]
    return "".join(json.loads(frame.data or "")["delta"] for frame in named)


def _separator_named(event: str | None) -> str:
    """Output text a character per event after a window's worth, the event that carries the
    separator named ``event`` instead of by its type."""
    pieces = [_event(DELTA, **PART, delta=PADDING)]
    for at, character in enumerate(TEXT):
        name = event if at == SEPARATOR_FRAME else ""
        pieces.append(_event(DELTA, event=name, **PART, delta=character))
    return _responses(*pieces)


def _transcript_named_as_text() -> str:
    """The first half of an address as output text, the second as an audio transcript in an
    event named like output text: two texts to the windows, one to the reader."""
    return _responses(
        _event(DELTA, **PART, delta="Contact jane.doe@"),
        _event("response.output_text.done", **PART, text="Contact jane.doe@"),
        _event("response.audio.transcript.delta", event=DELTA, delta="example.com thanks"),
        _event("response.audio.transcript.done", transcript="example.com thanks"),
    )


@pytest.mark.parametrize(
    "wire",
    [
        _separator_named(None),
        _separator_named("response.refusal.delta"),
        _transcript_named_as_text(),
    ],
    ids=["separator-unnamed", "separator-named-otherwise", "transcript-named-as-text"],
)
def test_a_responses_event_named_otherwise_than_its_type_stops_the_stream(
    tmp_path: Path, wire: str
) -> None:
    config = {**RESPONSES, "streaming": {"requestMode": "inspect", "maxMatchBytes": WINDOW}}
    request = {"model": "m", "input": "hi", "stream": True}
    body, event = streamed_through(tmp_path, config, "/v1/responses", request, wire)
    assert EMAIL not in _by_event_name(body)
    assert (event["decision"], event["reason"]) == ("stream_blocked", "stream_inspection_error")


def test_a_responses_stream_naming_each_type_alike_is_inspected(tmp_path: Path) -> None:
    """Servers name every event by its type, or all by another name each (or none): such a
    stream reaches the client, the address redacted for both readers."""
    shortened = "".join(
        sse({"type": f"response.{kind}", **data}, event=kind)
        for kind, data in (
            ("created", {"response": {"id": "resp_1", "output": []}}),
            ("output_text.delta", {**PART, "delta": "Contact jane.doe@"}),
            ("output_text.delta", {**PART, "delta": "example.com thanks"}),
            ("completed", {"response": {"id": "resp_1", "output": []}}),
        )
    )
    request = {"model": "m", "input": "hi", "stream": True}
    body, event = streamed_through(tmp_path, RESPONSES, "/v1/responses", request, shortened)
    assert event["reason"] == "stream_inspected"
    assert EMAIL not in body.decode()
    assert REDACTED in body.decode()
