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
import json
import math
from typing import Any

__all__ = ["canonical_json", "sha256_hex", "short_hash"]


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be")


def _encode_string(value: str) -> str:
    # ensure_ascii=False keeps non-ASCII as-is, as JSON.stringify does; lone surrogates are
    # escaped by json.dumps the same way JSON.stringify escapes them.
    return json.dumps(value, ensure_ascii=False)


def _encode_number(value: int | float) -> str:
    if isinstance(value, bool):
        raise TypeError("bool is not a number")
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise TypeError("non-finite numbers are not JSON")
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return json.dumps(value)


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
