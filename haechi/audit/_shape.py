# SPDX-License-Identifier: Apache-2.0
"""The payload shape hash of protect events.

The shape is what ``JSON.stringify`` writes for the payload with every leaf replaced by its
type (and a string by its UTF-16 length), keys kept raw and in a JavaScript object's order:
integer-like keys first, ascending, then the others in insertion order. Its hash lets two
implementations fingerprint one payload alike without either keeping a value.

Every protect call hashes one shape, so there are two walks. The fast one recurses over the
exact JSON types and writes fragments straight into a list; it bails out, and the general walk
starts again from the top, on anything unusual: an integer-like key (the order changes), a
subclass of a JSON type or a tuple, a non-string key, nesting deeper than
:data:`_FAST_DEPTH`. Both produce the same text; the general walk is iterative, so any depth
costs time linear in the payload, and a bail-out at most doubles the work. Pending fragments
are hashed in batches, so the text is never held whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping
from json.encoder import encode_basestring  # the C string encoder canonical_json also uses
from typing import Any, Final

from haechi._canonical import canonical_json
from haechi.payload import WITHHELD_KEY

__all__ = ["payload_shape_hash"]

#: Fragments collected before they are hashed and dropped.
_BATCH: Final = 4096
#: Nesting the recursive walk accepts before it leaves the payload to the iterative one.
_FAST_DEPTH: Final = 128
_MAX_INDEX: Final = 2**32 - 2

_WITHHELD: Final = encode_basestring(WITHHELD_KEY)
_NULL: Final = '{"type":"null"}'
_STRING: Final = '{"type":"string","length":'
_BOOLEAN: Final = '{"type":"boolean"}'
_NUMBER: Final = '{"type":"number"}'


def payload_shape_hash(payload: Any, withheld: Collection[str] = ()) -> str:
    """First 12 hex of SHA-256 over the JSON of the payload's *shape*.

    The shape keeps the structure and the raw keys and replaces every leaf: a string by
    ``{"type":"string","length":<UTF-16 length>}``, ``null`` by ``{"type":"null"}``, a
    number or boolean by ``{"type":"number"}`` / ``{"type":"boolean"}``. It is serialised
    as ``JSON.stringify`` would (key order of a JavaScript object), so two implementations
    fingerprint one payload alike. A key in ``withheld`` (one in which a value was
    detected) is written ``"key_redacted"``: the hash of a known shape around one small
    value (a phone number as a key) would give the value away. Runs in time linear in the
    payload size; a value that is not JSON raises ``TypeError``.
    """
    digest = hashlib.sha256()
    parts: list[str] = []
    try:
        if withheld:
            raise _Unusual  # the general walk writes withheld keys
        _fast(payload, parts, digest, 0)
    except (_Unusual, RecursionError):
        digest = hashlib.sha256()
        parts = []
        for fragment in _general(payload, withheld):
            parts.append(fragment)
            if len(parts) >= _BATCH:
                _flush(parts, digest)
    _flush(parts, digest)
    return digest.hexdigest()[:12]


class _Unusual(Exception):
    """The fast walk met something only the general walk handles."""


def _flush(parts: list[str], digest: Any) -> None:
    digest.update("".join(parts).encode("utf-8"))
    parts.clear()


def _utf16_length(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _string(text: str) -> str:
    return f"{_STRING}{_utf16_length(text)}}}"


def _fast(item: Any, parts: list[str], digest: Any, depth: int) -> None:
    # Keys are written by the same C encoder canonical_json uses for a string without
    # surrogates; canonical_json handles any other key.
    kind = type(item)
    add = parts.append
    if kind is str:
        add(_string(item))
    elif kind is dict:
        if depth >= _FAST_DEPTH:
            raise _Unusual
        separator = "{"
        for key, value in item.items():
            if type(key) is not str:
                raise _Unusual
            if key.isascii():
                if key.isdigit():
                    raise _Unusual
                add(f"{separator}{encode_basestring(key)}:")
            else:
                add(f"{separator}{canonical_json(key)}:")
            separator = ","
            if type(value) is str:  # the most common member, written without a call
                add(f"{_STRING}{len(value) if value.isascii() else _utf16_length(value)}}}")
            else:
                _fast(value, parts, digest, depth + 1)
        add("}" if separator == "," else "{}")
        if len(parts) >= _BATCH:
            _flush(parts, digest)
    elif kind is list:
        if depth >= _FAST_DEPTH:
            raise _Unusual
        separator = "["
        for value in item:
            add(separator)
            separator = ","
            if type(value) is str:
                add(f"{_STRING}{len(value) if value.isascii() else _utf16_length(value)}}}")
            else:
                _fast(value, parts, digest, depth + 1)
        add("]" if separator == "," else "[]")
        if len(parts) >= _BATCH:
            _flush(parts, digest)
    elif item is None:
        add(_NULL)
    elif kind is bool:
        add(_BOOLEAN)
    elif kind is int or kind is float:
        add(_NUMBER)
    else:
        raise _Unusual


def _is_index(key: str) -> bool:
    return (
        key.isascii() and key.isdigit() and (key == "0" or key[0] != "0") and int(key) <= _MAX_INDEX
    )


def _key_order(mapping: Mapping[str, Any]) -> list[str]:
    # JavaScript objects list integer-like keys first, ascending, then the rest in order.
    keys = list(mapping)
    for key in keys:
        if not isinstance(key, str):
            raise TypeError("object keys must be strings")
    indices = [key for key in keys if _is_index(key)]
    if not indices:
        return keys
    indices.sort(key=int)
    return indices + [key for key in keys if not _is_index(key)]


def _general(payload: Any, withheld: Collection[str] = ()) -> Iterator[str]:
    # Iterative, so a deep payload costs time linear in its size and no recursion.
    stack: list[tuple[bool, Any]] = [(False, payload)]
    while stack:
        literal, item = stack.pop()
        if literal:
            yield item
        elif isinstance(item, str):
            yield _string(item)
        elif item is None:
            yield _NULL
        elif isinstance(item, bool):
            yield _BOOLEAN
        elif isinstance(item, int | float):
            yield _NUMBER
        elif isinstance(item, list | tuple):
            pending: list[tuple[bool, Any]] = [(True, "]")]
            for index in range(len(item) - 1, -1, -1):
                pending.append((False, item[index]))
                if index:
                    pending.append((True, ","))
            pending.append((True, "["))
            stack.extend(pending)
        elif isinstance(item, dict):
            keys = _key_order(item)
            pending = [(True, "}")]
            for position in range(len(keys) - 1, -1, -1):
                key = keys[position]
                pending.append((False, item[key]))
                separator = "," if position else ""
                name = _WITHHELD if key in withheld else canonical_json(key)
                pending.append((True, f"{separator}{name}:"))
            pending.append((True, "{"))
            stack.extend(pending)
        else:
            raise TypeError(f"{type(item).__name__} is not a JSON value")
