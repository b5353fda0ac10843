# SPDX-License-Identifier: Apache-2.0
"""JSON documents carried inside strings, inspected as JSON.

MCP tools exchange JSON inside strings all the time: tool arguments built by a model, and
tool results whose ``content[].text`` is a serialised object. Scanned as flat text, such a
string hides values behind JSON escapes (``jane\\u0040example.com``), and a replacement that
lands next to an escape can corrupt the document (``\\[REDACTED:email]``). So before a
message part is protected, every string that holds a JSON object or array is parsed and put
in its place as a marked subtree; afterwards each marked subtree goes back to being a string:
the original string when nothing inside it changed, otherwise the protected document
re-encoded in the original's layout (compact, spaced or indented).

A document that names a key twice in one object is always re-encoded: parsing keeps only
the last value, so only that one is inspected, and the original string would carry the
earlier ones on to a receiver whose decoder keeps the first.

The numbers of an embedded document were text on the wire, so they are inspected as text
whatever the direction: each stands in as a :class:`_Number` string while the part is
protected (number leaves of responses are otherwise only scanned with
``responseProtection.scanNumbers``), and goes back to being a number unless it was replaced.
"""

from __future__ import annotations

import json
from typing import Any, Final

from haechi._documents import LoneSurrogate, decode_document
from haechi.payload import number_text

__all__ = ["MARKER_KEYS", "EmbeddedJson", "NestedTooDeeply", "ReservedKey"]

#: Layout of the original string -> key of the marker object that stands in for an embedded
#: document while it is protected. None of them can occur in a legitimate message.
MARKER_KEYS: Final = {
    layout: f"\x00haechi:embedded-json:{layout}" for layout in ("compact", "spaced", "indented")
}
_LAYOUTS: Final = {key: layout for layout, key in MARKER_KEYS.items()}
#: How many levels of JSON-in-a-string-in-JSON are expanded.
_MAX_EMBEDDING: Final = 4
#: Strings shorter than this cannot hold anything worth parsing (``{"a":1}`` is 7).
_MIN_LENGTH: Final = 7


class _Number(str):
    """A number of an embedded document, standing in as the text it is scanned as."""

    __slots__ = ("number",)
    number: int | float


def _as_text(number: int | float) -> _Number:
    """``number`` standing in as the text a number leaf is scanned as."""
    text = number_text(number)
    assert text is not None, "decode_document reads no NaN and no infinity"
    stand_in = _Number(text)
    stand_in.number = number
    return stand_in


class ReservedKey(ValueError):
    """The input itself contains :data:`EMBEDDED_KEY`."""


class NestedTooDeeply(ValueError):
    """The input nests deeper than the walk can follow: ``limits.maxNestingDepth`` may be
    set past what Python's recursion reaches (a message parsed whole may nest about a
    thousand levels deep)."""


def _parse(text: str) -> tuple[Any, bool]:
    """The object or array ``text`` holds (or ``None``), and whether it holds all of the text
    (``False`` when an object names a key twice; see :func:`decode_document`).

    A document holding a lone UTF-16 surrogate escape raises :class:`LoneSurrogate`: its
    receiver would read that string its own way, not as inspected.
    """
    stripped = text.strip()
    if len(stripped) < _MIN_LENGTH or (stripped[0], stripped[-1]) not in (("{", "}"), ("[", "]")):
        return None, True
    try:
        value, whole = decode_document(stripped)
    except LoneSurrogate:
        raise
    except (ValueError, RecursionError):
        return None, True
    return (value, whole) if isinstance(value, dict | list) else (None, True)


def _layout(text: str) -> str:
    if "\n" in text.strip():
        return "indented"
    if '": ' in text or ", " in text:
        return "spaced"
    return "compact"


def _encode(value: Any, layout: str) -> str:
    if layout == "indented":
        return json.dumps(value, ensure_ascii=False, indent=2)
    if layout == "spaced":
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class EmbeddedJson:
    """Expands one message part for protection and collapses the protected result.

    One instance serves one part: :meth:`expand`, then protect, then :meth:`collapse`.
    ``max_depth`` bounds the walk (deeper input is left for the pipeline's own depth limit
    to refuse).
    """

    __slots__ = ("_max_depth", "_originals")

    def __init__(self, max_depth: int) -> None:
        self._max_depth = max_depth
        # id(marker) -> (marker, original string, or None when it must be re-encoded); the
        # marker is kept alive so its id stays unique. The pipeline copies only containers
        # on the way to a change, so a marker that comes back as the same object had
        # nothing inside it changed.
        self._originals: dict[int, tuple[dict[str, Any], str | None]] = {}

    @property
    def expanded(self) -> bool:
        """Whether :meth:`expand` found any embedded document."""
        return bool(self._originals)

    def expand(self, value: Any) -> Any:
        """``value`` with embedded documents replaced by marker objects (input unchanged).

        Raises :class:`ReservedKey` when ``value`` already contains a marker key,
        :class:`LoneSurrogate` when an embedded document holds a lone surrogate escape and
        :class:`NestedTooDeeply` when ``value`` nests too deeply to be walked.
        """
        try:
            return self._expand(value, 0, 0)
        except RecursionError:
            raise NestedTooDeeply("the message nests too deeply to inspect") from None

    def _expand(self, value: Any, depth: int, embedding: int) -> Any:
        if depth > self._max_depth:
            return value
        if isinstance(value, str):
            if embedding >= _MAX_EMBEDDING:
                return value
            parsed, whole = _parse(value)
            if parsed is None:
                return value
            key = MARKER_KEYS[_layout(value)]
            marker = {key: self._expand(parsed, depth + 1, embedding + 1)}
            self._originals[id(marker)] = (marker, value if whole else None)
            return marker
        if isinstance(value, dict):
            if not _LAYOUTS.keys().isdisjoint(value):
                raise ReservedKey("the message contains a reserved member name")
            out = {key: self._expand(item, depth + 1, embedding) for key, item in value.items()}
            return out if any(out[k] is not value[k] for k in value) else value
        if isinstance(value, list):
            items = [self._expand(item, depth + 1, embedding) for item in value]
            return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
        if embedding and isinstance(value, int | float) and not isinstance(value, bool):
            return _as_text(value)
        return value

    def collapse(self, value: Any) -> Any:
        """Turn every marker in the protected ``value`` back into a string."""
        if not self._originals:
            return value
        return self._collapse(value)

    def _collapse(self, value: Any) -> Any:
        if isinstance(value, dict):
            layout = _LAYOUTS.get(next(iter(value))) if len(value) == 1 else None
            if layout is not None:
                kept = self._originals.get(id(value))
                if kept is not None and kept[0] is value and kept[1] is not None:
                    return kept[1]
                return _encode(self._collapse(next(iter(value.values()))), layout)
            return {key: self._collapse(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._collapse(item) for item in value]
        if isinstance(value, _Number):
            return value.number
        return value
