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

__all__ = ["FoldCase", "Folded", "fold", "visible"]

#: Characters that render as nothing: Unicode's format controls (category ``Cf``: soft hyphen,
#: zero-width space and joiners, word joiner, bidi controls, tag characters, ...). Typed
#: between the digits of a card number they hide it from the rules, not from a model.
_INVISIBLE: Final = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]"
)
#: Tag characters that spell printable ASCII invisibly (U+E0020-U+E007E: "ASCII smuggling").
_TAG_BASE: Final = 0xE0000
_TAGS: Final = range(0xE0020, 0xE007F)

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


def visible(text: str) -> tuple[str, tuple[int, ...]] | None:
    """``text`` without its invisible characters, and where each of its characters is in
    ``text``; ``None`` when ``text`` has none.

    Tag characters are read as the ASCII characters they stand for (a model can read text
    written in them); every other format control is dropped. Each character of the result
    comes from one character of ``text``, so a span of the result maps back to the span of
    ``text`` from its first character's origin to its last one's.
    """
    if text.isascii() or _INVISIBLE.search(text) is None:
        return None
    characters: list[str] = []
    origin: list[int] = []
    for index, character in enumerate(text):
        point = ord(character)
        if point in _TAGS:
            characters.append(chr(point - _TAG_BASE))
        elif _INVISIBLE.match(character):
            continue
        else:
            characters.append(character)
        origin.append(index)
    return "".join(characters), tuple(origin)
