# SPDX-License-Identifier: Apache-2.0
"""Canonical JSON ("json-stable-v1") and short hashes.

The audit hash chain and plugin signatures hash this form, so it must be byte-identical to
what the reference system produces: object keys sorted by UTF-16 code units (JavaScript's
default sort), arrays in order, every key and primitive encoded as JSON with no whitespace.
Only JSON values are accepted: anything else is a ``TypeError`` rather than a silently
different hash.

Most values are encoded by the standard library's C encoder with sorted keys, which gives
exactly these bytes when three conditions hold: every key sorts the same by code point as by
UTF-16 code unit (true unless a key holds a character beyond U+FFFF), no string holds a
surrogate code point, and every float prints the same in Python and JavaScript (no exponent,
not integral). A plain walk over the value checks them; anything else (floats such as
``1e-07`` or ``2.0``, emoji in keys, lone surrogates, subclasses of the JSON types) takes
the exact, slower path below.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from json.encoder import (  # type: ignore[attr-defined]  # the C encoder, None without _json
    c_make_encoder,
    encode_basestring,  # what json.dumps(ensure_ascii=False) uses
)
from typing import Any, Final

import orjson

__all__ = [
    "canonical_json",
    "compact_json_encoder",
    "plain_canonical_json",
    "plain_float",
    "plain_json_encoder",
    "plain_key",
    "sha256_hex",
    "short_hash",
]


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _encode_string(value: str) -> str:
    # ensure_ascii=False keeps non-ASCII as-is, as JSON.stringify does. A surrogate pair held
    # as two code points is one character to JavaScript; a lone surrogate is escaped as
    # \udxxx by JSON.stringify (json.dumps would leave it raw, which is not UTF-8).
    if _SURROGATE.search(value):
        value = value.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "surrogatepass")
        return _SURROGATE.sub(_escape_surrogate, encode_basestring(value))
    return encode_basestring(value)


def _encode_float(value: float) -> str:
    # ECMAScript Number::toString applied to the shortest round-trip digits, which repr()
    # also produces: 1e-7 -> "1e-7", 0.000001 -> "0.000001", 1e21 -> "1e+21".
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    digits = all_digits.lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(all_digits) - len(digits))
    digits = digits.rstrip("0")
    count = len(digits)
    if count <= point <= 21:
        return sign + digits + "0" * (point - count)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    rest = "." + digits[1:] if count > 1 else ""
    return f"{sign}{digits[0]}{rest}e{'+' if point > 0 else '-'}{abs(point - 1)}"


def _encode_number(value: int | float) -> str:
    if isinstance(value, bool):
        raise TypeError("bool is not a number")
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise TypeError("non-finite numbers are not JSON")
    return _encode_float(value)


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


#: A value whose text must be the same from the C encoder and from ``JSONEncoder``.
_PROBE: Final = {"b": [1, 0.5, -2, None, True, False, 'é\u2028"\\'], "a": {"z": {}, "y": []}}


def compact_json_encoder(*, sort_keys: bool) -> Callable[[Any], str]:
    """``json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=sort_keys,
    separators=(",", ":")).encode``, with its C encoder built once.

    ``JSONEncoder.encode`` builds a new C encoder on every call, which costs about as much as
    encoding a small audit record; every record is encoded twice. The prebuilt encoder skips
    the circular-reference bookkeeping, so a cyclic value raises ``RecursionError`` rather
    than ``ValueError``. Where the C encoder is missing or does not give the same text on a
    probe value, the plain ``JSONEncoder.encode`` is returned.
    """
    reference = json.JSONEncoder(
        ensure_ascii=False, allow_nan=False, sort_keys=sort_keys, separators=(",", ":")
    ).encode
    if c_make_encoder is None:
        return reference
    try:
        chunks = c_make_encoder(
            None, _refuse, encode_basestring, None, ":", ",", sort_keys, False, False
        )
    except TypeError:
        return reference

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    try:
        same = encode(_PROBE) == reference(_PROBE)
    except (TypeError, ValueError):
        same = False
    return encode if same else reference


def plain_json_encoder(*, sort_keys: bool) -> Callable[[Any], bytes]:
    """The UTF-8 bytes of :func:`compact_json_encoder`'s text, for *plain* values only.

    *Plain* is what :func:`plain_canonical_json` takes, with integers within 64 bits and
    nesting of at most 254 levels, orjson's limit (audit events nest at most 32). For
    such a value orjson writes the same bytes as the standard library's C encoder, several
    times faster: the same shortest round-trip digits for floats that print without an
    exponent, the same escapes (``\\"``, ``\\\\``, ``\\n``-style and ``\\u00XX`` for
    control characters, nothing else escaped), keys sorted by code point, which is UTF-16 order
    for plain keys. Every audit record is encoded twice, which makes this worth a dependency.
    The encoder is checked on a probe value against the reference once; if orjson ever writes
    it differently, the C encoder is used instead. A non-plain value may come out differently
    from :func:`compact_json_encoder` (a float with an exponent) or raise ``TypeError`` (an
    integer beyond 64 bits).
    """
    reference = compact_json_encoder(sort_keys=sort_keys)
    option = orjson.OPT_SORT_KEYS if sort_keys else 0
    dumps = orjson.dumps

    def encode(value: Any) -> bytes:
        return dumps(value, option=option)

    try:
        same = all(encode(probe) == reference(probe).encode() for probe in _PLAIN_PROBES)
    except (TypeError, ValueError):
        same = False
    if same:
        return encode
    return lambda value: reference(value).encode()


#: Plain values whose text orjson must write as the standard library does.
_PLAIN_PROBES: Final[tuple[Any, ...]] = (
    {
        "z": [0.95, 0.1, 123456.789, -2.5e-4, 2**53, -(2**53), True, False, None],
        "é": 'é\u2028\u2029\x00\x1f\x7f"\\/\n\t\ud7ff\ue000\uffff\U0001f600',
        "a": {"y": {}, "x": [], "\u00e9a": "", "B": 1},
        "10": [[{"k": 0.000123}]],
    },
    [],
    {},
    "",
    0.5,
)
_FAST_ENCODE: Final = compact_json_encoder(sort_keys=True)
#: Keys whose code-point order may differ from their UTF-16 order, or that hold surrogates.
_UNSORTABLE_KEY = re.compile("[\ud800-\udfff\U00010000-\U0010ffff]")
#: Containers and members the fast check looks at before it gives up (a cycle ends there).
_FAST_BUDGET: Final = 100_000


def plain_float(value: float) -> bool:
    """Whether Python and JavaScript print the float ``value`` alike (finite, no exponent,
    not integral), so the C encoder may write it."""
    text = repr(value)
    return math.isfinite(value) and "e" not in text and not text.endswith(".0")


def plain_key(key: str) -> bool:
    """Whether ``key`` holds neither a surrogate nor a character beyond U+FFFF, so that it
    sorts the same by code point as by UTF-16 code unit."""
    return key.isascii() or not _UNSORTABLE_KEY.search(key)


def _fast_encodable(value: Any) -> bool:
    """Whether the C encoder's sorted, compact output of ``value`` is json-stable-v1."""
    stack = [value]
    budget = _FAST_BUDGET
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            if not item.isascii() and _SURROGATE.search(item):
                return False
        elif kind is dict:
            budget -= len(item)
            if budget < 0:
                return False
            for key in item:
                if type(key) is not str or (not key.isascii() and _UNSORTABLE_KEY.search(key)):
                    return False
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            budget -= len(item)
            if budget < 0:
                return False
            stack.extend(item)
        elif kind is float:
            if not plain_float(item):
                return False
        elif not (kind is int or kind is bool or item is None):
            return False
    return True


def canonical_json(value: Any) -> str:
    """Return the json-stable-v1 text of ``value``."""
    kind = type(value)
    if kind is str:  # lone keys and number leaves are frequent callers
        return _encode_string(value)
    if kind is int:
        return str(value)
    if _fast_encodable(value):
        return _FAST_ENCODE(value)
    return _exact(value)


def plain_canonical_json(value: Any) -> str:
    """json-stable-v1 of a value already known to be plain, without walking it first.

    *Plain* means what the module documentation lists: built of exact ``dict``, ``list``,
    ``str``, ``int``, ``bool``, ``None`` and :func:`plain_float` floats, with no surrogate in
    any string and only :func:`plain_key` keys. A producer that has just built such a value
    (the audit sanitizer does) knows this for free; for it, this equals
    :func:`canonical_json` and skips the check that would prove it again.
    """
    return _FAST_ENCODE(value)


def _exact(value: Any) -> str:
    """json-stable-v1 for any JSON value, element by element."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _encode_string(value)
    if isinstance(value, int | float):
        return _encode_number(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_exact(item) for item in value) + "]"
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError("object keys must be strings")
        parts = [
            _encode_string(key) + ":" + _exact(value[key]) for key in sorted(value, key=_utf16_key)
        ]
        return "{" + ",".join(parts) + "}"
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of the UTF-8 bytes of ``text``.

    A lone surrogate (valid in a JSON string, not encodable as UTF-8) is hashed as U+FFFD,
    the way JavaScript's UTF-8 encoder writes it, so path hashes stay comparable with the
    reference system's and hashing never fails on input that parsed.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def short_hash(text: str) -> str:
    """First 12 hex characters of SHA-256: used for path and shape hashes."""
    return sha256_hex(text)[:12]
