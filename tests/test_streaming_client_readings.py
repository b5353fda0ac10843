# SPDX-License-Identifier: Apache-2.0
"""Streams whose texts two kinds of client read differently, through the gateway and the
official clients.

- OpenAI: the usual loop adds up ``chunk.choices[0].delta.content`` whatever the choice's
  ``index``, while the SDK's accumulator (and any client that asked for several answers)
  adds up by ``index``. A request that did not ask for several answers gets one from any
  real server, so a frame naming another stops the stream.
- Gemini: the google-genai SDK's ``chunk.text`` reads ``candidates[0]`` of every chunk
  whatever its ``index``; a request that did not ask for several candidates
  (``generationConfig.candidateCount``) gets one, so a chunk naming another stops the stream.
- Anthropic: ``text_stream`` (and a loop printing every delta) reads the text of all blocks
  in arrival order, ``get_final_message`` (and a loop adding up by ``index``) each block on
  its own. Real servers send the blocks one after another, where both readings agree; a
  block that continues after a later one began stops the stream.

- A list of texts sent as an object keyed ``"0"`` (``choices``, ``tool_calls``, Gemini's
  ``candidates`` and ``parts``, a message's ``content``) is indexed like a list by
  JavaScript clients, but followed by no window: the stream stops.

Either way the client sees no address, and the stream has one audit event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from haechi.protocols import asks_several_choices
from haechi.runtime import Runtime
from haechi.streaming import StreamInspector
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

ANTHROPIC = {**INSPECT_REDACTING, "target": {"type": "anthropic"}}
#: A window small enough that a few frames show where released text is written.
WINDOW = 32
CHAT = route("openai-compatible", "/v1/chat/completions")
MESSAGES = route("anthropic", "/v1/messages")
STOPPED = ("stream_blocked", "stream_inspection_error")
INSPECTED = ("stream_inspected", "stream_inspected")


def _stream_event(gw: Gateway) -> tuple[str, str]:
    """The decision and reason of the one audit event of the stream."""
    (event,) = [e for e in gw.audit() if str(e.get("operation", "")).startswith("response-stream:")]
    return event["decision"], event["reason"]


# -- OpenAI: one answer asked for -------------------------------------------------------------


def _choice(content: str | None = None, finish: str | None = None, **place: Any) -> Any:
    delta = {} if content is None else {"content": content}
    return {**place, "delta": delta, "finish_reason": finish}


def _chat_wire(*frames: list[dict[str, Any]]) -> str:
    return "".join(openai_choices_sse(choices) for choices in frames) + sse("[DONE]")


def _chat_readings(gw: Gateway, wire: str, **request: Any) -> tuple[str, dict[int, str]]:
    """What the usual loop reads (``choices[0]`` of every chunk), and what a client adding
    the choices up by ``index`` reads."""
    gw.upstream.queue(Reply(wire=[wire.encode()]))
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True, **request
    )
    positional = ""
    by_index: dict[int, str] = {}
    for chunk in stream:
        if chunk.choices:
            positional += chunk.choices[0].delta.content or ""
        for choice in chunk.choices:
            by_index[choice.index] = by_index.get(choice.index, "") + (choice.delta.content or "")
    return positional, by_index


_FIRST_HALF = [_choice("Contact: jane.doe@", index=0)]
_FINISH = [_choice(finish="stop", index=0)]


@pytest.mark.parametrize(
    ("request_fields", "second"),
    [
        ({}, [_choice("example.com thanks", index=1)]),
        ({"n": 1}, [_choice("example.com thanks", index=1)]),
        ({}, [_choice("example.com thanks", index="1")]),
        ({}, [_choice("example.com thanks", index=1), _choice("", index=0)]),
    ],
    ids=["another-choice", "n-1", "index-as-text", "another-choice-first-of-two"],
)
def test_openai_one_answer_stream_naming_another_choice_stops(
    tmp_path: Path, request_fields: dict[str, Any], second: list[dict[str, Any]]
) -> None:
    """The second half of an address in a frame of another choice: the usual loop would
    read it right after the first half. The stream stops there, unread by either client."""
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        wire = _chat_wire(_FIRST_HALF, second, _FINISH)
        positional, by_index = _chat_readings(gw, wire, **request_fields)
        event = _stream_event(gw)
    assert "jane.doe" not in positional
    assert not any("jane.doe" in text for text in by_index.values())
    assert event == STOPPED


@pytest.mark.parametrize("request_fields", [{}, {"n": 1}, {"n": None}], ids=repr)
@pytest.mark.parametrize("place", [{"index": 0}, {}], ids=["index-0", "no-index"])
def test_openai_one_answer_stream_is_unchanged(
    tmp_path: Path, request_fields: dict[str, Any], place: dict[str, Any]
) -> None:
    """A usual one-answer stream (role frame, text, finish, an empty usage chunk) reads the
    same both ways, its split address redacted."""
    role = {**place, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    wire = (
        openai_choices_sse([role])
        + openai_choices_sse([_choice("Contact: jane.doe@", **place)])
        + openai_choices_sse([_choice("example.com thanks", **place)])
        + openai_choices_sse([_choice(finish="stop", **place)])
        + sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": []})
        + sse("[DONE]")
    )
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        positional, by_index = _chat_readings(gw, wire, **request_fields)
        event = _stream_event(gw)
    assert positional == f"Contact: {REDACTED} thanks"
    assert list(by_index.values()) == [positional]
    assert event == INSPECTED


def test_openai_several_answers_keep_a_window_each(tmp_path: Path) -> None:
    """Asked for two answers, interleaved choices are windowed per ``index``, as clients
    that ask for several add them up."""
    wire = _chat_wire(
        [_choice("Contact: jane.doe@", index=0)],
        [_choice("Mail jane.doe@", index=1)],
        [_choice("example.com thanks", index=0)],
        [_choice("example.com now", index=1)],
        [_choice(finish="stop", index=0)],
        [_choice(finish="stop", index=1)],
    )
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        _positional, by_index = _chat_readings(gw, wire, n=2)
        event = _stream_event(gw)
    assert by_index == {0: f"Contact: {REDACTED} thanks", 1: f"Mail {REDACTED} now"}
    assert event == INSPECTED


def _completion_wire(*pieces: tuple[int, str]) -> str:
    def frame(index: int, text: str, finish: str | None = None) -> str:
        choice = {"index": index, "text": text, "finish_reason": finish, "logprobs": None}
        return sse({"id": "cmpl-1", "object": "text_completion", "model": "m", "choices": [choice]})

    frames = "".join(frame(index, text) for index, text in pieces)
    return frames + frame(0, "", "stop") + sse("[DONE]")


def _completion_text(gw: Gateway, wire: str) -> str:
    """What the usual completions loop reads: ``choices[0].text`` of every chunk."""
    gw.upstream.queue(Reply(wire=[wire.encode()]))
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
    stream = client.completions.create(model="m", prompt="hi", stream=True)
    return "".join(chunk.choices[0].text for chunk in stream if chunk.choices)


def test_openai_completions_one_answer_stream_naming_another_choice_stops(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        text = _completion_text(gw, _completion_wire((0, "Contact: jane.doe@"), (1, "example.com")))
        event = _stream_event(gw)
    assert "jane.doe" not in text
    assert event == STOPPED


def test_openai_completions_one_answer_stream_is_unchanged(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        wire = _completion_wire((0, "Contact: jane.doe@"), (0, "example.com thanks"))
        text = _completion_text(gw, wire)
        event = _stream_event(gw)
    assert text == f"Contact: {REDACTED} thanks"
    assert event == INSPECTED


@pytest.mark.anyio
@pytest.mark.parametrize("several_choices", [False, True], ids=["one-answer", "several"])
async def test_choices_that_are_not_a_list_stop_the_stream(
    memory_runtime: Runtime, several_choices: bool
) -> None:
    """A JavaScript client reads ``chunk.choices[0]`` of an object keyed ``"0"`` too; no
    window follows such a text, so the stream stops before any of it is sent."""
    halves = ("Contact: jane.doe@", "example.com thanks")
    wire = "".join(sse({"choices": {"0": {"delta": {"content": half}}}}) for half in halves)
    inspector = StreamInspector(
        memory_runtime, CHAT, mode="enforce", several_choices=several_choices
    )
    out = await collect(inspector.run(chunked((wire + sse("[DONE]")).encode(), 16)))
    assert b"jane.doe" not in out
    assert inspector.reason == "stream_inspection_error"


def test_openai_tool_calls_that_are_not_a_list_stop_the_stream(tmp_path: Path) -> None:
    """A JavaScript client reads ``delta.tool_calls[0]`` of an object keyed ``"0"`` too and
    joins its arguments; no window follows them, so the stream stops before any is sent."""
    halves = ('{"to": "jane.doe@', 'example.com"}')
    calls = [{"0": {"index": 0, "function": {"arguments": half}}} for half in halves]
    wire = _chat_wire(
        *([{"index": 0, "delta": {"tool_calls": call}, "finish_reason": None}] for call in calls),
        [_choice(finish="tool_calls", index=0)],
    )
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        gw.upstream.queue(Reply(wire=[wire.encode()]))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        read = "".join(chunk.to_json() for chunk in stream)
        event = _stream_event(gw)
    assert "jane.doe" not in read
    assert event == STOPPED


GEMINI = route("gemini", "/v1beta/models/g:streamGenerateContent")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "chunk",
    [
        lambda text: {"candidates": {"0": {"content": {"parts": [{"text": text}]}}}},
        lambda text: {"candidates": [{"content": {"parts": {"0": {"text": text}}}}]},
    ],
    ids=["candidates", "parts"],
)
async def test_gemini_lists_that_are_not_lists_stop_the_stream(
    memory_runtime: Runtime, chunk: Any
) -> None:
    """A JavaScript client reads ``candidates[0]`` (and ``parts[0]``) of an object keyed
    ``"0"`` as it reads a list: the stream stops before any of such a text is sent."""
    halves = ("Contact: jane.doe@", "example.com thanks")
    wire = "".join(sse(chunk(half)) for half in halves)
    inspector = StreamInspector(memory_runtime, GEMINI, mode="enforce")
    out = await collect(inspector.run(chunked(wire.encode(), 16)))
    assert b"jane.doe" not in out
    assert inspector.reason == "stream_inspection_error"


# -- Gemini: one candidate asked for ----------------------------------------------------------

GEMINI_CONFIG = {**INSPECT_REDACTING, "target": {"type": "gemini"}}
GEMINI_STREAM = "/v1beta/models/g:streamGenerateContent"


def _candidate(text: str, finish: str | None = None, **place: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {**place, "content": {"role": "model", "parts": [{"text": text}]}}
    if finish is not None:
        candidate["finishReason"] = finish
    return candidate


def _gemini_chunk(candidates: list[dict[str, Any]]) -> dict[str, Any]:
    return {"candidates": candidates, "modelVersion": "g"}


def _gemini_wire(*chunks: list[dict[str, Any]]) -> str:
    """An ``alt=sse`` stream of ``chunks`` (CRLF, as Google sends it), then a usage chunk."""
    usage = {"usageMetadata": {"promptTokenCount": 1, "totalTokenCount": 2}, "modelVersion": "g"}
    frames = [*map(_gemini_chunk, chunks), usage]
    return "".join(sse(frame, newline="\r\n") for frame in frames)


def _gemini_request(**request: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], **request}


def _gemini_readings(gw: Gateway, wire: str, **request: Any) -> tuple[str, dict[int, str]]:
    """What google-genai's ``chunk.text`` adds up (the parts of ``candidates[0]`` of every
    chunk, whatever its ``index``), and what a client adding up candidates by ``index``
    (its position when it has none) reads."""
    gw.upstream.queue(Reply(wire=[wire.encode()]))
    url = f"{gw.url}{GEMINI_STREAM}?alt=sse"
    response = httpx.post(url, json=_gemini_request(**request))
    chunks = [json.loads(frame.data or "{}") for frame in read_sse(response.content)]
    positional = ""
    by_index: dict[int, str] = {}
    for chunk in chunks:
        candidates = chunk.get("candidates") or []
        texts = ["".join(p["text"] for p in c["content"]["parts"]) for c in candidates]
        positional += texts[0] if texts else ""
        for at, (candidate, text) in enumerate(zip(candidates, texts, strict=True)):
            index = int(candidate.get("index", at))
            by_index[index] = by_index.get(index, "") + text
    return positional, by_index


_GEMINI_FIRST_HALF = [_candidate("Contact: jane.doe@", index=0)]


@pytest.mark.parametrize(
    ("request_fields", "second"),
    [
        ({}, [_candidate("example.com thanks", index=1)]),
        ({"generationConfig": {"candidateCount": 1}}, [_candidate("example.com thanks", index=1)]),
        ({"generation_config": {"candidate_count": "1"}}, [_candidate("example.com", index=1)]),
        ({"generationConfig": {"temperature": 2}}, [_candidate("example.com", index=1)]),
        ({}, [_candidate("example.com thanks", index="1")]),
        ({}, [_candidate("example.com thanks", index=1), _candidate("", index=0)]),
        ({}, [_candidate("example.com thanks", index=0), _candidate("", index=1)]),
        ({}, [_candidate("example.com thanks", index="00")]),
    ],
    ids=[
        "another-candidate",
        "count-1",
        "count-1-snake-case",
        "config-without-count",
        "index-as-text",
        "another-candidate-first-of-two",
        "two-candidates",
        "index-read-differently",
    ],
)
def test_gemini_one_candidate_stream_naming_another_stops(
    tmp_path: Path, request_fields: dict[str, Any], second: list[dict[str, Any]]
) -> None:
    """The second half of an address in a chunk naming another candidate (or two of them):
    ``chunk.text`` would read it right after the first half. The stream stops there,
    unread by either client."""
    with gateway_in_front(tmp_path, GEMINI_CONFIG) as gw:
        wire = _gemini_wire(_GEMINI_FIRST_HALF, second, [_candidate("", "STOP", index=0)])
        positional, by_index = _gemini_readings(gw, wire, **request_fields)
        event = _stream_event(gw)
    assert "jane.doe" not in positional
    assert not any("jane.doe" in text for text in by_index.values())
    assert event == STOPPED


@pytest.mark.parametrize(
    "request_fields",
    [{}, {"generationConfig": {"candidateCount": 1}}, {"generationConfig": None}],
    ids=repr,
)
@pytest.mark.parametrize("place", [{"index": 0}, {}, {"index": "0"}, {"index": 0.0}], ids=repr)
def test_gemini_one_candidate_stream_is_unchanged(
    tmp_path: Path, request_fields: dict[str, Any], place: dict[str, Any]
) -> None:
    """A usual one-candidate stream, its candidate 0 written any way clients all read as 0,
    reads the same both ways, its split address redacted."""
    wire = _gemini_wire(
        [_candidate("Contact: jane.doe@", **place)],
        [_candidate("example.com thanks", **place)],
        [_candidate("", "STOP", **place)],
    )
    with gateway_in_front(tmp_path, GEMINI_CONFIG) as gw:
        positional, by_index = _gemini_readings(gw, wire, **request_fields)
        event = _stream_event(gw)
    assert positional == f"Contact: {REDACTED} thanks"
    assert by_index == {0: positional}
    assert event == INSPECTED


@pytest.mark.parametrize(
    "request_fields",
    [
        {"generationConfig": {"candidateCount": 2}},
        {"generation_config": {"candidate_count": "2"}},
        {"generationConfig": {"candidate_count": 2.0}},
        {"generation_config": {"candidateCount": 2}},
    ],
    ids=repr,
)
def test_gemini_several_candidates_keep_a_window_each(
    tmp_path: Path, request_fields: dict[str, Any]
) -> None:
    """Asked for two candidates (in any spelling Gemini's REST API reads), chunks naming
    either, or both, are windowed per candidate, as clients that ask for several add them
    up."""
    wire = _gemini_wire(
        [_candidate("Contact: jane.doe@", index=0)],
        [_candidate("Mail jane.doe@", index=1)],
        [_candidate("example.com thanks", index=0), _candidate("example.com now", index=1)],
        [_candidate("", "STOP", index=0), _candidate("", "STOP", index=1)],
    )
    with gateway_in_front(tmp_path, GEMINI_CONFIG) as gw:
        _positional, by_index = _gemini_readings(gw, wire, **request_fields)
        event = _stream_event(gw)
    assert by_index == {0: f"Contact: {REDACTED} thanks", 1: f"Mail {REDACTED} now"}
    assert event == INSPECTED


def test_gemini_array_stream_naming_another_candidate_is_refused(tmp_path: Path) -> None:
    """Without ``?alt=sse`` the chunks come as one JSON array, inspected as a stream before
    anything is sent: one naming a candidate the request did not ask for refuses the whole
    answer."""
    chunks = [
        _gemini_chunk(_GEMINI_FIRST_HALF),
        _gemini_chunk([_candidate("example.com thanks", "STOP", index=1)]),
    ]
    reply = Reply(body=json.dumps(chunks).encode(), headers={"content-type": "application/json"})
    with gateway_in_front(tmp_path, GEMINI_CONFIG) as gw:
        gw.upstream.queue(reply)
        response = httpx.post(f"{gw.url}{GEMINI_STREAM}", json=_gemini_request())
        event = _stream_event(gw)
    assert response.status_code == 502
    assert response.json()["error"] == "haechi_response_unprotected"
    assert "jane.doe" not in response.text
    assert event == STOPPED


@pytest.mark.parametrize(
    ("body", "several"),
    [
        ({}, False),
        ({"n": None}, False),
        ({"n": 1}, False),
        ({"n": 1.0}, False),
        ({"n": "1"}, False),
        ({"n": True}, False),
        ({"n": "two"}, False),
        ({"n": 2}, True),
        ({"n": 2.0}, True),
        ({"n": "2"}, True),
        ([], False),
    ],
    ids=repr,
)
def test_several_choices_are_what_a_lax_server_reads_as_more_than_one(
    body: Any, several: bool
) -> None:
    assert asks_several_choices(CHAT, body) is several
    assert asks_several_choices(route("openai-compatible", "/v1/completions"), body) is several
    assert asks_several_choices(MESSAGES, {"n": 2}) is False
    assert asks_several_choices(GEMINI, body) is False


@pytest.mark.parametrize(
    ("body", "several"),
    [
        ({"generationConfig": {"candidateCount": 2}}, True),
        ({"generationConfig": {"candidate_count": "2"}}, True),
        ({"generation_config": {"candidateCount": 2.0}}, True),
        ({"generation_config": {"candidate_count": 3}}, True),
        (
            {"generationConfig": {"candidateCount": 1}, "generation_config": {"candidateCount": 2}},
            True,
        ),
        ({"generationConfig": {"candidateCount": 1}}, False),
        ({"generationConfig": {"candidateCount": None}}, False),
        ({"generationConfig": {"candidateCount": True}}, False),
        ({"generationConfig": {"CandidateCount": 2}}, False),
        ({"generationConfig": [2]}, False),
        ({"generationConfig": 2}, False),
        ({"candidateCount": 2}, False),
        ({"n": 2}, False),
    ],
    ids=repr,
)
def test_several_candidates_are_a_candidate_count_above_one(body: Any, several: bool) -> None:
    """Gemini's count is nested, and its REST API reads each level by its JSON (camelCase) or
    proto (snake_case) name."""
    assert asks_several_choices(GEMINI, body) is several
    assert asks_several_choices(route("gemini", "/v1beta/models/g:generateContent"), body) is False
    assert asks_several_choices(CHAT, body) is (body == {"n": 2})


# -- Anthropic: content blocks in order -------------------------------------------------------


def _event(kind: str, **data: Any) -> str:
    return sse({"type": kind, **data}, event=kind)


def _start(index: int, block: dict[str, Any]) -> str:
    return _event("content_block_start", index=index, content_block=block)


def _delta(index: int, kind: str, piece: str) -> str:
    name = {"text_delta": "text", "thinking_delta": "thinking"}.get(kind, "partial_json")
    return _event("content_block_delta", index=index, delta={"type": kind, name: piece})


def _stop(index: int) -> str:
    return _event("content_block_stop", index=index)


def _message(*frames: str) -> str:
    return (
        _event("message_start", message=anthropic_message())
        + "".join(frames)
        + _event("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 9})
        + _event("message_stop")
    )


TEXT = {"type": "text", "text": ""}
THINKING = {"type": "thinking", "thinking": ""}
TOOL = {"type": "tool_use", "id": "toolu_1", "name": "send", "input": {}}
#: Where a ``content_block_delta`` carries its piece of text.
_PIECES = ("text", "thinking", "partial_json")


@dataclass
class _Readings:
    """What each kind of Anthropic client reads from one stream."""

    text: str = ""  # text_stream: every text delta in arrival order
    thinking: str = ""  # a loop printing every thinking delta
    by_index: dict[int, str] = field(default_factory=dict)  # deltas added up by index
    final: Any = None  # get_final_message()


def _anthropic_readings(gw: Gateway, wire: str) -> _Readings:
    gw.upstream.queue(Reply(wire=[wire.encode()]))
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    readings = _Readings()
    with client.messages.stream(
        model="claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        for event in stream:
            if event.type != "content_block_delta":
                continue
            delta = event.delta
            piece = next((getattr(delta, name) for name in _PIECES if hasattr(delta, name)), "")
            if delta.type == "text_delta":
                readings.text += piece
            elif delta.type == "thinking_delta":
                readings.thinking += piece
            readings.by_index[event.index] = readings.by_index.get(event.index, "") + piece
        readings.final = stream.get_final_message()
    return readings


def _block_texts(final: Any) -> list[str]:
    return [
        getattr(block, "text", None) or getattr(block, "thinking", "") for block in final.content
    ]


def test_anthropic_block_continued_after_a_later_one_stops_the_stream(tmp_path: Path) -> None:
    """Block 0 gets ``jane.doe@`` and a pad, block 1 ``example.com`` and a pad, then block 0
    more text: read in arrival order (as the window reads it) there is no address, but the
    window would release block 1's text into block 0's next frame, where a client adding
    up by block reads it right after ``jane.doe@``. The stream stops at that frame."""
    wire = _message(
        _start(0, TEXT),
        _delta(0, "text_delta", "jane.doe@" + " " * WINDOW),
        _start(1, TEXT),
        _delta(1, "text_delta", "example.com" + " " * (WINDOW - 11)),
        _delta(0, "text_delta", "." * WINDOW),
        _stop(0),
        _stop(1),
    )
    config = {**ANTHROPIC, "streaming": {"requestMode": "inspect", "maxMatchBytes": WINDOW}}
    with gateway_in_front(tmp_path, config) as gw:
        readings = _anthropic_readings(gw, wire)
        event = _stream_event(gw)
    seen = [readings.text, *readings.by_index.values(), *_block_texts(readings.final)]
    assert not any(EMAIL in text for text in seen), seen
    assert "example.com" not in "".join(seen)
    assert event == STOPPED


def test_anthropic_blocks_in_order_are_unchanged(tmp_path: Path) -> None:
    """A thinking block (signed), a text block and a tool_use block, one after another,
    each with an address cut across its deltas: every block keeps its own text, with the
    address redacted, and the thinking block its signature."""
    thought = "I will mail jane.doe@example.com now"
    answer = "Contact: jane.doe@example.com thanks"
    arguments = '{"to": "jane.doe@example.com"}'
    signature = {"type": "signature_delta", "signature": "c2ln"}
    wire = _message(
        _start(0, THINKING),
        *(_delta(0, "thinking_delta", thought[i : i + 7]) for i in range(0, len(thought), 7)),
        _event("content_block_delta", index=0, delta=signature),
        _stop(0),
        _start(1, TEXT),
        *(_delta(1, "text_delta", answer[i : i + 5]) for i in range(0, len(answer), 5)),
        _stop(1),
        _start(2, TOOL),
        *(_delta(2, "input_json_delta", arguments[i : i + 6]) for i in range(0, len(arguments), 6)),
        _stop(2),
    )
    with gateway_in_front(tmp_path, ANTHROPIC) as gw:
        readings = _anthropic_readings(gw, wire)
        event = _stream_event(gw)
    thinking, text, tool = readings.final.content
    assert thinking.thinking == thought.replace(EMAIL, REDACTED) == readings.thinking
    assert thinking.signature == "c2ln"
    assert text.text == answer.replace(EMAIL, REDACTED) == readings.text
    assert tool.input == {"to": REDACTED}
    assert readings.by_index[0] == thinking.thinking
    assert json.loads(readings.by_index[2]) == {"to": REDACTED}
    assert event == INSPECTED


def test_anthropic_blocks_without_findings_are_unchanged(tmp_path: Path) -> None:
    thought, answer, arguments = "Let me look that up.", "It is sunny.", '{"city": "Paris"}'
    wire = _message(
        _start(0, THINKING),
        _delta(0, "thinking_delta", thought[:9]),
        _delta(0, "thinking_delta", thought[9:]),
        _stop(0),
        _start(1, TEXT),
        _delta(1, "text_delta", answer[:5]),
        _delta(1, "text_delta", answer[5:]),
        _stop(1),
        _start(2, TOOL),
        _delta(2, "input_json_delta", arguments[:7]),
        _delta(2, "input_json_delta", arguments[7:]),
        _stop(2),
    )
    with gateway_in_front(tmp_path, ANTHROPIC) as gw:
        readings = _anthropic_readings(gw, wire)
        event = _stream_event(gw)
    thinking, text, tool = readings.final.content
    assert (thinking.thinking, text.text, tool.input) == (thought, answer, {"city": "Paris"})
    assert event == INSPECTED


def test_anthropic_value_cut_between_two_blocks_is_read_joined(tmp_path: Path) -> None:
    """``text_stream`` joins two text blocks: an address cut between them is one address to
    it, so the part in the later block is redacted (a client reading the blocks apart sees
    the first part and the redaction). Thinking is read across blocks the same way (a loop
    printing every thinking delta), a tool_use block between them or not."""
    wire = _message(
        _start(0, THINKING),
        _delta(0, "thinking_delta", "I will mail jane.doe@"),
        _stop(0),
        _start(1, TOOL),
        _delta(1, "input_json_delta", "{}"),
        _stop(1),
        _start(2, THINKING),
        _delta(2, "thinking_delta", "example.com today"),
        _stop(2),
        _start(3, TEXT),
        _delta(3, "text_delta", "Contact: jane.doe@"),
        _stop(3),
        _start(4, TEXT),
        _delta(4, "text_delta", "example.com thanks"),
        _stop(4),
    )
    with gateway_in_front(tmp_path, ANTHROPIC) as gw:
        readings = _anthropic_readings(gw, wire)
        event = _stream_event(gw)
    assert readings.text == f"Contact: jane.doe@{REDACTED} thanks"
    assert readings.thinking == f"I will mail jane.doe@{REDACTED} today"
    assert _block_texts(readings.final) == [
        "I will mail jane.doe@",
        "",
        f"{REDACTED} today",
        "Contact: jane.doe@",
        f"{REDACTED} thanks",
    ]
    assert event == INSPECTED


def test_anthropic_block_left_open_keeps_its_text(tmp_path: Path) -> None:
    """A server that leaves out ``content_block_stop``: what the windows hold of a block is
    sent in that block before the next one begins, so each keeps its own text (and a
    thinking block the text its signature is for)."""
    wire = _message(
        _start(0, THINKING),
        _delta(0, "thinking_delta", "First I think."),
        _start(1, THINKING),
        _delta(1, "thinking_delta", "Then I think again."),
        _start(2, TEXT),
        _delta(2, "text_delta", "Done."),
    )
    with gateway_in_front(tmp_path, ANTHROPIC) as gw:
        readings = _anthropic_readings(gw, wire)
        event = _stream_event(gw)
    assert _block_texts(readings.final) == ["First I think.", "Then I think again.", "Done."]
    assert event == INSPECTED


def test_anthropic_message_content_that_is_not_a_list_stops_the_stream(tmp_path: Path) -> None:
    """A JavaScript client reads ``content[0]`` of an object keyed ``"0"`` as block 0 and adds
    the deltas of block 0 to its text, which no window saw joined: the stream stops at the
    ``message_start``, before any of it is sent."""
    message = {**anthropic_message(), "content": {"0": {"type": "text", "text": "jane.doe@"}}}
    wire = (
        _event("message_start", message=message)
        + _delta(0, "text_delta", "example.com thanks")
        + _stop(0)
        + _event("message_stop")
    )
    with gateway_in_front(tmp_path, ANTHROPIC) as gw:
        gw.upstream.queue(Reply(wire=[wire.encode()]))
        client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
        stream = client.messages.create(
            model="claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        read = "".join(event.to_json() for event in stream)
        event = _stream_event(gw)
    assert "jane.doe" not in read
    assert event == STOPPED


@pytest.mark.anyio
@pytest.mark.parametrize("place", [{}, {"index": None}, {"index": "00"}, {"index": -1}], ids=repr)
async def test_anthropic_text_delta_without_a_readable_block_stops_the_stream(
    memory_runtime: Runtime, place: dict[str, Any]
) -> None:
    """A block index clients read differently stops the stream. A JavaScript client reads a
    missing (or null) one as block 0 (``Array.prototype.at``): after block 1, its text would
    continue block 0, right after ``jane.doe@``, while the window read `` and `` between."""
    wire = _message(
        _start(0, TEXT),
        _delta(0, "text_delta", "Contact: jane.doe@"),
        _stop(0),
        _start(1, TEXT),
        _delta(1, "text_delta", " and "),
        _stop(1),
        _event("content_block_delta", **place, delta={"type": "text_delta", "text": "example.com"}),
    )
    inspector = StreamInspector(memory_runtime, MESSAGES, mode="enforce")
    out = await collect(inspector.run(chunked(wire.encode(), 64)))
    deltas = [json.loads(frame.data or "{}") for frame in read_sse(out)]
    block_zero = "".join(
        frame["delta"].get("text", "")
        for frame in deltas
        if frame.get("type") == "content_block_delta" and frame.get("index") in (0, None)
    )
    assert block_zero == "Contact: jane.doe@"
    assert inspector.reason == "stream_inspection_error"
