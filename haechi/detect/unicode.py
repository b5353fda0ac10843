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

import html
import re
import unicodedata
from functools import lru_cache
from html.entities import html5
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
#: What a reader reads as another character. A JSON ``\\uXXXX`` escape: a surrogate pair
#: (groups 1, 2) or any other one (group 3); JSON held in a string that is itself JSON
#: doubles the backslash at each level (``\\\\u0040`` is ``@`` two levels down), so any
#: run of backslashes starts an escape. An HTML character reference (group 4): numeric, the
#: semicolon optional as in HTML, or named. A terminal's control sequence (group 5: ECMA-48
#: CSI, ``ESC [`` or its one-byte form, such as a colour change ``\x1b[0m``; or an operating
#: system command, ``ESC ]`` up to BEL or ST, such as a hyperlink), which a terminal acts on
#: and does not show: a tool's output read there shows the text around it joined. And a
#: percent-encoded at sign (``%40``, how an address is written in a URL). Each alternative
#: starts with a literal character, so that the regular expression engine skips to them.
_READ: Final = re.compile(
    r"\\\\*u([dD][89abAB][0-9a-fA-F]{2})\\+u([dD][c-fC-F][0-9a-fA-F]{2})"
    r"|\\\\*u([0-9a-fA-F]{4})"
    r"|&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]{1,31};)"
    "|(\x1b\\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]"
    "|\x1b\\][^\x07\x1b\x9c]*(?:\x07|\x1b\\\\|\x9c)?)"
    r"|%40"
    r"|\\+/"
)
#: Where an HTML character reference may start (found several times faster than ``_READ``
#: in code, where ``&&`` and ``;`` abound).
_REFERENCE: Final = re.compile("&[#A-Za-z]")
#: An ideographic or half-width ideographic full stop between letters or digits of ASCII or
#: their full-width forms, which IDNA reads as a dot (``example\u3002com``); between words
#: of CJK prose it ends a sentence. Only looked for in text with an at sign: it matters in
#: an address's domain, and CJK prose has one at the end of every sentence.
_ALNUM: Final = "[A-Za-z0-9\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]"
_STOP: Final = re.compile(f"[\u3002\uff61](?<={_ALNUM}.)(?={_ALNUM})")

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


def _start(match: re.Match[str]) -> int:
    return match.start()


@lru_cache(maxsize=1024)
def _numeric(reference: str) -> str:
    """A numeric character reference as HTML reads it: code points out of range and
    surrogates as U+FFFD, the C1 range as Windows-1252."""
    hexadecimal = reference[2] in "xX"
    digits = reference[3 if hexadecimal else 2 :].rstrip(";").lstrip("0") or "0"
    if len(digits) > 8:
        # Out of range whatever the digits (and too long for ``int`` to read in decimal).
        return "\ufffd"
    return html.unescape(f"&#{'x' if hexadecimal else ''}{digits};")


def _reads_as(match: re.Match[str]) -> str | None:
    """What a match of ``_READ`` or ``_STOP`` reads as (``None``: as written, a name that
    HTML does not know)."""
    group = match.lastindex
    if group == 5:
        return ""
    if group == 4:
        reference = match[4]
        return _numeric(match[0]) if reference[0] == "#" else html5.get(reference)
    if group == 3:
        return chr(int(match[3], 16))
    if group == 2:
        high, low = int(match[1], 16) - 0xD800, int(match[2], 16) - 0xDC00
        return chr(0x10000 + (high << 10) + low)
    written = match[0]
    if written == "%40":
        return "@"
    return "/" if written[-1] == "/" else "."


def as_read(text: str) -> tuple[str, tuple[int, ...], tuple[int, ...]] | None:
    """``text`` as a reader (or a model) reads it, where each of its characters comes from
    (``start`` and ``end`` offsets in ``text``); ``None`` when that is ``text`` itself.

    Five things make the two differ. Invisible characters: tag characters are read as the
    ASCII they stand for (a model reads text written in them), every other one is dropped.
    Combining marks on an ASCII character are dropped. JSON ``\\uXXXX`` escapes (surrogate
    pairs joined), which a string holding JSON (tool-call arguments, a tool's result) uses
    for any character, and ``\\/``, which encoders such as PHP's write for every slash of a
    URL: the escape is read as its character, as the JSON decoder on the other side will.
    And the forms web text writes characters in: HTML character references (``&#64;``,
    ``&commat;``, ``&nbsp;``), a percent-encoded at sign (``%40``) and the ideographic full
    stops IDNA reads as dots, between letters or digits. And a terminal's control sequences
    (colours, hyperlinks), read as nothing. Each is read once: the engine reads the result
    again, a few levels deep. A span of the result maps back to
    ``text`` from its first character's start to its last one's end.
    """
    plain = text.isascii()
    hidden = (_ASCII_INVISIBLE if plain else _HIDING).search(text) is not None
    # Substring tests at memory speed (one character first) keep the searches for what
    # reads differently off the text that cannot hold any.
    found = (
        list(_READ.finditer(text))
        if ("\\" in text and ("\\u" in text or "\\/" in text))
        or ("%" in text and "%40" in text)
        or ("&" in text and _REFERENCE.search(text) is not None)
        or "\x1b" in text
        or "\x9b" in text
        else []
    )
    if (
        not plain
        and ("\u3002" in text or "\uff61" in text)
        and ("@" in text or "\uff20" in text or "\ufe6b" in text)
    ):
        stops = list(_STOP.finditer(text))
        if stops:
            # The two searches find ASCII and non-ASCII characters: no two matches overlap.
            found = sorted([*found, *stops], key=_start) if found else stops
    if not found and not hidden:
        return None
    characters: list[str] = []
    starts: list[int] = []
    ends: list[int] = []

    def read(character: str, start: int, end: int) -> None:
        point = ord(character)
        if point in _TAGS:
            character = chr(point - _TAG_BASE)
        elif _INVISIBLE.match(character) or (
            characters and characters[-1][-1].isascii() and _MARK.match(character)
        ):
            return
        characters.append(character)
        starts.append(start)
        ends.append(end)

    position = 0
    for match in found:
        reading = _reads_as(match)
        if reading is None:
            continue
        start, end = match.span()
        if hidden:
            for index in range(position, start):
                read(text[index], index, index + 1)
        elif position < start:
            # Nothing in it reads differently: one slice for the whole stretch.
            characters.append(text[position:start])
            starts.extend(range(position, start))
            ends.extend(range(position + 1, start + 1))
        if " " <= reading <= "~" and len(reading) == 1:
            # Printable ASCII (``&amp;``, ``%40``, a dot): neither invisible nor a mark.
            characters.append(reading)
            starts.append(start)
            ends.append(end)
        else:
            for character in reading:
                read(character, start, end)
        position = end
    if hidden:
        for index in range(position, len(text)):
            read(text[index], index, index + 1)
    elif position < len(text):
        characters.append(text[position:])
        starts.extend(range(position, len(text)))
        ends.extend(range(position + 1, len(text) + 1))
    seen = "".join(characters)
    if seen == text:
        return None
    return seen, tuple(starts), tuple(ends)
