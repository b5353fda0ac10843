# SPDX-License-Identifier: Apache-2.0
"""The prefilters only save work: they never lose a match.

The engine skips most rules on most leaves (literal and digit-run gates, timestamps counted
as short runs, combined locators searched around long runs, windows, anchored rules tried
only where their literal occurs). Each of those is an over-approximation; these tests
compare the engine with a brute-force run of every rule over the whole text, on text built
from the values the catalogue looks for, timestamps and digit groups.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import random
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haechi.detect import DetectionEngine, Rule, default_rules
from haechi.detect.engine import _Leaf
from haechi.detect.prefilter import DigitRuns


def _load_samples() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "corpus" / "samples.py"
    spec = importlib.util.spec_from_file_location("haechi_corpus_samples_prefilter", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


SAMPLES = _load_samples().SAMPLES
ENGINE = DetectionEngine(default_rules())
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIGIT_GATED = [rule for rule in default_rules() if set(rule.prefilter) == set("0123456789")]
SECRETS = (
    "api_key = 'Zq3x9LmP2vR7tK4wN8bY1cF6'",
    "GITHUB_TOKEN=ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
    "password: hunter2-horse",
    "AC0123456789abcdef0123456789abcdef",
    "SKfedcba9876543210fedcba9876543210",
    "https://svc:s3cr3t-pass@db.example.com",
    "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
    "eos_token: '</s>'",
    "[TOKEN:tok_email_0123456789abcdef]",
)


def _timestamp(rng: random.Random) -> str:
    sep = rng.choice("-/")
    date = f"{rng.randint(1970, 2099)}{sep}{rng.randint(1, 12):02d}{sep}{rng.randint(1, 31):02d}"
    return rng.choice([date, f"{date} {rng.randint(0, 23):02d}", f"{date}T12:30:45Z"])


def _fragment(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.3:
        kind = rng.choice(sorted(SAMPLES))
        sample = SAMPLES[kind]
        value = sample.valid(rng)
        return f"{sample.cue} {value}" if sample.cue and rng.random() < 0.7 else value
    if roll < 0.5:
        return _timestamp(rng)
    if roll < 0.7:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 6)))
    if roll < 0.8:
        return rng.choice(SECRETS)
    return rng.choice(["the", "ref", "id", "paid", "at", "(", ")", "\u8a18", "x", "IBAN", "tel"])


def _text(seed: int, size: int) -> str:
    rng = random.Random(seed)
    parts = [_fragment(rng) for _ in range(size)]
    return "".join(part + rng.choice([" ", " ", "-", "\n", ", ", ": ", ""]) for part in parts)


def _brute_force(text: str, direction: str) -> set[tuple[str, int, int]]:
    """Every rule over the whole text: no gates, windows, locators or anchors."""
    rule_set = ENGINE._sets[direction]
    every = [dataclasses.replace(c, reach=None, match=None) for c in rule_set.rules]
    hits = ENGINE._run(text, _Leaf(DigitRuns(text), every))
    return {(hit.rule.rule.id, hit.start, hit.end) for hit in hits}


def _engine(text: str, direction: str) -> set[tuple[str, int, int]]:
    rule_set = ENGINE._sets[direction]
    hits = ENGINE._run(text, rule_set.leaf(text))
    return {(hit.rule.rule.id, hit.start, hit.end) for hit in hits}


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(1, 40),
    direction=st.sampled_from(["request", "response"]),
)
def test_the_prefilters_never_lose_a_match(seed: int, size: int, direction: str) -> None:
    text = _text(seed, size)
    assert _engine(text, direction) == _brute_force(text, direction)


def test_long_texts_with_windows_lose_nothing() -> None:
    # Long enough for the windowed rules and locators to search only around digit runs.
    for seed in range(6):
        text = _text(seed, 600)
        assert len(text) > 4096
        assert _engine(text, "request") == _brute_force(text, "request")


@pytest.mark.parametrize("rule", [r for r in DIGIT_GATED if r.min_digits > 4], ids=lambda r: r.id)
def test_no_rule_needing_more_than_four_digits_matches_a_timestamp(rule: Rule) -> None:
    # The digit gate counts an ISO date (with its hour) as four digits; that is only sound
    # while no such rule can match one.
    pattern = re.compile(rule.pattern, re.ASCII | (re.IGNORECASE if rule.ignore_case else 0))
    rng = random.Random(rule.id)
    for _ in range(300):
        before = rng.choice(["", "at ", "x", "(", "id "])
        text = before + _timestamp(rng) + rng.choice(["", " ok", ":30", "."])
        for match in pattern.finditer(text):
            value = match.group("value") if "value" in pattern.groupindex else match.group()
            assert rule.validator is not None, (rule.id, text)
            assert not rule.validator(value), (rule.id, text)


def test_anchored_rules_find_what_a_scan_finds() -> None:
    anchored = [c for c in ENGINE._sets["request"].rules if c.match is not None]
    assert {c.rule.id for c in anchored} >= {
        "assignment-secret",
        "assignment-password",
        "phone-context",
        "twilio-sid",
    }
    for seed in range(40):
        text = _text(seed, 60)
        scanned = {dataclasses.replace(c, match=None) for c in anchored}
        lowered = text.lower()
        for compiled in anchored:
            leaf = _Leaf(DigitRuns(text), [compiled], lowered=lowered)
            plain = _Leaf(DigitRuns(text), [c for c in scanned if c.rule is compiled.rule])
            found = {(h.start, h.end) for h in ENGINE._run(text, leaf)}
            assert found == {(h.start, h.end) for h in ENGINE._run(text, plain)}
