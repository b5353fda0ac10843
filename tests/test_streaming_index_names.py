# SPDX-License-Identifier: Apache-2.0
"""The windows of a stream are named as clients read the fields that name its texts.

A choice's ``index`` (or a content block's, or a Responses output's) may be spelled ``0``,
``0.0`` or ``"0"``: JavaScript clients index arrays with all three as element 0, pydantic
models read them as the integer 0. Pieces of one value split across such spellings must meet
in one window; a spelling clients read differently (``"00"``, ``" 0"``, ``true``, ``-1``)
stops the stream instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from haechi.protocols import FragmentSpec
from haechi.runtime import Runtime
from haechi.streaming import StreamInspector
from haechi.streaming._names import AmbiguousName, position, reader
from tests.stream_fixtures import (
    EMAIL,
    INSPECT_REDACTING,
    REDACTED,
    anthropic_message,
    chunked,
    collect,
    openai_choices_sse,
    read_sse,
    route,
    sse,
)
from tests.upstream_server import Gateway, Reply, gateway_in_front

#: Spellings that clients read differently: pydantic reads each as an integer, JavaScript as
#: another property than that element, Python list indexing from the end or as 1.
AMBIGUOUS = ["00", " 0", "0 ", "+0", "-0", "0.0", "1_0", "\u0661", True, False, -1, 0.5]

# -- the names ------------------------------------------------------------------------------

_PYDANTIC_INT = TypeAdapter(int)


def _pydantic(value: Any) -> int | None:
    """The integer a lax pydantic model reads ``value`` as, or ``None`` when it refuses."""
    try:
        return _PYDANTIC_INT.validate_python(value)
    except ValidationError:
        return None


def _javascript_key(value: Any) -> str:
    """The property a JavaScript client indexes an array with for ``value`` parsed from
    JSON (only the integral numbers matter here: their key is their decimal digits)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        number = float(value)  # JSON numbers are doubles in JavaScript
        if math.isfinite(number) and number.is_integer() and abs(number) < 1e21:
            return str(int(number))
        return f"number {number!r}"
    return str(value)


def _python_index(value: Any) -> int | None:
    """The position a Python list reads ``value`` as, when it reads it at all."""
    return int(value) if isinstance(value, int) else None


INDEX_SPELLINGS = st.one_of(
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(alphabet="0123456789 +-._eE\u0661\t", max_size=8),
    st.integers(min_value=0, max_value=2**60).map(str),
    st.integers(min_value=0, max_value=2**60).map(float),
    st.sampled_from([2**53 - 1, 2**53, float(2**53), str(2**53 - 1), str(2**53), -0.0]),
)


@settings(max_examples=500, deadline=None)
@given(INDEX_SPELLINGS)
def test_a_position_is_what_every_client_reads(value: Any) -> None:
    """Whenever a position is named, pydantic, JavaScript and Python list indexing all read
    the value as that position; so two spellings one of them reads alike are never two
    windows (else naming fails closed)."""
    try:
        named = position(value)
    except AmbiguousName:
        return
    assert _pydantic(value) == named
    assert _javascript_key(value) == str(named)
    assert _python_index(value) in (named, None)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**53 - 1))
def test_the_plain_spellings_of_a_position_are_one_name(number: int) -> None:
    assert position(number) == position(float(number)) == position(str(number)) == number


@pytest.mark.parametrize("value", [*AMBIGUOUS, 2**53, "9007199254740993", math.nan, [], {}])
def test_a_spelling_clients_disagree_on_is_no_name(value: Any) -> None:
    with pytest.raises(AmbiguousName):
        position(value)


def test_flags_and_required_positions() -> None:
    thought = reader(
        FragmentSpec(None, ("thought",), ("text",), flags=frozenset({"thought"})), "thought"
    )
    assert [thought(None), thought(False), thought(True)] == [False, False, True]
    for value in ("false", "true", 0, 1):  # pydantic reads "false" as False, JavaScript as true
        with pytest.raises(AmbiguousName):
            thought(value)
    index = frozenset({"index"})
    block = FragmentSpec(None, ("index",), ("delta",), positions=index, required=index)
    assert reader(block, "index")("1") == 1
    with pytest.raises(AmbiguousName):  # JavaScript's Array.prototype.at reads it as 0
        reader(block, "index")(None)
    optional = FragmentSpec(None, ("index",), ("delta",), positions=index)
    assert reader(optional, "index")(None) is None
    assert reader(optional, "type")("response.output_text.delta") == "response.output_text.delta"


def test_the_adapters_declare_how_their_names_are_read() -> None:
    responses = route("openai-compatible", "/v1/responses").streaming
    messages = route("anthropic", "/v1/messages").streaming
    assert responses is not None
    assert messages is not None
    deltas, documents, stdout, stderr = responses.fragments
    assert deltas.positions == {"output_index", "content_index", "summary_index"}
    # Output text and reasoning are read across parts too; a tool call's input is not, and
    # is added up by output alone.
    assert "response.output_text.delta" in deltas.joined
    assert "response.function_call_arguments.delta" not in deltas.joined
    assert documents.keys == ("output_index", "type")
    assert documents.positions == {"output_index"}
    assert not documents.joined
    # A shell call's output is two texts, added up per output and command.
    assert [stdout.text, stderr.text] == [("delta", "stdout"), ("delta", "stderr")]
    assert stdout.positions == stderr.positions == {"output_index", "command_index"}
    tool_input, thinking = messages.fragments
    assert tool_input.positions == tool_input.required == {"index"}
    # Thinking is read across blocks like the answer text; the blocks must come in order.
    assert thinking.keys == ()
    assert messages.block_types == {
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
    }


# -- the openai client through the gateway ---------------------------------------------------


def _chat_frame(index: Any, content: str | None = None, finish: str | None = None) -> str:
    delta = {} if content is None else {"content": content}
    return openai_choices_sse([{"index": index, "delta": delta, "finish_reason": finish}])


def _chat(gw: Gateway, wire: str) -> Iterator[Any]:
    """Every choice of every chunk the openai client reads from the gateway."""
    gw.upstream.queue(Reply(wire=[wire.encode()]))
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "twice"}], stream=True, n=2
    )
    for chunk in stream:
        yield from chunk.choices


def _stream_events(gw: Gateway) -> list[dict[str, Any]]:
    return [e for e in gw.audit() if str(e.get("operation", "")).startswith("response-stream:")]


@pytest.mark.parametrize(
    ("first", "second"),
    [(0, "0"), ("0", 0), (0, 0.0), (1, 1.0), (1.0, 1), (1, "1"), ("1", 1.0)],
    ids=repr,
)
def test_openai_client_never_joins_an_address_split_across_index_spellings(
    tmp_path: Path, first: Any, second: Any
) -> None:
    """The halves of an address in two frames of one choice, its index spelled two ways:
    neither the choice's text (as a client joins it by index) nor the text of the first
    choice of every chunk (as the usual loop joins it) holds the address."""
    wire = (
        _chat_frame(first, "Contact: jane.doe@")
        + _chat_frame(second, "example.com thanks")
        + _chat_frame(first, finish="stop")
        + sse("[DONE]")
    )
    by_index: dict[int, str] = {}
    positional = ""
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        for choice in _chat(gw, wire):
            text = choice.delta.content or ""
            by_index[int(choice.index)] = by_index.get(int(choice.index), "") + text
            positional += text
        (event,) = _stream_events(gw)
    assert by_index[int(first)] == f"Contact: {REDACTED} thanks"
    assert EMAIL not in positional
    assert event["decision"] == "stream_inspected"


@pytest.mark.parametrize("second", AMBIGUOUS, ids=repr)
def test_openai_client_gets_no_piece_after_an_ambiguous_index(tmp_path: Path, second: Any) -> None:
    """An index clients read differently stops the stream (fail closed): nothing the window
    held before it is sent, and the stream is audited as blocked."""
    wire = (
        _chat_frame(0, "Contact: jane.doe@")
        + _chat_frame(second, "example.com thanks")
        + _chat_frame(0, finish="stop")
        + sse("[DONE]")
    )
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        texts = [choice.delta.content or "" for choice in _chat(gw, wire)]
        (event,) = _stream_events(gw)
    assert "jane.doe" not in "".join(texts)
    assert event["decision"] == "stream_blocked"
    assert event["reason"] == "stream_inspection_error"


# -- the Responses API and Anthropic's content blocks ----------------------------------------


def _responses_wire(places: list[dict[str, Any]]) -> str:
    """Two output_text deltas carrying the halves of an address, at ``places``."""
    number = iter(range(100))

    def event(kind: str, **data: Any) -> str:
        return sse({"type": kind, "sequence_number": next(number), **data}, event=kind)

    halves = ["Contact: jane.doe@", "example.com thanks"]
    return (
        event("response.created", response={"id": "resp_1", "output": []})
        + "".join(
            event("response.output_text.delta", item_id="msg_1", **place, delta=half)
            for place, half in zip(places, halves, strict=True)
        )
        + event("response.completed", response={"id": "resp_1", "status": "completed"})
    )


@pytest.mark.parametrize(
    "second",
    [{"output_index": "0", "content_index": 0}, {"output_index": 0.0, "content_index": "0"}],
    ids=repr,
)
def test_responses_deltas_meet_whatever_the_spelling_of_their_indices(
    tmp_path: Path, second: dict[str, Any]
) -> None:
    """The openai client reads the events; the deltas joined by output and content index
    (as the SDKs add them up) hold no address."""
    wire = _responses_wire([{"output_index": 0, "content_index": 0}, second])
    joined: dict[tuple[int, int], str] = {}
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        gw.upstream.queue(Reply(wire=[wire.encode()]))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        for event in client.responses.create(model="m", input="hi", stream=True):
            if event.type == "response.output_text.delta":
                place = (int(event.output_index), int(event.content_index))
                joined[place] = joined.get(place, "") + event.delta
    assert joined == {(0, 0): f"Contact: {REDACTED} thanks"}


def _anthropic_events(wire: str, gw: Gateway) -> list[Any]:
    gw.upstream.queue(Reply(wire=[wire.encode()]))
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    stream = client.messages.create(
        model="claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    return list(stream)


def _tool_block_wire(second: dict[str, Any]) -> str:
    """A tool_use block whose input streams the halves of an address, the second piece
    carrying ``second`` as its block's place."""
    start = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "tool_use", "id": "t1", "name": "send", "input": {}},
    }
    pieces = [('{"to": "jane.doe@', {"index": 0}), ('example.com"}', second)]
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": anthropic_message()},
        start,
        *(
            {
                "type": "content_block_delta",
                **place,
                "delta": {"type": "input_json_delta", "partial_json": piece},
            }
            for piece, place in pieces
        ),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_stop"},
    ]
    return "".join(sse(event, event=event["type"]) for event in events)


@pytest.mark.parametrize("second", [{"index": "0"}, {"index": 0.0}], ids=repr)
def test_anthropic_block_pieces_meet_whatever_the_spelling_of_the_index(
    tmp_path: Path, second: dict[str, Any]
) -> None:
    config = {**INSPECT_REDACTING, "target": {"type": "anthropic"}}
    with gateway_in_front(tmp_path, config) as gw:
        events = _anthropic_events(_tool_block_wire(second), gw)
    joined = "".join(
        event.delta.partial_json for event in events if event.type == "content_block_delta"
    )
    assert json.loads(joined) == {"to": REDACTED}


@pytest.mark.parametrize("second", [{}, {"index": None}, {"index": "00"}], ids=repr)
def test_anthropic_block_piece_without_a_readable_index_stops_the_stream(
    tmp_path: Path, second: dict[str, Any]
) -> None:
    """A client reads a missing block index as block 0 (``Array.prototype.at``)."""
    config = {**INSPECT_REDACTING, "target": {"type": "anthropic"}}
    with gateway_in_front(tmp_path, config) as gw:
        events = _anthropic_events(_tool_block_wire(second), gw)
        (event,) = _stream_events(gw)
    pieces = [e.delta.partial_json for e in events if e.type == "content_block_delta"]
    assert "jane.doe" not in "".join(pieces)
    assert event["reason"] == "stream_inspection_error"


# -- Gemini's candidates and thought flag ----------------------------------------------------

GEMINI = route("gemini", "/v1beta/models/g:streamGenerateContent")


def _gemini_frame(second: dict[str, Any]) -> str:
    """A chunk of two candidates: the first says a word, the second carries ``second``."""
    first = {"index": 0, "content": {"role": "model", "parts": [{"text": "Hi. "}]}}
    return sse({"candidates": [first, second], "modelVersion": "g"})


def _second_candidate(index: Any, part: dict[str, Any]) -> dict[str, Any]:
    return {"index": index, "content": {"role": "model", "parts": [part]}}


async def _gemini(runtime: Runtime, wire: str) -> tuple[str, StreamInspector]:
    """The answer text of candidate 1 as a client joins it (by candidate index, its parts
    not flagged ``thought``, chunk after chunk), and the inspector of a request that asked
    for several candidates."""
    inspector = StreamInspector(runtime, GEMINI, mode="enforce", several_choices=True)
    out = await collect(inspector.run(chunked(wire.encode(), 64)))
    text = ""
    for frame in read_sse(out):
        for candidate in json.loads(frame.data or "{}").get("candidates", []):
            if int(candidate["index"]) == 1:
                parts = candidate["content"]["parts"]
                text += "".join(part["text"] for part in parts if not part.get("thought"))
    return text, inspector


@pytest.mark.anyio
@pytest.mark.parametrize(
    "second",
    [
        _second_candidate("1", {"text": "example.com thanks"}),
        _second_candidate(1, {"text": "example.com thanks", "thought": False}),
    ],
    ids=["index-spelled-as-text", "thought-missing-then-false"],
)
async def test_gemini_candidate_text_meets_whatever_the_spelling_of_its_names(
    memory_runtime: Runtime, second: dict[str, Any]
) -> None:
    first = _second_candidate(1, {"text": "Contact: jane.doe@"})
    text, inspector = await _gemini(memory_runtime, _gemini_frame(first) + _gemini_frame(second))
    assert text == f"Contact: {REDACTED} thanks"
    assert not inspector.blocked


@pytest.mark.anyio
@pytest.mark.parametrize("flag", ["false", 0, "true"], ids=repr)
async def test_gemini_thought_flag_clients_read_differently_stops_the_stream(
    memory_runtime: Runtime, flag: Any
) -> None:
    """pydantic reads ``"false"`` and ``0`` as ``False``, JavaScript ``"false"`` as true."""
    first = _second_candidate(1, {"text": "Contact: jane.doe@"})
    second = _second_candidate(1, {"text": "example.com thanks", "thought": flag})
    text, inspector = await _gemini(memory_runtime, _gemini_frame(first) + _gemini_frame(second))
    assert "jane.doe" not in text
    assert inspector.reason == "stream_inspection_error"
