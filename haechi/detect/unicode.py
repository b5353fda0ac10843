# SPDX-License-Identifier: Apache-2.0
"""NFKC folding with offsets that always slice back into the original text.

Look-alike characters (full-width digits and at sign, mathematical bold digits, ligatures)
are folded with NFKC before rules run, so that a phone number typed in full-width digits is
still a phone number. The
catch is offsets: findings must point into the *original* string. Three cases:

``original``
    The text is already NFKC (nearly always): scan it as is.
``stable``
    Every code point folds, on its own, to exactly one code point, and those per-code-point
    folds concatenated equal the NFKC of the whole text. Then index ``i`` of the folded text
    corresponds to index ``i`` of the original, and a match ``folded[s:e]`` is reported as
    ``original[s:e]``. Python indexes code points, so the condition is stated per code point
    (a surrogate pair is one code point here, unlike in UTF-16 based engines). Comparing only
    total lengths would be unsound: a character that shrinks before a finding and one that
    grows after it keep the length but shift every offset in between.
``unstable``
    Anything else (ligatures, compositions, characters that fold to several code points):
    there is no sound offset map, so the engine reports one whole-leaf finding per type that
    matches the folded text (fail closed).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Final, Literal, NamedTuple

__all__ = ["FoldCase", "Folded", "as_read", "fold"]

#: Characters that render as nothing. Unicode's format controls (category ``Cf``: soft
#: hyphen, zero-width space and joiners, word joiner, bidi controls, tag characters, ...);
#: the rest of its default-ignorable code points (the combining grapheme joiner, Hangul
#: fillers, Khmer inherent vowels, Mongolian and other variation selectors, and the
#: unassigned ones kept for more); the braille blank; and the control characters that are
#: not whitespace (C0 but tab, line feed, vertical tab, form feed and carriage return; DEL;
#: C1). Typed between the digits of a card number they hide it from the rules, not from a
#: model, whose tokenizer keeps them and reads past them.
_INVISIBLE_CLASS: Final = (
    "[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f"
    "\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
_INVISIBLE: Final = re.compile(_INVISIBLE_CLASS)
#: The invisible characters of ASCII: text of ASCII alone holds no other.
_ASCII_INVISIBLE: Final = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
#: Combining diacritical marks (the generic blocks). On a letter of a script they are part
#: of its spelling, but stacked on an ASCII letter, digit or sign (``4111 1111\u0300``) they
#: only decorate what a model still reads.
_MARK_CLASS: Final = "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
_MARK: Final = re.compile(_MARK_CLASS)
#: What makes a text that is not ASCII read differently from how it is written.
_HIDING: Final = re.compile(f"{_INVISIBLE_CLASS}|[!-~]{_MARK_CLASS}")
#: Tag characters that spell printable ASCII invisibly (U+E0020-U+E007E: "ASCII smuggling").
_TAG_BASE: Final = 0xE0000
_TAGS: Final = range(0xE0020, 0xE007F)
#: A JSON ``\\uXXXX`` escape: a surrogate pair (groups 1, 2) or any other one (group 3).
#: JSON held in a string that is itself JSON doubles the backslash at each level
#: (``\\\\u0040`` is ``@`` two levels down), so any run of backslashes starts an escape.
_ESCAPE: Final = re.compile(
    r"\\+u([dD][89abAB][0-9a-fA-F]{2})\\+u([dD][c-fC-F][0-9a-fA-F]{2})|\\+u([0-9a-fA-F]{4})"
)

FoldCase = Literal["original", "stable", "unstable"]


class Folded(NamedTuple):
    """The text rules run on, and how its offsets relate to the original (a named tuple:
    one is made per leaf, and a tuple is several times cheaper to make than a frozen
    dataclass)."""

    case: FoldCase
    text: str


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    return unicodedata.normalize("NFKC", char)


def fold(text: str) -> Folded:
    """Classify ``text`` into one of the three folding cases and return the text to scan."""
    if unicodedata.is_normalized("NFKC", text):
        return Folded("original", text)
    normalized = unicodedata.normalize("NFKC", text)
    if len(normalized) == len(text):
        pieces = [_fold_char(char) for char in text]
        if all(len(piece) == 1 for piece in pieces) and "".join(pieces) == normalized:
            return Folded("stable", normalized)
    return Folded("unstable", normalized)


def as_read(text: str) -> tuple[str, tuple[int, ...], tuple[int, ...]] | None:
    """``text`` as a reader (or a model) reads it, where each of its characters comes from
    (``start`` and ``end`` offsets in ``text``); ``None`` when that is ``text`` itself.

    Three things make the two differ. Invisible characters: tag characters are read as the
    ASCII they stand for (a model reads text written in them), every other one is dropped.
    Combining marks on an ASCII character are dropped. And JSON ``\\uXXXX`` escapes
    (surrogate pairs joined), which a string holding JSON (tool-call arguments, a tool's
    result) uses for any character: the escape is read as its character, as the JSON
    decoder on the other side will. A span of the result maps back to ``text`` from its
    first character's start to its last one's end.
    """
    escaped = "\\u" in text and _ESCAPE.search(text) is not None
    if not escaped and (_ASCII_INVISIBLE if text.isascii() else _HIDING).search(text) is None:
        return None
    characters: list[str] = []
    starts: list[int] = []
    ends: list[int] = []

    def read(character: str, start: int, end: int) -> None:
        point = ord(character)
        if point in _TAGS:
            character = chr(point - _TAG_BASE)
        elif _INVISIBLE.match(character) or (
            characters and characters[-1].isascii() and _MARK.match(character)
        ):
            return
        characters.append(character)
        starts.append(start)
        ends.append(end)

    position = 0
    for match in _ESCAPE.finditer(text) if escaped else ():
        for index in range(position, match.start()):
            read(text[index], index, index + 1)
        if match[3] is not None:
            read(chr(int(match[3], 16)), match.start(), match.end())
        else:
            high, low = int(match[1], 16) - 0xD800, int(match[2], 16) - 0xDC00
            read(chr(0x10000 + (high << 10) + low), match.start(), match.end())
        position = match.end()
    for index in range(position, len(text)):
        read(text[index], index, index + 1)
    return "".join(characters), tuple(starts), tuple(ends)
