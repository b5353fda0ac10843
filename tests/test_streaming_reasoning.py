# SPDX-License-Identifier: Apache-2.0
"""A model's streamed reasoning (and refusal) goes through a cross-frame window of its own.

Reasoning models stream their thinking beside the answer, a few characters per frame:
OpenAI-compatible servers in ``delta.reasoning_content`` or ``delta.reasoning``, Anthropic
in ``thinking_delta`` events, Ollama in ``message.thinking`` (chat) or ``thinking``
(generate). A value split across those frames must be found as it is in the answer, and
what each official client puts back together must be the protected reasoning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import ollama
import openai
import pytest

from tests.stream_fixtures import anthropic_message, openai_chunk, sse
from tests.upstream_server import Reply, gateway_in_front

EMAIL = "john.doe@example.com"
CARD = "4111111111111111"
REDACTED = "[REDACTED:email]"
THOUGHT = f"The user wants mail sent to {EMAIL}, so I will draft it."
ANSWER = "Done: the draft is ready."
INSPECT = {
    "streaming": {"requestMode": "inspect"},
    "responseProtection": {"enabled": True},
    "policy": {"actions": {"email": "redact"}},
}


def _chars(text: str) -> list[str]:
    return list(text)


def _wire(frames: list[str]) -> list[bytes]:
    """The stream in pieces of 40 bytes, so frames are cut across reads too."""
    data = "".join(frames).encode()
    return [data[at : at + 40] for at in range(0, len(data), 40)]


def openai_reasoning_stream(field: str, thought: str) -> list[str]:
    def chunk(delta: dict[str, Any], reason: str | None = None) -> str:
        frame = openai_chunk(finish=reason)
        frame["choices"][0]["delta"] = delta
        return sse(frame)

    frames = [chunk({"role": "assistant", "content": ""})]
    if field == "audio":  # an audio answer's transcript: {"audio": {"id", "transcript"}}
        frames += [chunk({"audio": {"id": "a1", "transcript": p}}) for p in _chars(thought)]
    else:
        frames += [chunk({field: piece}) for piece in _chars(thought)]
    frames += [chunk({"content": piece}) for piece in ANSWER.split(" ")]
    frames += [chunk({}, "stop"), sse("[DONE]")]
    return frames


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "refusal", "audio"])
def test_openai_compatible_reasoning_is_windowed(tmp_path: Path, field: str) -> None:
    with gateway_in_front(tmp_path, INSPECT) as gw:
        gw.upstream.queue(Reply(wire=_wire(openai_reasoning_stream(field, THOUGHT))))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "mail it"}], stream=True
        )
        thought, answer = "", ""
        for chunk in stream:
            for choice in chunk.choices:
                extra = choice.delta.model_extra or {}
                piece = getattr(choice.delta, field, None) or extra.get(field)
                if field == "audio" and piece is not None:
                    piece = piece.get("transcript") if isinstance(piece, dict) else piece.transcript
                thought += piece or ""
                answer += choice.delta.content or ""
                assert not (choice.finish_reason and piece), "reasoning after finish"
    assert thought == THOUGHT.replace(EMAIL, REDACTED)
    assert answer == ANSWER.replace(" ", "")


def test_a_card_in_streamed_reasoning_stops_the_stream(tmp_path: Path) -> None:
    thought = f"Card {CARD} looks valid."
    with gateway_in_front(tmp_path, {**INSPECT, "policy": {"actions": {"card": "block"}}}) as gw:
        gw.upstream.queue(Reply(wire=_wire(openai_reasoning_stream("reasoning_content", thought))))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "pay"}], stream=True
        )
        received = "".join(chunk.model_dump_json() for chunk in stream)  # ends without [DONE]
        assert CARD not in received
        assert "1111" not in received.replace(" ", "")
        (event,) = [r for r in gw.audit() if r.get("decision") == "stream_blocked"]
        assert event["summary"]["byType"] == {"card": 1}


def anthropic_thinking_stream(thought: str) -> list[str]:
    def event(kind: str, **data: Any) -> str:
        return sse({"type": kind, **data}, event=kind)

    frames = [
        event("message_start", message=anthropic_message()),
        event("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""}),
    ]
    for piece in _chars(thought):
        frames.append(
            event(
                "content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": piece}
            )
        )
    frames += [
        event(
            "content_block_delta", index=0, delta={"type": "signature_delta", "signature": "c2ln"}
        ),
        event("content_block_stop", index=0),
        event("content_block_start", index=1, content_block={"type": "text", "text": ""}),
        event("content_block_delta", index=1, delta={"type": "text_delta", "text": ANSWER}),
        event("content_block_stop", index=1),
        event("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 9}),
        event("message_stop"),
    ]
    return frames


def test_anthropic_thinking_is_windowed(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {**INSPECT, "target": {"type": "anthropic"}}) as gw:
        gw.upstream.queue(Reply(wire=_wire(anthropic_thinking_stream(THOUGHT))))
        client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
        with client.messages.stream(
            model="claude", max_tokens=64, messages=[{"role": "user", "content": "mail it"}]
        ) as stream:
            final = stream.get_final_message()
    thinking, text = final.content
    assert thinking.type == "thinking"
    assert thinking.thinking == THOUGHT.replace(EMAIL, REDACTED)
    assert text.type == "text"
    assert text.text == ANSWER


def ollama_thinking_stream(where: str, thought: str) -> list[str]:
    def line(done: bool, **fields: Any) -> str:
        frame: dict[str, Any] = {"model": "m", "created_at": "2026-01-01T00:00:00Z", **fields}
        frame["done"] = done
        if done:
            frame["done_reason"] = "stop"
        return json.dumps(frame) + "\n"

    def piece(thinking: str = "", content: str = "") -> dict[str, Any]:
        if where == "chat":
            return {"message": {"role": "assistant", "content": content, "thinking": thinking}}
        return {"response": content, "thinking": thinking}

    lines = [line(False, **piece(thinking=p)) for p in _chars(thought)]
    lines += [line(False, **piece(content=p)) for p in ANSWER.split(" ")]
    final = (
        {"message": {"role": "assistant", "content": ""}} if where == "chat" else {"response": ""}
    )
    lines.append(line(True, **final))
    return lines


@pytest.mark.parametrize("where", ["chat", "generate"])
def test_ollama_thinking_is_windowed(tmp_path: Path, where: str) -> None:
    with gateway_in_front(tmp_path, {**INSPECT, "target": {"type": "ollama"}}) as gw:
        gw.upstream.queue(
            Reply(
                wire=_wire(ollama_thinking_stream(where, THOUGHT)),
                headers={"content-type": "application/x-ndjson"},
            )
        )
        client = ollama.Client(host=gw.url)
        if where == "chat":
            messages = [{"role": "user", "content": "mail it"}]
            chats = list(client.chat(model="m", messages=messages, stream=True))
            done = chats[-1].done
            thought = "".join(part.message.thinking or "" for part in chats)
            answer = "".join(part.message.content or "" for part in chats)
        else:
            generated = list(client.generate(model="m", prompt="mail it", stream=True))
            done = generated[-1].done
            thought = "".join(part.thinking or "" for part in generated)
            answer = "".join(part.response for part in generated)
    assert thought == THOUGHT.replace(EMAIL, REDACTED)
    assert answer == ANSWER.replace(" ", "")
    assert done
