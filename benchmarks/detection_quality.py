# SPDX-License-Identifier: Apache-2.0
"""Detection quality: precision and recall per type on the labelled corpus.

    python benchmarks/detection_quality.py                   # print the table
    python benchmarks/detection_quality.py --write-baseline  # record the baseline JSON
    python benchmarks/detection_quality.py --gate            # exit 1 if any type fell below it

Scoring: every case is the JSON document ``{"content": text}`` run through the full
catalogue in the case's direction; the *set of detected types* is compared with each type
the case lists. Listed and detected is a true positive, listed-true but missed a false
negative, listed-false but detected a false positive; types a case does not list are not
scored for it. Precision = TP / (TP + FP) and recall = TP / (TP + FN), each 1 when its
denominator is 0; totals are computed over the summed counts. The gate fails when a type's
precision or recall, rounded to 6 decimals, is more than 1e-9 below its baseline; types the
baseline does not know are reported as new.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haechi.detect import DetectionEngine, default_rules
from haechi.models import Entry

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
BASELINE = HERE / "detection-baseline.json"
TOLERANCE = 1e-9


@dataclass
class Counts:
    """True positives, false positives and false negatives of one type."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return 1.0 if self.tp + self.fp == 0 else self.tp / (self.tp + self.fp)

    @property
    def recall(self) -> float:
        return 1.0 if self.tp + self.fn == 0 else self.tp / (self.tp + self.fn)

    def to_json(self) -> dict[str, Any]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
        }


def load_cases(directory: Path = CORPUS) -> list[dict[str, Any]]:
    """Every case of every ``*.jsonl`` file in ``directory``, in file then line order."""
    cases = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                cases.append(json.loads(line))
    return cases


def detected_types(engine: DetectionEngine, case: Mapping[str, Any]) -> set[str]:
    """The types the engine reports for one case, wrapped as ``{"content": text}``."""
    entries = [Entry(("content",), "content", "key"), Entry(("content",), case["text"], "value")]
    direction = case.get("direction", "request")
    return {d.type for d in engine.detect(entries, direction=direction)}


def score(
    cases: Iterable[Mapping[str, Any]], engine: DetectionEngine | None = None
) -> tuple[dict[str, Counts], list[tuple[str, str, str]]]:
    """Per-type counts, and the ``(case id, type, "fp"|"fn")`` misses."""
    engine = engine or DetectionEngine(default_rules())
    counts: dict[str, Counts] = {}
    misses: list[tuple[str, str, str]] = []
    for case in cases:
        found = detected_types(engine, case)
        for name, expected in case["expect"].items():
            tally = counts.setdefault(name, Counts())
            if expected and name in found:
                tally.tp += 1
            elif expected:
                tally.fn += 1
                misses.append((case["id"], name, "fn"))
            elif name in found:
                tally.fp += 1
                misses.append((case["id"], name, "fp"))
    return counts, misses


def totals(counts: Mapping[str, Counts]) -> Counts:
    """The summed counts of every type."""
    total = Counts()
    for tally in counts.values():
        total.tp += tally.tp
        total.fp += tally.fp
        total.fn += tally.fn
    return total


def regressions(counts: Mapping[str, Counts], baseline: Mapping[str, Any]) -> list[str]:
    """Human-readable lines for every type whose precision or recall fell below baseline."""
    problems = []
    for name, tally in sorted(counts.items()):
        recorded = baseline.get("types", {}).get(name)
        if recorded is None:
            continue
        for metric in ("precision", "recall"):
            live = round(getattr(tally, metric), 6)
            if live < recorded[metric] - TOLERANCE:
                problems.append(f"{name}: {metric} {live:.6f} < baseline {recorded[metric]:.6f}")
    return problems


def baseline_document(counts: Mapping[str, Counts], case_count: int) -> dict[str, Any]:
    """The JSON recorded by ``--write-baseline``."""
    return {
        "cases": case_count,
        "types": {name: counts[name].to_json() for name in sorted(counts)},
        "total": totals(counts).to_json(),
    }


def _table(counts: Mapping[str, Counts], baseline: Mapping[str, Any]) -> str:
    known = baseline.get("types", {})
    lines = [f"{'type':<20} {'tp':>5} {'fp':>4} {'fn':>4} {'precision':>10} {'recall':>8}"]
    for name in sorted(counts):
        tally = counts[name]
        note = "" if name in known or not known else "  (new)"
        lines.append(
            f"{name:<20} {tally.tp:>5} {tally.fp:>4} {tally.fn:>4} "
            f"{tally.precision:>10.4f} {tally.recall:>8.4f}{note}"
        )
    total = totals(counts)
    lines.append(
        f"{'TOTAL':<20} {total.tp:>5} {total.fp:>4} {total.fn:>4} "
        f"{total.precision:>10.4f} {total.recall:>8.4f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-baseline", action="store_true", help="record the baseline")
    parser.add_argument("--gate", action="store_true", help="fail on any regression")
    parser.add_argument("--misses", action="store_true", help="list every FP and FN case")
    args = parser.parse_args(argv)
    cases = load_cases()
    counts, misses = score(cases)
    baseline = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    print(f"{len(cases)} cases")
    print(_table(counts, baseline))
    if args.misses:
        for case_id, name, kind in misses:
            print(f"  {kind} {name:<20} {case_id}")
    if args.write_baseline:
        document = baseline_document(counts, len(cases))
        BASELINE.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        print(f"wrote {BASELINE.relative_to(HERE.parent)}")
    if args.gate:
        problems = regressions(counts, baseline)
        for problem in problems:
            print(f"REGRESSION {problem}", file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
