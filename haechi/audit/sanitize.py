# SPDX-License-Identifier: Apache-2.0
"""The audit sanitizer: what may enter the hash chain, and in which form.

Two guarantees are made here, before anything is hashed or written:

1. **No raw values.** Every key named in :data:`FORBIDDEN_KEYS` is removed at every depth,
   including inside arrays. Names are matched ignoring case, ``-`` and ``_``
   (``Authorization``, ``client-secret`` and ``accessToken`` are all removed), because a key
   that escapes by spelling is a leak. ``sub`` and ``email`` are deliberately not forbidden.

   The one exception is a **counts map**: the value of a key named in
   :data:`COUNT_MAP_KEYS` (``byType``, ``byAction``, ``byReason``, ``suppressedByType``,
   ``droppedByType``) whose every value is an integer. Its keys are detection types,
   decision names or reason codes and are kept whatever they are called, so
   ``summary.byType.secret`` survives; integers cannot carry text. A would-be counts map
   holding anything but integers is sanitized like any other object.

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

Every event takes this walk, so it is built for the events haechi writes: values of the exact
JSON types are dispatched on ``type(value) is ...`` before any normalising ``isinstance``
check, and a key the event builders write (a fixed set of plain names, none forbidden) skips
the per-key checks. The walk also notes whether the result is *plain* in the sense of
:func:`haechi._canonical.plain_canonical_json`, so the chain can hash it without walking it a
second time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

from haechi._canonical import plain_float, plain_key
from haechi.errors import AuditError

__all__ = [
    "COUNT_MAP_KEYS",
    "FORBIDDEN_KEYS",
    "MAX_EVENT_DEPTH",
    "sanitize_event",
    "sanitize_for_chain",
]

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
COUNT_MAP_KEYS: Final = frozenset(
    {"byType", "byAction", "byReason", "suppressedByType", "droppedByType"}
)

#: Deepest nesting an event may have (events built by haechi are about four levels deep).
MAX_EVENT_DEPTH: Final = 32

_MAX_SAFE_INTEGER: Final = 2**53 - 1
_UNSAFE_INTEGER: Final = "audit events hold integers up to 2**53 - 1 only"
_SURROGATE = re.compile("[\ud800-\udfff]")


@lru_cache(maxsize=4096)
def _fold(key: str) -> str:
    # Event keys repeat on every record, so the folded forms are cached.
    return key.casefold().replace("_", "").replace("-", "")


_FORBIDDEN_FOLDED: Final = frozenset(_fold(key) for key in FORBIDDEN_KEYS)

#: Keys the event builders write. Each is plain ASCII, allowed and not a counts-map key, so
#: an exact ``str`` key found here is kept as it is; the filter keeps that true whatever the
#: list holds.
_BUILDER_KEYS: Final = frozenset(
    key
    for key in (
        "schemaVersion",
        "id",
        "correlationId",
        "timestamp",
        "protocol",
        "operation",
        "identity",
        "profile",
        "mode",
        "enforced",
        "blocked",
        "payloadShapeHash",
        "detections",
        "detectionsOmitted",
        "summary",
        "type",
        "ruleId",
        "path",
        "kind",
        "confidence",
        "action",
        "detectionCount",
        "suppressedCount",
        "droppedCount",
        "subjectHash",
        "issuerHash",
        "provider",
        "decision",
        "reason",
        "token",
        "tokenType",
        "count",
        "revealPolicy",
        "revealOverride",
        "routeId",
        "pathHash",
        "pluginId",
        "signerKeyId",
    )
    if key.isascii() and _fold(key) not in _FORBIDDEN_FOLDED and key not in COUNT_MAP_KEYS
)


class _Form:
    """Whether the sanitized result is still plain (see the module documentation)."""

    __slots__ = ("plain",)

    def __init__(self) -> None:
        self.plain = True


def sanitize_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Return a JSON-only copy of ``event`` without forbidden keys or ``auditIntegrity``.

    The input is not modified. Raises :class:`~haechi.errors.AuditError` for a value that
    has no single JSON form (see the module documentation); the message names the type,
    never the value.
    """
    return sanitize_for_chain(event)[0]


def sanitize_for_chain(event: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """:func:`sanitize_event`, plus whether the result is plain.

    A plain result's json-stable-v1 text is
    :func:`~haechi._canonical.plain_canonical_json` of it, which the chain then uses
    instead of proving the same thing with another walk.
    """
    if type(event) is not dict and not isinstance(event, Mapping):
        raise AuditError(f"an audit event must be a JSON object, not {type(event).__name__}")
    if "auditIntegrity" in event:
        event = {key: value for key, value in event.items() if key != "auditIntegrity"}
    form = _Form()
    clean = _object(event, 1, form)
    return clean, form.plain


def _text(value: str) -> str:
    plain = str.__str__(value)
    if not plain.isascii() and _SURROGATE.search(plain):
        # Pairs held as two code points join into one character; lone halves become U+FFFD.
        return plain.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")
    return plain


def _integer(value: int) -> int:
    plain = int(value)
    if abs(plain) > _MAX_SAFE_INTEGER:
        raise AuditError(_UNSAFE_INTEGER)
    return plain


def _float(value: float, form: _Form) -> float | None:
    plain = float(value)
    if not math.isfinite(plain):
        return None
    if not plain_float(plain):
        form.plain = False
    return plain


def _key(key: str, form: _Form) -> str:
    text = _text(key)
    if not plain_key(text):
        form.plain = False
    return text


def _counts(value: Any, form: _Form) -> dict[str, int] | None:
    """The clean copy of a counts map, or ``None`` when ``value`` is not one."""
    if type(value) is not dict and not isinstance(value, Mapping):
        return None
    clean: dict[str, int] = {}
    too_large = False
    for name, count in value.items():
        if type(count) is not int and (not isinstance(count, int) or isinstance(count, bool)):
            return None
        if type(name) is str and name.isascii():
            text = name
        elif isinstance(name, str):
            text = _key(name, form)
        else:
            return None
        count = int(count)
        too_large = too_large or abs(count) > _MAX_SAFE_INTEGER
        clean[text] = count
    if too_large:
        raise AuditError(_UNSAFE_INTEGER)
    return clean


def _object(mapping: Mapping[Any, Any], depth: int, form: _Form) -> dict[str, Any]:
    if depth > MAX_EVENT_DEPTH:
        raise AuditError(f"audit events nest at most {MAX_EVENT_DEPTH} levels deep")
    clean: dict[str, Any] = {}
    for key, value in mapping.items():
        if type(key) is str and key in _BUILDER_KEYS:
            kind = type(value)
            if (kind is str and value.isascii()) or value is None or kind is bool:
                clean[key] = value
            else:
                clean[key] = _value(value, depth, form)
        elif not isinstance(key, str):
            raise AuditError(f"audit event keys must be strings, not {type(key).__name__}")
        elif key in COUNT_MAP_KEYS and (counts := _counts(value, form)) is not None:
            clean[str.__str__(key)] = counts  # no counts-map key is a forbidden name
        elif _fold(key) not in _FORBIDDEN_FOLDED:
            clean[_key(key, form)] = _value(value, depth, form)
    return clean


def _value(value: Any, depth: int, form: _Form) -> Any:
    kind = type(value)
    if kind is str:
        return value if value.isascii() else _text(value)
    if kind is dict:
        return _object(value, depth + 1, form)
    if kind is int:
        return _integer(value)
    if kind is float:
        return _float(value, form)
    if value is None or kind is bool:
        return value
    if kind is list:
        return _array(value, depth, form)
    # Subclasses of the JSON types and other containers: normalised to the plain form.
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        return _integer(value)
    if isinstance(value, float):
        return _float(value, form)
    if isinstance(value, Mapping):
        return _object(value, depth + 1, form)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray | memoryview):
        return _array(value, depth, form)
    raise AuditError(f"audit events hold JSON values only, not {type(value).__name__}")


def _array(items: Sequence[Any], depth: int, form: _Form) -> list[Any]:
    if depth + 1 > MAX_EVENT_DEPTH:
        raise AuditError(f"audit events nest at most {MAX_EVENT_DEPTH} levels deep")
    return [_value(item, depth + 1, form) for item in items]
