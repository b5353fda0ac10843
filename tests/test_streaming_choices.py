# SPDX-License-Identifier: Apache-2.0
"""A stream with several choices (``n`` > 1): each choice's text keeps to its choice.

OpenAI-compatible servers asked for ``n`` answers stream them interleaved, each frame
carrying a piece of one choice (named by its ``index``). Each choice's text goes through a
cross-frame window of its own, so a value cut across frames of one choice is found, and
held text is sent back in a frame of the choice it came from.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.stream_fixtures import openai_chunk, sse
from tests.upstream_server import Reply, gateway_in_front

EMAIL = "john.doe@example.com"
REDACTED = "[REDACTED:email]"
TEXTS = (f"First answer: write to {EMAIL} today.", "Second answer, no address in it at all.")
INSPECT = {
    "streaming": {"requestMode": "inspect"},
    "responseProtection": {"enabled": True},
    "policy": {"actions": {"email": "redact"}},
}


def choices_stream(texts: tuple[str, ...], field: str = "content") -> bytes:
    """The texts streamed three characters per frame, the choices' frames interleaved."""

    def chunk(index: int, delta: dict[str, Any], reason: str | None = None) -> str:
        frame = openai_chunk(finish=reason)
        frame["choices"][0]["index"] = index
        frame["choices"][0]["delta"] = delta
        return sse(frame)

    frames = [chunk(index, {"role": "assistant", "content": ""}) for index in range(len(texts))]
    pieces = [[text[at : at + 3] for at in range(0, len(text), 3)] for text in texts]
    for turn in itertools.zip_longest(*pieces):
        frames += [chunk(index, {field: piece}) for index, piece in enumerate(turn) if piece]
    frames += [chunk(index, {}, "stop") for index in range(len(texts))]
    frames.append(sse("[DONE]"))
    return "".join(frames).encode()


@pytest.mark.parametrize("texts", [TEXTS, TEXTS[::-1]], ids=["in-first", "in-second"])
def test_each_choice_gets_its_own_protected_text(tmp_path: Path, texts: tuple[str, ...]) -> None:
    """The address is cut across frames of the first choice, or of the second."""
    got = ["", ""]
    for choice in _stream_choices(tmp_path, choices_stream(texts)):
        got[choice.index] += choice.delta.content or ""
    assert got == [text.replace(EMAIL, REDACTED) for text in texts]


def _stream_choices(tmp_path: Path, wire: bytes) -> Iterator[Any]:
    """Every choice of every chunk the openai client reads from the gateway in front of an
    upstream that answers ``wire``, asked for two answers."""
    with gateway_in_front(tmp_path, INSPECT) as gw:
        gw.upstream.queue(Reply(wire=[wire]))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "twice"}], stream=True, n=2
        )
        for chunk in stream:
            yield from chunk.choices


def _frame(index: int, delta: dict[str, Any], reason: str | None = None) -> str:
    frame = openai_chunk(finish=reason)
    frame["choices"][0]["index"] = index
    frame["choices"][0]["delta"] = delta
    return sse(frame)


def test_a_choice_that_finishes_does_not_release_another_choices_held_text(
    tmp_path: Path,
) -> None:
    # Choice 0 finishes while choice 1 is in the middle of the address.
    wire = [
        _frame(0, {"role": "assistant", "content": "Short."}),
        _frame(1, {"role": "assistant", "content": "write to john.d"}),
        _frame(0, {}, "stop"),
        _frame(1, {"content": "oe@example.com ok"}),
        _frame(1, {}, "stop"),
        sse("[DONE]"),
    ]
    with gateway_in_front(tmp_path, INSPECT) as gw:
        gw.upstream.queue(Reply(wire=["".join(wire).encode()]))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "twice"}], stream=True, n=2
        )
        got = ["", ""]
        finished = [False, False]
        for chunk in stream:
            for choice in chunk.choices:
                assert not finished[choice.index], "text after the choice finished"
                got[choice.index] += choice.delta.content or ""
                finished[choice.index] = choice.finish_reason is not None
    assert got == ["Short.", f"write to {REDACTED} ok"]


def test_completions_choices_keep_their_own_text(tmp_path: Path) -> None:
    def frame(index: int, text: str, reason: str | None = None) -> str:
        choice = {"index": index, "text": text, "logprobs": None, "finish_reason": reason}
        return sse(
            {
                "id": "c",
                "object": "text_completion",
                "created": 1,
                "model": "m",
                "choices": [choice],
            }
        )

    pieces = [[text[at : at + 3] for at in range(0, len(text), 3)] for text in TEXTS]
    wire = [
        frame(index, piece)
        for turn in itertools.zip_longest(*pieces)
        for index, piece in enumerate(turn)
        if piece
    ]
    wire += [frame(0, "", "stop"), frame(1, "", "stop"), sse("[DONE]")]
    with gateway_in_front(tmp_path, INSPECT) as gw:
        gw.upstream.queue(Reply(wire=["".join(wire).encode()]))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        stream = client.completions.create(model="m", prompt="twice", stream=True, n=2)
        got = ["", ""]
        for chunk in stream:
            for choice in chunk.choices:
                got[choice.index] += choice.text
    assert got == [TEXTS[0].replace(EMAIL, REDACTED), TEXTS[1]]


def test_tool_calls_of_two_choices_keep_to_their_choice(tmp_path: Path) -> None:
    """Tool call 0 of choice 0 and tool call 0 of choice 1 are two texts, not one."""
    arguments = {0: json.dumps({"to": EMAIL}), 1: json.dumps({"to": "nobody"})}

    def call(index: int, piece: str, opening: bool = False) -> str:
        tool: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
        if opening:
            tool.update(id=f"call_{index}", type="function")
            tool["function"]["name"] = "send"
        return _frame(index, {"tool_calls": [tool]})

    wire = [_frame(i, {"role": "assistant", "content": None}) for i in (0, 1)]
    wire += [call(i, "", opening=True) for i in (0, 1)]
    pieces = {
        i: [text[at : at + 3] for at in range(0, len(text), 3)] for i, text in arguments.items()
    }
    for turn in itertools.zip_longest(*pieces.values()):
        wire += [call(i, piece) for i, piece in enumerate(turn) if piece]
    wire += [_frame(0, {}, "tool_calls"), _frame(1, {}, "tool_calls"), sse("[DONE]")]
    got = ["", ""]
    for choice in _stream_choices(tmp_path, "".join(wire).encode()):
        for tool in choice.delta.tool_calls or ():
            got[choice.index] += (tool.function.arguments if tool.function else "") or ""
    assert [json.loads(text) for text in got] == [{"to": REDACTED}, {"to": "nobody"}]
