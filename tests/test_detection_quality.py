# SPDX-License-Identifier: Apache-2.0
"""Detection quality gate: no type may fall below its recorded precision or recall."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from haechi.detect import default_rules

ROOT = Path(__file__).resolve().parents[1]


def _load_quality() -> ModuleType:
    path = ROOT / "benchmarks" / "detection_quality.py"
    spec = importlib.util.spec_from_file_location("haechi_detection_quality", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


quality = _load_quality()


@pytest.fixture(scope="module")
def cases() -> list[dict[str, object]]:
    return quality.load_cases()  # type: ignore[no-any-return]


def test_corpus_is_not_trivially_small(cases: list[dict[str, object]]) -> None:
    assert len(cases) >= 1000
    positives: dict[str, int] = {}
    negatives: dict[str, int] = {}
    for case in cases:
        for name, expected in case["expect"].items():  # type: ignore[attr-defined]
            tally = positives if expected else negatives
            tally[name] = tally.get(name, 0) + 1
    for name in {rule.type for rule in default_rules()}:
        assert positives.get(name, 0) >= 10, f"{name}: too few positive cases"
        assert negatives.get(name, 0) >= 10, f"{name}: too few negative cases"


def test_corpus_lines_have_the_documented_shape(cases: list[dict[str, object]]) -> None:
    ids = [case["id"] for case in cases]
    assert len(ids) == len(set(ids))
    for case in cases:
        assert set(case) == {"id", "text", "direction", "expect"}
        assert case["direction"] in ("request", "response")
        assert isinstance(case["text"], str)
        assert all(isinstance(v, bool) for v in case["expect"].values())  # type: ignore[attr-defined]


def test_no_type_falls_below_its_baseline(cases: list[dict[str, object]]) -> None:
    baseline = json.loads(quality.BASELINE.read_text())
    counts, _misses = quality.score(cases)
    assert quality.regressions(counts, baseline) == []
    assert set(counts) <= set(baseline["types"]), "record new types with --write-baseline"


def test_gate_reports_a_regression() -> None:
    counts = {"card": quality.Counts(tp=9, fp=1, fn=0)}
    baseline = {"types": {"card": {"precision": 1.0, "recall": 1.0}}}
    assert quality.regressions(counts, baseline) == ["card: precision 0.900000 < baseline 1.000000"]
