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

import unicodedata
from functools import lru_cache
from typing import Literal, NamedTuple

__all__ = ["FoldCase", "Folded", "fold"]

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
