# SPDX-License-Identifier: Apache-2.0
"""In-process ``protect`` calls per second on 1 KiB chat payloads, and where the time goes.

One process, no network. The runtime is configured like the gateway benchmark's enforce
gateway (``benchmarks/proxy_throughput.py``: same policy, same 1 KiB chat body with an
e-mail address, a phone number and an ``api_key=`` secret in it). Rows:

- ``detect only``: the detection engine on the payload's entries, nothing else. It is the
  floor every other row stands on, and the baseline the ``x detect`` column divides by.
- ``protect_sync memory-audit`` / ``jsonl-audit`` / ``jsonl-audit fsync-each``: one
  synchronous call after another, with the in-memory audit store, with the audit file as
  configured by default (hash-chained, written before the call returns, fsynced within
  200 ms) and with the file fsynced before each call returns (``audit.fsyncIntervalMs: 0``).
- ``await protect memory-audit``: one ``await runtime.protect(...)`` after another on a
  running event loop; the difference to the ``protect_sync`` row is what driving the call
  from synchronous code costs.
- ``protect x32 jsonl-audit`` (and ``fsync-each``): 32 concurrent ``await
  runtime.protect(...)`` calls on one event loop, as the gateway makes them; concurrent
  appends share audit file writes (and fsyncs).
- ``clean`` rows: the same size of chat text with nothing to find.

``pipeline ms`` is the call's time minus the detection time of the same payload measured in
the same run: the cost of everything around detection (walk, decisions, transform, event,
audit). Numbers are machine-relative; compare rows of one run only.

    python benchmarks/protect_speed.py [--calls 3000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from proxy_throughput import _FILLER, _body, _gateway_config

from haechi import create_runtime
from haechi.crypto import init_key_file
from haechi.payload import collect_entries

_CONCURRENCY = 32


def _payloads() -> dict[str, Any]:
    chat = json.loads(_body(False))
    clean = json.loads(_body(False))
    clean["messages"][0]["content"] = (_FILLER * 2)[: len(chat["messages"][0]["content"])]
    return {"pii": chat, "clean": clean}


def _timed(call: Callable[[], Any], calls: int) -> float:
    """Seconds per call, after a warm-up of a tenth of the calls."""
    for _ in range(max(10, calls // 10)):
        call()
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls


def _awaited(runtime: Any, payload: Any, calls: int) -> float:
    """Seconds per call, awaiting one protect call after another on one event loop."""

    async def run(total: int) -> float:
        started = time.perf_counter()
        for _ in range(total):
            await runtime.protect(payload, protocol="openai", operation="request:chat")
        return (time.perf_counter() - started) / total

    asyncio.run(run(max(10, calls // 10)))
    return asyncio.run(run(calls))


def _concurrent(runtime: Any, payload: Any, calls: int) -> float:
    """Seconds per call with ``_CONCURRENCY`` protect calls in flight on one loop."""

    async def run(total: int) -> float:
        remaining = total

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await runtime.protect(payload, protocol="openai", operation="request:chat")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(_CONCURRENCY)))
        return (time.perf_counter() - started) / total

    asyncio.run(run(max(_CONCURRENCY, calls // 10)))
    return asyncio.run(run(calls))


def _runtime(workdir: Path, audit: str) -> Any:
    config = json.loads(
        _gateway_config(workdir, "http://127.0.0.1:9", "enforce", audit).read_text()
    )
    return create_runtime(config)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args()
    calls: int = args.calls
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="haechi-bench-") as directory:
        workdir = Path(directory)
        init_key_file(workdir / "keys.json")
        memory = _runtime(workdir, "memory")
        durable = _runtime(workdir, "jsonl")
        strict = _runtime(workdir, "strict")
        for name, payload in _payloads().items():
            entries = collect_entries(payload)

            def detect(p: Any = entries) -> Any:
                return memory.engine.detect(p, direction="request")

            def sync(runtime: Any, p: Any = payload) -> Callable[[], Any]:
                return lambda: runtime.protect_sync(p, protocol="openai", operation="request:chat")

            floor = _timed(detect, calls)
            rows.append({"scenario": f"{name}: detect only", "seconds": floor, "floor": floor})
            for label, seconds in (
                ("protect_sync memory-audit", _timed(sync(memory), calls)),
                ("await protect memory-audit", _awaited(memory, payload, calls)),
                ("protect_sync jsonl-audit", _timed(sync(durable), calls)),
                ("protect_sync jsonl-audit fsync-each", _timed(sync(strict), calls)),
                (f"protect x{_CONCURRENCY} jsonl-audit", _concurrent(durable, payload, calls)),
                (
                    f"protect x{_CONCURRENCY} jsonl-audit fsync-each",
                    _concurrent(strict, payload, calls),
                ),
            ):
                rows.append({"scenario": f"{name}: {label}", "seconds": seconds, "floor": floor})
    print(
        f"protect speed: {calls} calls per row, 1 KiB chat payloads, one process, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    head = f"{'scenario':<48}{'calls/s':>10}{'ms/call':>10}{'x detect':>10}{'pipeline ms':>13}"
    print(head)
    print("-" * len(head))
    for row in rows:
        seconds, floor = row["seconds"], row["floor"]
        print(
            f"{row['scenario']:<48}{1 / seconds:>10.0f}{seconds * 1000:>10.3f}"
            f"{seconds / floor:>10.2f}{(seconds - floor) * 1000:>13.3f}"
        )
    if args.json:
        print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
