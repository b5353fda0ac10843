# SPDX-License-Identifier: Apache-2.0
"""Responses API streams read as the openai client reads them: delta after delta, whatever
their indices (the usual loop prints every ``response.output_text.delta``), and part by part
(the SDK adds deltas up by output and content index).

Real servers send outputs and their parts one after another, where both readings agree. So
output text, refusals and reasoning have one window each across their parts (a value cut
between two parts is one value to the loop), a part that continues after a later one began
stops the stream, and a tool call's input keeps a window per output.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.stream_fixtures import (
    EMAIL,
    INSPECT_REDACTING,
    REDACTED,
    ResponsesEvent,
    responses_sse,
)
from tests.upstream_server import Gateway, Reply, gateway_in_front

INSPECT = {**INSPECT_REDACTING, "target": {"type": "openai-compatible"}}
#: A window small enough that a few events show where released text is written.
WINDOW = 32
STOPPED = ("stream_blocked", "stream_inspection_error")
INSPECTED = ("stream_inspected", "stream_inspected")
TEXT = "output_text"
#: The kinds of text read across parts, and the index naming a part within an output.
ACROSS = {
    "output_text": "content_index",
    "refusal": "content_index",
    "reasoning_text": "content_index",
    "reasoning_summary_text": "summary_index",
}


def _deltas(kind: str, output: int, part: int, *pieces: str) -> list[ResponsesEvent]:
    """The deltas of one part of a text of ``kind`` (one read across parts)."""
    place = {"item_id": f"item_{output}", "output_index": output, ACROSS[kind]: part}
    return [(f"{kind}.delta", {**place, "delta": piece}) for piece in pieces]


def _message(output: int, *parts: tuple[str, str]) -> list[ResponsesEvent]:
    """A message output, as real servers send it: each content part (``kind``, whole text,
    streamed a few characters per delta) opened, streamed and closed in turn."""
    item = {"type": "message", "id": f"item_{output}", "role": "assistant", "content": []}
    events: list[ResponsesEvent] = [("output_item.added", {"output_index": output, "item": item})]
    for part, (kind, text) in enumerate(parts):
        place = {"item_id": f"item_{output}", "output_index": output, "content_index": part}
        events.append(("content_part.added", {**place, "part": {"type": kind, kind: ""}}))
        events += _deltas(kind, output, part, *(text[i : i + 5] for i in range(0, len(text), 5)))
        whole = "text" if kind == TEXT else kind
        events.append((f"{kind}.done", {**place, whole: text}))
        events.append(("content_part.done", {**place, "part": {"type": kind, kind: text}}))
    events.append(("output_item.done", {"output_index": output, "item": item}))
    return events


def _function_call(output: int, arguments: str) -> list[ResponsesEvent]:
    item = {"type": "function_call", "id": f"item_{output}", "name": "send", "arguments": ""}
    place = {"item_id": f"item_{output}", "output_index": output}
    pieces = (arguments[i : i + 6] for i in range(0, len(arguments), 6))
    return [
        ("output_item.added", {"output_index": output, "item": item}),
        *(("function_call_arguments.delta", {**place, "delta": piece}) for piece in pieces),
        ("function_call_arguments.done", {**place, "arguments": arguments}),
        ("output_item.done", {"output_index": output, "item": {**item, "arguments": arguments}}),
    ]


def _reasoning(output: int, *summaries: str) -> list[ResponsesEvent]:
    item = {"type": "reasoning", "id": f"item_{output}", "summary": []}
    events: list[ResponsesEvent] = [("output_item.added", {"output_index": output, "item": item})]
    for part, text in enumerate(summaries):
        place = {"item_id": f"item_{output}", "output_index": output, "summary_index": part}
        events.append(("reasoning_summary_part.added", {**place, "part": {"type": "summary_text"}}))
        pieces = (text[i : i + 4] for i in range(0, len(text), 4))
        events += _deltas("reasoning_summary_text", output, part, *pieces)
        events.append(("reasoning_summary_text.done", {**place, "text": text}))
        events.append(("reasoning_summary_part.done", {**place, "part": {"type": "summary_text"}}))
    events.append(("output_item.done", {"output_index": output, "item": item}))
    return events


def _read(gw: Gateway, wire: str) -> list[tuple[str, int, int | None, str]]:
    """Every delta the openai client reads: its type, output index, part index, text."""
    gw.upstream.queue(Reply(wire=[wire.encode()]))
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
    read = []
    for event in client.responses.create(model="m", input="hi", stream=True):
        if event.type.endswith(".delta"):
            part = getattr(event, "content_index", None)
            part = getattr(event, "summary_index", part)
            read.append((event.type, int(event.output_index), part, event.delta))
    return read


def _printed(read: list[tuple[str, int, int | None, str]], kind: str) -> str:
    """What the usual loop prints: every delta of ``kind``, in arrival order."""
    return "".join(text for name, _output, _part, text in read if name == f"response.{kind}.delta")


def _by_part(read: list[tuple[str, int, int | None, str]]) -> dict[tuple[str, int, Any], str]:
    """The deltas added up part by part, as the SDK adds them up."""
    parts: dict[tuple[str, int, Any], str] = {}
    for name, output, part, text in read:
        parts[name, output, part] = parts.get((name, output, part), "") + text
    return parts


def _stream_event(gw: Gateway) -> tuple[str, str]:
    (event,) = [e for e in gw.audit() if str(e.get("operation", "")).startswith("response-stream:")]
    return event["decision"], event["reason"]


@pytest.mark.parametrize("kind", list(ACROSS))
def test_a_value_cut_between_two_parts_is_read_joined(tmp_path: Path, kind: str) -> None:
    """The end of one output's text and the start of the next make an address to the loop
    printing every delta: the part in the later output is redacted (read part by part, the
    first keeps its half and the second the redaction)."""
    wire = responses_sse(
        *_deltas(kind, 0, 0, "Contact: jane.doe@"),
        (f"{kind}.done", {"output_index": 0, ACROSS[kind]: 0, "text": "Contact: jane.doe@"}),
        *_deltas(kind, 1, 0, "example.com thanks"),
        (f"{kind}.done", {"output_index": 1, ACROSS[kind]: 0, "text": "example.com thanks"}),
    )
    with gateway_in_front(tmp_path, INSPECT) as gw:
        read = _read(gw, wire)
        event = _stream_event(gw)
    assert _printed(read, kind) == f"Contact: jane.doe@{REDACTED} thanks"
    assert list(_by_part(read).values()) == ["Contact: jane.doe@", f"{REDACTED} thanks"]
    assert event == INSPECTED


def test_parts_of_one_output_are_read_joined_too(tmp_path: Path) -> None:
    """Two content parts of one message, the second left without its closing events."""
    wire = responses_sse(
        *_deltas(TEXT, 0, 0, "Contact: jane.doe@"),
        *_deltas(TEXT, 0, 1, "example.com thanks"),
    )
    with gateway_in_front(tmp_path, INSPECT) as gw:
        read = _read(gw, wire)
        event = _stream_event(gw)
    assert _printed(read, TEXT) == f"Contact: jane.doe@{REDACTED} thanks"
    assert event == INSPECTED


@pytest.mark.parametrize("kind", list(ACROSS))
def test_a_part_continued_after_a_later_one_began_stops_the_stream(
    tmp_path: Path, kind: str
) -> None:
    """Output 0 gets ``jane.doe@`` and a pad, output 1 ``example.com`` and a pad, then output
    0 more text. Windowed per part, the loop would read ``jane.doe@`` right before
    ``example.com``; read in arrival order, output 0 would get output 1's text between its
    pieces. The windows are read in order, and the stream stops at the third delta."""
    wire = responses_sse(
        *_deltas(kind, 0, 0, "jane.doe@" + " " * WINDOW),
        *_deltas(kind, 1, 0, "example.com" + " " * WINDOW),
        *_deltas(kind, 0, 0, "." * WINDOW),
    )
    config = {**INSPECT, "streaming": {"requestMode": "inspect", "maxMatchBytes": WINDOW}}
    with gateway_in_front(tmp_path, config) as gw:
        read = _read(gw, wire)
        event = _stream_event(gw)
    assert "jane.doe@example.com" not in _printed(read, kind)
    assert not any(EMAIL in text for text in _by_part(read).values())
    assert "...." not in "".join(text for _name, _output, _part, text in read)
    assert event == STOPPED


def test_an_earlier_part_of_one_output_stops_the_stream(tmp_path: Path) -> None:
    wire = responses_sse(
        *_deltas(TEXT, 0, 1, "Contact: jane.doe@"),
        *_deltas(TEXT, 0, 0, "example.com thanks"),
    )
    with gateway_in_front(tmp_path, INSPECT) as gw:
        read = _read(gw, wire)
        event = _stream_event(gw)
    assert "example.com" not in _printed(read, TEXT)
    assert event == STOPPED


def test_function_call_arguments_keep_a_window_per_output(tmp_path: Path) -> None:
    """A tool call's input is a JSON document of its own: calls interleaved (no order is
    required of them) are windowed apart, each address in its own call redacted."""
    first, second = '{"to": "jane.doe@example.com"}', '{"cc": "jane.doe@example.com"}'
    calls = [_function_call(0, first)[1:-2], _function_call(1, second)[1:-2]]
    interleaved = [event for pair in itertools.zip_longest(*calls) for event in pair if event]
    with gateway_in_front(tmp_path, INSPECT) as gw:
        read = _read(gw, responses_sse(*interleaved))
        event = _stream_event(gw)
    arguments = {output: text for (_name, output, _part), text in _by_part(read).items()}
    assert arguments == {0: f'{{"to": "{REDACTED}"}}', 1: f'{{"cc": "{REDACTED}"}}'}
    assert event == INSPECTED


_IN_ORDER = (
    *_reasoning(0, "The user wants a mail.", "I will call the tool."),
    *_message(1, (TEXT, "Sure, here is the draft."), (TEXT, "Anything else?")),
    *_function_call(2, '{"subject": "Hello", "body": "See you soon."}'),
    *_message(3, ("refusal", "I cannot send it myself.")),
)


def test_in_order_outputs_are_read_as_sent(tmp_path: Path) -> None:
    """A usual stream (reasoning summaries, a message of two parts, a tool call, a refusal)
    reads the same to the client, part by part and delta after delta, as the upstream
    sent it (the window may move text to later deltas of its part)."""
    upstream = [
        (
            f"response.{kind}",
            data["output_index"],
            data.get("content_index", data.get("summary_index")),
            data["delta"],
        )
        for kind, data in _IN_ORDER
        if kind.endswith(".delta")
    ]
    with gateway_in_front(tmp_path, INSPECT) as gw:
        read = _read(gw, responses_sse(*_IN_ORDER))
        event = _stream_event(gw)
    assert _by_part(read) == _by_part(upstream)
    for kind in (*ACROSS, "function_call_arguments"):
        assert _printed(read, kind) == _printed(upstream, kind)
    assert event == INSPECTED


def test_in_order_outputs_keep_their_values_apart(tmp_path: Path) -> None:
    """An address inside each part, cut across its deltas, is redacted in that part."""
    wire = responses_sse(
        *_reasoning(0, f"Mail {EMAIL} today."),
        *_message(1, (TEXT, f"Sent to {EMAIL} today."), (TEXT, f"Copy: {EMAIL}")),
    )
    with gateway_in_front(tmp_path, INSPECT) as gw:
        parts = _by_part(_read(gw, wire))
        event = _stream_event(gw)
    assert list(parts.values()) == [
        f"Mail {REDACTED} today.",
        f"Sent to {REDACTED} today.",
        f"Copy: {REDACTED}",
    ]
    assert event == INSPECTED


@pytest.mark.parametrize(
    "names",
    [
        ({"content_index": 0}, {"content_index": 1}),
        ({}, {"summary_index": 0}),
        ({"summary_index": 1}, {"content_index": 0}),
    ],
)
def test_function_call_arguments_are_one_text_per_output(
    tmp_path: Path, names: tuple[dict[str, int], dict[str, int]]
) -> None:
    """The SDK adds a call's argument deltas up by output alone (``arguments += delta``),
    whatever other index they carry: an address cut between two of them is read joined."""
    arguments = '{"to": "jane.doe@example.com"}'
    call = _function_call(0, arguments)
    place = {"item_id": "item_0", "output_index": 0}
    wire = responses_sse(
        call[0],
        ("function_call_arguments.delta", {**place, **names[0], "delta": '{"to": "jane.doe@'}),
        ("function_call_arguments.delta", {**place, **names[1], "delta": 'example.com"}'}),
        *call[-2:],
    )
    with gateway_in_front(tmp_path, INSPECT) as gw:
        gw.upstream.queue(Reply(wire=[wire.encode()]))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        with client.responses.stream(model="m", input="hi") as stream:
            snapshots = [
                event.snapshot
                for event in stream
                if event.type == "response.function_call_arguments.delta"
            ]
        event = _stream_event(gw)
    assert snapshots[-1] == f'{{"to": "{REDACTED}"}}'
    assert event == INSPECTED


# -- Text in the event that opens a part ------------------------------------------------------

HALVES = ("Contact: jane.doe@", "example.com thanks")
JOINED = f"Contact: {REDACTED} thanks"


def _snapshots(gw: Gateway, wire: str) -> dict[str, str]:
    """The last snapshot of each kind of delta the SDK's ``responses.stream()`` built (the
    part's or call's text so far), by delta type."""
    gw.upstream.queue(Reply(wire=[wire.encode()]))
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
    snapshots: dict[str, str] = {}
    with client.responses.stream(model="m", input="hi") as stream:
        for event in stream:
            if event.type.endswith(".delta"):
                snapshots[event.type] = event.snapshot
    return snapshots


def _opened_message(item_text: str, part_text: str, delta: str) -> list[ResponsesEvent]:
    """A message whose one part gets ``item_text`` in ``output_item.added``, ``part_text`` in
    ``content_part.added`` (when the item had none) and ``delta`` in a delta."""
    whole = item_text + part_text + delta
    place = {"item_id": "item_0", "output_index": 0, "content_index": 0}
    opened = {"type": "output_text", "text": item_text, "annotations": []}
    content = [opened] if item_text else []
    item = {"type": "message", "id": "item_0", "role": "assistant", "content": content}
    part = {"type": "output_text", "text": part_text, "annotations": []}
    done = {**part, "text": whole}
    return [
        ("output_item.added", {"output_index": 0, "item": item}),
        *([] if item_text else [("content_part.added", {**place, "part": part})]),
        ("output_text.delta", {**place, "delta": delta, "logprobs": []}),
        ("output_text.done", {**place, "text": whole, "logprobs": []}),
        ("content_part.done", {**place, "part": done}),
        ("output_item.done", {"output_index": 0, "item": {**item, "content": [done]}}),
    ]


@pytest.mark.parametrize(
    "events",
    [
        _opened_message("", HALVES[0], HALVES[1]),
        _opened_message(HALVES[0], "", HALVES[1]),
    ],
    ids=["content_part.added", "output_item.added"],
)
def test_text_in_the_event_opening_a_part_is_read_with_its_deltas(
    tmp_path: Path, events: list[ResponsesEvent]
) -> None:
    """The SDK starts a part with the text its opening event carries and adds the deltas to
    it: an address cut between the two is read joined."""
    with gateway_in_front(tmp_path, INSPECT) as gw:
        snapshots = _snapshots(gw, responses_sse(*events))
        event = _stream_event(gw)
    assert snapshots["response.output_text.delta"] == JOINED
    assert event == INSPECTED


def test_arguments_in_the_event_opening_a_call_are_read_with_its_deltas(tmp_path: Path) -> None:
    """The SDK adds a call's argument deltas to the arguments its ``output_item.added``
    carries."""
    first, second = '{"to": "jane.doe@', 'example.com"}'
    item = {"type": "function_call", "id": "item_0", "call_id": "c", "name": "send"}
    place = {"item_id": "item_0", "output_index": 0}
    whole = {**item, "arguments": first + second}
    wire = responses_sse(
        ("output_item.added", {"output_index": 0, "item": {**item, "arguments": first}}),
        ("function_call_arguments.delta", {**place, "delta": second}),
        ("function_call_arguments.done", {**place, "arguments": first + second}),
        ("output_item.done", {"output_index": 0, "item": whole}),
    )
    with gateway_in_front(tmp_path, INSPECT) as gw:
        snapshots = _snapshots(gw, wire)
        event = _stream_event(gw)
    assert snapshots["response.function_call_arguments.delta"] == f'{{"to": "{REDACTED}"}}'
    assert event == INSPECTED


def test_text_in_the_output_of_the_created_response_is_read_with_its_deltas(
    tmp_path: Path,
) -> None:
    """The SDK's snapshot starts as the response ``response.created`` carries, output items
    and their parts' text included, and adds the deltas to that text."""
    part = {"type": "output_text", "text": HALVES[0], "annotations": []}
    item = {"type": "message", "id": "item_0", "role": "assistant", "content": [part]}
    place = {"item_id": "item_0", "output_index": 0, "content_index": 0}
    whole = HALVES[0] + HALVES[1]
    whole_part = {**part, "text": whole}
    wire = responses_sse(
        ("output_text.delta", {**place, "delta": HALVES[1], "logprobs": []}),
        ("output_text.done", {**place, "text": whole, "logprobs": []}),
        ("output_item.done", {"output_index": 0, "item": {**item, "content": [whole_part]}}),
        created=[item],
    )
    with gateway_in_front(tmp_path, INSPECT) as gw:
        snapshots = _snapshots(gw, wire)
        event = _stream_event(gw)
    assert snapshots["response.output_text.delta"] == JOINED
    assert event == INSPECTED


def test_a_usual_stream_opening_its_parts_empty_is_read_as_sent(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, INSPECT) as gw:
        snapshots = _snapshots(gw, responses_sse(*_opened_message("", "", "Hello there.")))
        event = _stream_event(gw)
    assert snapshots == {"response.output_text.delta": "Hello there."}
    assert event == INSPECTED
