# SPDX-License-Identifier: Apache-2.0
"""Newline-delimited JSON: an incremental parser and the writer of its lines.

Lines end in LF or CRLF, and — like the line readers that NDJSON clients use — a lone CR
too. Blank lines carry nothing and are dropped: a JSON line reader would fail on them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from haechi.streaming._lines import Frame, LineSplitter, frame_too_large

__all__ = ["NdjsonParser", "encode_ndjson"]

_ANY_LINE_END: Final = re.compile(r"\r\n|\r|\n")


class NdjsonParser:
    """Turn NDJSON bytes, chunked arbitrarily, into one :class:`Frame` per non-blank line.

    A line longer than ``max_frame_bytes`` raises :class:`~haechi.errors.LimitError`;
    invalid UTF-8 raises :class:`UnicodeDecodeError`.
    """

    __slots__ = ("_lines", "_max")

    def __init__(self, max_frame_bytes: int) -> None:
        self._lines = LineSplitter()
        self._max = max_frame_bytes

    def feed(self, chunk: bytes) -> list[Frame]:
        """Return the frames that ``chunk`` completes, in order."""
        return list(self.frames(chunk))

    def frames(self, chunk: bytes) -> Iterator[Frame]:
        """Yield the frames that ``chunk`` completes, each before the bytes after it are
        read: a consumer that stops at a frame that ends the stream (``done: true``) never
        meets what follows it in the chunk, and one that meets a line too long or invalid
        UTF-8 has had every frame before it. Frames of the chunk left unread are lost."""
        yield from self._frames(self._lines.feed(chunk))
        if self._lines.pending > self._max:
            raise frame_too_large(self._max)

    def finish(self) -> list[Frame]:
        """Return the last line when the stream ended without a line end."""
        return list(self._frames(self._lines.finish()))

    def _frames(self, lines: list[bytes]) -> Iterator[Frame]:
        for raw in lines:
            if len(raw) > self._max:
                raise frame_too_large(self._max)
            if raw.strip():
                yield Frame((), raw.decode("utf-8"))


def encode_ndjson(data: str) -> str:
    """Write ``data`` as lines; empty text writes nothing (a blank line is not NDJSON)."""
    lines = [line for line in _ANY_LINE_END.split(data) if line]
    return "\n".join(lines) + "\n" if lines else ""
