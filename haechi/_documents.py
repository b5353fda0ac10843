# SPDX-License-Identifier: Apache-2.0
"""JSON documents read strictly, as they are inspected before they go on.

The gateway's bodies and answers and every MCP message are decoded here, so that what is
inspected is what a receiver reads: no ``NaN``, ``Infinity`` or number too large for a
double (unless ``constants``), no lone UTF-16 surrogate, and a key named twice reported so
that the document goes on encoded again rather than as the text that held both values.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

__all__ = ["LoneSurrogate", "begins_json_container", "decode_document"]


#: JSON white space, and the characters a JSON value can begin with (or an array end with).
_JSON_SPACE: Final = " \t\n\r"
_IN_ARRAY: Final = frozenset('{["-0123456789tfn]')


def begins_json_container(text: str) -> bool | None:
    """Whether a text that begins with ``text`` reads as a JSON object or array: its first
    character (after white space) opens an object, or opens an array whose next one begins
    a value or ends it; ``None`` while ``text`` is too short to tell.

    Decided on the start alone, so that a streamed text is judged the same way, piece by
    piece, as the whole. ``[TOKEN:...]`` (a token marker) and ``[see below]`` are prose.
    """
    stripped = text.lstrip(_JSON_SPACE)
    if not stripped:
        return None
    if stripped[0] != "[":
        return stripped[0] == "{"
    rest = stripped[1:].lstrip(_JSON_SPACE)
    return (rest[0] in _IN_ARRAY) if rest else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_number(text: str) -> float:
    # 1e400 is no double: Python reads it as infinity, which the document written again
    # would spell as the non-JSON Infinity (and the client never sent).
    value = float(text)
    if math.isinf(value):
        raise ValueError("a number too large for a double is not JSON here")
    return value


class _RepeatedKey(ValueError):
    """An object of the document names a key twice."""


def _object_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _RepeatedKey
    return document


# Built once: ``json.loads`` with a keyword argument builds a new decoder on every call.
_STRICT_JSON: Final = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_number)
_STRICT_ONCE: Final = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_number, object_pairs_hook=_object_once
)
_LENIENT_ONCE: Final = json.JSONDecoder(object_pairs_hook=_object_once)
#: Writes a document as text with every character as it is, surrogates included.
_AS_TEXT: Final = json.JSONEncoder(ensure_ascii=False, check_circular=False)
#: The escape of a UTF-16 surrogate (``\ud800`` to ``\udfff``): text strictly decoded
#: from UTF-8 holds none, so only such an escape can put one in a document.
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


class LoneSurrogate(ValueError):
    """A string of the document holds a lone UTF-16 surrogate, which is not text."""


def decode_document(text: str, *, constants: bool = False) -> tuple[Any, bool]:
    """``text`` decoded, and whether the document holds all of it.

    An object that names a key twice keeps the last value (as JSON decoders commonly do),
    so the document then lacks what the earlier ones held: ``False`` tells the caller to send
    the document encoded again, never the text, so that nothing goes on that was not
    inspected (a decoder that keeps the first value would read the uninspected one).
    ``constants`` accepts ``NaN`` and ``Infinity``. Invalid JSON raises ``ValueError`` (or
    ``RecursionError`` when nested too deep).

    A string escaping half of a surrogate pair without the other half (``"\\ud800"``)
    raises :class:`LoneSurrogate`, a ``ValueError``. Such a string is not Unicode text: JSON
    leaves its reading to each decoder (one keeps the code point, one writes U+FFFD, one
    drops it, some refuse the document), so what the receiver reads is not what was
    inspected (a value cut by one is whole to a decoder that drops it), and UTF-8 cannot
    carry it when a changed document is written again.
    """
    try:
        document, whole = (_LENIENT_ONCE if constants else _STRICT_ONCE).decode(text), True
    except _RepeatedKey:
        document = json.loads(text) if constants else _STRICT_JSON.decode(text)
        whole = False
    if _SURROGATE_ESCAPE.search(text) is not None and _holds_surrogate(document):
        raise LoneSurrogate("a string holds a lone UTF-16 surrogate")
    return document, whole


def _holds_surrogate(document: Any) -> bool:
    """Whether a string or key of ``document`` holds a surrogate code point (the decoder
    joins an escaped pair into one character, so any left is a lone one)."""
    try:
        _AS_TEXT.encode(document).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
