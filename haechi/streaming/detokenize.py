# SPDX-License-Identifier: Apache-2.0
"""Streamed de-tokenization: give a client back its own values in a streamed answer.

When a request was tokenized, the model sees ``[TOKEN:<id>]`` markers and may repeat them.
With ``tokenVault.detokenizeResponses`` the gateway restores the markers *of that same
request* (never any other token) in what it streams back. A marker can arrive cut across
frames, so the text just before a frame ends is held back while it could still be the
start of one of this request's markers, and released with the next text.

Restoration runs on text the stream protector has already committed: protection first,
restoration last, so a restored value is the client's own and is not inspected again.

An event that carries no windowed text (a tool call's whole arguments repeated by
``response.function_call_arguments.done``, ``response.output_item.done`` or
``response.completed``) is restored as a JSON document: in a string of it that is JSON source
a value is escaped once for every string it lies in there, as in a whole answer, so those
arguments stay the document the deltas built rather than one a quote in the value breaks
open. A text that is JSON source (a tool call's arguments) is followed across its pieces
(:class:`~haechi._string_nesting.StringNesting`) for the same escaping, in every way a
client reads it (a content block on its own, and all blocks joined).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Final

from haechi._markers import MARKER, MarkerRestorer
from haechi._string_nesting import StringNesting
from haechi.payload import DEFAULT_MAX_NESTING_DEPTH
from haechi.streaming._json import dumps

__all__ = ["Resolver", "StreamDetokenizer"]

#: Looks up the plaintexts of tokens; unknown or expired tokens are simply absent.
Resolver = Callable[[Sequence[str]], Awaitable[Mapping[str, str]]]

# Token ids restored here never need escaping inside a JSON string.
_RESTORABLE: Final = re.compile(r"[A-Za-z0-9_.:-]+")


class StreamDetokenizer:
    """Restores the ``[TOKEN:<id>]`` markers of ``tokens`` in a stream of text.

    The vault is asked once, and only when a complete marker of one of ``tokens`` actually
    shows up, so a stream that never repeats a token costs no vault call. Markers of other
    tokens are left as they are. A stream can carry several texts at once (the answer, each
    tool call's arguments, the reasoning): each *channel* holds back its own unfinished
    marker. Restoring adds at most ``max_growth`` characters to the whole stream (the
    gateway passes ``responseProtection.maxBytes``; see :mod:`haechi._markers`): past it
    :meth:`restore` raises :class:`~haechi.errors.LimitError`. ``max_depth`` bounds the
    nesting of the events :meth:`restore_event` reads (``limits.maxNestingDepth``).
    """

    __slots__ = (
        "_held",
        "_longest",
        "_markers",
        "_max_depth",
        "_max_growth",
        "_mine",
        "_resolve",
        "_restorer",
        "_tokens",
    )

    def __init__(
        self,
        tokens: Iterable[str],
        resolve: Resolver,
        *,
        max_growth: int = 1024 * 1024,
        max_depth: int = DEFAULT_MAX_NESTING_DEPTH,
    ) -> None:
        self._tokens = tuple(dict.fromkeys(t for t in tokens if _RESTORABLE.fullmatch(t)))
        self._mine = frozenset(self._tokens)
        # Sorted, so the markers a tail could begin follow it directly (binary search): a
        # request can issue thousands of tokens and an upstream can send a frame full of
        # ``[``, and this runs on the event loop for every frame.
        self._markers = sorted(f"[TOKEN:{token}]" for token in self._tokens)
        self._longest = max(map(len, self._markers), default=0)
        self._resolve = resolve
        self._max_growth = max_growth
        self._max_depth = max_depth
        self._restorer: MarkerRestorer | None = None
        self._held: dict[Hashable, str] = {}

    def hold(self, text: str, channel: Hashable = None) -> str:
        """Return what of ``channel``'s held text plus ``text`` can be released now.

        The tail that could still grow into one of this request's markers stays held.
        """
        text = self._held.pop(channel, "") + text
        cut = self._partial_start(text)
        if cut < len(text):
            self._held[channel] = text[cut:]
        return text[:cut]

    def drain(self, text: str = "", channel: Hashable = None) -> str:
        """Release everything ``channel`` holds plus ``text``: its text ended."""
        return self._held.pop(channel, "") + text

    def holding(self) -> tuple[Hashable, ...]:
        """The channels holding the start of a marker."""
        return tuple(self._held)

    async def restore(self, text: str, *, json_string: bool = False) -> str:
        """Replace this request's complete markers in ``text`` by their plaintexts.

        With ``json_string`` the text is a serialised frame: markers in any string or key of
        it are restored in one pass, each value escaped once for every string it lies in (a
        string of the frame can hold JSON, such as a tool call's arguments sent as an
        object with a string of JSON in them), as in a whole answer. A marker whose depth
        cannot be told there stays.
        """
        restorer = await self._restorer_for(text)
        if restorer is None:
            return text
        if json_string:
            return restorer.restore_source(text, StringNesting(), _json_string_content)
        return restorer.restore(text)

    async def restore_read(self, text: str, readings: Sequence[StringNesting | None]) -> str:
        """Replace this request's complete markers in ``text``, a piece of a text that
        follows what ``readings`` have read (which read it): each a way a client reads the
        text, as prose (``None``) or as JSON source, where each plaintext is escaped once
        for every string it lies in. A marker whose depth cannot be told, or that the
        readings put at different levels, stays, and its token is restored nowhere else in
        the stream either: the frame carrying the piece would otherwise restore it at a
        level of its own."""
        restorer = await self._restorer_for(text)
        if restorer is None:
            for nesting in readings:
                if nesting is not None:
                    nesting.feed(text)
            return text
        return restorer.restore_read(text, readings, _json_string_content, forget_unplaced=True)

    async def restore_event(self, data: str, event: Any) -> str:
        """``data``, the serialised ``event``, with this request's markers restored in every
        string and key of the event; in a string that is JSON source each value is escaped
        as JSON string content before the event is serialised again."""
        restorer = await self._restorer_for(data)
        if restorer is None:
            return data
        return dumps(restorer.restore_document(event, self._max_depth))

    async def _restorer_for(self, text: str) -> MarkerRestorer | None:
        """The restorer, once ``text`` holds a complete marker of this request (the vault is
        asked then, once); ``None`` while it holds none."""
        mine = self._mine
        if "[TOKEN:" not in text or not any(m[1] in mine for m in MARKER.finditer(text)):
            return None
        if self._restorer is None:
            resolved = await self._resolve(self._tokens)
            plaintexts = {token: resolved[token] for token in self._tokens if token in resolved}
            self._restorer = MarkerRestorer(plaintexts, self._max_growth)
        return self._restorer

    def _partial_start(self, text: str) -> int:
        """Index of the earliest ``[`` in the tail that starts an unfinished marker."""
        index = text.find("[", max(0, len(text) - self._longest + 1))
        while index != -1:
            if self._begins_marker(text[index:]):
                return index
            index = text.find("[", index + 1)
        return len(text)

    def _begins_marker(self, tail: str) -> bool:
        """Whether ``tail`` is the start, but not the whole, of one of the markers.

        No marker is the start of another (each ends at its only ``]``), so the markers
        that start with ``tail`` sort directly at or after it.
        """
        markers = self._markers
        at = bisect_left(markers, tail)
        return at < len(markers) and markers[at] != tail and markers[at].startswith(tail)


def _json_string_content(text: str) -> str:
    """``text`` escaped as the content of a JSON string, as the stream's frames write it."""
    return dumps(text)[1:-1]
