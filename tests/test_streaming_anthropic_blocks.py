# SPDX-License-Identifier: Apache-2.0
"""Anthropic deltas belong to the content block they name.

The API streams each kind of delta into one kind of block only: a ``text_delta`` or a
``citations_delta`` into a text block, a ``thinking_delta`` or a ``signature_delta`` into a
thinking block, an ``input_json_delta`` into a tool-use block, and only into a block that a
``content_block_start`` (or the content of ``message_start``) opened and no
``content_block_stop`` closed. Clients disagree on any other delta: the anthropic SDK's
``text_stream`` prints the text of every ``text_delta`` whatever its block, while
``get_final_message()`` ignores a delta in a block of another kind, and a loop adding every
delta up by ``index`` joins a tool call's input with a ``text_delta`` of its block, which
the gateway windows apart. Such a frame stops the stream before anything of it is sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import pytest

from haechi.runtime import Runtime
from haechi.streaming import StreamInspector
from tests.stream_fixtures import (
    EMAIL,
    INSPECT_REDACTING,
    REDACTED,
    anthropic_message,
    chunked,
    collect,
    read_sse,
    route,
    sse,
)
from tests.upstream_server import Gateway, Reply, gateway_in_front

CONFIG = {**INSPECT_REDACTING, "target": {"type": "anthropic"}}
MESSAGES = route("anthropic", "/v1/messages")
STOPPED = ("stream_blocked", "stream_inspection_error")
INSPECTED = ("stream_inspected", "stream_inspected")

TEXT = {"type": "text", "text": ""}
THINKING = {"type": "thinking", "thinking": "", "signature": ""}
TOOL = {"type": "tool_use", "id": "toolu_1", "name": "send", "input": {}}
#: The field each kind of delta carries its piece in.
_FIELDS = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "input_json_delta": "partial_json",
    "signature_delta": "signature",
}


def _event(kind: str, **data: Any) -> str:
    return sse({"type": kind, **data}, event=kind)


def _start(index: int, block: dict[str, Any]) -> str:
    return _event("content_block_start", index=index, content_block=block)


def _delta(index: int, kind: str, piece: str) -> str:
    return _event("content_block_delta", index=index, delta={"type": kind, _FIELDS[kind]: piece})


def _stop(index: int) -> str:
    return _event("content_block_stop", index=index)


def _message(*frames: str, start: dict[str, Any] | None = None) -> str:
    return (
        _event("message_start", message=start or anthropic_message())
        + "".join(frames)
        + _event("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 9})
        + _event("message_stop")
    )


@dataclass
class _Readings:
    """What each kind of Anthropic client read of one stream, up to where it ended."""

    text: str = ""  # text_stream: every text_delta's text, whatever its block
    by_index: dict[int, str] = field(default_factory=dict)  # every delta added up by index
    final: Any = None  # get_final_message(), for a stream that ended with message_stop


def _read(gw: Gateway, wire: str) -> _Readings:
    gw.upstream.queue(Reply(wire=[wire.encode()]))
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    readings = _Readings()
    try:
        with client.messages.stream(
            model="claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            for event in stream:
                if event.type == "text":
                    continue  # the SDK's own event, repeating a text delta of a text block
                if event.type != "content_block_delta":
                    continue
                delta = event.delta
                piece = next(
                    (getattr(delta, name) for name in _FIELDS.values() if hasattr(delta, name)), ""
                )
                if delta.type == "text_delta":
                    readings.text += piece
                readings.by_index[event.index] = readings.by_index.get(event.index, "") + piece
            readings.final = stream.get_final_message()
    except (anthropic.APIError, RuntimeError, IndexError):
        pass  # a stopped stream ends without its message_stop
    return readings


def _stream_event(gw: Gateway) -> tuple[str, str]:
    """The decision and reason of the one audit event of the stream."""
    (event,) = [e for e in gw.audit() if str(e.get("operation", "")).startswith("response-stream:")]
    return event["decision"], event["reason"]


def _seen(readings: _Readings) -> str:
    return "\n".join([readings.text, *readings.by_index.values()])


# -- through the gateway, read by the anthropic SDK ---------------------------------------------


def test_an_address_in_text_deltas_of_a_tool_use_block_stops_the_stream(tmp_path: Path) -> None:
    """``text_stream`` prints the text of every ``text_delta``, a tool-use block's too, where
    the API never sends one: the stream stops at the first such delta, and no piece of the
    address reaches the client."""
    wire = _message(
        _start(0, TEXT),
        _delta(0, "text_delta", "Sending it now. "),
        _stop(0),
        _start(1, TOOL),
        _delta(1, "input_json_delta", '{"to": "me"}'),
        _delta(1, "text_delta", "jane.doe"),
        _delta(1, "text_delta", "@example"),
        _delta(1, "text_delta", ".com"),
        _stop(1),
    )
    with gateway_in_front(tmp_path, CONFIG) as gw:
        readings = _read(gw, wire)
        event = _stream_event(gw)
    assert readings.text == "Sending it now. "
    assert "jane.doe" not in _seen(readings)
    assert event == STOPPED


def test_an_address_cut_between_a_tool_input_and_a_text_delta_stops_the_stream(
    tmp_path: Path,
) -> None:
    """A loop adding every delta of a block up by ``index`` joins the tool call's input with a
    ``text_delta`` in its block, which the gateway would window apart (the input per block,
    the text with the answer): neither half alone is an address."""
    wire = _message(
        _start(0, TOOL),
        _delta(0, "input_json_delta", '{"to": "jane.doe'),
        _delta(0, "text_delta", '@example.com"}'),
        _stop(0),
    )
    with gateway_in_front(tmp_path, CONFIG) as gw:
        readings = _read(gw, wire)
        event = _stream_event(gw)
    assert EMAIL not in _seen(readings)
    assert "example.com" not in _seen(readings)
    assert event == STOPPED


def test_an_address_in_text_deltas_of_no_opened_block_stops_the_stream(tmp_path: Path) -> None:
    """Deltas of a block no ``content_block_start`` opened: the stream stops at the first."""
    wire = _message(
        _start(0, TEXT),
        _delta(0, "text_delta", "Contact: "),
        _stop(0),
        _delta(1, "text_delta", "jane.doe"),
        _delta(1, "text_delta", "@example"),
        _delta(1, "text_delta", ".com"),
    )
    with gateway_in_front(tmp_path, CONFIG) as gw:
        readings = _read(gw, wire)
        event = _stream_event(gw)
    assert readings.text == "Contact: "
    assert "jane.doe" not in _seen(readings)
    assert event == STOPPED


# -- the inspector alone: what it relays ------------------------------------------------------


async def _relay(runtime: Runtime, wire: str) -> tuple[bytes, str]:
    inspector = StreamInspector(runtime, MESSAGES, mode="enforce")
    out = await collect(inspector.run(chunked(wire.encode(), 64)))
    return out, inspector.reason


def _deltas(out: bytes) -> list[dict[str, Any]]:
    frames = [json.loads(frame.data) for frame in read_sse(out) if frame.data is not None]
    return [frame for frame in frames if frame.get("type") == "content_block_delta"]


def _read_apart(wire: bytes) -> tuple[list[Any], dict[tuple[int, str], str]]:
    """The frames of a stream other than its deltas, and every delta's fields added up by
    block and field (the windows may cut the texts elsewhere than the upstream did)."""
    frames = [json.loads(frame.data) for frame in read_sse(wire) if frame.data is not None]
    added: dict[tuple[int, str], str] = {}
    for frame in frames:
        if frame["type"] == "content_block_delta":
            for name, value in frame["delta"].items():
                if name == "type":
                    continue
                key = (frame["index"], name)
                added[key] = added.get(key, "") + (value if isinstance(value, str) else repr(value))
    return [frame for frame in frames if frame["type"] != "content_block_delta"], added


#: A block of each kind, and a delta of every kind that does not belong to it.
MISMATCHED = {
    "text delta in a tool_use block": (TOOL, {"type": "text_delta", "text": "MARK"}),
    "text delta in a thinking block": (THINKING, {"type": "text_delta", "text": "MARK"}),
    "thinking delta in a text block": (TEXT, {"type": "thinking_delta", "thinking": "MARK"}),
    "thinking delta in a tool_use block": (TOOL, {"type": "thinking_delta", "thinking": "MARK"}),
    "tool input in a text block": (TEXT, {"type": "input_json_delta", "partial_json": "MARK"}),
    "tool input in a thinking block": (
        THINKING,
        {"type": "input_json_delta", "partial_json": "MARK"},
    ),
    "signature in a text block": (TEXT, {"type": "signature_delta", "signature": "MARK"}),
    "signature in a tool_use block": (TOOL, {"type": "signature_delta", "signature": "MARK"}),
    "citation in a thinking block": (
        THINKING,
        {"type": "citations_delta", "citation": {"type": "char_location", "cited_text": "MARK"}},
    ),
    "citation in a tool_use block": (
        TOOL,
        {"type": "citations_delta", "citation": {"type": "char_location", "cited_text": "MARK"}},
    ),
    "text delta in a block of no known kind": (
        {"type": "future_block"},
        {"type": "text_delta", "text": "MARK"},
    ),
    "text delta in a block without a kind": ({}, {"type": "text_delta", "text": "MARK"}),
}


@pytest.mark.anyio
@pytest.mark.parametrize(("block", "delta"), MISMATCHED.values(), ids=list(MISMATCHED))
async def test_a_delta_of_another_kind_than_its_block_stops_the_stream(
    memory_runtime: Runtime, block: dict[str, Any], delta: dict[str, Any]
) -> None:
    """Every frame before the odd delta is sent, nothing of it or after it."""
    wire = _message(
        _start(0, TEXT),
        _delta(0, "text_delta", "Hello."),
        _stop(0),
        _start(1, block),
        _event("content_block_delta", index=1, delta=delta),
        _stop(1),
    )
    out, reason = await _relay(memory_runtime, wire)
    assert b"MARK" not in out
    assert {frame["index"] for frame in _deltas(out)} == {0}
    assert b"Hello." in out
    assert b"content_block_stop" in out  # block 0's
    assert b"message_stop" not in out
    assert reason == "stream_inspection_error"


#: Frames of a block clients do not hold open: none opened (before any block, or past the
#: last one), after the block's ``content_block_stop``, or a block opened at a position
#: clients do not put it (the SDK adds a block at the end of its content, whatever index the
#: ``content_block_start`` names). Each with the content of its ``message_start``.
UNOPENED: dict[str, tuple[list[Any], list[str]]] = {
    "no block opened": ([], [_delta(0, "text_delta", "MARK")]),
    "past the last block": ([], [_start(0, TEXT), _delta(1, "text_delta", "MARK")]),
    "past the blocks of message_start": ([TEXT], [_delta(1, "text_delta", "MARK")]),
    "after its stop": (
        [],
        [
            _start(0, TEXT),
            _delta(0, "text_delta", "Hello."),
            _stop(0),
            _delta(0, "text_delta", "MARK"),
        ],
    ),
    "stopped twice": ([], [_start(0, TEXT), _delta(0, "text_delta", "Hello."), _stop(0), _stop(0)]),
    "a stop of no opened block": ([], [_stop(0)]),
    "a block opened past the next position": (
        [],
        [_start(1, TEXT), _delta(1, "text_delta", "MARK")],
    ),
    "a block opened at a position of message_start": (
        [TEXT],
        [_start(0, TEXT), _delta(0, "text_delta", "MARK")],
    ),
    "a block opened twice": (
        [],
        [_start(0, TEXT), _start(0, TEXT), _delta(0, "text_delta", "MARK")],
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize(("content", "frames"), UNOPENED.values(), ids=list(UNOPENED))
async def test_a_frame_of_a_block_that_is_not_open_stops_the_stream(
    memory_runtime: Runtime, content: list[Any], frames: list[str]
) -> None:
    start = {**anthropic_message(), "content": content}
    out, reason = await _relay(memory_runtime, _message(*frames, start=start))
    assert b"MARK" not in out
    assert b"message_stop" not in out
    assert reason == "stream_inspection_error"


#: Streams the API could send, or that every client reads alike: they pass unchanged.
USUAL = {
    "deltas of every kind in their blocks": [
        _start(0, THINKING),
        _delta(0, "thinking_delta", "Hm."),
        _delta(0, "signature_delta", "c2ln"),
        _stop(0),
        _start(1, TEXT),
        _delta(1, "text_delta", "See "),
        _event(
            "content_block_delta",
            index=1,
            delta={"type": "citations_delta", "citation": {"type": "char_location"}},
        ),
        _stop(1),
        _start(2, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search"}),
        _delta(2, "input_json_delta", '{"query": "x"}'),
        _stop(2),
        _start(3, {"type": "mcp_tool_use", "id": "mcptoolu_1", "name": "t", "server_name": "s"}),
        _delta(3, "input_json_delta", "{}"),
        _stop(3),
        _start(4, {"type": "redacted_thinking", "data": "ZGF0YQ=="}),
        _stop(4),
    ],
    "a block left open before the next one": [
        _start(0, TEXT),
        _delta(0, "text_delta", "One."),
        _start(1, TEXT),
        _delta(1, "text_delta", "Two."),
    ],
    "a delta of a kind the API may add later": [
        _start(0, TEXT),
        _event("content_block_delta", index=0, delta={"type": "future_delta", "n": 1}),
        _stop(0),
    ],
    "a compaction block": [
        _start(0, {"type": "compaction", "content": None}),
        _event(
            "content_block_delta", index=0, delta={"type": "compaction_delta", "content": "Sum."}
        ),
        _stop(0),
    ],
}


@pytest.mark.anyio
@pytest.mark.parametrize("frames", USUAL.values(), ids=list(USUAL))
async def test_deltas_in_their_own_open_blocks_pass(
    memory_runtime: Runtime, frames: list[str]
) -> None:
    wire = _message(*frames)
    out, reason = await _relay(memory_runtime, wire)
    assert _read_apart(out) == _read_apart(wire.encode())
    assert reason == "stream_inspected"


@pytest.mark.anyio
async def test_blocks_of_message_start_are_open(memory_runtime: Runtime) -> None:
    """The SDK adds a delta to the block at its ``index`` of the message's content, those
    ``message_start`` brought included (the API sends none; another server may), and the
    blocks ``content_block_start`` opens come after them. Text already in such a block is
    moved into a delta of its own, windowed with the deltas after it."""
    start = {**anthropic_message(), "content": [{**TEXT, "text": "Contact: jane.doe@"}, TEXT]}
    wire = _message(
        _delta(0, "text_delta", "example.com thanks"),
        _stop(0),
        _delta(1, "text_delta", " One."),
        _stop(1),
        _start(2, TOOL),
        _delta(2, "input_json_delta", "{}"),
        _stop(2),
        start=start,
    )
    out, reason = await _relay(memory_runtime, wire)
    by_index: dict[int, str] = {}
    for frame in _deltas(out):
        piece = next(frame["delta"][name] for name in _FIELDS.values() if name in frame["delta"])
        by_index[frame["index"]] = by_index.get(frame["index"], "") + piece
    assert by_index == {0: f"Contact: {REDACTED} thanks", 1: " One.", 2: "{}"}
    assert reason == "stream_inspected"


@pytest.mark.anyio
@pytest.mark.parametrize("content", [[], [TEXT]], ids=["no content", "a text block"])
async def test_a_message_started_again_stops_the_stream(
    memory_runtime: Runtime, content: list[Any]
) -> None:
    """The SDK ignores a second ``message_start``, whose blocks the windows would take."""
    again = _event("message_start", message={**anthropic_message(), "content": content})
    wire = _message(
        _start(0, TEXT), _delta(0, "text_delta", "Hello."), again, _delta(0, "text_delta", "MARK")
    )
    out, reason = await _relay(memory_runtime, wire)
    assert out.count(b"event: message_start") == 1
    assert b"MARK" not in out
    assert reason == "stream_inspection_error"
