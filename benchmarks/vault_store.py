# SPDX-License-Identifier: Apache-2.0
"""Time to store one new token in the ``local`` file vault, by vault size.

The vault format is one JSON document, so every change rewrites the file. Each row fills a
vault to the given number of records (records shaped like the vault's own: type, times,
metadata, envelope, AAD), then stores ``--puts`` new tokens one after another through
``FileTokenStore.put`` (lock, re-check, write to a temporary file, fsync, rename) and
reports milliseconds per put. The baseline, in the same process on the same records, is
what a store that encodes the whole document for every change would pay:
``json.dumps(document, indent=2)`` plus the same temporary-file write, fsync and rename.

    python benchmarks/vault_store.py [--puts 30] [--sizes 100,1000,10000] [--json]

Numbers are machine-relative; compare rows of one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from haechi._filelock import atomic_write
from haechi.testing.token_store import sample_record
from haechi.vault import FileTokenStore


def _token(number: int) -> str:
    return f"tok_email_{number:016x}"


async def _put_ms(store: FileTokenStore, first: int, count: int) -> float:
    started = time.perf_counter()
    for number in range(first, first + count):
        await store.put(_token(number), sample_record(_token(number)))
    return (time.perf_counter() - started) / count * 1000


def _whole_document_ms(path: Path, tokens: dict[str, Any], first: int, count: int) -> float:
    started = time.perf_counter()
    for number in range(first, first + count):
        tokens[_token(number)] = sample_record(_token(number))
        document = {"version": 1, "createdAt": "2026-01-01T00:00:00.000Z", "tokens": tokens}
        atomic_write(path, (json.dumps(document, indent=2) + "\n").encode(), mode=0o600)
    return (time.perf_counter() - started) / count * 1000


async def _row(workdir: Path, size: int, puts: int) -> dict[str, Any]:
    path = workdir / f"vault-{size}.json"
    store = FileTokenStore(path)
    filled = {_token(n): sample_record(_token(n)) for n in range(size)}
    atomic_write(path, (json.dumps({"version": 1, "tokens": filled}, indent=2) + "\n").encode())
    await _put_ms(store, size, 2)  # reads and caches the file, as a running store has
    put = await _put_ms(store, size + 2, puts)
    baseline = _whole_document_ms(workdir / f"whole-{size}.json", filled, size, puts)
    return {
        "records": size,
        "file_kib": path.stat().st_size // 1024,
        "put_ms": put,
        "whole_ms": baseline,
        "speedup": baseline / put,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--puts", type=int, default=30)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="haechi-vault-bench-") as directory:
        rows = [asyncio.run(_row(Path(directory), size, args.puts)) for size in sizes]
    head = f"{'records':>8}{'file KiB':>10}{'put ms':>9}{'whole-document ms':>19}{'x faster':>10}"
    print(f"local file vault: {args.puts} new tokens per row, one process")
    print(head)
    print("-" * len(head))
    for row in rows:
        print(
            f"{row['records']:>8}{row['file_kib']:>10}{row['put_ms']:>9.2f}"
            f"{row['whole_ms']:>19.2f}{row['speedup']:>10.1f}"
        )
    if args.json:
        print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
