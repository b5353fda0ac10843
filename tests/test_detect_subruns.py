# SPDX-License-Identifier: Apache-2.0
"""A hard-block number next to other digit groups is still found.

The number rules look at whole digit runs: a card right after a phone number, an order
number or a date is written as one long run of digit groups, the greedy match of that run
fails its checksum, and the card would be lost. The engine then retries the hard-block
number rules on the sub-runs that start and end at group boundaries.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import luhn

from haechi.detect import DetectionEngine, Rule, default_rules
from haechi.detect.prefilter import DigitRuns
from haechi.detect.subruns import sub_runs
from haechi.errors import DetectionError
from haechi.models import Detection

ENGINE = DetectionEngine(default_rules())
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VISA = "4111 1111 1111 1111"


def _scan(text: str) -> list[Detection]:
    return ENGINE.scan_text(text, direction="request")


def _cards(text: str) -> list[str]:
    return [d.value for d in _scan(text) if d.type == "card"]


@pytest.mark.parametrize(
    ("text", "card"),
    [
        ("call 010-1234-5678 4111 1111 1111 1111", VISA),
        ("4111 1111 1111 1111 010-1234-5678", VISA),
        ("order 12345 4111 1111 1111 1111 shipped", VISA),
        ("on 2024-05-01 4111-1111-1111-1111 was charged", "4111-1111-1111-1111"),
        ("1234 4111 1111 1111 1111", VISA),
        ("4111 1111 1111 1111 2222", VISA),
        ("ref 77 5555-5555-5555-4444 12", "5555-5555-5555-4444"),
        ("3782 822463 10005 99", "3782 822463 10005"),
        ("12 34 4111111111111111", "4111111111111111"),
    ],
)
def test_card_next_to_other_digit_groups(text: str, card: str) -> None:
    assert card in _cards(text)


def test_phone_and_card_are_both_reported() -> None:
    found = {(d.type, d.value) for d in _scan("call 010-1234-5678 4111 1111 1111 1111")}
    assert found == {("phone", "010-1234-5678"), ("card", VISA)}


def test_two_cards_in_one_run() -> None:
    text = "4111 1111 1111 1111 5555 5555 5555 4444"
    assert set(_cards(text)) >= {VISA, "5555 5555 5555 4444"}


@pytest.mark.parametrize(
    "text",
    [
        "41111111111111111111111",  # contiguous digits are never cut
        "4111111111111112 12",
        "2024-05-01 12:30:45 7111 1111 1111 1116",
        "1234 5678 9012 3456",
    ],
)
def test_no_card_without_a_valid_sub_run(text: str) -> None:
    assert _cards(text) == []


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("call 010-1234-5678 900101-1234568", "kr_rrn", "900101-1234568"),
        ("2024-05-01-900101-1234568", "kr_rrn", "900101-1234568"),
        ("2024-05-01-1 85 05 78 006 048 30", "fr_nir", "1 85 05 78 006 048 30"),
    ],
)
def test_other_hard_block_numbers_after_digit_groups(text: str, kind: str, value: str) -> None:
    assert value in [d.value for d in _scan(text) if d.type == kind]


def test_a_rule_asking_for_sub_runs_needs_a_bounded_digit_pattern() -> None:
    rule = Rule(
        id="unbounded", type="card", pattern=r"[0-9]+", confidence=0.5, description="x",
        prefilter=tuple("0123456789"), min_digits=13, sub_run_digits=13,
    )  # fmt: skip
    with pytest.raises(DetectionError, match="sub-runs"):
        DetectionEngine([rule])


def test_work_is_linear_in_the_run_length() -> None:
    # Thousands of groups in one run: every start group is retried against a bounded number
    # of end groups, so this finishes at once and finds the one card in it.
    rng = random.Random(7)
    groups = [str(rng.randint(0, 9)) for _ in range(20_000)]
    text = " ".join(groups[:10_000]) + " " + VISA + " " + " ".join(groups[10_000:])
    assert VISA in _cards(text)


_GROUP = st.text(alphabet="0123456789", min_size=1, max_size=6)
_SEP = st.sampled_from([" ", "-"])


@st.composite
def _card_among_groups(draw: st.DrawFn) -> tuple[str, str]:
    prefix = draw(st.sampled_from(["4", "51", "52", "55", "6011", "2221", "2720"]))
    body = prefix + draw(
        st.text(alphabet="0123456789", min_size=15 - len(prefix), max_size=15 - len(prefix))
    )
    number = body + luhn.calc_check_digit(body)
    layout = draw(st.sampled_from(["contiguous", " ", "-"]))
    card = (
        number
        if layout == "contiguous"
        else layout.join(number[i : i + 4] for i in range(0, 16, 4))
    )
    before = draw(st.lists(st.tuples(_GROUP, _SEP), max_size=4))
    after = draw(st.lists(st.tuples(_SEP, _GROUP), max_size=4))
    text = "".join(g + s for g, s in before) + card + "".join(s + g for s, g in after)
    return text, card


@SETTINGS
@given(case=_card_among_groups(), lead=st.sampled_from(["", "paid ", "x: ", "(", "\u8a18 "]))
def test_a_valid_card_among_random_digit_groups_is_always_found(
    case: tuple[str, str], lead: str
) -> None:
    text, card = case
    full = lead + text + " ok"
    start = full.index(card)
    end = start + len(card)
    spans = [(d.start, d.end) for d in _scan(full) if d.type == "card"]
    assert any(s <= start and end <= e for s, e in spans), (full, spans)


# --- Gaps no match can span ------------------------------------------------------------------

_WITHOUT_JOINERS = DetectionEngine([replace(rule, sub_run_joiners="") for rule in default_rules()])


def _tsv(rows: int, seed: int) -> str:
    rng = random.Random(seed)
    return "\n".join("\t".join(str(rng.randint(1000, 9999)) for _ in range(8)) for _ in range(rows))


def test_a_table_split_by_tabs_and_line_breaks_is_not_cut_into_card_sub_runs() -> None:
    # One digit run to the prefilter (tabs and line breaks join digit groups), but no card
    # spans a tab: no sub-run crosses one, so the table costs no rescans at all.
    text = _tsv(200, 3)
    runs = DigitRuns(text).spans()
    assert len(runs) == 1
    card = next(rule for rule in default_rules() if rule.id == "card-like")
    assert card.sub_run_joiners == " ._-"
    width = 23
    assert list(sub_runs(text, runs, min_digits=13, width=width, joiners=" ._-")) == []
    assert len(list(sub_runs(text, runs, min_digits=13, width=width))) > 1000


def test_a_card_in_a_cell_of_a_tab_separated_table_is_found() -> None:
    text = _tsv(3, 5) + "\t" + VISA + "\t" + _tsv(3, 6)
    assert VISA in _cards(text)


_ANY_SEP = st.sampled_from([" ", "-", ".", "_", "\t", "\n", " \t", "/", "  ", "-\n"])


@SETTINGS
@given(
    parts=st.lists(st.tuples(_GROUP, _ANY_SEP), min_size=1, max_size=12),
    card=_card_among_groups(),
)
def test_joiners_change_the_work_never_the_findings(
    parts: list[tuple[str, str]], card: tuple[str, str]
) -> None:
    middle = len(parts) // 2
    text = (
        "".join(g + s for g, s in parts[:middle])
        + card[0]
        + "".join(s + g for g, s in parts[middle:])
    )
    found = [(d.type, d.start, d.end) for d in _scan(text)]
    reference = [
        (d.type, d.start, d.end) for d in _WITHOUT_JOINERS.scan_text(text, direction="request")
    ]
    assert found == reference


def _reference_sub_runs(
    text: str, runs: list[tuple[int, int]], min_digits: int, width: int, joiners: str
) -> list[tuple[int, int]]:
    """Every sub-run by the definition, one pair of groups at a time."""
    found = []
    for run_start, run_end in runs:
        groups = [m.span() for m in re.finditer("[0-9]+", text[run_start:run_end])]
        groups = [(run_start + a, run_start + b) for a, b in groups]
        for first in range(len(groups)):
            for last in range(first, len(groups)):
                start, end = groups[first][0], groups[last][1]
                gaps = [text[groups[i][1] : groups[i + 1][0]] for i in range(first, last)]
                split_otherwise = joiners and (
                    len(set(gaps)) > 1 or any(len(g) != 1 or g not in joiners for g in gaps)
                )
                if end - start > width or split_otherwise:
                    break
                digits = sum(b - a for a, b in groups[first : last + 1])
                if digits < min_digits or (first == 0 and last == len(groups) - 1):
                    continue
                low = max(0, start - 8) if first == 0 else start
                high = min(len(text), end + 8) if last == len(groups) - 1 else end
                found.append((low, high))
    return found


@SETTINGS
@given(
    parts=st.lists(st.tuples(_GROUP, _ANY_SEP), min_size=1, max_size=30),
    min_digits=st.integers(1, 16),
    width=st.integers(1, 30),
    joiners=st.sampled_from(["", " ._-", " "]),
)
def test_sub_runs_are_every_sub_run_the_definition_names(
    parts: list[tuple[str, str]], min_digits: int, width: int, joiners: str
) -> None:
    text = "x " + "".join(g + s for g, s in parts) + "y"
    runs = DigitRuns(text).spans()
    produced = list(sub_runs(text, runs, min_digits=min_digits, width=width, joiners=joiners))
    assert sorted(produced) == sorted(_reference_sub_runs(text, runs, min_digits, width, joiners))
