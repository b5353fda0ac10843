# SPDX-License-Identifier: Apache-2.0
"""Property tests of the detection engine (hypothesis).

* no input makes the engine raise;
* every detection's offsets slice the original text back to its value, whatever Unicode
  surrounds it;
* identifiers generated with their check digits are found inside random prose, and the same
  identifiers with a broken check digit are not.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haechi.detect import DetectionEngine, default_rules
from haechi.models import Detection


def _load_samples() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "corpus" / "samples.py"
    spec = importlib.util.spec_from_file_location("haechi_corpus_samples", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


SAMPLES = _load_samples().SAMPLES
ENGINE = DetectionEngine(default_rules())
DECODING = DetectionEngine(default_rules(), decode_and_rescan=True)

WORDS = (
    "the", "patient", "record", "shows", "a", "new", "value", "for", "account", "update",
    "please", "confirm", "by", "friday", "thanks", "de", "la", "und", "der", "le", "el",
    "with", "id", "ref", "note", ":", ",", "-", "(", ")", "\u8a18\u9332", "\uc5f0\ub77d\ucc98",
)  # fmt: skip
PROSE = st.lists(st.sampled_from(WORDS), max_size=10).map(" ".join)
TYPES = sorted(SAMPLES)
CHECKED_TYPES = sorted(name for name, sample in SAMPLES.items() if sample.break_check)
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _direction(kind: str) -> str:
    return "response" if kind == "injection" else "request"


def _scan(engine: DetectionEngine, text: str, direction: str) -> list[Detection]:
    return engine.scan_text(text, direction=direction)  # type: ignore[arg-type]


def _assert_offsets(text: str, found: list[Detection]) -> None:
    for detection in found:
        assert 0 <= detection.start < detection.end <= len(text)
        assert text[detection.start : detection.end] == detection.value


@SETTINGS
@given(text=st.text(max_size=400), direction=st.sampled_from(["request", "response"]))
def test_arbitrary_text_never_raises_and_offsets_slice_back(text: str, direction: str) -> None:
    _assert_offsets(text, _scan(ENGINE, text, direction))
    _assert_offsets(text, _scan(DECODING, text, direction))


@SETTINGS
@given(
    kind=st.sampled_from(TYPES),
    seed=st.integers(0, 2**32 - 1),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_offsets_slice_back_around_real_values_in_any_unicode(
    kind: str, seed: int, before: str, after: str
) -> None:
    value = SAMPLES[kind].valid(random.Random(seed))
    text = f"{before} {value} {after}"
    _assert_offsets(text, _scan(ENGINE, text, _direction(kind)))


def _sentence(kind: str, value: str, before: str, after: str) -> str:
    cue = SAMPLES[kind].cue
    shown = f"{cue} {value}" if cue else value
    return f"{before} {shown} {after}".strip()


@SETTINGS
@given(kind=st.sampled_from(TYPES), seed=st.integers(0, 2**32 - 1), before=PROSE, after=PROSE)
def test_generated_values_are_found_in_prose(kind: str, seed: int, before: str, after: str) -> None:
    value = SAMPLES[kind].valid(random.Random(seed))
    text = _sentence(kind, value, before, after)
    found = _scan(ENGINE, text, _direction(kind))
    assert kind in {d.type for d in found}, text
    _assert_offsets(text, found)


@SETTINGS
@given(
    kind=st.sampled_from(CHECKED_TYPES), seed=st.integers(0, 2**32 - 1), before=PROSE, after=PROSE
)
def test_broken_check_digits_are_not_found(kind: str, seed: int, before: str, after: str) -> None:
    sample = SAMPLES[kind]
    assert sample.break_check is not None
    broken = sample.break_check(sample.valid(random.Random(seed)))
    text = _sentence(kind, broken, before, after)
    assert kind not in {d.type for d in _scan(ENGINE, text, "request")}, text


@pytest.mark.parametrize("kind", TYPES)
def test_every_type_has_a_working_builder(kind: str) -> None:
    rng = random.Random(kind)
    for _ in range(5):
        value = SAMPLES[kind].valid(rng)
        text = _sentence(kind, value, "see", "now")
        assert kind in {d.type for d in _scan(ENGINE, text, _direction(kind))}, text
