# SPDX-License-Identifier: Apache-2.0
"""Regex building blocks shared by the PII and national-id catalogues.

Python's regex engine can skip quickly through text to the positions where a match could
start, but only when the pattern *begins* with a single character or character class. A
pattern that begins with a look-behind such as ``(?<![\\w-])`` is tried at every position of
every leaf, which is several times slower. :func:`lead` writes the same condition the fast
way: consume the first character, then look behind at it and the character before it.

Formats that start with letters (IBAN, codice fiscale, PAN, CURP) would still be tried at
every letter. :func:`headed` starts their match at the first *digit* instead (rare in prose)
and captures the leading letters in a look-behind group named ``head``; the engine reports
the finding from the start of that group. A head of varying length is written as one
fixed-width look-behind per length, in groups ``head1``, ``head2``, ... (a group name may be
used once); the first that took part in the match counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = [
    "AFTER_LETTER",
    "HEAD_GROUP",
    "NOT_INSIDE_NUMBER",
    "head_groups",
    "headed",
    "lead",
    "word_start",
]

#: Name of the look-behind group that holds the letters a ``headed`` rule starts with.
HEAD_GROUP = "head"

#: Right after the first character: "this is not a digit that continues a digit". Every
#: number-shaped rule starts like that; written out identically, it lets the combined
#: locator (``haechi.detect.locator``) test it once for all of them.
NOT_INSIDE_NUMBER = "(?<![0-9][0-9])"

#: Right after the first digit of a ``headed`` rule whose head ends with a letter: "a letter
#: precedes it". The head implies it; written out identically, it lets the locator reject
#: every such rule with one test at a digit after a space or a bracket (code, logs).
AFTER_LETTER = "(?<=[A-Za-z][0-9])"

# A head ending with a class of ASCII letters, possibly repeated.
_LETTER_CLASS_END = re.compile(r"\[(?:[A-Za-z](?:-[A-Za-z])?)+\](?:\{[0-9]+\})?$")


def _excludes_digits_before(not_after: str) -> bool:
    return any(part in not_after for part in ("0-9", r"\w", r"\d"))


def lead(first: str, not_after: str) -> str:
    """Match one character of class ``first`` that does not follow a ``not_after`` character.

    ``lead("[0-9]", r"[\\w-]") + "[0-9]{8}"`` matches what ``(?<![\\w-])[0-9]{9}`` matches,
    but lets the engine skip to digits.
    """
    guard = NOT_INSIDE_NUMBER if _excludes_digits_before(not_after) else ""
    return f"{first}{guard}(?<!{not_after}{first})"


def word_start(head: str) -> str:
    """Match ``head`` at the start of a word: what ``\\b`` followed by ``head`` matches, for a
    fixed-width ``head`` that starts with a word character.

    Written as ``head`` then a look-behind at it, so that the regex engine skips to the
    characters ``head`` starts with instead of testing the word boundary everywhere.
    """
    return rf"{head}(?<!\w{head})"


def headed(head: str, not_after: str) -> str:
    """Match a digit preceded by ``head`` (fixed width, ending with a non-digit), itself not
    after ``not_after``.

    The engine widens the finding to start at the ``head`` group, so
    ``headed("[A-Z]{2}", "[A-Z0-9]") + "[0-9]{6}"`` finds ``AB1234567`` while the regex
    engine only stops at digits. A head that ends with a class of letters also states
    :data:`AFTER_LETTER` first, a cheaper test of what the head implies.
    """
    letter = AFTER_LETTER if _LETTER_CLASS_END.search(head) else ""
    return f"[0-9]{NOT_INSIDE_NUMBER}{letter}(?<=(?<!{not_after})(?P<{HEAD_GROUP}>{head})[0-9])"


def head_groups(groupindex: Mapping[str, int]) -> tuple[str, ...]:
    """The head groups of a compiled pattern (``head``, ``head1``, ``head2``, ...), in the
    order of the pattern."""
    names = [
        name
        for name in groupindex
        if name == HEAD_GROUP or (name.startswith(HEAD_GROUP) and name[len(HEAD_GROUP) :].isdigit())
    ]
    return tuple(sorted(names, key=groupindex.__getitem__))
