# SPDX-License-Identifier: Apache-2.0
"""A streamed text that arrives as a number, a boolean or a list stops the stream.

JavaScript clients add a stream's pieces up with ``+``: openai-node's accumulator
(``content = (content || '') + delta.content``, ``arguments += fn.arguments``), the usual
loop over ``chunk.choices[0]?.delta?.content``, anthropic-node's ``text += delta.text``. A
piece that is no string is added as what it spells: ``41111111`` as its digits, a list as
its elements joined by commas (``["jane.doe@"]`` as ``jane.doe@``). The windows read strings
only, so the halves of a card number sent as two numbers were protected each within its
frame, and joined by such a client.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.stream_fixtures import read_sse, sse
from tests.upstream_server import Reply, gateway_in_front

CARD = "4111111111111111"
HALVES = (int(CARD[:8]), int(CARD[8:]))
INSPECT: dict[str, Any] = {
    "streaming": {"requestMode": "inspect"},
    "responseProtection": {"enabled": True},
}


def _spelled(value: Any) -> str:
    """What JavaScript's ``text + value`` adds to ``text`` (``|| ''`` for null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_spelled(item) for item in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def _chat(piece: Any) -> dict[str, Any]:
    return {"id": "c", "choices": [{"index": 0, "delta": {"content": piece}}]}


def _chat_text(chunk: dict[str, Any]) -> Any:
    return chunk["choices"][0]["delta"].get("content")


def _tool(piece: Any) -> dict[str, Any]:
    call = {"index": 0, "function": {"arguments": piece}}
    return {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}


def _tool_text(chunk: dict[str, Any]) -> Any:
    calls = chunk["choices"][0]["delta"].get("tool_calls") or [{"function": {}}]
    return calls[0]["function"].get("arguments")


def _gemini(piece: Any) -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": piece}]}}]}


def _gemini_text(chunk: dict[str, Any]) -> Any:
    return chunk["candidates"][0]["content"]["parts"][0].get("text")


CASES = [
    pytest.param(
        "openai-compatible",
        "/v1/chat/completions",
        _chat,
        _chat_text,
        "data: [DONE]\n\n",
        id="chat",
    ),
    pytest.param(
        "openai-compatible",
        "/v1/chat/completions",
        _tool,
        _tool_text,
        "data: [DONE]\n\n",
        id="tool-call",
    ),
    pytest.param(
        "gemini",
        "/v1beta/models/g:streamGenerateContent?alt=sse",
        _gemini,
        _gemini_text,
        "",
        id="gemini",
    ),
]
PIECES = [
    pytest.param(HALVES, id="numbers"),
    pytest.param(([HALVES[0]], [HALVES[1]]), id="lists"),
    pytest.param((HALVES[0], [HALVES[1]]), id="number-and-list"),
]


@pytest.mark.parametrize("pieces", PIECES)
@pytest.mark.parametrize(("target", "path", "chunk", "text_of", "end"), CASES)
def test_a_text_sent_as_numbers_or_lists_never_reaches_a_javascript_client_joined(
    tmp_path: Path,
    target: str,
    path: str,
    chunk: Callable[[Any], dict[str, Any]],
    text_of: Callable[[dict[str, Any]], Any],
    end: str,
    pieces: tuple[Any, Any],
) -> None:
    wire = sse(chunk("card: ")) + "".join(sse(chunk(piece)) for piece in pieces)
    wire += sse(chunk(" thanks")) + end
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with gateway_in_front(tmp_path, {**INSPECT, "target": {"type": target}}) as gw:
        gw.upstream.queue(
            Reply(wire=[wire.encode()], headers={"content-type": "text/event-stream"})
        )
        response = httpx.post(f"{gw.url}{path}", json=body, timeout=30)
        (event,) = [e for e in gw.audit() if e["operation"].startswith("response-stream:")]
    chunks = [
        json.loads(f.data) for f in read_sse(response.content) if f.data not in (None, "[DONE]")
    ]
    assert CARD not in "".join(_spelled(text_of(chunk)) for chunk in chunks)
    assert event["decision"] == "stream_blocked"
    assert event["reason"] == "stream_inspection_error"


def test_an_anthropic_text_delta_sent_as_numbers_stops_the_stream(tmp_path: Path) -> None:
    def event(kind: str, **data: Any) -> str:
        return sse({"type": kind, **data}, event=kind)

    def delta(text: Any) -> str:
        return event("content_block_delta", index=0, delta={"type": "text_delta", "text": text})

    message = {"id": "m", "type": "message", "role": "assistant", "content": []}
    wire = (
        event("message_start", message=message)
        + event("content_block_start", index=0, content_block={"type": "text", "text": ""})
        + delta("card: ")
        + "".join(delta(half) for half in HALVES)
        + event("content_block_stop", index=0)
        + event("message_stop")
    )
    body = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]}
    with gateway_in_front(tmp_path, {**INSPECT, "target": {"type": "anthropic"}}) as gw:
        gw.upstream.queue(
            Reply(wire=[wire.encode()], headers={"content-type": "text/event-stream"})
        )
        response = httpx.post(f"{gw.url}/v1/messages", json={**body, "stream": True}, timeout=30)
        (audited,) = [e for e in gw.audit() if e["operation"].startswith("response-stream:")]
    frames = [json.loads(f.data) for f in read_sse(response.content) if f.data is not None]
    text = "".join(
        _spelled(frame["delta"].get("text"))
        for frame in frames
        if frame["type"] == "content_block_delta"
    )
    assert CARD not in text
    assert b"message_stop" not in response.content
    assert audited["reason"] == "stream_inspection_error"


def test_an_object_or_null_in_place_of_a_text_is_left_in_its_frame(tmp_path: Path) -> None:
    """An object spells nothing a value could be made of, and null is no text: real
    servers send ``"content": null`` beside a tool call."""
    wire = (
        sse(_chat(None)) + sse(_chat({"kind": "note"})) + sse(_chat("hello")) + "data: [DONE]\n\n"
    )
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with gateway_in_front(tmp_path, INSPECT) as gw:
        gw.upstream.queue(
            Reply(wire=[wire.encode()], headers={"content-type": "text/event-stream"})
        )
        response = httpx.post(f"{gw.url}/v1/chat/completions", json=body, timeout=30)
    chunks = [
        json.loads(f.data) for f in read_sse(response.content) if f.data not in (None, "[DONE]")
    ]
    assert [_chat_text(chunk) for chunk in chunks] == [None, {"kind": "note"}, "", "hello"]
    assert response.content.endswith(b"data: [DONE]\n\n")
