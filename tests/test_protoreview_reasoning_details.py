# SPDX-License-Identifier: Apache-2.0
"""Reasoning streamed as blocks in a chat delta is windowed.

OpenRouter streams a model's reasoning in ``delta.reasoning`` and again as blocks in
``delta.reasoning_details`` (a ``reasoning.text`` block's ``text``, a ``reasoning.summary``
block's ``summary``); LiteLLM beside ``delta.reasoning_content`` as ``delta.thinking_blocks``
(a block's ``thinking``, without an ``index``). The pieces come a few characters per frame,
and clients add them up per block: an address the model's tokens cut across frames must not
reach such a client, not even its start.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.stream_fixtures import EMAIL, INSPECT_REDACTING, REDACTED, openai_choices_sse, sse
from tests.upstream_server import Reply, SharedGateways

PIECES = ("Contact jane.", "doe@exam", "ple.com now")
BLOCKS = [
    ("reasoning_details", {"type": "reasoning.text", "format": "unknown", "index": 0}, "text"),
    ("reasoning_details", {"type": "reasoning.summary", "index": 0}, "summary"),
    ("thinking_blocks", {"type": "thinking", "signature": None}, "thinking"),
]


@pytest.mark.parametrize(("blocks", "block", "field"), BLOCKS)
def test_a_value_cut_across_reasoning_blocks_is_redacted(
    shared_gateway: SharedGateways, blocks: str, block: dict[str, Any], field: str
) -> None:
    frames = [
        openai_choices_sse(
            [
                {
                    "index": 0,
                    "delta": {"reasoning": piece, blocks: [{**block, field: piece}]},
                    "finish_reason": None,
                }
            ]
        )
        for piece in PIECES
    ]
    frames += [openai_choices_sse([{"index": 0, "delta": {}, "finish_reason": "stop"}])]
    gateway = shared_gateway(INSPECT_REDACTING)
    gateway.upstream.queue(Reply(wire=["".join([*frames, sse("[DONE]")]).encode()]))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "mail it"}], stream=True
    )
    texts: dict[int, str] = {}
    for chunk in stream:
        for choice in chunk.choices:
            listed = (choice.delta.model_extra or {}).get(blocks) or []
            for at, received in enumerate(listed):
                index = received.get("index", at)
                texts[index] = texts.get(index, "") + (received.get(field) or "")
    assert texts == {0: f"Contact {EMAIL} now".replace(EMAIL, REDACTED)}
