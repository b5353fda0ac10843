# SPDX-License-Identifier: Apache-2.0
"""Streamed texts in unusual but valid frame shapes: choice 0 not first in a frame, choices
or tool calls without an ``index``, Responses deltas without an ``item_id``, reasoning and
answer in the same frames, Ollama thinking up to the done frame. A value cut across frames
must not reach the client."""

from __future__ import annotations

import json
from typing import Any

import pytest

from haechi.runtime import Runtime
from haechi.streaming import StreamInspector
from tests.stream_fixtures import (
    chunked,
    collect,
    openai_choices_sse,
    read_ndjson,
    read_sse,
    route,
    sse,
)

pytestmark = pytest.mark.anyio

EMAIL = "john.doe@example.com"
CHAT = route("openai-compatible", "/v1/chat/completions")
COMPLETIONS = route("openai-compatible", "/v1/completions")
MESSAGES = route("anthropic", "/v1/messages")
RESPONSES = route("openai-compatible", "/v1/responses")
OLLAMA_CHAT = route("ollama", "/api/chat")
OLLAMA_GENERATE = route("ollama", "/api/generate")
GEMINI = route("gemini", "/v1beta/models/g:streamGenerateContent")


async def _run(
    redacting_runtime: Runtime, target: Any, wire: bytes, *, several_choices: bool = False
) -> bytes:
    inspector = StreamInspector(
        redacting_runtime, target, mode="enforce", several_choices=several_choices
    )
    out = await collect(inspector.run(chunked(wire, 7)))
    assert inspector.reason == "stream_inspected", inspector.reason
    return out


_chunk = openai_choices_sse


def _choice_texts(out: bytes, field: str = "content") -> dict[Any, str]:
    """What a client adds up per choice index (a choice without index is choice 0)."""
    texts: dict[Any, str] = {}
    for frame in read_sse(out):
        if frame.data in (None, "[DONE]"):
            continue
        for choice in json.loads(frame.data).get("choices", []):
            index = choice.get("index", 0)
            delta = choice.get("delta", {})
            piece = delta.get(field) if field in delta else choice.get(field)
            if isinstance(piece, str):
                texts[index] = texts.get(index, "") + piece
    return texts


# -- OpenAI chat: choices --------------------------------------------------------------


async def test_choice0_content_not_first_in_frame_choices(redacting_runtime: Runtime) -> None:
    """A frame whose ``choices`` list has choice 1 first and choice 0 second: choice 0's
    content is at ``choices[1].delta.content``, not at the delta path."""
    wire = (
        _chunk(
            [
                {"index": 1, "delta": {"role": "assistant"}, "finish_reason": None},
                {"index": 0, "delta": {"content": "Mail john.doe@"}, "finish_reason": None},
            ]
        )
        + _chunk([{"index": 0, "delta": {"content": "example.com now"}, "finish_reason": None}])
        + _chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        + sse("[DONE]")
    ).encode()
    out = await _run(redacting_runtime, CHAT, wire, several_choices=True)
    texts = _choice_texts(out)
    assert EMAIL not in texts.get(0, ""), texts


async def test_reasoning_of_a_choice_without_index(redacting_runtime: Runtime) -> None:
    """Reasoning streamed by a server whose choices carry no ``index``."""
    frames = [_chunk([{"delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    frames += [
        _chunk([{"delta": {"reasoning_content": piece}, "finish_reason": None}])
        for piece in ("I will mail john.d", "oe@exam", "ple.com today")
    ]
    frames += [_chunk([{"delta": {}, "finish_reason": "stop"}]), sse("[DONE]")]
    out = await _run(redacting_runtime, CHAT, "".join(frames).encode())
    texts = _choice_texts(out, "reasoning_content")
    assert EMAIL not in texts.get(0, ""), texts


async def test_tool_call_arguments_without_index(redacting_runtime: Runtime) -> None:
    """Tool-call argument deltas without ``tool_calls[].index`` (some OpenAI-compatible
    servers omit it)."""

    def call(arguments: str, **extra: Any) -> dict[str, Any]:
        return {"tool_calls": [{**extra, "function": {"arguments": arguments}}]}

    frames = [
        _chunk([{"index": 0, "delta": {"role": "assistant", "content": None}}]),
        _chunk(
            [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "send", "arguments": ""},
                            }
                        ]
                    },
                }
            ]
        ),
    ]
    frames += [
        _chunk([{"index": 0, "delta": call(piece)}])
        for piece in ('{"to": "john.d', "oe@exam", 'ple.com"}')
    ]
    frames += [_chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]), sse("[DONE]")]
    out = await _run(redacting_runtime, CHAT, "".join(frames).encode())
    arguments = ""
    for frame in read_sse(out):
        if frame.data in (None, "[DONE]"):
            continue
        for choice in json.loads(frame.data)["choices"]:
            for tool in choice.get("delta", {}).get("tool_calls") or ():
                arguments += tool.get("function", {}).get("arguments", "")
    assert EMAIL not in arguments, arguments


async def test_choice_index_as_string_and_int(redacting_runtime: Runtime) -> None:
    """Choice 0 named once as 0 and once as "0" (JSON clients in JS index both alike)."""
    wire = (
        _chunk([{"index": "0", "delta": {"content": "Mail john.doe@"}, "finish_reason": None}])
        + _chunk([{"index": 0, "delta": {"content": "example.com now"}, "finish_reason": None}])
        + _chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        + sse("[DONE]")
    ).encode()
    out = await _run(redacting_runtime, CHAT, wire)
    joined = "".join(
        (json.loads(f.data)["choices"][0]["delta"].get("content") or "")
        for f in read_sse(out)
        if f.data not in (None, "[DONE]")
    )
    assert EMAIL not in joined, joined


async def test_later_choice_value_with_finish_of_other_in_middle(
    redacting_runtime: Runtime,
) -> None:
    frames = [
        _chunk([{"index": 1, "delta": {"content": "to john."}, "finish_reason": None}]),
        _chunk([{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]),
        _chunk([{"index": 1, "delta": {"content": "doe@exa"}, "finish_reason": None}]),
        _chunk([{"index": 2, "delta": {"content": "x"}, "finish_reason": "stop"}]),
        _chunk([{"index": 1, "delta": {"content": "mple.com!"}, "finish_reason": None}]),
        _chunk([{"index": 1, "delta": {}, "finish_reason": "stop"}]),
        sse("[DONE]"),
    ]
    out = await _run(redacting_runtime, CHAT, "".join(frames).encode(), several_choices=True)
    texts = _choice_texts(out)
    assert all(EMAIL not in t for t in texts.values()), texts


async def test_reasoning_and_content_in_same_frames(redacting_runtime: Runtime) -> None:
    frames = [
        _chunk(
            [
                {
                    "index": 0,
                    "delta": {"content": a, "reasoning_content": b, "reasoning": b},
                    "finish_reason": None,
                }
            ]
        )
        for a, b in (("to john.", "mail jo"), ("doe@exam", "hn.doe@ex"), ("ple.com", "ample.com."))
    ]
    frames += [_chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]), sse("[DONE]")]
    out = await _run(redacting_runtime, CHAT, "".join(frames).encode())
    assert EMAIL.encode() not in out
    for field in ("content", "reasoning_content", "reasoning"):
        assert all(EMAIL not in t for t in _choice_texts(out, field).values())


async def test_completions_choice0_not_first(redacting_runtime: Runtime) -> None:
    def frame(choices: list[dict[str, Any]]) -> str:
        return sse(
            {"id": "c", "object": "text_completion", "created": 1, "model": "m", "choices": choices}
        )

    wire = (
        frame(
            [
                {"index": 1, "text": "", "finish_reason": None},
                {"index": 0, "text": "Mail john.doe@", "finish_reason": None},
            ]
        )
        + frame([{"index": 0, "text": "example.com now", "finish_reason": None}])
        + frame([{"index": 0, "text": "", "finish_reason": "stop"}])
        + sse("[DONE]")
    ).encode()
    out = await _run(redacting_runtime, COMPLETIONS, wire, several_choices=True)
    texts = _choice_texts(out, "text")
    assert EMAIL not in texts.get(0, ""), texts


# -- Anthropic ----------------------------------------------------------------------------


def _anthropic(events: list[dict[str, Any]]) -> bytes:
    return "".join(sse(e, event=e["type"]) for e in events).encode()


def _anthropic_blocks(out: bytes) -> dict[int, str]:
    """Text and thinking per block, as the Anthropic SDK accumulates it (start + deltas)."""
    blocks: dict[int, str] = {}
    for frame in read_sse(out):
        if frame.data is None:
            continue
        event = json.loads(frame.data)
        if event["type"] == "content_block_start":
            block = event["content_block"]
            blocks[event["index"]] = block.get("text", "") + block.get("thinking", "")
        elif event["type"] == "content_block_delta":
            delta = event["delta"]
            blocks[event["index"]] = (
                blocks.get(event["index"], "") + delta.get("text", "") + delta.get("thinking", "")
            )
    return blocks


async def test_anthropic_thinking_deltas_interleaved_blocks(redacting_runtime: Runtime) -> None:
    events = [
        {"type": "message_start", "message": {"id": "m", "type": "message", "content": []}},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": ""},
        },
    ]
    for piece in ("mail jo", "hn.doe@ex", "ample.com", " now"):
        events.append(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": piece},
            }
        )
        events.append({"type": "ping"})
    events += [{"type": "content_block_stop", "index": 0}, {"type": "message_stop"}]
    out = await _run(redacting_runtime, MESSAGES, _anthropic(events))
    assert all(EMAIL not in t for t in _anthropic_blocks(out).values())


def _opened(kind: str, first: str, rest: list[str]) -> list[dict[str, Any]]:
    """A block whose ``content_block_start`` already carries its first piece of text."""
    delta_type = {"text": "text_delta", "thinking": "thinking_delta"}[kind]
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "m", "type": "message", "content": []}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": kind, kind: first}},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": delta_type, kind: piece}}
        for piece in rest
    ]
    return [*events, {"type": "content_block_stop", "index": 0}, {"type": "message_stop"}]


@pytest.mark.parametrize("kind", ["text", "thinking"])
async def test_anthropic_block_start_text_joins_its_deltas(
    redacting_runtime: Runtime, kind: str
) -> None:
    out = await _run(
        redacting_runtime,
        MESSAGES,
        _anthropic(_opened(kind, "Mail john.doe@ex", ["a", "mple.com ok"])),
    )
    text = _anthropic_blocks(out)[0]
    assert text == "Mail [REDACTED:email] ok", text
    starts = [
        json.loads(f.data)
        for f in read_sse(out)
        if f.data is not None and json.loads(f.data)["type"] == "content_block_start"
    ]
    assert len(starts) == 1, starts  # a client adding blocks up sees one block


async def test_anthropic_block_start_text_without_deltas(redacting_runtime: Runtime) -> None:
    out = await _run(
        redacting_runtime, MESSAGES, _anthropic(_opened("text", f"Mail {EMAIL} now", []))
    )
    frames = [(f.meta, f.data) for f in read_sse(out) if f.data is not None]
    text = _anthropic_blocks(out)[0]
    assert text == "Mail [REDACTED:email] now", text
    kinds = [json.loads(data)["type"] for _meta, data in frames]
    assert kinds.count("content_block_start") == 1
    assert kinds.index("content_block_delta") < kinds.index("content_block_stop"), kinds
    for meta, data in frames:  # a carried piece names its own event
        assert meta == (f"event: {json.loads(data)['type']}",), meta


# -- Responses API ------------------------------------------------------------------------


async def test_responses_deltas_without_item_id(redacting_runtime: Runtime) -> None:
    def event(**data: Any) -> str:
        return sse(data, event=data["type"])

    frames = [
        event(type="response.output_text.delta", output_index=0, content_index=0, delta=piece)
        for piece in ("Mail john.d", "oe@exam", "ple.com now")
    ]
    frames.append(event(type="response.completed", response={"id": "r", "status": "completed"}))
    out = await _run(redacting_runtime, RESPONSES, "".join(frames).encode())
    text = "".join(
        json.loads(f.data).get("delta", "")
        for f in read_sse(out)
        if f.data is not None and json.loads(f.data)["type"].endswith(".delta")
    )
    assert EMAIL not in text, text


# -- Ollama -------------------------------------------------------------------------------


def _ndjson(frames: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(f) + "\n" for f in frames).encode()


async def test_ollama_chat_thinking_and_done_frame(redacting_runtime: Runtime) -> None:
    frames = [
        {
            "model": "m",
            "message": {"role": "assistant", "content": "", "thinking": p},
            "done": False,
        }
        for p in ("mail jo", "hn.doe@exam")
    ]
    frames.append(
        {
            "model": "m",
            "message": {"role": "assistant", "content": "", "thinking": "ple.com"},
            "done": True,
        }
    )
    out = await _run(redacting_runtime, OLLAMA_CHAT, _ndjson(frames))
    thinking = "".join(f["message"].get("thinking", "") for f in read_ndjson(out))
    assert EMAIL not in thinking, thinking


async def test_ollama_generate_thinking_then_response_in_done(redacting_runtime: Runtime) -> None:
    frames = [
        {"model": "m", "response": "", "thinking": "mail john.d", "done": False},
        {"model": "m", "response": "x", "thinking": "oe@example.c", "done": False},
        {"model": "m", "response": "y", "thinking": "om", "done": True},
    ]
    out = await _run(redacting_runtime, OLLAMA_GENERATE, _ndjson(frames))
    lines = read_ndjson(out)
    thinking = "".join(f.get("thinking", "") for f in lines)
    assert EMAIL not in thinking, thinking


# -- Gemini -------------------------------------------------------------------------------


def _gemini(candidates: list[dict[str, Any]]) -> str:
    return sse({"candidates": candidates, "modelVersion": "g"})


def _gemini_texts(out: bytes) -> dict[tuple[int, int], str]:
    """Text per (candidate, part position), added up over the frames."""
    texts: dict[tuple[int, int], str] = {}
    for frame in read_sse(out):
        for at, candidate in enumerate(json.loads(frame.data or "{}").get("candidates", [])):
            index = candidate.get("index", at)
            for position, part in enumerate(candidate.get("content", {}).get("parts", [])):
                key = (index, position)
                texts[key] = texts.get(key, "") + part.get("text", "")
    return texts


async def test_gemini_text_of_a_later_part_is_windowed(redacting_runtime: Runtime) -> None:
    def frame(text: str) -> str:
        parts = [{"text": ""}, {"text": text}]
        return _gemini([{"content": {"parts": parts, "role": "model"}}])

    wire = frame("Mail john.doe@") + frame("example.com now")
    out = await _run(redacting_runtime, GEMINI, wire.encode())
    # A client adds up the text of every part of a candidate, in order (a copy that carries
    # held text has only the part it carries).
    text = "".join(_gemini_texts(out).values())
    assert text == "Mail [REDACTED:email] now"


async def test_gemini_text_of_a_later_candidate_is_windowed(redacting_runtime: Runtime) -> None:
    def frame(first: str, second: str) -> str:
        return _gemini(
            [
                {"index": 0, "content": {"parts": [{"text": first}], "role": "model"}},
                {"index": 1, "content": {"parts": [{"text": second}], "role": "model"}},
            ]
        )

    wire = frame("Hello ", "Mail john.doe@") + frame("there.", "example.com now")
    out = await _run(redacting_runtime, GEMINI, wire.encode(), several_choices=True)
    texts = _gemini_texts(out)
    assert texts[(0, 0)] == "Hello there."
    assert texts[(1, 0)] == "Mail [REDACTED:email] now"


async def test_gemini_thought_parts_have_a_window_of_their_own(redacting_runtime: Runtime) -> None:
    """A thinking model streams its thoughts as parts flagged ``thought`` at the same place
    as the answer: the thoughts' held text must come back as thought, never as answer."""

    def frame(text: str, *, thought: bool) -> str:
        part: dict[str, Any] = {"text": text, **({"thought": True} if thought else {})}
        return _gemini([{"content": {"parts": [part], "role": "model"}}])

    wire = (
        frame("Think: mail john.doe@exa", thought=True)
        + frame("mple.com later", thought=True)
        + frame("Answer: ", thought=False)
        + frame("ok", thought=False)
    )
    out = await _run(redacting_runtime, GEMINI, wire.encode())
    thoughts, answer = "", ""
    for f in read_sse(out):
        for part in json.loads(f.data or "{}")["candidates"][0]["content"]["parts"]:
            if part.get("thought"):
                thoughts += part["text"]
            else:
                answer += part["text"]
    assert thoughts == "Think: mail [REDACTED:email] later"
    assert answer == "Answer: ok"


async def test_a_text_field_written_with_escapes_is_still_windowed(
    redacting_runtime: Runtime,
) -> None:
    """Frames are only skipped for a text field whose name they do not contain; a name
    written with ``\\u`` escapes is the same name to JSON, so it is not skipped."""
    pieces = ("I will mail john.d", "oe@exam", "ple.com today")
    key = '"\\u0072easoning_content"'  # "reasoning_content", its first letter escaped
    frames = [
        f'data: {{"choices": [{{"index": 0, "delta": {{{key}: {json.dumps(piece)}}}}}]}}\n\n'
        for piece in pieces
    ]
    frames.append(sse("[DONE]"))
    out = await _run(redacting_runtime, CHAT, "".join(frames).encode())
    texts = _choice_texts(out, "reasoning_content")
    assert texts[0] == "I will mail [REDACTED:email] today"
