# SPDX-License-Identifier: Apache-2.0
"""The audit sanitizer: what may enter the hash chain, and in which form.

Two guarantees are made here, before anything is hashed or written:

1. **No raw values.** Every key named in :data:`FORBIDDEN_KEYS` is removed at every depth,
   including inside arrays. Names are matched ignoring case, ``-`` and ``_``
   (``Authorization``, ``client-secret`` and ``accessToken`` are all removed), because a key
   that escapes by spelling is a leak. ``sub`` and ``email`` are deliberately not forbidden.

   The one exception is a **counts map**: the value of a key named in
   :data:`COUNT_MAP_KEYS` (``byType``, ``byAction``, ``suppressedByType``,
   ``droppedByType``) whose every value is an integer. Its keys are detection types or
   decision names and are kept whatever they are called, so ``summary.byType.secret``
   survives; integers cannot carry text. A would-be counts map holding anything but
   integers is sanitized like any other object.

2. **Only JSON is hashed.** The result is built from ``dict``/``list``/``str``/``int``/
   ``float``/``bool``/``None`` alone, so that what is hashed is exactly what is persisted and
   parsed back by any verifier. Values are normalised where JSON has one obvious meaning,
   and refused (:class:`~haechi.errors.AuditError`, so callers fail closed) otherwise:

   ========================================  ============================================
   input                                     result
   ========================================  ============================================
   tuple, other sequences except str/bytes   list
   other mappings with ``str`` keys          dict
   ``str``/``int``/``float`` subclasses      the plain value (enums become their value)
   NaN, ``inf``, ``-inf``                    ``null`` (what ``JSON.stringify`` writes)
   lone UTF-16 surrogates in text            U+FFFD (the file is always valid UTF-8)
   integers beyond +/-(2**53 - 1)            refused: other JSON readers would round them
   bytes, sets, datetimes, any other object  refused: no single JSON meaning
   non-``str`` object keys                   refused
   nesting deeper than 32 levels             refused
   ========================================  ============================================

A top-level ``auditIntegrity`` on the input is dropped: only the chain may write it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

from haechi.errors import AuditError

__all__ = ["COUNT_MAP_KEYS", "FORBIDDEN_KEYS", "MAX_EVENT_DEPTH", "sanitize_event"]

#: Keys whose values could hold raw payload text, credentials or identity claims.
FORBIDDEN_KEYS: Final = frozenset(
    {
        "value",
        "plaintext",
        "payload",
        "content",
        "message",
        "prompt",
        "secret",
        "access_token",
        "id_token",
        "refresh_token",
        "code",
        "code_verifier",
        "client_secret",
        "state",
        "nonce",
        "claims",
        "subject",
        "issuer",
        "credential",
        "authorization",
        "signature",
        "entry",
        "scopes",
        "labels",
    }
)

#: Keys whose value, when it maps names to integers, is a counts map kept whole.
COUNT_MAP_KEYS: Final = frozenset({"byType", "byAction", "suppressedByType", "droppedByType"})

#: Deepest nesting an event may have (events built by haechi are about four levels deep).
MAX_EVENT_DEPTH: Final = 32

_MAX_SAFE_INTEGER: Final = 2**53 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


@lru_cache(maxsize=4096)
def _fold(key: str) -> str:
    # Event keys repeat on every record, so the folded forms are cached.
    return key.casefold().replace("_", "").replace("-", "")


_FORBIDDEN_FOLDED: Final = frozenset(_fold(key) for key in FORBIDDEN_KEYS)


def sanitize_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Return a JSON-only copy of ``event`` without forbidden keys or ``auditIntegrity``.

    The input is not modified. Raises :class:`~haechi.errors.AuditError` for a value that
    has no single JSON form (see the module documentation); the message names the type,
    never the value.
    """
    if not isinstance(event, Mapping):
        raise AuditError(f"an audit event must be a JSON object, not {type(event).__name__}")
    body = {key: value for key, value in event.items() if key != "auditIntegrity"}
    return _object(body, 1)


def _text(value: str) -> str:
    plain = str.__str__(value)
    if not plain.isascii() and _SURROGATE.search(plain):
        # Pairs held as two code points join into one character; lone halves become U+FFFD.
        return plain.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")
    return plain


def _integer(value: int) -> int:
    plain = int(value)
    if abs(plain) > _MAX_SAFE_INTEGER:
        raise AuditError("audit events hold integers up to 2**53 - 1 only")
    return plain


def _is_counts(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(name, str) and isinstance(count, int) and not isinstance(count, bool)
        for name, count in value.items()
    )


def _object(mapping: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    if depth > MAX_EVENT_DEPTH:
        raise AuditError(f"audit events nest at most {MAX_EVENT_DEPTH} levels deep")
    clean: dict[str, Any] = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise AuditError(f"audit event keys must be strings, not {type(key).__name__}")
        if _fold(key) in _FORBIDDEN_FOLDED:
            continue
        if key in COUNT_MAP_KEYS and _is_counts(value):
            clean[key] = {_text(name): _integer(count) for name, count in value.items()}
        else:
            clean[_text(key)] = _value(value, depth)
    return clean


def _value(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        return _integer(value)
    if isinstance(value, float):
        plain = float(value)
        return plain if math.isfinite(plain) else None
    if isinstance(value, Mapping):
        return _object(value, depth + 1)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray | memoryview):
        if depth + 1 > MAX_EVENT_DEPTH:
            raise AuditError(f"audit events nest at most {MAX_EVENT_DEPTH} levels deep")
        return [_value(item, depth + 1) for item in value]
    raise AuditError(f"audit events hold JSON values only, not {type(value).__name__}")
