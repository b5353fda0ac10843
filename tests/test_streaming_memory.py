# SPDX-License-Identifier: Apache-2.0
"""An inspected stream leaves nothing behind: memory does not grow with the stream count."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from pathlib import Path

import pytest

from haechi.crypto import init_key_file
from haechi.runtime import Runtime, create_runtime
from haechi.streaming import StreamInspector
from tests.stream_fixtures import chunked, collect, route, sse

#: Enough for a leak of one block in five streams to stand out from the one-off growth
#: (about 150 blocks and 15 KB, measured); more streams only make the run longer.
STREAMS = 2_500
#: Generous: a stream that kept even one frame (about 400 bytes) would exceed it.
ALLOWED_GROWTH = 400 * STREAMS

# Two delta frames (an e-mail split between them) and [DONE]: small, but every part of the
# inspector runs (window, tail before the end frame, audit event, counters).
_WIRE = (
    sse({"choices": [{"delta": {"content": "Hi john.doe@exa"}}]})
    + sse({"choices": [{"delta": {"content": "mple.com"}}]})
    + sse("[DONE]")
).encode()
_CONCURRENT = 20
_CHAT = route("openai-compatible", "/v1/chat/completions")


async def _stream(runtime: Runtime) -> None:
    inspector = StreamInspector(runtime, _CHAT, mode="enforce")
    out = await collect(inspector.run(chunked(_WIRE, len(_WIRE))))
    assert b"[REDACTED:email]" in out


async def _streams(runtime: Runtime, count: int) -> None:
    """Run ``count`` streams, ``_CONCURRENT`` at a time (as a gateway would)."""
    for _ in range(count // _CONCURRENT):
        await asyncio.gather(*(_stream(runtime) for _ in range(_CONCURRENT)))


def _traced() -> tuple[int, int]:
    """Bytes and blocks allocated while tracing and still alive."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    stats = snapshot.statistics("filename")
    return sum(stat.size for stat in stats), sum(stat.count for stat in stats)


@pytest.mark.slow
def test_thousands_of_streams_do_not_grow_memory(tmp_path: Path) -> None:
    init_key_file(tmp_path / "keys.json")
    runtime = create_runtime(
        {
            "mode": "enforce",
            "policy": {"mode": "enforce"},
            "keys": {"keyFile": str(tmp_path / "keys.json")},
            "audit": {"path": str(tmp_path / "audit.jsonl")},
            "tokenVault": {"path": str(tmp_path / "vault.json")},
        }
    )
    with asyncio.Runner() as runner:
        runner.run(_streams(runtime, 400))  # warm caches and lazily built providers
        tracemalloc.start()
        try:
            bytes_before, blocks_before = _traced()
            runner.run(_streams(runtime, STREAMS))
            bytes_after, blocks_after = _traced()
        finally:
            tracemalloc.stop()
        runner.run(runtime.aclose())
    # One object kept per stream would add STREAMS blocks; a one-off resize of some
    # interpreter table adds one big block, which the byte bound tolerates.
    assert blocks_after - blocks_before < STREAMS // 5
    assert bytes_after - bytes_before < ALLOWED_GROWTH
