# SPDX-License-Identifier: Apache-2.0
"""Canonical JSON ("json-stable-v1") and short hashes.

The audit hash chain and plugin signatures hash this form, so it must be byte-identical to
what the reference system produces: object keys sorted by UTF-16 code units (JavaScript's
default sort), arrays in order, every key and primitive encoded as JSON with no whitespace.
Only JSON values are accepted: anything else is a ``TypeError`` rather than a silently
different hash.
"""

from __future__ import annotations

import hashlib
import math
import re
from json.encoder import encode_basestring  # what json.dumps(ensure_ascii=False) uses
from typing import Any

__all__ = ["canonical_json", "sha256_hex", "short_hash"]


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


def canonical_json(value: Any) -> str:
    """Return the json-stable-v1 text of ``value``."""
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
        return "[" + ",".join(canonical_json(item) for item in value) + "]"
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError("object keys must be strings")
        parts = [
            _encode_string(key) + ":" + canonical_json(value[key])
            for key in sorted(value, key=_utf16_key)
        ]
        return "{" + ",".join(parts) + "}"
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of the UTF-8 bytes of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def short_hash(text: str) -> str:
    """First 12 hex characters of SHA-256: used for path and shape hashes."""
    return sha256_hex(text)[:12]
