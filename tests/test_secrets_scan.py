# SPDX-License-Identifier: Apache-2.0
"""Scanning helpers shared by the secret-catalogue tests, and tests of those helpers.

``scan`` runs text through ``haechi.detect.DetectionEngine`` over the full default rule set
when the engine is available; ``scan(text, local=True)`` (and the fallback) compiles the secret
rules directly and resolves overlaps the way the reference does: earliest start, then longest,
then catalogue order.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from haechi.detect.catalog_secrets import SECRET_RULES
from haechi.detect.rule import Rule

__all__ = ["GENERATOR", "Hit", "scan", "scan_rule"]

_GENERATOR_PATH = (
    Path(__file__).resolve().parents[1] / "benchmarks" / "corpus" / "generate_secrets.py"
)


def _load_generator() -> ModuleType:
    name = "haechi_corpus_generate_secrets"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _GENERATOR_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


#: The corpus generator, whose per-rule factories the tests reuse.
GENERATOR: Any = _load_generator()


@dataclass(frozen=True, order=True)
class Hit:
    """One resolved finding."""

    start: int
    end: int
    type: str
    rule_id: str


_ORDER = {rule.id: index for index, rule in enumerate(SECRET_RULES)}


@cache
def _compiled(rule: Rule) -> re.Pattern[str]:
    return re.compile(rule.pattern, re.IGNORECASE if rule.ignore_case else 0)


def scan_rule(rule: Rule, text: str) -> list[tuple[int, int]]:
    """Spans (of the ``value`` group when present) that ``rule`` alone finds and validates."""
    pattern = _compiled(rule)
    spans = []
    for match in pattern.finditer(text):
        start, end = match.span("value") if "value" in pattern.groupindex else match.span()
        if rule.validator is None or rule.validator(text[start:end]):
            spans.append((start, end))
    return spans


def _local_scan(text: str) -> list[Hit]:
    lowered = text.lower()
    raw = [
        Hit(start, end, rule.type, rule.id)
        for rule in SECRET_RULES
        if any(literal in lowered for literal in rule.prefilter)
        for start, end in scan_rule(rule, text)
    ]
    raw.sort(key=lambda hit: (hit.start, hit.start - hit.end, _ORDER[hit.rule_id]))
    kept: list[Hit] = []
    for hit in raw:
        if not kept or hit.start >= kept[-1].end:
            kept.append(hit)
    return kept


@cache
def _engine() -> Any:
    try:
        detect = importlib.import_module("haechi.detect")
        return detect.DetectionEngine(detect.default_rules())
    except (ImportError, AttributeError):
        return None


def scan(text: str, *, local: bool = False) -> list[Hit]:
    """Resolved findings for ``text`` on the request direction."""
    engine = None if local else _engine()
    if engine is None:
        return _local_scan(text)
    return sorted(
        Hit(d.start, d.end, d.type, d.rule_id) for d in engine.scan_text(text, direction="request")
    )


def test_local_scan_prefers_earliest_then_longest_then_catalogue_order() -> None:
    key = "sk_live_" + "a1B2" * 8
    assert [h.rule_id for h in scan(f"GITHUB x {key}", local=True)] == ["stripe-secret-key"]
    assert [h.rule_id for h in scan(f"api_key={key}", local=True)] == ["stripe-secret-key"]
    bearer = scan("Bearer " + GENERATOR.jwt(__import__("random").Random(1)), local=True)
    assert [h.rule_id for h in bearer] == ["bearer-token"]


def test_scan_rule_reports_the_value_group_span() -> None:
    rule = next(rule for rule in SECRET_RULES if rule.id == "assignment-password")
    assert scan_rule(rule, "db_password=Hunter2Hunter2") == [(12, 26)]
