# SPDX-License-Identifier: Apache-2.0
"""The same shapes end to end, through the gateway and the official clients: choice 0 second
in a frame, de-tokenization inside reasoning, and a secret whose key and value sit in two
adjacent request parts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.stream_fixtures import anthropic_message, openai_choices_sse, sse
from tests.upstream_server import Reply, gateway_in_front

EMAIL = "john.doe@example.com"
INSPECT = {
    "streaming": {"requestMode": "inspect"},
    "responseProtection": {"enabled": True},
    "policy": {"actions": {"email": "redact"}},
}


_chunk = openai_choices_sse


def test_openai_sdk_choice0_second_in_frame(tmp_path: Path) -> None:
    wire = (
        _chunk(
            [
                {"index": 1, "delta": {"role": "assistant", "content": ""}, "finish_reason": None},
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": "Mail john.doe@"},
                    "finish_reason": None,
                },
            ]
        )
        + _chunk([{"index": 0, "delta": {"content": "example.com now"}, "finish_reason": None}])
        + _chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        + _chunk([{"index": 1, "delta": {}, "finish_reason": "stop"}])
        + sse("[DONE]")
    ).encode()
    with gateway_in_front(tmp_path, INSPECT) as gw:
        gw.upstream.queue(Reply(wire=[wire]))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True, n=2
        )
        texts: dict[int, str] = {}
        for chunk in stream:
            for choice in chunk.choices:
                texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    assert EMAIL not in texts.get(0, ""), texts


def _anthropic_wire(events: list[dict[str, Any]]) -> bytes:
    return "".join(sse(e, event=e["type"]) for e in events).encode()


def _message_start() -> dict[str, Any]:
    return {"type": "message_start", "message": anthropic_message()}


def _anthropic_final(gw: Any, wire: bytes) -> Any:
    gw.upstream.queue(Reply(wire=[wire]))
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    with client.messages.stream(
        model="claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        return stream.get_final_message()


def test_detokenized_marker_in_reasoning_and_other_value_still_redacted(tmp_path: Path) -> None:
    """detokenizeResponses: the request's own marker, cut across reasoning frames, comes
    back as the client's value, while another address cut across the same reasoning frames
    is still redacted."""
    other = "alice.roe@example.org"
    config = {
        **INSPECT,
        "policy": {"mode": "enforce", "actions": {"email": "tokenize"}},
        "tokenVault": {"detokenizeResponses": True},
    }
    with gateway_in_front(tmp_path, config) as gw:

        def wire() -> Iterator[bytes]:
            prompt = gw.upstream.last.json()["messages"][0]["content"]
            marker = prompt[prompt.index("[TOKEN:") : prompt.index("]") + 1]
            thought = f"send {marker} a copy and cc {other} too"
            frames = [_chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}])]
            frames += [
                _chunk([{"index": 0, "delta": {"reasoning_content": thought[i : i + 3]}}])
                for i in range(0, len(thought), 3)
            ]
            frames += [
                _chunk([{"index": 0, "delta": {"content": "ok"}}]),
                _chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
                sse("[DONE]"),
            ]
            yield "".join(frames).encode()

        gw.upstream.queue(Reply(wire=wire()))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"mail {EMAIL}"}], stream=True
        )
        thought = ""
        for chunk in stream:
            for choice in chunk.choices:
                thought += (choice.delta.model_extra or {}).get("reasoning_content") or ""
    assert other not in thought, thought
    assert EMAIL in thought, thought  # the client's own value is restored (not a leak)
    assert json.dumps(thought)


def test_openai_sdk_request_secret_key_and_value_in_adjacent_parts(tmp_path: Path) -> None:
    """A chat request whose user message is two text parts, "my password=" and the value, is
    blocked as the same text in one part is; nothing reaches the upstream."""
    value = "Tr0ub4dor&3xyz"
    with gateway_in_front(tmp_path, INSPECT) as gw:
        gw.upstream.queue(Reply(text="ok"))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        parts = [{"type": "text", "text": "my password="}, {"type": "text", "text": value}]
        with pytest.raises(openai.PermissionDeniedError):  # 403 haechi_policy_block
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": parts}])
        assert gw.upstream.received == []


def _text_block_end(text: str) -> list[dict[str, Any]]:
    """The last delta of text block 0, then the events that end it and the message."""
    return [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 3},
        },
        {"type": "message_stop"},
    ]


def _final_block_texts(tmp_path: Path, events: list[dict[str, Any]]) -> list[str]:
    """The text of each block of the message the anthropic SDK builds from ``events``."""
    with gateway_in_front(tmp_path, {**INSPECT, "target": {"type": "anthropic"}}) as gw:
        message = _anthropic_final(gw, _anthropic_wire(events))
    return [block.text for block in message.content]


def test_anthropic_sdk_message_start_content_joined_with_deltas(tmp_path: Path) -> None:
    """Text already in message_start's content (the API sends none; another server may):
    the SDK adds the block's deltas to it, so it goes through the block's window."""
    opening = _message_start()
    opening["message"]["content"] = [{"type": "text", "text": "Mail john.doe@"}]
    events = [
        opening,
        *_text_block_end("example.com ok"),
    ]
    assert _final_block_texts(tmp_path, events) == ["Mail [REDACTED:email] ok"]


def test_anthropic_sdk_block_start_text_joined_with_deltas(tmp_path: Path) -> None:
    """A text block whose content_block_start already carries the start of an address (the
    API sends it empty; another server may not): the SDK's final message has one block, with
    the address redacted."""
    events = [
        _message_start(),
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": "Mail john.doe@ex"},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a"}},
        *_text_block_end("mple.com ok"),
    ]
    assert _final_block_texts(tmp_path, events) == ["Mail [REDACTED:email] ok"]
