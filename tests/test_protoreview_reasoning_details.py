# SPDX-License-Identifier: Apache-2.0
"""OpenRouter's ``reasoning_details`` blocks in a chat stream are windowed.

OpenRouter streams a model's reasoning in ``delta.reasoning`` and again as blocks in
``delta.reasoning_details`` (a ``reasoning.text`` block's ``text``, a ``reasoning.summary``
block's ``summary``), a few characters per frame, which clients add up per block ``index``.
An address the model's tokens cut across frames must not reach such a client, not even its
start.
"""

from __future__ import annotations

import openai
import pytest

from tests.stream_fixtures import EMAIL, INSPECT_REDACTING, REDACTED, openai_choices_sse, sse
from tests.upstream_server import Reply, SharedGateways

THOUGHT = f"Contact {EMAIL} now"
PIECES = ("Contact jane.", "doe@exam", "ple.com now")


def _frame(kind: str, field: str, piece: str) -> str:
    block = {"type": kind, field: piece, "format": "unknown", "index": 0}
    delta = {"reasoning": piece, "reasoning_details": [block]}
    return openai_choices_sse([{"index": 0, "delta": delta, "finish_reason": None}])


@pytest.mark.parametrize(
    ("kind", "field"), [("reasoning.text", "text"), ("reasoning.summary", "summary")]
)
def test_a_value_cut_across_reasoning_details_frames_is_redacted(
    shared_gateway: SharedGateways, kind: str, field: str
) -> None:
    frames = [_frame(kind, field, piece) for piece in PIECES]
    frames += [openai_choices_sse([{"index": 0, "delta": {}, "finish_reason": "stop"}])]
    gateway = shared_gateway(INSPECT_REDACTING)
    gateway.upstream.queue(Reply(wire=["".join([*frames, sse("[DONE]")]).encode()]))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "mail it"}], stream=True
    )
    blocks: dict[int, str] = {}
    for chunk in stream:
        for choice in chunk.choices:
            for block in (choice.delta.model_extra or {}).get("reasoning_details") or []:
                blocks[block["index"]] = blocks.get(block["index"], "") + (block.get(field) or "")
    assert blocks == {0: THOUGHT.replace(EMAIL, REDACTED)}
