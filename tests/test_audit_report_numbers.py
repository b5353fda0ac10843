# SPDX-License-Identifier: Apache-2.0
"""``haechi report`` reads a count as the hash chain does: a whole number however written."""

from __future__ import annotations

import json
from pathlib import Path

import anyio

from haechi.audit import AuditSink, FileAuditStore, read_summary, verify_chain
from tests.cli import json_output, run_haechi


def _anchored_log(directory: Path) -> tuple[Path, Path]:
    log, anchor = directory / "audit.jsonl", directory / "anchor.jsonl"
    summary = {"detectionCount": 5, "byType": {"card": 5}, "byAction": {"block": 5}}

    async def run() -> None:
        sink = AuditSink(FileAuditStore(log), anchor_mode="file", anchor_path=anchor)
        for _ in range(2):
            await sink.record({"blocked": True, "summary": summary})

    anyio.run(run)
    return log, anchor


def test_counts_re_spelled_as_floats_keep_the_hash_and_still_count(tmp_path: Path) -> None:
    log, anchor = _anchored_log(tmp_path)
    lines = log.read_text().splitlines(keepends=True)
    edited = (
        lines[1]
        .replace('"detectionCount":5', '"detectionCount":5.0')
        .replace('"card":5', '"card":5e0')
        .replace('"block":5', '"block":5.000000000000000001')
    )
    assert edited != lines[1]
    log.write_text(lines[0] + edited)
    # The same numbers to the chain: the edited record keeps its hash and its anchor...
    verified = verify_chain(log, anchor_path=anchor)
    assert (verified.valid, verified.records) == (True, 2)
    # ... so the report counts them as the record that was hashed said.
    expected = {
        "events": 2,
        "blocked": 2,
        "detections": 10,
        "byType": {"card": 10},
        "byAction": {"block": 10},
    }
    assert read_summary(log) == expected
    report = json_output(run_haechi("report", "--audit", log.name, cwd=tmp_path))
    assert report["summary"] == expected


def test_fractions_and_floats_past_the_exact_range_are_still_ignored(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    counts = [2.5, 9007199254740992.0, -1.0, 1e300, 3.0]
    log.write_text(
        "".join(json.dumps({"summary": {"byType": {"card": count}}}) + "\n" for count in counts)
    )
    assert read_summary(log)["byType"] == {"card": 3}
