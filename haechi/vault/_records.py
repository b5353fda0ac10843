# SPDX-License-Identifier: Apache-2.0
"""Helpers on vault records shared by the vault and the built-in stores."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from haechi.crypto._codec import parse_timestamp

__all__ = ["is_expired", "json_copy", "sanitize_metadata"]

#: Metadata keys that could carry the value itself; they are never stored.
_VALUE_KEYS: Final = frozenset({"value", "plaintext", "payload"})


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON value as plain dicts and lists; ``TypeError`` for anything else.

    Records are copied in and out of the stores, so a caller mutating what it passed or got
    back can never change what is stored.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError("NaN and infinity are not JSON values")
        return value
    if isinstance(value, Mapping):
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("JSON object keys must be strings")
            copied[key] = json_copy(item)
        return copied
    if isinstance(value, list | tuple):
        return [json_copy(item) for item in value]
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def sanitize_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Copy ``metadata`` without any ``value``/``plaintext``/``payload`` key, at any depth."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: strip(item) for key, item in value.items() if key not in _VALUE_KEYS}
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    cleaned: dict[str, Any] = strip(json_copy(metadata or {}))
    return cleaned


def is_expired(record: object, now: datetime) -> bool:
    """Whether ``record`` expired at or before ``now``; an unreadable expiry counts as expired.

    A record that is not a JSON object (a damaged vault file) has no readable expiry: it is
    expired, so pruning removes it rather than failing on it at every issue.
    """
    if not isinstance(record, Mapping):
        return True
    raw = record.get("expiresAt")
    try:
        return not isinstance(raw, str) or parse_timestamp(raw) <= now
    except ValueError:
        return True
