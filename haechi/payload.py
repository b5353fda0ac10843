# SPDX-License-Identifier: Apache-2.0
"""The JSON walk: what of a payload is inspected, and how a place in it is named safely.

Every string value, every finite number and every object key of a JSON document is an
:class:`~haechi.models.Entry`. Keys are inspected because people put e-mail addresses and ids
in keys as readily as in values. Booleans, ``null``, NaN and infinities carry nothing to find.

A place in the payload is reported to the audit log as a *path text* in which every key is
replaced by a short hash (``key_<12 hex>``) and every array index is written ``[i]``, so that
a key that is itself PII never reaches the log. Path texts are only needed for findings, so
they are computed on demand and memoised per prefix: naming every entry of a payload costs
time linear in its size, however deep it nests.

The walk is iterative, so the configured depth limit (not Python's recursion limit) decides
what is too deep; the limit is raised as a :class:`~haechi.errors.LimitError` the gateway
answers with 413, as is an integer too long to write as text (see :func:`number_text`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from haechi._canonical import canonical_json, short_hash
from haechi._structural_keys import STRUCTURAL_KEYS
from haechi.errors import LimitError
from haechi.models import Entry, PathSegment

__all__ = [
    "DEFAULT_MAX_NESTING_DEPTH",
    "WITHHELD_KEY",
    "PathTexts",
    "collect_entries",
    "number_text",
    "path_text",
]

#: Deepest container nesting accepted unless ``limits.maxNestingDepth`` says otherwise.
DEFAULT_MAX_NESTING_DEPTH: Final = 256


def number_text(value: int | float) -> str | None:
    """The text a number leaf is scanned as, or ``None`` for NaN and infinities.

    Integers keep every digit (a 16-digit card stored as a number is still a card); floats
    are written the way JSON writers print them, so ``4111111111111111.0`` reads as
    ``4111111111111111``. An integer with more digits than Python writes as text
    (``sys.get_int_max_str_digits()``, 4300 by default) cannot be scanned, and skipped it
    would pass uninspected: it is refused as a 413 :class:`~haechi.errors.LimitError`.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        return canonical_json(value)
    except ValueError:
        # Python refuses to write it: the conversion takes time quadratic in the digits.
        raise _number_too_long() from None


def _number_too_long() -> LimitError:
    return LimitError(
        "JSON payload holds an integer with more digits than can be inspected "
        f"({sys.get_int_max_str_digits()})",
        status_code=413,
        error_code="haechi_number_too_long",
    )


def _too_deep(max_depth: int) -> LimitError:
    return LimitError(
        f"JSON payload nests deeper than limits.maxNestingDepth ({max_depth})",
        status_code=413,
        error_code="haechi_request_too_deeply_nested",
    )


def collect_entries(payload: Any, *, max_depth: int = DEFAULT_MAX_NESTING_DEPTH) -> list[Entry]:
    """Return the entries of ``payload`` in document order.

    A key's entry comes just before the entries of its value. A container whose path is
    ``max_depth`` segments long (or longer) is refused with a 413 :class:`LimitError`, so
    containers nest at most ``max_depth - 1`` levels below the root; leaves are inspected at
    any depth the containers allow. An integer too long to be written as text is refused
    with a 413 :class:`LimitError` too (see :func:`number_text`). A bare string or number
    root is one entry with an empty path. A value that is not JSON (a set, bytes, a
    non-string key...) raises ``TypeError``.
    """
    entries: list[Entry] = []
    if _append_leaf(entries, (), payload):
        return entries
    if max_depth <= 0:
        raise _too_deep(max_depth)
    append = entries.append
    new, set_path, set_value, set_kind = _ENTRY_SLOTS
    # Each stack frame: (path of the container, iterator over (segment, child)).
    stack: list[tuple[tuple[PathSegment, ...], Iterator[tuple[PathSegment, Any]]]] = [
        ((), _children(payload))
    ]
    while stack:
        path, children = stack[-1]
        for segment, child in children:
            child_path = (*path, segment)
            # Segments are list indices (exact ints from enumerate) or checked string keys.
            if segment.__class__ is not int:
                entry = new(Entry)
                set_path(entry, child_path)
                set_value(entry, segment)
                set_kind(entry, "key")
                append(entry)
            # Plain strings and containers are most children: dispatch them without the
            # general leaf check.
            kind = child.__class__
            if kind is str:
                entry = new(Entry)
                set_path(entry, child_path)
                set_value(entry, child)
                set_kind(entry, "value")
                append(entry)
                continue
            if kind is not dict and kind is not list and _append_leaf(entries, child_path, child):
                continue
            if len(child_path) >= max_depth:
                raise _too_deep(max_depth)
            stack.append((child_path, _children(child)))
            break
        else:
            stack.pop()
    return entries


#: How the walk builds an :class:`Entry` for a key or a plain string: an empty instance and
#: its three slot setters. It is the object ``Entry(path, value, kind)`` builds, without the
#: per-field ``object.__setattr__`` of a frozen dataclass's ``__init__``, which is most of
#: the cost of walking a payload (``tests/test_payload.py`` pins the equivalence).
_ENTRY_SLOTS: Final = (
    object.__new__,
    Entry.__dict__["path"].__set__,
    Entry.__dict__["value"].__set__,
    Entry.__dict__["kind"].__set__,
)


def _children(container: dict[str, Any] | list[Any]) -> Iterator[tuple[PathSegment, Any]]:
    if isinstance(container, list):
        return enumerate(container)
    for key in container:
        if key.__class__ is not str and not isinstance(key, str):
            raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
    return iter(container.items())


def _append_leaf(entries: list[Entry], path: tuple[PathSegment, ...], value: Any) -> bool:
    """Append the entry of a leaf (if it has one) and return True; return False for a
    container; raise ``TypeError`` for anything that is not JSON."""
    if isinstance(value, str):
        entries.append(Entry(path, value, "value"))
        return True
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, _NUMBERS):
        text = number_text(value)
        if text is not None:
            entries.append(Entry(path, text, "number"))
        return True
    if isinstance(value, _CONTAINERS):
        return False
    # Skipping an unknown object would let its content through uninspected.
    raise TypeError(f"{type(value).__name__} is not a JSON value")


_NUMBERS: Final = (int, float)
_CONTAINERS: Final = (dict, list)


#: Hashed names of the structural keys, computed once; every other key is hashed each time it
#: is named (see :mod:`haechi._structural_keys`).
_KEY_SEGMENTS: Final[Mapping[str, str]] = MappingProxyType(
    {key: f"key_{short_hash(key)}" for key in STRUCTURAL_KEYS}
)


def _key_segment(key: str) -> str:
    known = _KEY_SEGMENTS.get(key)
    return f"key_{short_hash(key)}" if known is None else known


def _join(prefix: str, segment: PathSegment) -> str:
    if isinstance(segment, int):
        return f"{prefix}[{segment}]"
    hashed = _key_segment(segment)
    return f"{prefix}.{hashed}" if prefix else hashed


#: The segment written for a key that is itself a detected value (see :func:`path_text`).
WITHHELD_KEY: Final = "key_redacted"


def path_text(path: Sequence[PathSegment], withheld: Collection[str] = ()) -> str:
    """The audit-safe text of one path: ``messages[0].content`` becomes
    ``key_f5cccfb73751[0].key_ed7002b439e9``; the root is ``""``.

    A key in ``withheld`` (a key in which a value was detected) is written
    :data:`WITHHELD_KEY` instead of its hash: the short hash of a value as small as a phone
    number is reversed by trying them all.
    """
    text = ""
    for segment in path:
        if withheld and isinstance(segment, str) and segment in withheld:
            text = f"{text}.{WITHHELD_KEY}" if text else WITHHELD_KEY
        else:
            text = _join(text, segment)
    return text


class PathTexts:
    """Memoised :func:`path_text` for the paths of one payload.

    Each prefix is named once, so naming every entry of a payload costs time linear in the
    payload however deep it nests (the plain function re-walks the whole path each call).
    """

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[tuple[PathSegment, ...], str] = {(): ""}

    def __call__(self, path: tuple[PathSegment, ...]) -> str:
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        # Find the longest named prefix, then name the missing segments going down.
        depth = len(path) - 1
        while path[:depth] not in self._cache:
            depth -= 1
        text = self._cache[path[:depth]]
        for index in range(depth, len(path)):
            text = _join(text, path[index])
            self._cache[path[: index + 1]] = text
        return text
