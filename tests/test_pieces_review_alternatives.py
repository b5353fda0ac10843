# SPDX-License-Identifier: Apache-2.0
"""A completions answer's ``top_logprobs`` with no ``tokens`` beside it is read as pieces.

Each position's object is keyed by the texts of its alternatives, the first being the
piece (vLLM writes the sampled token first, OpenAI the likeliest), so a client rebuilding
the text from the alternatives reads a value cut across positions. Without a ``tokens``
list, those keys are the only pieces of the answer: they are read joined, and a finding
empties every position. Read with the openai client through the real gateway.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openai

from tests.stream_fixtures import EMAIL, INSPECT_REDACTING, sse
from tests.upstream_server import Reply, gateway_in_front

JSON = {"content-type": "application/json"}
#: The address cut between two positions, each the first (top) alternative of its own.
CUT = [{"mail jane.doe@e": -0.1, "mail": -2.5}, {"xample.com": -0.1}]


def _answer(
    top_logprobs: Sequence[Any], text: str = "ok", reason: str | None = "stop"
) -> dict[str, Any]:
    """A completions answer (or a frame of one) with ``top_logprobs`` and no ``tokens``."""
    logprobs = {"top_logprobs": list(top_logprobs), "token_logprobs": [-0.1] * len(top_logprobs)}
    return {
        "id": "c",
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": reason}],
    }


def _first_keys(positions: Sequence[Any] | None) -> str:
    """The text a client rebuilds from the first alternative of each position."""
    return "".join(next(iter(position), "") for position in positions or () if position)


def _complete(tmp_path: Path, answer: dict[str, Any]) -> Any:
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        gw.upstream.queue(Reply(body=json.dumps(answer).encode(), headers=JSON))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        return client.completions.create(model="m", prompt="hi", logprobs=2)


def test_a_value_cut_across_the_alternatives_of_an_answer_is_found(tmp_path: Path) -> None:
    completion = _complete(tmp_path, _answer(CUT))
    [choice] = completion.choices
    assert choice.text == "ok"
    assert choice.logprobs.top_logprobs == [{}, {}]
    assert EMAIL not in completion.model_dump_json()


def test_alternatives_around_a_null_position_are_read_as_one_text(tmp_path: Path) -> None:
    """vLLM's ``echo`` gives the prompt's first position no alternatives (``null``)."""
    completion = _complete(tmp_path, _answer([None, *CUT]))
    assert completion.choices[0].logprobs.top_logprobs == [None, {}, {}]


def test_alternatives_in_which_nothing_was_found_are_kept(tmp_path: Path) -> None:
    positions = [{"Hello": -0.1, "Hi": -2.0}, {" world": -0.2}]
    completion = _complete(tmp_path, _answer(positions))
    assert completion.choices[0].logprobs.top_logprobs == positions


def test_a_streamed_answer_carries_no_alternatives_that_spell_a_value(tmp_path: Path) -> None:
    """The address is cut between two positions of one frame, and between two frames."""
    wire = [
        sse(_answer(CUT, "mail ", None)),
        sse(_answer(CUT[:1], "x", None)),
        sse(_answer(CUT[1:], "y")),
        sse("[DONE]"),
    ]
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        gw.upstream.queue(Reply(wire=["".join(wire).encode()]))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        stream = client.completions.create(model="m", prompt="hi", logprobs=2, stream=True)
        rebuilt = "".join(
            _first_keys(choice.logprobs.top_logprobs if choice.logprobs else None)
            for chunk in stream
            for choice in chunk.choices
        )
    assert "jane" not in rebuilt
    assert "xample" not in rebuilt
