# SPDX-License-Identifier: Apache-2.0
"""The engine's shortcuts change how much work a leaf costs, never what is found.

Each shortcut is compared with the plain way of doing the same thing: deferred validation
with validating every candidate, the digit-run skeleton with the runs of the text itself,
rewritten rule boundaries with the look-behinds they replace, and the memory of quiet
leaves with a scan from scratch (and with what it may keep).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haechi.detect import KEY_NAME_RULE_ID, DetectionEngine, Rule, default_rules, validators
from haechi.detect import engine as engine_module
from haechi.detect.engine import _Leaf
from haechi.detect.overlaps import resolve_overlaps
from haechi.detect.patterns import AFTER_LETTER, headed, word_start
from haechi.detect.prefilter import DigitRuns
from haechi.detect.secrets_shapes import bounded
from haechi.errors import DetectionError
from haechi.models import Detection, Entry
from tests.test_detect_prefilter import _text

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENGINE = DetectionEngine(default_rules())

Finding = tuple[str, str, int, int, float, bool, tuple[str, ...]]


def _findings(detections: list[Detection]) -> list[Finding]:
    return [
        (
            d.type,
            d.rule_id,
            d.start,
            d.end,
            d.confidence,
            d.hard_block,
            tuple(sorted(n.rule_id for n in d.nested)),
        )
        for d in detections
    ]


def _eager(engine: DetectionEngine, text: str, direction: str = "request") -> list[Finding]:
    """The rules' findings in ``text`` with every candidate validated before overlaps are
    resolved (no deferral, no memory of quiet leaves)."""
    rule_set = engine._sets[direction]
    hits = engine._run(text, rule_set.leaf(text))
    detections = [engine._detection(hit, text, ("v",), "value") for hit in hits]
    return _findings(resolve_overlaps(detections))


# --- deferred validation --------------------------------------------------------------------


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 40))
def test_deferred_validation_finds_what_validating_everything_finds(seed: int, size: int) -> None:
    text = _text(seed, size)
    found = _findings(ENGINE.scan_text(text, direction="request", path=("v",)))
    assert found == _eager(ENGINE, text)


def _counting(verdict: bool, calls: list[str], name: str) -> Callable[[str], bool]:
    def validate(value: str) -> bool:
        calls.append(name)
        return verdict

    return validate


def test_a_candidate_repeating_an_earlier_hit_is_not_validated_when_it_is_dropped() -> None:
    calls: list[str] = []
    rules = [
        Rule("first", "num", r"N-[0-9]{4}", 0.9, "first", _counting(True, calls, "first")),
        Rule("second", "num", r"N-[0-9]{4}", 0.7, "second", _counting(True, calls, "second")),
    ]
    engine = DetectionEngine(rules)
    found = engine.scan_text("ref N-1234 ok", direction="request")
    assert [(d.rule_id, d.start, d.end) for d in found] == [("first", 4, 10)]
    assert calls == ["first"]


@pytest.mark.parametrize("verdict", [True, False])
def test_a_deferred_candidate_that_overlap_resolution_keeps_is_validated(verdict: bool) -> None:
    # "num" by `early` is dropped inside the longer `outer` finding; `hard` (a hard-block
    # twin of another type) is kept; `late` repeats `early`'s key and would be kept as a
    # distinct twin of `hard`, so its own verdict decides whether it is reported.
    calls: list[str] = []
    rules = [
        Rule("outer", "outer", r"<N-[0-9]{4}>", 0.9, "outer"),
        Rule("early", "num", r"N-[0-9]{4}", 0.9, "early", _counting(True, calls, "early")),
        Rule("hard", "secret", r"N-[0-9]{4}", 0.9, "hard"),
        Rule("late", "num", r"N-[0-9]{4}", 0.7, "late", _counting(verdict, calls, "late")),
    ]
    engine = DetectionEngine(rules)
    text = "see <N-1234> now"
    found = _findings(engine.scan_text(text, direction="request", path=("v",)))
    assert calls.count("late") == 1
    assert found == _eager(engine, text)
    expected = {"outer", "hard"} | ({"late"} if verdict else set())
    assert {rule_id for _type, rule_id, *_rest in found} == expected


def test_a_deferred_validator_that_raises_fails_closed_without_the_value() -> None:
    def broken(value: str) -> bool:
        raise ValueError(value)

    rules = [
        Rule("outer", "outer", r"<N-[0-9]{4}>", 0.9, "outer"),
        Rule("early", "num", r"N-[0-9]{4}", 0.9, "early", lambda value: True),
        Rule("hard", "secret", r"N-[0-9]{4}", 0.9, "hard"),
        Rule("late", "num", r"N-[0-9]{4}", 0.7, "late", broken),
    ]
    with pytest.raises(DetectionError) as failure:
        DetectionEngine(rules).scan_text("see <N-1234> now", direction="request")
    assert "late" in str(failure.value)
    assert "1234" not in str(failure.value)


def test_one_phone_number_is_checked_by_libphonenumber_once() -> None:
    text = "Customer called from 010-1234-5678 about a failing deploy"
    candidates = [
        c.rule.id
        for c in ENGINE._sets["request"].leaf(text).rules
        if any(True for _ in c.finditer(text, 0, len(text)))
    ]
    assert {"kr-phone", "gb-phone", "de-phone", "jp-phone"} <= set(candidates)
    calls: list[str] = []
    rules = [
        Rule(
            r.id,
            r.type,
            r.pattern,
            r.confidence,
            r.description,
            None if r.validator is None else _counting(True, calls, r.id),
            prefilter=r.prefilter,
            min_digits=r.min_digits,
            sub_run_digits=r.sub_run_digits,
            anchored=r.anchored,
            hard_block=r.hard_block,
            ignore_case=r.ignore_case,
            direction=r.direction,
        )
        for r in default_rules()
        if r.id in candidates
    ]
    found = DetectionEngine(rules).scan_text(text, direction="request")
    assert [d.rule_id for d in found] == ["kr-phone"]
    assert calls == ["kr-phone"]


# --- digit runs -----------------------------------------------------------------------------

_REFERENCE_RUN = re.compile(r"[0-9](?:[\s.\-/()]{0,2}[0-9])*")
_REFERENCE_TIMESTAMP = re.compile(r"[0-9]{4}([-/])[0-9]{2}\1[0-9]{2}(?: [0-9]{2})?")


def _reference_digits(run: str) -> int:
    if len(run) in (10, 13) and _REFERENCE_TIMESTAMP.fullmatch(run):
        return 4
    return sum(char.isdigit() for char in run)


_RUN_TEXT = st.text(
    alphabet=st.sampled_from(list("0123456789 .-/()\t\n\x1cx:,A\u00e9\u3000")), max_size=80
) | st.builds(
    lambda date, tail: date + tail,
    st.sampled_from(["2024-05-01", "2024/05/01 12", "1999-12-31 23", "2024-05/01"]),
    st.text(alphabet=st.sampled_from(list("0123456789 .-x")), max_size=12),
)


@SETTINGS
@given(text=_RUN_TEXT)
def test_digit_runs_match_the_runs_of_the_text(text: str) -> None:
    runs = [m for m in _REFERENCE_RUN.finditer(text)]
    found = DigitRuns(text)
    assert found.longest == max((_reference_digits(m.group()) for m in runs), default=0)
    grouped = [m.group() for m in runs if not m.group().isdigit()]
    assert found.grouped == max((_reference_digits(run) for run in grouped), default=0)
    assert found.spans() == [m.span() for m in runs if m.end() - m.start() > 1]
    for min_digits in (2, 4, 6):
        spans = [
            m.span()
            for m in runs
            if m.end() - m.start() > 1 and _reference_digits(m.group()) >= min_digits
        ]
        windows = found.around(min_digits, 8)
        if windows is not None:
            for start, end in spans:
                assert any(low <= start and end <= high for low, high in windows)


# --- rewritten boundaries -------------------------------------------------------------------

_BOUNDARY_TEXT = st.text(alphabet=st.sampled_from(list("skpr_-x.A0M9 \n")), max_size=60)


@SETTINGS
@given(text=_BOUNDARY_TEXT)
def test_bounded_matches_what_a_leading_look_behind_matches(text: str) -> None:
    for body, chars in (
        ("sk_[A-Za-z0-9]{2,}", "A-Za-z0-9_"),
        ("[MNO][A-Za-z0-9_-]{2,5}", "A-Za-z0-9_-"),
        ("xox[sp]-[0-9]+", "A-Za-z0-9_-"),
        ("(?:sk|pk)_x+", "A-Za-z0-9_"),
        ("A{2,}0", "A-Za-z0-9_"),
    ):
        plain = re.compile(rf"(?<![{chars}]){body}(?![{chars}])", re.ASCII)
        fast = re.compile(bounded(body, chars), re.ASCII)
        assert [m.span() for m in fast.finditer(text)] == [m.span() for m in plain.finditer(text)]


@SETTINGS
@given(text=_BOUNDARY_TEXT)
def test_word_start_matches_what_a_word_boundary_matches(text: str) -> None:
    for head, tail in (("(?:sk|pk|rk)_", "[a-z_]+"), ("(?i:sk)", "_"), ("A0", "[0-9]*")):
        plain = re.compile(rf"\b{head}{tail}", re.ASCII)
        fast = re.compile(word_start(head) + tail, re.ASCII)
        assert [m.span() for m in fast.finditer(text)] == [m.span() for m in plain.finditer(text)]


@SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list("ABz019 -")), max_size=40))
def test_the_letter_assertion_of_headed_rules_changes_nothing(text: str) -> None:
    for head in ("[A-Za-z]{2}", "[A-Z][AB]", "[AB] "):
        fast = headed(head, "[A-Za-z0-9]") + "[0-9]{2}"
        plain = fast.replace(AFTER_LETTER, "")
        assert (AFTER_LETTER in fast) == (not head.endswith(" "))
        matches = [m.span() for m in re.finditer(plain, text, re.ASCII)]
        assert [m.span() for m in re.finditer(fast, text, re.ASCII)] == matches


def test_anchored_rules_skip_literals_that_cannot_start_a_match() -> None:
    rules = {c.rule.id: c for c in ENGINE._sets["request"].rules}
    assert rules["twilio-sid"].first_chars == frozenset("AS")
    assert rules["phone-context"].match is not None
    lowered = "back, each, task: AC0123456789abcdef0123456789abcdef"
    leaf = _Leaf(DigitRuns(lowered), [rules["twilio-sid"]], lowered=lowered.lower())
    assert [(h.start, h.end) for h in ENGINE._run(lowered, leaf)] == [(18, 52)]


@SETTINGS
@given(
    text=st.text(alphabet=st.sampled_from(list("ab.-_+@ \u00e9x1")), max_size=40)
    | st.sampled_from(["a@b.co.x@c.de", "x.y@z.com, .a@b.cd", "@@a.bc", "\u00e9@b.cd a@b"])
)
def test_the_email_rule_tried_before_each_at_sign_finds_what_a_scan_finds(text: str) -> None:
    email = next(c for c in ENGINE._sets["request"].rules if c.rule.id == "email")
    assert email.run_chars is not None
    assert "@" not in email.run_chars
    scanned = [(m.start(), m.end()) for m in email.finditer(text, 0, len(text))]
    leaf = _Leaf(DigitRuns(text), [email], lowered=text.lower())
    assert [(h.start, h.end) for h in ENGINE._run(text, leaf)] == scanned


# --- quiet leaves ---------------------------------------------------------------------------


def _scan(engine: DetectionEngine, text: str, key: str = "role") -> list[Finding]:
    return _findings(engine.detect([Entry(("messages", 0, key), text)], direction="request"))


def test_a_quiet_leaf_is_remembered_and_scanned_the_same() -> None:
    engine = DetectionEngine(default_rules())
    quiet = engine._sets["request"].quiet
    assert _scan(engine, "assistant") == []
    assert "assistant" in quiet
    assert "assistant" not in engine._sets["response"].quiet
    assert _scan(engine, "assistant") == []


def test_key_name_context_still_applies_to_a_remembered_leaf() -> None:
    engine = DetectionEngine(default_rules())
    assert _scan(engine, "hunter22-horse") == []
    assert "hunter22-horse" in engine._sets["request"].quiet
    found = _scan(engine, "hunter22-horse", key="password")
    assert [(rule_id, start, end) for _t, rule_id, start, end, *_ in found] == [
        (KEY_NAME_RULE_ID, 0, 14)
    ]
    # Now a detected value: forgotten at once, and detected again the next time.
    assert "hunter22-horse" not in engine._sets["request"].quiet
    assert _scan(engine, "hunter22-horse", key="password") == found


def test_a_value_detected_in_another_leaf_is_forgotten() -> None:
    engine = DetectionEngine(default_rules())
    _scan(engine, "Zq3x9LmP2vR7tK4wN8bY1cF6")
    assert "Zq3x9LmP2vR7tK4wN8bY1cF6" in engine._sets["request"].quiet
    found = _scan(engine, "api_key = 'Zq3x9LmP2vR7tK4wN8bY1cF6'", key="content")
    assert any(rule_id == "assignment-secret" for _t, rule_id, *_ in found)
    assert "Zq3x9LmP2vR7tK4wN8bY1cF6" not in engine._sets["request"].quiet


def test_only_short_unfolded_quiet_leaves_are_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_module, "_QUIET_LEAVES", 8)
    engine = DetectionEngine(default_rules())
    quiet = engine._sets["request"].quiet
    long_text = "word " * 20
    _scan(engine, long_text)
    _scan(engine, "\uff41\uff42\uff43")  # full-width letters: folded, never remembered
    _scan(engine, "reach me at a@example.com")
    assert long_text not in quiet
    assert "\uff41\uff42\uff43" not in quiet
    assert "reach me at a@example.com" not in quiet
    for index in range(20):
        _scan(engine, f"name-{'x' * index}")
        assert len(quiet._texts) <= 8


def test_remembered_leaves_give_the_findings_of_a_fresh_scan() -> None:
    remembering = DetectionEngine(default_rules())
    fresh = DetectionEngine(default_rules())
    texts = ["user", "assistant", "gpt-4o-mini", "hunter22", "[REDACTED:email]", "tel"]
    for _round in range(2):
        for text in texts:
            for key in ("role", "password", "token"):
                for direction in ("request", "response"):
                    entries = [Entry(("m", key), text)]
                    fresh._sets[direction].quiet._texts.clear()
                    assert _findings(remembering.detect(entries, direction=direction)) == (
                        _findings(fresh.detect(entries, direction=direction))
                    )
    assert "assistant" in remembering._sets["response"].quiet


# --- remembered marker parts ------------------------------------------------------------------

_MARKER_INNERS = st.one_of(
    st.sampled_from(
        [
            "REDACTED:email",
            "REDACTED:api_key",
            "TOKEN:tok_email_a6d376389bb21964",
            "TOKEN:card:0123456789ab",
            "REDACTED:sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx",
            "REDACTED:demo_abcdefghij0123456789xyz",
            "TOKEN:sk_demo_a1B2c3D4e5F6g7H8i9J0k1L2",
            # Well shaped (lowercase identifiers) yet holding a secret:
            "REDACTED:sk_live_4ec39hqlyjwdarjtt1zdp7dc",
            "REDACTED:npm_a8f3kl9mq2we7rt1yu4io6pz5xc0vb3nm8sd",
            "TOKEN:tok_sk_live_4ec39hqlyjwdarjtt1zdp7dc_0123456789abcdef",
            "TOKEN:rk_live_4ec39hqlyjwdarjtt1zdp7dc:deadbeef12",
        ]
    ),
    st.builds(
        lambda kind, inner: f"{kind}:{inner}",
        st.sampled_from(["REDACTED", "TOKEN"]),
        st.text(st.sampled_from("abcxyz_019:-ABQ"), min_size=1, max_size=40),
    ),
)


@SETTINGS
@given(
    inners=st.lists(_MARKER_INNERS, min_size=1, max_size=4),
    direction=st.sampled_from(["request", "response"]),
)
def test_remembered_marker_parts_give_the_findings_of_a_fresh_scan(
    inners: list[str], direction: str
) -> None:
    """Marker parts in which nothing was found are remembered; a part with a finding never
    is, so a secret smuggled in a marker is found every time it comes back."""
    text = " and ".join(f"[{inner}]" for inner in inners)
    for _round in range(2):
        ENGINE_FRESH._sets[direction].quiet_parts._texts.clear()
        expected = _findings(ENGINE_FRESH.scan_text(text, direction=direction, path=("v",)))
        assert _findings(ENGINE.scan_text(text, direction=direction, path=("v",))) == expected


ENGINE_FRESH = DetectionEngine(default_rules())


def test_a_marker_part_with_a_finding_is_not_remembered() -> None:
    engine = DetectionEngine(default_rules())
    secret = "sk_live_" + "4ec39hqlyjwdarjtt1zdp7dc"
    for _round in range(3):
        found = engine.scan_text(f"[REDACTED:{secret}]", direction="response")
        assert [d.value for d in found] == [secret]
    parts = engine._sets["response"].quiet_parts
    assert secret not in parts
    assert not parts._texts
    engine.scan_text("[REDACTED:email]", direction="response")
    assert "email" in parts


# --- remembered phone verdicts -----------------------------------------------------------------


@SETTINGS
@given(
    text=st.one_of(
        st.sampled_from(["010-1234-5678", "02-312-3456", "010-0000-0000", "+82 10-1234-5678"]),
        st.text(st.sampled_from("0123456789-+ ()"), min_size=1, max_size=18),
    )
)
def test_a_remembered_phone_verdict_is_libphonenumbers(text: str) -> None:
    check = validators.phone_in_regions(("KR", "US"))
    plain = check._valid(text)  # type: ignore[attr-defined]
    assert check(text) is plain
    assert check(text) is plain
    assert validators.phone_international(text) is validators._valid_international(text)


def test_phone_verdicts_are_kept_by_digest_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validators, "_VERDICTS", 8)
    check = validators.phone_in_regions(("KR",))
    assert check("010-1234-5678") is True
    known = check._verdicts._known  # type: ignore[attr-defined]
    assert all(isinstance(key, bytes) and len(key) == 16 for key in known)
    assert not any(b"1234" in key or b"5678" in key for key in known)
    for index in range(30):
        check(f"010-1234-{index:04d}")
        assert len(known) <= 8
    assert check("010-1234-5678") is True
    assert check("123") is False
