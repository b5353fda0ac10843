# SPDX-License-Identifier: Apache-2.0
"""Server-sent events: an incremental parser and the writer of normalised frames.

The parser follows the SSE specification (lines end in LF, CRLF or a lone CR; a blank line
ends a frame; ``data:`` lines are joined with ``\\n``; one space after the colon is not part
of the value) and is lenient where clients are: a ``data:`` line indented with white space
(any that a client trims off a line: go-openai trims Unicode spaces, hand-written JavaScript
readers ``trim()`` a byte order mark as well) is still data. Nothing is ever re-emitted as
it arrived. Every frame is written back in one normal form — LF line ends, field lines as
``name: value``, data last — so what a client reads is exactly what was inspected, however
lenient or strict that client is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Final

from haechi.streaming._lines import SPACES, Frame, LineSplitter, frame_too_large

__all__ = ["SseParser", "encode_sse"]

_ANY_LINE_END: Final = re.compile(r"\r\n|\r|\n")


class SseParser:
    """Turn SSE bytes, chunked arbitrarily, into :class:`~haechi.streaming.Frame` objects.

    A frame (counting its line ends and the line still being received) larger than
    ``max_frame_bytes`` raises :class:`~haechi.errors.LimitError`, so one endless frame cannot
    exhaust memory. Invalid UTF-8 raises :class:`UnicodeDecodeError`.
    """

    __slots__ = ("_data", "_frame_bytes", "_lines", "_max", "_meta")

    def __init__(self, max_frame_bytes: int) -> None:
        self._lines = LineSplitter()
        self._max = max_frame_bytes
        self._meta: list[str] = []
        self._data: list[str] = []
        self._frame_bytes = 0

    def feed(self, chunk: bytes) -> list[Frame]:
        """Return the frames that ``chunk`` completes, in order."""
        return list(self.frames(chunk))

    def frames(self, chunk: bytes) -> Iterator[Frame]:
        """Yield the frames that ``chunk`` completes, each before the bytes after it are
        read: a consumer that stops at a frame that ends the stream (``[DONE]``) never
        meets what follows it in the chunk, and one that meets a frame too large or invalid
        UTF-8 has had every frame before it. Frames of the chunk left unread are lost."""
        yield from self._consume(self._lines.feed(chunk))
        if self._frame_bytes + self._lines.pending > self._max:
            raise frame_too_large(self._max)

    def finish(self) -> list[Frame]:
        """Return what is left at the end of the stream.

        A last frame without its closing blank line is still returned: it is inspected and
        sent like any other frame rather than dropped unseen.
        """
        frames = list(self._consume(self._lines.finish()))
        frame = self._end_frame()
        if frame is not None:
            frames.append(frame)
        return frames

    def _consume(self, lines: list[bytes]) -> Iterator[Frame]:
        for raw in lines:
            if not raw:
                frame = self._end_frame()
                if frame is not None:
                    yield frame
                continue
            self._frame_bytes += len(raw) + 1
            if self._frame_bytes > self._max:
                raise frame_too_large(self._max)
            self._field(raw.decode("utf-8"))

    def _field(self, line: str) -> None:
        # A client that trims a line before reading it (go-openai) reads an indented data line
        # as data: so does the parser, whatever the white space, rather than write it back as
        # a field line that such a client would read as a chunk nobody inspected.
        line = line.lstrip(SPACES)
        if not line:
            return  # a whitespace-only line names no field and carries nothing
        if line.startswith(":"):
            self._meta.append(line)
            return
        name, _colon, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        else:
            self._meta.append(f"{name}: {value}" if value else f"{name}:")

    def _end_frame(self) -> Frame | None:
        self._frame_bytes = 0
        if not self._meta and not self._data:
            return None
        frame = Frame(tuple(self._meta), "\n".join(self._data) if self._data else None)
        self._meta = []
        self._data = []
        return frame


def encode_sse(meta: Sequence[str], data: str | None) -> str:
    """Write one frame: ``meta`` lines, then one ``data:`` line per line of ``data``."""
    lines = list(meta)
    if data is not None:
        lines.extend(f"data: {line}" if line else "data:" for line in _ANY_LINE_END.split(data))
    return "\n".join(lines) + "\n\n"
