# SPDX-License-Identifier: Apache-2.0
"""Token pieces of a streamed llama.cpp answer that an upstream keeps from being recognised.

A list of token objects with one odd element among them is still read piece by piece
(llama.cpp's web page shows an answer's ``completion_probabilities`` as their ``token``
texts one after another), so an enforced stream empties it like any list of pieces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from haechi.runtime import Runtime
from haechi.streaming import StreamInspector
from tests.stream_fixtures import EMAIL, chunked, collect, route

LLAMA = route("llama-cpp", "/completion")
HALVES = ("Contact: jane.doe@", "example.com thanks")


def data_lines(body: bytes) -> Iterator[Any]:
    """The chunks a reader of ``data:`` lines parses; other lines are skipped."""
    for line in httpx.Response(200, content=body).iter_lines():
        if line.startswith("data: "):
            yield json.loads(line[len("data: ") :])


async def _inspect(memory_runtime: Runtime, wire: str) -> tuple[bytes, str | None]:
    inspector = StreamInspector(memory_runtime, LLAMA, mode="enforce")
    out = await collect(inspector.run(chunked(wire.encode(), 7)))
    return out, inspector.reason


@pytest.mark.anyio
@pytest.mark.parametrize(
    "odd",
    [{"id": 2}, {"id": 2, "token": None}, {"content": "x"}],
    ids=["no-token", "null", "other"],
)
async def test_llama_cpp_token_list_with_an_odd_element_is_emptied(
    memory_runtime: Runtime, odd: dict[str, Any]
) -> None:
    """A list of token objects is emptied in an enforced stream even when one element is
    not one: a reader of the pieces (llama.cpp's page shows ``completion_probabilities`` as
    their ``token`` texts in a row) would join the halves of a value cut between frames."""

    def frame(piece: str) -> str:
        token = {"id": 1, "token": piece, "bytes": list(piece.encode()), "logprob": -0.1}
        chunk = {"content": piece, "stop": False, "completion_probabilities": [token, odd]}
        return f"data: {json.dumps(chunk)}\n\n"

    wire = "".join(map(frame, HALVES)) + 'data: {"content": "", "stop": true}\n\n'
    out, reason = await _inspect(memory_runtime, wire)
    assert reason == "stream_inspected"
    pieces = "".join(
        str(item.get("token", ""))
        for chunk in data_lines(out)
        for item in chunk.get("completion_probabilities") or []
    )
    assert "jane.doe@" not in pieces
    assert EMAIL not in "".join(str(chunk.get("content", "")) for chunk in data_lines(out))
