# SPDX-License-Identifier: Apache-2.0
"""A frame that finishes a choice (or ends the stream) comes after all that choice's text.

A window holds the end of each streamed text back. The frame that finishes a choice is
preceded by what that choice's windows hold, whichever position the choice has in the
frame's ``choices``, and a text that the finishing frame itself continues takes its held
text in that frame: sent before it, the held start of a value would leave before the
window saw the value's end. Read with the official clients through the real gateway.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ollama
import openai
import pytest

from tests.stream_fixtures import (
    EMAIL,
    INSPECT_REDACTING,
    REDACTED,
    openai_choices_sse,
    sse,
)
from tests.upstream_server import Reply, gateway_in_front


def _choice(index: int, delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "finish_reason": reason}


def _call(piece: str, *, opening: bool = False) -> dict[str, Any]:
    """A delta carrying a piece of tool call 0's arguments (the first names the call)."""
    call: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
    if opening:
        call.update(id="call_0", type="function")
        call["function"]["name"] = "send"
    return {"tool_calls": [call]}


def _read_choices(tmp_path: Path, frames: list[str]) -> tuple[list[str], list[str]]:
    """Each choice's answer and tool-call arguments as the openai client adds them up from
    the gateway in front of an upstream streaming ``frames`` to a request for two answers;
    fails on a piece of a choice after the chunk that finished it."""
    answers, arguments = ["", ""], ["", ""]
    finished = [False, False]
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        gw.upstream.queue(Reply(wire=["".join(frames).encode()]))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "twice"}], stream=True, n=2
        )
        for chunk in stream:
            for choice in chunk.choices:
                calls = choice.delta.tool_calls or ()
                piece = (choice.delta.content or "") + "".join(
                    (call.function.arguments or "") if call.function else "" for call in calls
                )
                assert not (finished[choice.index] and piece), "text after the choice finished"
                answers[choice.index] += choice.delta.content or ""
                for call in calls:
                    arguments[choice.index] += (
                        (call.function.arguments or "") if call.function else ""
                    )
                finished[choice.index] = choice.finish_reason is not None
    assert finished == [True, True]
    return answers, arguments


def test_a_later_choice_finishing_beside_the_first_gets_its_text_before_its_finish(
    tmp_path: Path,
) -> None:
    """Choice 1 finishes in a frame whose first element is choice 0, still going on."""
    frames = [
        openai_choices_sse(
            [
                _choice(0, {"role": "assistant", "content": "Hello there"}),
                _choice(1, {"role": "assistant", "content": f"write to {EMAIL} ok"}),
            ]
        ),
        openai_choices_sse([_choice(0, {"content": " and more"}), _choice(1, {}, "stop")]),
        openai_choices_sse([_choice(0, {}, "stop")]),
        sse("[DONE]"),
    ]
    answers, _arguments = _read_choices(tmp_path, frames)
    assert answers == ["Hello there and more", f"write to {REDACTED} ok"]


def test_two_choices_finishing_in_one_frame_each_get_their_text_before_it(
    tmp_path: Path,
) -> None:
    frames = [
        openai_choices_sse(
            [
                _choice(0, {"role": "assistant", "content": "No address here."}),
                _choice(1, {"role": "assistant", "content": f"write to {EMAIL}"}),
            ]
        ),
        openai_choices_sse([_choice(0, {}, "stop"), _choice(1, {}, "stop")]),
        sse("[DONE]"),
    ]
    answers, _arguments = _read_choices(tmp_path, frames)
    assert answers == ["No address here.", f"write to {REDACTED}"]


ARGUMENTS = json.dumps({"to": EMAIL})
CUT = ARGUMENTS.index("@") - 2


@pytest.mark.parametrize(
    ("frames", "answers", "arguments"),
    [
        pytest.param(
            [
                openai_choices_sse(
                    [
                        _choice(0, {"role": "assistant", "content": "Hi"}),
                        _choice(1, {"role": "assistant", "content": "write to jane.d"}),
                    ]
                ),
                openai_choices_sse([_choice(1, {"content": "oe@example.com ok"}, "stop")]),
                openai_choices_sse([_choice(0, {}, "stop")]),
                sse("[DONE]"),
            ],
            ["Hi", f"write to {REDACTED} ok"],
            ["", ""],
            id="later-choice-answer",
        ),
        pytest.param(
            [
                openai_choices_sse(
                    [_choice(0, {"role": "assistant", "content": "write to jane.d"})]
                ),
                openai_choices_sse([_choice(1, {"role": "assistant", "content": "Hi"})]),
                openai_choices_sse(
                    [_choice(1, {}, "stop"), _choice(0, {"content": "oe@example.com ok"}, "stop")]
                ),
                sse("[DONE]"),
            ],
            [f"write to {REDACTED} ok", "Hi"],
            ["", ""],
            id="first-choice-answer-second-in-the-list",
        ),
        pytest.param(
            [
                openai_choices_sse([_choice(0, {"role": "assistant", **_call("", opening=True)})]),
                openai_choices_sse([_choice(0, _call(ARGUMENTS[:CUT]))]),
                openai_choices_sse([_choice(0, _call(ARGUMENTS[CUT:]), "tool_calls")]),
                openai_choices_sse([_choice(1, {"role": "assistant", "content": "Hi"}, "stop")]),
                sse("[DONE]"),
            ],
            ["", "Hi"],
            [json.dumps({"to": REDACTED}), ""],
            id="first-choice-tool-call",
        ),
        pytest.param(
            [
                openai_choices_sse(
                    [
                        _choice(0, {"role": "assistant", "content": "Hi"}),
                        _choice(1, {"role": "assistant", **_call("", opening=True)}),
                    ]
                ),
                openai_choices_sse([_choice(1, _call(ARGUMENTS[:CUT]))]),
                openai_choices_sse(
                    [_choice(0, {}, "stop"), _choice(1, _call(ARGUMENTS[CUT:]), "tool_calls")]
                ),
                sse("[DONE]"),
            ],
            ["Hi", ""],
            ["", json.dumps({"to": REDACTED})],
            id="later-choice-tool-call",
        ),
        pytest.param(
            [
                openai_choices_sse(
                    [
                        _choice(0, {"role": "assistant", "content": "Hi"}),
                        _choice(1, {"role": "assistant", "content": ""}),
                    ]
                ),
                openai_choices_sse(
                    [
                        _choice(1, {"content": "write to jane.d"}),
                        _choice(1, {"content": "oe@example.com ok"}, "stop"),
                    ]
                ),
                openai_choices_sse([_choice(0, {}, "stop")]),
                sse("[DONE]"),
            ],
            ["Hi", f"write to {REDACTED} ok"],
            ["", ""],
            id="choice-named-twice-in-its-finishing-frame",
        ),
    ],
)
def test_the_last_piece_of_a_text_and_its_finish_in_one_frame_keep_the_value_whole(
    tmp_path: Path, frames: list[str], answers: list[str], arguments: list[str]
) -> None:
    """The address is cut between a frame and the frame that finishes its choice."""
    assert _read_choices(tmp_path, frames) == (answers, arguments)


def test_the_done_frame_carrying_the_end_of_the_thinking_keeps_the_value_whole(
    tmp_path: Path,
) -> None:
    """Ollama's done frame ends the stream and carries the last piece of the thinking."""
    frames = [
        {"model": "m", "response": "", "thinking": "mail jane.d", "done": False},
        {"model": "m", "response": "ok", "thinking": "oe@example.com", "done": True},
    ]
    wire = "".join(json.dumps(frame) + "\n" for frame in frames).encode()
    with gateway_in_front(tmp_path, {"target": {"type": "ollama"}, **INSPECT_REDACTING}) as gw:
        gw.upstream.queue(Reply(wire=[wire]))
        client = ollama.Client(host=gw.url)
        parts = list(client.generate(model="m", prompt="think", stream=True))
    assert parts[-1].done
    assert "".join(part.thinking or "" for part in parts) == f"mail {REDACTED}"
    assert "".join(part.response for part in parts) == "ok"


def test_a_later_completions_choice_finishing_beside_the_first_gets_its_text_before(
    tmp_path: Path,
) -> None:
    def frame(*choices: tuple[int, str, str | None]) -> str:
        listed = [
            {"index": index, "text": text, "logprobs": None, "finish_reason": reason}
            for index, text, reason in choices
        ]
        return sse(
            {"id": "c", "object": "text_completion", "created": 1, "model": "m", "choices": listed}
        )

    wire = [
        frame((0, "Hello there", None), (1, f"write to {EMAIL} ok", None)),
        frame((0, " and more", None), (1, "", "stop")),
        frame((0, "", "stop")),
        sse("[DONE]"),
    ]
    texts, finished = ["", ""], [False, False]
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        gw.upstream.queue(Reply(wire=["".join(wire).encode()]))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        for chunk in client.completions.create(model="m", prompt="twice", stream=True, n=2):
            for choice in chunk.choices:
                assert not (finished[choice.index] and choice.text), "text after its finish"
                texts[choice.index] += choice.text
                finished[choice.index] = choice.finish_reason is not None
    assert texts == ["Hello there and more", f"write to {REDACTED} ok"]
    assert finished == [True, True]
