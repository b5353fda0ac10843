# SPDX-License-Identifier: Apache-2.0
"""An inspected stream leaves nothing behind: memory does not grow with the stream count."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from pathlib import Path

from haechi.crypto import init_key_file
from haechi.runtime import Runtime, create_runtime
from haechi.streaming import StreamInspector
from tests.stream_fixtures import chunked, collect, openai_sse, route

STREAMS = 10_000
#: Generous: a stream that kept even one frame (about 200 bytes) would exceed it twice over.
ALLOWED_GROWTH = 1_000_000

_WIRE = openai_sse(["Hello ", "john.doe@exa", "mple.com", ", see you."])
_CHAT = route("openai-compatible", "/v1/chat/completions")


async def _streams(runtime: Runtime, count: int) -> None:
    for _ in range(count):
        inspector = StreamInspector(runtime, _CHAT, mode="enforce")
        out = await collect(inspector.run(chunked(_WIRE, 48)))
        assert b"[REDACTED:email]" in out


def _traced_bytes() -> int:
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


def test_ten_thousand_streams_do_not_grow_memory(tmp_path: Path) -> None:
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
        runner.run(_streams(runtime, 200))  # warm caches and lazily built providers
        tracemalloc.start()
        try:
            before = _traced_bytes()
            runner.run(_streams(runtime, STREAMS))
            after = _traced_bytes()
        finally:
            tracemalloc.stop()
        runner.run(runtime.aclose())
    assert after - before < ALLOWED_GROWTH
