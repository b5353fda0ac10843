# SPDX-License-Identifier: Apache-2.0
"""Numbers read inside hexadecimal identifiers.

A number rule lets a letter touch the number (``BSN123456782`` glued to its label is still
caught), so in a random hexadecimal id a server mints (``uuid4().hex``, an OpenAI
``chatcmpl-``/``call_`` id, a trace id) a run of decimal digits between two hex letters
reads as a national id or a card: about one such id in 140 held one that passed its
checksum. Redacting it rewrites the id, so a tool call's answer, or a request naming an
earlier response, no longer finds its target.

:func:`inside_hex_id` tells such a match apart, conservatively: only a number glued to hex
letters within one token of hex digits, long and all of one letter case as minted ids are,
holding at least eight characters besides the number. A number the token ends with still
counts as inside it (a third of the ids that held a number had it at one end); in 60,000
measured ids, every one that held a number held at least eight characters besides it, so a
card glued to a few letters (``4111111111111111cafe``) stays a finding. Words glued to
numbers are not all hex, or not of one case, so ``BSN123456782`` and ``card4111111111111111``
stay findings; so do numbers in base62 or base64 ids, whose letters are not all hex or not of
one case.

A UUID written in its canonical form (``e4531b01-4fcf-4b08-9bdd-39d880403482``: request ids,
trace ids) is cut by its hyphens into groups too short for that rule, and its last group of
twelve held a BSN in about one UUID in 1,700, and about one in 15,000 held digit groups a
card rule reads across its hyphens (``74fb0d52-5937-4604-9512-8608c79667e6``), which blocks:
a number inside a whole canonical UUID (the 8-4-4-4-12 groups of hex digits, one letter case,
not glued to a letter or digit), hyphens and all, is no finding either.

Two of OpenAI's ids are short for that rule. Its ``system_fingerprint`` (``fp_`` and ten hex
digits: ``fp_248898085f``) held a BSN in about one fingerprint in 900; its tool-call ids
(``call_`` and 24 hex digits) have room for a card with fewer than eight characters beside it,
and about one in 43,000 held one (``call_4798128648704886991feddf``), which blocks. A hex token
right after a standalone prefix in :data:`MINTED_PREFIXES`, at least as long as that prefix's
ids and with one hex letter besides the digits, counts as a minted id too. About one such id
in a million reads whole as a lower-case IBAN (Andorra's: ``call_ad0509649245935dc86cbd49``):
after such a prefix, a match holding hex letters is the id's too.

Trade-off: a number deliberately wrapped in hex letters (``deadbeef4111111111111111cafe``)
is not found. The gateway guards against accidental disclosure; the ids servers mint must
survive it.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MINTED_PREFIXES", "MIN_HEX_ID_LENGTH", "MIN_HEX_ID_REST", "inside_hex_id"]

#: The fewest characters of a hex token taken for a minted id: a W3C trace's span id has 16,
#: OpenAI's ``call_`` ids 24, ``uuid4().hex`` 32.
MIN_HEX_ID_LENGTH: Final = 16
#: The fewest characters of the token besides the number.
MIN_HEX_ID_REST: Final = 8

#: Prefixes of ids too short for :data:`MIN_HEX_ID_REST`, each with the fewest hex characters
#: after it taken for such an id: OpenAI's system fingerprints (10) and tool-call ids (24).
MINTED_PREFIXES: Final = (("fp_", 10), ("call_", 24))

_HEX: Final = frozenset("0123456789abcdefABCDEF")
#: A UUID in its canonical form, not glued to a letter or digit.
_UUID: Final = re.compile(
    r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12}(?![0-9A-Za-z])"
)
#: Characters of a canonical UUID.
_UUID_LENGTH: Final = 36
_DIGITS: Final = frozenset("0123456789")
#: What a number read across the groups of a UUID is made of (``5937-4604-9512-8608``).
_DIGITS_AND_HYPHEN: Final = _DIGITS | {"-"}


def inside_hex_id(text: str, start: int, end: int) -> bool:
    """Whether the digits ``text[start:end]`` are part of a hexadecimal identifier (or the
    hex digits, letters among them, of an id after a prefix of :data:`MINTED_PREFIXES`).

    They are when the token of hex digits around them (bounded by the text's ends or by a
    character other than a letter or digit: ``chatcmpl-``, ``call_``, a quote) has at
    least :data:`MIN_HEX_ID_LENGTH` characters, :data:`MIN_HEX_ID_REST` of them besides the
    digits, its letters are all lower case or all upper case, and on each side the digits
    touch a hex letter or the token's end (a token after a prefix of :data:`MINTED_PREFIXES`
    needs only that prefix's length, one character of it besides the digits, and a match
    with hex letters in it may fill it); or when they (with the hyphens between its groups)
    lie inside a canonical UUID.
    """
    if start >= end:
        return False
    value = set(text[start:end])
    if value <= _DIGITS_AND_HYPHEN and _inside_uuid(text, start, end):
        return True
    if not value <= _HEX:
        return False
    low = start
    while low > 0 and text[low - 1] in _HEX:
        low -= 1
    high = end
    while high < len(text) and text[high] in _HEX:
        high += 1
    if (low > 0 and text[low - 1].isalnum()) or (high < len(text) and text[high].isalnum()):
        return False
    if not value <= _DIGITS:
        # A match holding hex letters (an IBAN's country code) is the id's only after a
        # minted prefix, whose ids have a known length: elsewhere it is a word.
        if not _after_minted_prefix(text, low, high):
            return False
        rest_needed = 0
    elif _after_minted_prefix(text, low, high):
        rest_needed = 1
    elif high - low >= MIN_HEX_ID_LENGTH:
        rest_needed = MIN_HEX_ID_REST
    else:
        return False
    if (high - low) - (end - start) < rest_needed:
        return False
    token = text[low:high]
    if token != token.lower() and token != token.upper():
        return False
    # Inside the token, a neighbour that is not a digit is a hex letter.
    return (start == low or text[start - 1] not in _DIGITS) and (
        end == high or text[end] not in _DIGITS
    )


def _after_minted_prefix(text: str, low: int, high: int) -> bool:
    """Whether the hex token ``text[low:high]`` is as long as the ids of the prefix of
    :data:`MINTED_PREFIXES` right before it, that prefix starting the text or following a
    character other than a letter or digit."""
    for prefix, length in MINTED_PREFIXES:
        at = low - len(prefix)
        if (
            high - low >= length
            and at >= 0
            and text.startswith(prefix, at)
            and (at == 0 or not text[at - 1].isalnum())
        ):
            return True
    return False


def _inside_uuid(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` lies inside a canonical UUID of one letter case."""
    window = _UUID.finditer(text, max(0, start - _UUID_LENGTH), min(len(text), end + _UUID_LENGTH))
    for match in window:
        if match.start() <= start and end <= match.end():
            found = match.group()
            return found in (found.lower(), found.upper())
    return False
