# SPDX-License-Identifier: Apache-2.0
"""``audit-verify --anchor`` holds no anchor: an anchor file without end is judged, not kept.

The verifier used to read every anchor into memory before the log, one entry per distinct
anchor, so a writer of distinct anchors (each line up to the 16 MiB line bound) grew the
process without end. Each anchor is now checked as it is read against the hash of its
record, and the first one the chain contradicts or does not reach ends the verification.
A real ``haechi`` subprocess reads the anchors from a pipe, its data segment capped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import pytest

from tests.cli import endless_output, json_output, run_haechi, run_haechi_capped

#: Peak resident size the verifier stays under, in KiB (it starts at about 60 MiB).
_PEAK_KIB: Final = 256 * 1024
_VALUE: Final = "minji.kim@example.com"
_AUDIT: Final = ".haechi/audit.jsonl"
#: Distinct anchors without end from sequence ``{start}``, each with its own 1 MiB hash.
_DISTINCT_ANCHORS: Final = """
import itertools, json, sys
for sequence in itertools.count({start}):
    digest = str(sequence).rjust(1 << 20, "A")
    sys.stdout.write(json.dumps({{"sequence": sequence, "eventHash": digest}}) + "\\n")
"""


def _anchors_of(log: Path) -> str:
    """The anchor file the log's own records make: one ``{sequence, eventHash}`` each."""
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    blocks = [record["auditIntegrity"] for record in records]
    return "".join(
        json.dumps({"sequence": b["sequence"], "eventHash": b["eventHash"]}) + "\n" for b in blocks
    )


@pytest.mark.parametrize(
    ("start", "reason"),
    [
        (1, "anchor hash mismatch at sequence 1"),
        (3, "tail truncation: chain has 2 records but anchor attests sequence 3"),
    ],
)
def test_distinct_anchors_without_end_are_judged_in_bounded_memory(
    tmp_path: Path, start: int, reason: str
) -> None:
    for _ in range(2):
        json_output(run_haechi("protect", stdin=json.dumps({"to": _VALUE}), cwd=tmp_path))
    args = ("audit-verify", "--audit", _AUDIT, "--anchor", "/dev/stdin")
    own = json_output(run_haechi(*args, cwd=tmp_path, stdin=_anchors_of(tmp_path / _AUDIT)))
    assert own["result"]["anchored"] == {"count": 2, "lastSequence": 2}

    with endless_output(_DISTINCT_ANCHORS.format(start=start)) as pipe:
        done = run_haechi_capped(*args, cwd=tmp_path, stdin=pipe)
    assert done.returncode == 4, done.stderr
    assert json.loads(done.stdout)["result"]["reason"] == reason
    assert 0 < done.peak_kib < _PEAK_KIB
