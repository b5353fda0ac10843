# SPDX-License-Identifier: Apache-2.0
"""Raw upstream byte streams, chunked at will, and readers of what the inspector sent.

The gateway tests get realistic streams from ``tests/upstream_server.py``; these builders
give byte-exact control instead (frame boundaries, CRLF, one byte per network chunk), which
is what framing and ordering tests need.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from haechi.protocols import Route, adapter_for
from haechi.streaming import Frame, NdjsonParser, SseParser
from tests.upstream_server import Reply, gateway_in_front

EMAIL = "jane.doe@example.com"
REDACTED = "[REDACTED:email]"
#: Gateway settings under which streamed answers are inspected and addresses redacted.
INSPECT_REDACTING: Mapping[str, Any] = {
    "streaming": {"requestMode": "inspect"},
    "responseProtection": {"enabled": True},
    "policy": {"actions": {"email": "redact"}},
}

__all__ = [
    "EMAIL",
    "INSPECT_REDACTING",
    "REDACTED",
    "anthropic_sse",
    "chunked",
    "collect",
    "delta_text",
    "gemini_sse",
    "nested_arguments",
    "ollama_ndjson",
    "openai_sse",
    "read_ndjson",
    "read_sse",
    "route",
    "sse",
    "unnested_argument",
]


def route(adapter: str, path: str) -> Route:
    """The route the gateway would classify ``POST path`` as."""
    return adapter_for(adapter).classify("POST", path)


def sse(data: Any, *, event: str | None = None, newline: str = "\n") -> str:
    """One SSE frame; ``data`` that is not a string is written as JSON."""
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}{newline}" if event else ""
    body = newline.join(f"data: {line}" for line in payload.split("\n"))
    return f"{head}{body}{newline}{newline}"


def openai_chunk(content: str | None = None, *, finish: str | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk``."""
    delta: dict[str, Any] = {} if content is None else {"content": content}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def openai_choices_sse(choices: list[dict[str, Any]]) -> str:
    """One SSE frame of a ``chat.completion.chunk`` carrying exactly ``choices``."""
    return sse({**openai_chunk(), "choices": choices})


def anthropic_message() -> dict[str, Any]:
    """The ``message`` of an Anthropic ``message_start`` event, before any content."""
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }


def openai_sse(deltas: Iterable[str], *, newline: str = "\n", done: bool = True) -> bytes:
    """An OpenAI chat stream: a role frame, one frame per delta, a finish frame, ``[DONE]``."""
    frames = [sse({**openai_chunk(""), "choices": [_role()]}, newline=newline)]
    frames += [sse(openai_chunk(piece), newline=newline) for piece in deltas]
    frames.append(sse(openai_chunk(finish="stop"), newline=newline))
    if done:
        frames.append(sse("[DONE]", newline=newline))
    return "".join(frames).encode()


def openai_tool_sse(
    calls: Mapping[int, tuple[str, Sequence[str]]], *, finish: bool = True
) -> bytes:
    """An OpenAI chat stream calling tools: ``calls`` maps a tool call's index to its name and
    the pieces of its arguments, one piece per frame, the calls' frames interleaved; then a
    ``finish_reason: "tool_calls"`` frame (unless ``finish`` is false) and ``[DONE]``."""

    def chunk(delta: dict[str, Any], reason: str | None = None) -> str:
        frame = openai_chunk(finish=reason)
        frame["choices"][0]["delta"] = delta
        return sse(frame)

    frames = [chunk({"role": "assistant", "content": None})]
    for index, (name, _pieces) in calls.items():
        opening = {"index": index, "id": f"call_{index}", "type": "function"}
        frames.append(
            chunk({"tool_calls": [{**opening, "function": {"name": name, "arguments": ""}}]})
        )
    for turn in range(max((len(pieces) for _name, pieces in calls.values()), default=0)):
        for index, (_name, pieces) in calls.items():
            if turn < len(pieces):
                call = {"index": index, "function": {"arguments": pieces[turn]}}
                frames.append(chunk({"tool_calls": [call]}))
    if finish:
        frames.append(chunk({}, "tool_calls"))
    frames.append(sse("[DONE]"))
    return "".join(frames).encode()


def openai_tool_arguments(wire: bytes) -> dict[int, str]:
    """The arguments a client adds up from an OpenAI tool-call stream, by tool call."""
    arguments: dict[int, str] = {}
    for frame in read_sse(wire):
        if frame.data in (None, "[DONE]"):
            continue
        for call in json.loads(frame.data)["choices"][0]["delta"].get("tool_calls", ()):
            piece = call["function"].get("arguments", "")
            arguments[call["index"]] = arguments.get(call["index"], "") + piece
    return arguments


def nested_arguments(value: str, depth: int) -> str:
    """Tool-call arguments holding ``value`` ``depth`` strings deep: ``{"password": value}``
    at depth 1, and at each further depth that document as the string ``payload`` of
    another (JSON in a string in JSON in a string...)."""
    arguments = json.dumps({"password": value})
    for _ in range(depth - 1):
        arguments = json.dumps({"payload": arguments})
    return arguments


def unnested_argument(arguments: str, depth: int) -> Any:
    """What a tool reads as the password in :func:`nested_arguments`, decoding every level."""
    for _ in range(depth - 1):
        arguments = json.loads(arguments)["payload"]
    return json.loads(arguments)["password"]


def _role() -> dict[str, Any]:
    return {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}


def anthropic_sse(deltas: Sequence[str], *, newline: str = "\n") -> bytes:
    """An Anthropic Messages stream with a ``ping`` after the first delta."""

    def event(kind: str, **data: Any) -> str:
        return sse({"type": kind, **data}, event=kind, newline=newline)

    frames = [
        event("message_start", message={"id": "msg_1", "type": "message", "content": []}),
        event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
    ]
    for number, piece in enumerate(deltas):
        frames.append(
            event("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})
        )
        if number == 0:
            frames.append(event("ping"))
    frames += [
        event("content_block_stop", index=0),
        event("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 3}),
        event("message_stop"),
    ]
    return "".join(frames).encode()


def ollama_ndjson(deltas: Iterable[str], *, newline: str = "\n") -> bytes:
    """An Ollama ``/api/chat`` stream ending with its ``done: true`` frame."""

    def line(content: str, done: bool) -> str:
        frame = {"model": "m", "message": {"role": "assistant", "content": content}, "done": done}
        if done:
            frame["done_reason"] = "stop"
        return json.dumps(frame) + newline

    return ("".join(line(piece, False) for piece in deltas) + line("", True)).encode()


def gemini_sse(deltas: Sequence[str], *, newline: str = "\r\n") -> bytes:
    """A Gemini ``streamGenerateContent?alt=sse`` stream (CRLF, no end marker)."""
    frames = []
    for number, piece in enumerate(deltas):
        candidate: dict[str, Any] = {"content": {"parts": [{"text": piece}], "role": "model"}}
        if number == len(deltas) - 1:
            candidate["finishReason"] = "STOP"
        frames.append(sse({"candidates": [candidate], "modelVersion": "g"}, newline=newline))
    return "".join(frames).encode()


async def chunked(wire: bytes, sizes: int | Sequence[int] = 1) -> AsyncIterator[bytes]:
    """Yield ``wire`` in pieces: all of ``sizes`` bytes, or the given sizes in turn."""
    position = 0
    turn = 0
    while position < len(wire):
        size = sizes if isinstance(sizes, int) else sizes[turn % len(sizes)]
        turn += 1
        yield wire[position : position + max(1, size)]
        position += max(1, size)


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    """Everything an async byte iterator yields, joined."""
    return b"".join([chunk async for chunk in chunks])


def read_sse(wire: bytes) -> list[Frame]:
    """Parse sent SSE bytes back into frames."""
    parser = SseParser(1 << 24)
    return [*parser.feed(wire), *parser.finish()]


def read_ndjson(wire: bytes) -> list[Any]:
    """Parse sent NDJSON bytes into JSON values."""
    parser = NdjsonParser(1 << 24)
    return [json.loads(frame.data or "") for frame in (*parser.feed(wire), *parser.finish())]


def delta_text(frames: Iterable[Any], path: Sequence[str | int]) -> str:
    """Concatenate the text at ``path`` of JSON frames (SSE frames or parsed values)."""
    out = []
    for frame in frames:
        value = frame
        if isinstance(frame, Frame):
            if frame.data is None or frame.data == "[DONE]":
                continue
            value = json.loads(frame.data)
        for segment in path:
            try:
                value = value[segment]
            except (KeyError, IndexError, TypeError):
                value = None
                break
        if isinstance(value, str):
            out.append(value)
    return "".join(out)


#: One event of a Responses stream: its type without ``response.``, and its fields.
ResponsesEvent = tuple[str, dict[str, Any]]


def responses_sse(*events: ResponsesEvent, created: list[Any] | None = None) -> str:
    """A Responses stream: ``response.created`` (its response's ``output`` is ``created``,
    none by default), ``events`` (numbered), ``response.completed``."""
    output = created or []
    frames = [
        ("created", {"response": {"id": "resp_1", "status": "in_progress", "output": output}}),
        *events,
        ("completed", {"response": {"id": "resp_1", "status": "completed", "output": []}}),
    ]
    return "".join(
        sse({"type": f"response.{kind}", "sequence_number": number, **data}, event=kind)
        for number, (kind, data) in enumerate(frames)
    )


def streamed_through(
    workdir: Path, config: Mapping[str, Any], path: str, request: Any, wire: str
) -> tuple[bytes, dict[str, Any]]:
    """What a client posting ``request`` to ``path`` gets through a gateway (``config``)
    whose upstream streams ``wire`` as SSE, and the stream's one audit event."""
    with gateway_in_front(workdir, config) as gw:
        gw.upstream.queue(
            Reply(wire=[wire.encode()], headers={"content-type": "text/event-stream"})
        )
        response = httpx.post(f"{gw.url}{path}", json=request, timeout=30)
        (event,) = [e for e in gw.audit() if e["operation"].startswith("response-stream:")]
    assert response.status_code == 200
    return response.content, event
