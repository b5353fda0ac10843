# SPDX-License-Identifier: Apache-2.0
"""Frames and the byte-level line splitter both wire formats share.

Lines are cut on the raw bytes, before decoding: CR and LF never occur inside a multi-byte
UTF-8 sequence, so a complete line is always a complete UTF-8 text however the transport
chunked it, and a character split across two chunks needs no special care.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from haechi.errors import LimitError

__all__ = ["SPACES", "Frame", "LineSplitter", "frame_too_large", "reader_breaks"]

_BOM: Final = b"\xef\xbb\xbf"
# Line readers built on ``str.splitlines`` (httpx's ``iter_lines``, which the ollama client
# and httpx-sse read with) also end a line at these characters; the parsers here do not.
_READER_BREAKS: Final = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
#: What clients trim off a line or a chunk before reading it: every character Python calls
#: white space (a superset of Go's ``bytes.TrimSpace``, which go-openai trims each line with)
#: and the byte order mark (JavaScript's ``trim()`` strips it too).
SPACES: Final = (
    " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a stream.

    Attributes:
        meta: the frame's other SSE lines in their normalised form (``event: ping``,
            ``id: 7``, ``: keep-alive``), in order; always empty for NDJSON.
        data: the payload (SSE ``data:`` lines joined with ``\\n``, or one NDJSON line), or
            ``None`` for an SSE frame without a ``data:`` line.
    """

    meta: tuple[str, ...]
    data: str | None


def frame_too_large(limit: int) -> LimitError:
    """The error both parsers raise for a frame over ``limit`` bytes."""
    return LimitError(
        f"stream frame larger than {limit} bytes",
        status_code=502,
        error_code="haechi_stream_frame_too_large",
    )


def reader_breaks(text: str) -> bool:
    """Whether some client's line reader would cut ``text`` into lines where the gateway
    sees one: such text must not be sent raw, or that client reads frames nobody inspected."""
    return _READER_BREAKS.search(text) is not None


class LineSplitter:
    """Cut a byte stream into lines ending in CR, LF or CRLF, whatever the chunking.

    A CR that ends a chunk is taken as a line end at once (a reader must not wait for the
    next chunk to see a line), and an LF that starts the next chunk is then skipped as the
    second half of that CRLF. A UTF-8 byte order mark at the very start is dropped, as the
    SSE specification asks; left in place it would hide the first field name.

    A chunk without a line end is only appended to the line being received: split again
    with all of that line on every chunk, a long line trickled in a byte at a time would
    cost time growing with the square of its length.
    """

    __slots__ = ("_at_start", "_buffer", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skip_lf = False
        self._at_start = True

    @property
    def pending(self) -> int:
        """Bytes of the line that has not ended yet."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[bytes]:
        """Return the lines ``chunk`` completes, without their line ends."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        if not self._at_start and b"\n" not in chunk and b"\r" not in chunk:
            self._buffer += chunk
            return []
        data = bytes(self._buffer) + chunk
        if self._at_start:
            if len(data) < len(_BOM) and _BOM.startswith(data):
                self._buffer = bytearray(data)
                return []
            self._at_start = False
            data = data.removeprefix(_BOM)
        parts = data.splitlines(keepends=True)
        last = parts.pop() if parts and not parts[-1].endswith((b"\n", b"\r")) else b""
        self._buffer = bytearray(last)
        # Only a CR that is the very last byte of the chunk may be half of a CRLF split
        # across chunks; a CR followed by more bytes of this chunk has already ended its line.
        self._skip_lf = not self._buffer and bool(parts) and parts[-1].endswith(b"\r")
        return [part.rstrip(b"\r\n") for part in parts]

    def finish(self) -> list[bytes]:
        """Return the last line when the stream ended without a line end."""
        rest, self._buffer = bytes(self._buffer), bytearray()
        if self._at_start:
            rest = rest.removeprefix(_BOM)
        return [rest] if rest else []
