# SPDX-License-Identifier: Apache-2.0
"""``haechi report`` over audit logs that haechi did not write as they are: a real subprocess.

Counts a damaged or forged line carries (numbers of thousands of digits, negative ones) are
ignored, so the totals stay what the sound lines say and can always be printed.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import json_output, run_haechi

HUGE = int("9" * 4300)


def _summary(path: Path, lines: list[str]) -> dict[str, object]:
    path.write_text("".join(line + "\n" for line in lines))
    document = json_output(run_haechi("report", "--audit", path.name, cwd=path.parent))
    summary: dict[str, object] = document["summary"]
    return summary


def _event(count: int) -> str:
    summary = {"detectionCount": count, "byType": {"email": count}, "byAction": {"redact": count}}
    return json.dumps({"blocked": False, "summary": summary})


def test_counts_past_what_can_be_printed_are_ignored(tmp_path: Path) -> None:
    # Twelve of them add up past int()'s 4300-digit limit for printing.
    summary = _summary(tmp_path / "audit.jsonl", [_event(1)] + [_event(HUGE)] * 12)
    assert summary == {
        "events": 13,
        "blocked": 0,
        "detections": 1,
        "byType": {"email": 1},
        "byAction": {"redact": 1},
    }


def test_negative_counts_subtract_nothing(tmp_path: Path) -> None:
    summary = _summary(tmp_path / "audit.jsonl", [_event(3), _event(-2), _event(2**53)])
    assert summary["detections"] == 3
    assert summary["byType"] == {"email": 3}
    assert summary["byAction"] == {"redact": 3}


def test_the_largest_exact_count_is_added(tmp_path: Path) -> None:
    summary = _summary(tmp_path / "audit.jsonl", [_event(2**53 - 1), _event(1)])
    assert summary["detections"] == 2**53


def test_a_name_escaping_a_lone_surrogate_is_printed_as_that_escape(tmp_path: Path) -> None:
    # "\ud800" parses to a string no UTF-8 output can hold: printing the summary failed as
    # an internal error.
    forged = '{"summary": {"detectionCount": 1, "byType": {"\\ud800": 1, "email": 1}}}'
    path = tmp_path / "audit.jsonl"
    path.write_text(forged + "\n")
    result = run_haechi("report", "--audit", path.name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"\\ud800": 1' in result.stdout
    assert json.loads(result.stdout)["summary"]["byType"] == {"\ud800": 1, "email": 1}
