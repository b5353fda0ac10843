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
from haechi._string_nesting import StringNesting
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
        self._plaintexts = dict(plaintexts)
        self._max_growth = max_growth
        self._grown = 0

    def restore(self, text: str) -> str:
        """``text`` (not JSON source) with its markers of known tokens restored, each value as
        it is. Other markers stay as they are."""
        plaintexts = self._plaintexts

        def swap(match: re.Match[str]) -> str:
            plaintext = plaintexts.get(match[1])
            if plaintext is None:
                return match[0]
            return self._grown_by(match[0], plaintext)

        return MARKER.sub(swap, text)

    def restore_source(
        self,
        text: str,
        nesting: StringNesting,
        escape: Callable[[str], str],
        *,
        forget_unplaced: bool = False,
    ) -> str:
        """``text``, a piece of JSON source that follows what ``nesting`` has read (which
        reads it), with its markers of known tokens restored, each value ``escape``d once
        for every string it lies in, so that decoding each level gives back the value.

        A marker whose depth cannot be told (see
        :meth:`~haechi._string_nesting.StringNesting.depth`) stays as it is; with
        ``forget_unplaced`` its token is not restored anywhere from then on either (a
        stream's frame restores what its pieces left, where the piece's depth is unknown).
        """
        plaintexts = self._plaintexts
        parts: list[str] = []
        at = 0
        for match in MARKER.finditer(text):
            plaintext = plaintexts.get(match[1])
            if plaintext is None:
                continue
            before = text[at : match.start()]
            nesting.feed(before)
            depth = nesting.depth()
            nesting.feed(match[0])
            parts.append(before)
            at = match.end()
            if depth is None:
                parts.append(match[0])
                if forget_unplaced:
                    plaintexts.pop(match[1], None)
                continue
            value = plaintext
            for _ in range(depth):
                value = escape(value)
                self._check(len(value) - len(match[0]))
            parts.append(self._grown_by(match[0], value))
        rest = text[at:]
        nesting.feed(rest)
        parts.append(rest)
        return "".join(parts)

    def restore_document(self, document: Any, max_depth: int) -> Any:
        """``document`` (parsed JSON) with its markers of known tokens restored in every
        string and key; in a string that is JSON source each value is escaped once for
        every string it lies in there (see :meth:`restore_source`). The input is not
        modified."""
        leaves: dict[tuple[PathSegment, ...], str] = {}
        keys: dict[tuple[PathSegment, ...], str] = {}
        for entry in collect_entries(document, max_depth=max_depth):
            if entry.kind == "number" or "[TOKEN:" not in entry.value:
                continue
            if begins_json_container(entry.value):
                rewritten = self.restore_source(entry.value, StringNesting(), json_string_content)
            else:
                rewritten = self.restore(entry.value)
            if rewritten != entry.value:
                (keys if entry.kind == "key" else leaves)[entry.path] = rewritten
        return apply_rewrites(document, leaves, keys)

    def _grown_by(self, marker: str, value: str) -> str:
        """``value``, counted as growth over the ``marker`` it replaces."""
        self._check(len(value) - len(marker))
        self._grown += len(value) - len(marker)
        return value

    def _check(self, growth: int) -> None:
        """Raise before the restored text would have grown by more than the bound."""
        if self._grown + growth > self._max_growth:
            raise LimitError(
                "restoring the answer's markers would add more than "
                "responseProtection.maxBytes characters",
                status_code=502,
                error_code="haechi_restored_too_large",
            )


def json_string_content(text: str) -> str:
    """``text`` escaped as the content of a JSON string."""
    return json.dumps(text, ensure_ascii=False)[1:-1]
