# SPDX-License-Identifier: Apache-2.0
"""Cheap scans that decide which rules can possibly match a piece of text.

Most leaves are prose that no rule can match. Instead of running every rule's regex over
every leaf, the engine makes two cheap passes per leaf and runs a rule only when both allow
it:

* a literal pass: one Aho-Corasick automaton over every rule's prefilter literals
  (lowercased) finds which literals occur in the lowercased text;
* a digit pass: the length, in digits, of the longest digit run (digits split by at most two
  separators among whitespace and ``.-/()_``) decides which ``min_digits`` rules can match,
  and on long text narrows them to windows around the runs that are long enough.

Both passes over-approximate (a rule may run and find nothing) but never under-approximate,
so skipping a rule or a stretch of text never loses a finding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

import ahocorasick_rs

from haechi.detect.budget import current_budget

__all__ = ["DROP_DIGITS", "DigitRuns", "LiteralScanner", "digits_in"]

#: A run of two or more digits (a lone digit is a run too, but never needs to be looked at).
_DIGIT_RUN: Final = re.compile(r"[0-9](?:[\s.\-/()_]{0,2}[0-9])+")
#: ``str.translate`` table that drops the ASCII digits.
DROP_DIGITS: Final = str.maketrans("", "", "0123456789")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
#: ISO dates, with the hour when a space separates it (``T`` ends the run anyway).
_TIMESTAMP: Final = re.compile(r"[0-9]{4}([-/])[0-9]{2}\1[0-9]{2}(?: [0-9]{2})?")
_TIMESTAMP_SIZES: Final = frozenset({10, 13})
_TIMESTAMP_DIGITS: Final = 4
#: What searching one more window costs, in characters of text scanned instead.
_WINDOW_COST: Final = 64


def _skeleton_table() -> bytes:
    """``bytes.translate`` table of the skeleton of ASCII text: every digit becomes ``0``,
    the run separators stay (other ASCII whitespace becomes a tab, which only matters as
    "whitespace that is not a space"), everything else becomes ``x``."""
    table = bytearray(b"x" * 256)
    for digit in b"0123456789":
        table[digit] = ord("0")
    for separator in b" .-/()_":
        table[separator] = separator
    for space in b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f":  # ASCII members of ``\s``
        table[space] = ord("\t")
    return bytes(table)


_SKELETON: Final = _skeleton_table()
# The runs of _DIGIT_RUN, found in the skeleton: the pattern starts with one literal byte,
# which the regular expression engine finds several times faster than a character class.
_SKELETON_RUN: Final = re.compile(rb"0(?:[\t .\-/()_]{0,2}0)+")
_SKELETON_TIMESTAMP: Final = re.compile(rb"0000([-/])00(?:\1)00(?: 00)?")


def _has_digit(text: str) -> bool:
    # Ten substring tests run at memory speed, far faster than one character-class scan.
    return (
        "0" in text
        or "1" in text
        or "2" in text
        or "3" in text
        or "4" in text
        or "5" in text
        or "6" in text
        or "7" in text
        or "8" in text
        or "9" in text
    )


def digits_in(run: str) -> int:
    """How many ASCII digits ``run`` holds."""
    return len(run) - len(run.translate(DROP_DIGITS))


def _run_digits(run: str | bytes) -> int:
    """The digits a run (of the text or of its skeleton) counts for: a timestamp's date
    counts as its longest group."""
    if isinstance(run, bytes):
        if len(run) in _TIMESTAMP_SIZES and _SKELETON_TIMESTAMP.fullmatch(run):
            return _TIMESTAMP_DIGITS
        return run.count(48)  # b"0"
    if len(run) in _TIMESTAMP_SIZES and _TIMESTAMP.fullmatch(run):
        return _TIMESTAMP_DIGITS
    return digits_in(run)


class DigitRuns:
    """The maximal digit runs of a text, and the windows around them where rules must look.

    A run is a maximal stretch of digits in which consecutive digits are separated by at most
    two of whitespace, ``.``, ``-``, ``/``, ``(``, ``)`` and ``_`` (``(02) 9876-5432`` is one
    run of 10 digits; ``1,234`` and ``10:30`` are two runs each). Every
    match of a rule with ``min_digits = k`` overlaps a run of at least ``k`` digits, so such a
    rule can skip text without a long enough run, and on long text it only needs to look at
    windows around the runs that are long enough.

    A run that is exactly an ISO date, possibly with the hour after a space
    (``2024-05-01``, ``2024/05/01 12``), counts as 4 digits: logs carry one per line, and
    no rule that needs more digits can match one (``tests/test_detect_prefilter.py`` checks
    every rule of the catalogue against such timestamps).
    """

    __slots__ = (
        "_around",
        "_distinct",
        "_grouped",
        "_runs",
        "_source",
        "_text",
        "_windows",
        "longest",
    )

    def __init__(self, text: str) -> None:
        self._text = text
        self._grouped: int | None = None
        self._runs: list[tuple[int, int]] | None = None
        # Windows by (min_digits, reach): as computed by around(), and as worth searching.
        self._around: dict[tuple[int, int], list[tuple[int, int]] | None] | None = None
        self._windows: dict[tuple[int, int], list[tuple[int, int]] | None] | None = None
        # Runs are searched in the text's skeleton when it is ASCII (see _SKELETON): same
        # runs at the same offsets, found faster, and every timestamp of a log is the same
        # skeleton run, counted once.
        self._source: str | bytes = text
        self._distinct: set[str] | set[bytes] = set()
        #: Digits in the longest run (0 when the text has no digit).
        self.longest = 0
        if not _has_digit(text):
            return
        if text.isascii():
            self._source = text.encode("ascii").translate(_SKELETON)
            self._distinct = set(_SKELETON_RUN.findall(self._source))
        else:
            self._distinct = set(_DIGIT_RUN.findall(text))
        # A run has at most as many digits as characters: shorter runs cannot be longer.
        longest = 1
        for run in self._distinct:
            if len(run) > longest:
                longest = max(longest, _run_digits(run))
        self.longest = longest

    @property
    def grouped(self) -> int:
        """Digits in the longest run of two or more groups (split by separators)."""
        if self._grouped is None:
            grouped = 0
            for run in self._distinct:
                if len(run) > grouped and not run.isdigit():
                    grouped = max(grouped, _run_digits(run))
            self._grouped = grouped
        return self._grouped

    def spans(self) -> list[tuple[int, int]]:
        """``(start, end)`` of every run of two or more characters, in text order."""
        if self._runs is None:
            source = self._source
            pattern = _SKELETON_RUN if isinstance(source, bytes) else _DIGIT_RUN
            self._runs = [match.span() for match in pattern.finditer(source)]  # type: ignore[arg-type]
        return self._runs

    def windows(self, min_digits: int, reach: int) -> list[tuple[int, int]] | None:
        """Disjoint ``(start, end)`` windows reaching ``reach`` characters around every run of
        at least ``min_digits`` digits, or ``None`` when the whole text should be scanned
        (searching the windows one by one would cost about as much as one pass).

        ``reach`` must exceed the longest match of the rule by the widest look-around the
        rule uses, so that look-arounds at a window's edge still see the real characters.
        """
        length = len(self._text)
        if length <= 2 * reach + _WINDOW_COST:
            return None
        key = (min_digits, reach)
        if self._windows is None:
            self._windows = {}
        elif key in self._windows:
            return self._windows[key]
        windows = self.around(min_digits, reach)
        if windows is not None:
            cost = sum(high - low + _WINDOW_COST for low, high in windows)
            if cost >= length:
                windows = None
        self._windows[key] = windows
        return windows

    def around(self, min_digits: int, reach: int) -> list[tuple[int, int]] | None:
        """:meth:`windows` for any length of text: worth it for a costly pass, such as the
        combined locator, even on a short leaf. ``None`` when they would cover most of it."""
        key = (max(1, min_digits), reach)
        if self._around is None:
            self._around = {}
        elif key in self._around:
            return self._around[key]
        source = self._source
        length = len(source)
        merged: list[tuple[int, int]] = []
        covered = 0
        counted: dict[str | bytes, int] = {}
        budget = current_budget()
        for start, end in self.spans():
            if budget is not None:
                budget.step()
            if end - start < min_digits:
                continue
            run = source[start:end]
            digits = counted.get(run)
            if digits is None:
                digits = counted[run] = _run_digits(run)
            if digits < min_digits:
                continue
            low, high = max(0, start - reach), min(length, end + reach)
            if merged and low <= merged[-1][1]:
                if high > merged[-1][1]:
                    covered += high - merged[-1][1]
                    merged[-1] = (merged[-1][0], high)
            else:
                covered += high - low
                merged.append((low, high))
        result = None if covered * 2 > length else merged
        self._around[key] = result
        return result


class LiteralScanner:
    """Finds which of a fixed set of literals occur in a text, case-insensitively.

    One Aho-Corasick pass (``ahocorasick_rs``) reports every occurrence of every literal,
    overlapping ones included, in time linear in the text whatever the number of literals.

    The automaton only accepts text that encodes to UTF-8, which a Python ``str`` holding a
    lone surrogate (``json.loads('"\\ud800"')``) does not. Such code points are replaced by
    U+FFFD for this pass: no literal contains either, so the set of literals found is the
    same, and the rules themselves still run on the untouched text.
    """

    __slots__ = ("_automaton",)

    def __init__(self, literals: Iterable[str]) -> None:
        words = sorted({literal.lower() for literal in literals if literal})
        # The DFA takes more memory than the default automaton but scans prose about
        # twice as fast; there is one per rule set.
        self._automaton = (
            ahocorasick_rs.AhoCorasick(words, implementation=ahocorasick_rs.Implementation.DFA)
            if words
            else None
        )

    def present(self, lowered: str) -> set[str]:
        """The literals that occur in ``lowered``, an already lowercased text."""
        if self._automaton is None:
            return set()
        try:
            found = self._automaton.find_matches_as_strings(lowered, overlapping=True)
        except UnicodeEncodeError:
            clean = _SURROGATE.sub("\ufffd", lowered)
            found = self._automaton.find_matches_as_strings(clean, overlapping=True)
        return set(found)
