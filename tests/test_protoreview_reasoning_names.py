# SPDX-License-Identifier: Apache-2.0
"""A chat stream's reasoning is one text under both of its names.

OpenAI-compatible servers stream a model's reasoning as ``delta.reasoning_content``
(DeepSeek, llama.cpp, older vLLM) or ``delta.reasoning`` (newer vLLM, OpenRouter, Ollama),
and newer vLLM sends both with the same text. Clients read ``reasoning_content or
reasoning``: a value cut between the two names is one value to them, so both names go
through one window, a piece under both is taken once, and a frame naming two different
texts stops the stream.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.stream_fixtures import EMAIL, INSPECT_REDACTING, REDACTED, openai_choices_sse, sse
from tests.upstream_server import Reply, SharedGateways

NAMES = ("reasoning_content", "reasoning")


def _wire(*deltas: dict[str, Any]) -> list[bytes]:
    frames = [openai_choices_sse([{"index": 0, "delta": d, "finish_reason": None}]) for d in deltas]
    frames += [openai_choices_sse([{"index": 0, "delta": {}, "finish_reason": "stop"}])]
    return ["".join([*frames, sse("[DONE]")]).encode()]


def _readings(shared_gateway: SharedGateways, wire: list[bytes]) -> dict[str, str]:
    """The reasoning as a client reading either name first reads it, and as one reading a
    single name does."""
    gateway = shared_gateway(INSPECT_REDACTING)
    gateway.upstream.queue(Reply(wire=wire))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "mail it"}], stream=True
    )
    read = dict.fromkeys(("either", *NAMES), "")
    for chunk in stream:
        for choice in chunk.choices:
            extra = choice.delta.model_extra or {}
            read["either"] += extra.get("reasoning_content") or extra.get("reasoning") or ""
            for name in NAMES:
                read[name] += extra.get(name) or ""
    return read


@pytest.mark.parametrize("first", NAMES)
@pytest.mark.parametrize("empty", [False, True])
def test_a_value_cut_between_the_two_names_is_found(
    shared_gateway: SharedGateways, first: str, empty: bool
) -> None:
    """The second frame names the other text, alone or beside an empty first one (which a
    client reading the first name before the other skips)."""
    second = NAMES[1 - NAMES.index(first)]
    later = {second: "example.com now", **({first: ""} if empty else {})}
    wire = _wire({"role": "assistant", first: "Contact jane.doe@"}, later)
    assert _readings(shared_gateway, wire)["either"] == f"Contact {REDACTED} now"


def test_a_text_under_both_names_is_read_once(shared_gateway: SharedGateways) -> None:
    """vLLM's frames: the same piece under both names. Each reading gets the protected text
    once, held text included."""
    pieces = ("Contact jane.", "doe@exam", "ple.com now")
    read = _readings(shared_gateway, _wire(*({name: p for name in NAMES} for p in pieces)))
    assert read == dict.fromkeys(read, f"Contact {REDACTED} now")


def test_different_texts_under_the_two_names_stop_the_stream(
    shared_gateway: SharedGateways,
) -> None:
    wire = _wire(
        {"reasoning_content": "Contact jane.doe@", "reasoning": "Contact "},
        {"reasoning_content": "", "reasoning": "example.com now"},
    )
    read = _readings(shared_gateway, wire)
    assert not any(EMAIL.partition("@")[2] in text for text in read.values()), read
