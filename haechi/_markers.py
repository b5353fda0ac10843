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
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, Final

from haechi._documents import begins_json_container
from haechi._string_nesting import StringNesting
from haechi.actions import apply_rewrites
from haechi.errors import LimitError
from haechi.models import PathSegment
from haechi.payload import collect_entries
from haechi.pieces import find_piece_runs

__all__ = ["MARKER", "MarkerRestorer", "json_string_content"]

#: A marker of a token id that needs no escaping inside a JSON string (vault ids do not).
MARKER: Final = re.compile(r"\[TOKEN:([A-Za-z0-9_.:-]+)\]")
#: Stands for a marker a joined text does not have where a string of it does.
_ABSENT: Final = -1


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
        return self._rewrite(text, (None,), json_string_content)

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
        return self.restore_read(text, (nesting,), escape, forget_unplaced=forget_unplaced)

    def restore_read(
        self,
        text: str,
        readings: Sequence[StringNesting | None],
        escape: Callable[[str], str],
        *,
        forget_unplaced: bool = False,
    ) -> str:
        """``text`` restored for every reading of it a client makes: each reading is prose
        (``None``: a value goes in as it is) or JSON source followed by its
        :class:`StringNesting` (which reads ``text``; see :meth:`restore_source`). A marker
        that the readings put at different levels stays as it is, as a marker whose depth
        cannot be told does: written for one reading, its value breaks another."""
        return self._rewrite(text, readings, escape, forget_unplaced=forget_unplaced)

    def restore_document(self, document: Any, max_depth: int) -> Any:
        """``document`` (parsed JSON) with its markers of known tokens restored in every
        string and key; in a string that is JSON source each value is escaped once for
        every string it lies in there (see :meth:`restore_source`). The input is not
        modified.

        A client reads some strings of an answer one by one and also joined (the parts of a
        Gemini answer, the output texts of a Responses answer: :mod:`haechi.pieces`). A
        marker that the joined text puts at another level than its own string does (the
        start of a part of prose, inside a string of the JSON the parts join to) stays as
        it is: written for either reading, its value breaks the other one."""
        disputed = self._disputed(document)
        leaves: dict[tuple[PathSegment, ...], str] = {}
        keys: dict[tuple[PathSegment, ...], str] = {}
        for entry in collect_entries(document, max_depth=max_depth):
            if entry.kind == "number" or "[TOKEN:" not in entry.value:
                continue
            kept = disputed.get(entry.path, ()) if entry.kind == "value" else ()
            rewritten = self._rewrite(
                entry.value, (_nesting_for(entry.value),), json_string_content, kept=kept
            )
            if rewritten != entry.value:
                (keys if entry.kind == "key" else leaves)[entry.path] = rewritten
        return apply_rewrites(document, leaves, keys)

    def _rewrite(
        self,
        text: str,
        readings: Sequence[StringNesting | None],
        escape: Callable[[str], str],
        *,
        kept: Collection[int] = (),
        forget_unplaced: bool = False,
    ) -> str:
        """``text`` with its markers of known tokens restored (those starting at ``kept``
        left) for ``readings`` (see :meth:`restore_read`)."""
        parts: list[str] = []
        at = 0
        for match, plaintext, depth in self._placed(text, readings):
            parts.append(text[at : match.start()])
            at = match.end()
            if depth is None or match.start() in kept:
                parts.append(match[0])
                if forget_unplaced and depth is None:
                    self._plaintexts.pop(match[1], None)
                continue
            value = plaintext
            for _ in range(depth):
                value = escape(value)
                self._check(len(value) - len(match[0]))
            parts.append(self._grown_by(match[0], value))
        parts.append(text[at:])
        return "".join(parts)

    def _placed(
        self, text: str, readings: Sequence[StringNesting | None]
    ) -> Iterator[tuple[re.Match[str], str, int | None]]:
        """Each marker of a known token in ``text``, its value, and how many times the value
        is escaped where the marker lies: never in prose (a reading of ``None``), else as
        many times as the reading's nesting (which reads all of ``text`` as the iteration
        goes) says; ``None`` when a reading cannot tell or the readings disagree."""
        nestings = [nesting for nesting in readings if nesting is not None]
        at = 0
        for match in MARKER.finditer(text):
            plaintext = self._plaintexts.get(match[1])
            if plaintext is None:
                continue
            depths: set[int | None] = {0} if len(nestings) < len(readings) else set()
            for nesting in nestings:
                nesting.feed(text[at : match.start()])
                depths.add(nesting.depth())
                nesting.feed(match[0])
            at = match.end()
            yield match, plaintext, depths.pop() if len(depths) == 1 else None
        for nesting in nestings:
            nesting.feed(text[at:])

    def _disputed(self, document: Any) -> dict[tuple[PathSegment, ...], set[int]]:
        """Where a text the answer's strings join to puts a marker at another level than
        the string holding it: the starts of such markers, by the string's path."""
        disputed: dict[tuple[PathSegment, ...], set[int]] = {}
        for run in find_piece_runs(document, answer=True):
            joined = run.text
            if "[TOKEN:" not in joined:
                continue
            levels = {
                match.start(): depth
                for match, _value, depth in self._placed(joined, (_nesting_for(joined),))
            }
            for index, piece in enumerate(run.pieces):
                offset = run.offsets[index]
                for match, _value, depth in self._placed(piece, (_nesting_for(piece),)):
                    if levels.get(offset + match.start(), _ABSENT) != depth:
                        disputed.setdefault(run.leaf(index), set()).add(match.start())
        return disputed

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


def _nesting_for(text: str) -> StringNesting | None:
    """A reader of ``text`` when it is JSON source, none when it is prose."""
    return StringNesting() if begins_json_container(text) else None


def json_string_content(text: str) -> str:
    """``text`` escaped as the content of a JSON string."""
    return json.dumps(text, ensure_ascii=False)[1:-1]
