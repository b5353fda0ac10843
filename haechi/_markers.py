# SPDX-License-Identifier: Apache-2.0
"""Restoring ``[TOKEN:<id>]`` markers to their values, within a bound on the growth.

A marker is short and the value it stands for can be long (a tokenized document of
kilobytes), so an answer that repeats a marker of the request a great many times grows by
that much when it is restored: a 1 MB answer repeating the marker of one 4,000-character
value restores to about a gigabyte. The upstream decides what the answer repeats, so the
characters restoration may add to one answer (or one stream) are bounded; past the bound
restoring raises :class:`~haechi.errors.LimitError` (``haechi_restored_too_large``) before
the text is built, and the caller refuses the answer.

Markers are found by one fixed pattern and looked up among the values to restore: a pattern
naming every id (an alternative each) took a fifth of a second to compile for a thousand
ids and stayed in the ``re`` module's cache afterwards.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from haechi._documents import begins_json_container
from haechi.actions import apply_rewrites
from haechi.errors import LimitError
from haechi.models import PathSegment
from haechi.payload import collect_entries

__all__ = ["MARKER", "MarkerRestorer", "json_string_content"]

#: A marker of a token id that needs no escaping inside a JSON string (vault ids do not).
MARKER: Final = re.compile(r"\[TOKEN:([A-Za-z0-9_.:-]+)\]")


class MarkerRestorer:
    """Replaces the markers of ``plaintexts`` (token id to value) in texts, adding at most
    ``max_growth`` characters over all the texts it restores."""

    __slots__ = ("_grown", "_max_growth", "_plaintexts")

    def __init__(self, plaintexts: Mapping[str, str], max_growth: int) -> None:
        self._plaintexts = plaintexts
        self._max_growth = max_growth
        self._grown = 0

    def restore(self, text: str, written: Callable[[str], str] | None = None) -> str:
        """``text`` with its markers of known tokens restored; each value as ``written``
        makes it (escaped for a JSON string, say). Other markers stay as they are."""
        plaintexts = self._plaintexts

        def swap(match: re.Match[str]) -> str:
            plaintext = plaintexts.get(match[1])
            if plaintext is None:
                return match[0]
            value = plaintext if written is None else written(plaintext)
            self._grown += len(value) - len(match[0])
            if self._grown > self._max_growth:
                raise LimitError(
                    "restoring the answer's markers would add more than "
                    "responseProtection.maxBytes characters",
                    status_code=502,
                    error_code="haechi_restored_too_large",
                )
            return value

        return MARKER.sub(swap, text)

    def restore_document(self, document: Any, max_depth: int) -> Any:
        """``document`` (parsed JSON) with its markers of known tokens restored in every
        string and key; in a string that is JSON source each value is written as JSON
        string content. The input is not modified."""
        leaves: dict[tuple[PathSegment, ...], str] = {}
        keys: dict[tuple[PathSegment, ...], str] = {}
        for entry in collect_entries(document, max_depth=max_depth):
            if entry.kind == "number" or "[TOKEN:" not in entry.value:
                continue
            written = json_string_content if begins_json_container(entry.value) else None
            rewritten = self.restore(entry.value, written)
            if rewritten != entry.value:
                (keys if entry.kind == "key" else leaves)[entry.path] = rewritten
        return apply_rewrites(document, leaves, keys)


def json_string_content(text: str) -> str:
    """``text`` escaped as the content of a JSON string."""
    return json.dumps(text, ensure_ascii=False)[1:-1]
