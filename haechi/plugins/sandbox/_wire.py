# SPDX-License-Identifier: Apache-2.0
"""The sandbox wire format: length-prefixed JSON objects over a pipe.

Each frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON holding
one object. The length is read and bounded *before* the body is read or parsed, so an
oversized message is refused without buffering or parsing it.

This module runs on both sides of the pipe. The child receives it as source text and executes
it before any plugin code, so it imports nothing but the standard library.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any, Final

__all__ = [
    "HEADER_BYTES",
    "WireClosed",
    "WireError",
    "WireOversized",
    "WireProtocolError",
    "WireTimeout",
    "decode",
    "encode",
    "read_frame",
    "read_frame_blocking",
    "write_all",
    "write_all_blocking",
]

_HEADER: Final = struct.Struct(">I")
HEADER_BYTES: Final = _HEADER.size


class WireError(Exception):
    """The pipe cannot carry the next frame."""


class WireClosed(WireError):
    """The other side closed the pipe (or died)."""


class WireTimeout(WireError):
    """The deadline passed before the frame was complete."""


class WireOversized(WireError):
    """A frame announced more bytes than the receiver accepts."""


class WireProtocolError(WireError):
    """A frame was not one UTF-8 JSON object."""


def encode(message: dict[str, Any]) -> bytes:
    """Frame ``message``; ``ValueError``/``TypeError`` when it is not plain JSON."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    data = body.encode("utf-8")
    return _HEADER.pack(len(data)) + data


def decode(body: bytes) -> dict[str, Any]:
    """Parse one frame body; anything but a JSON object is a protocol error."""
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WireProtocolError("frame is not UTF-8 JSON") from None
    if not isinstance(message, dict):
        raise WireProtocolError("frame is not a JSON object")
    return message


def _length(header: bytes, max_bytes: int) -> int:
    (length,) = _HEADER.unpack(header)
    if length > max_bytes:
        raise WireOversized(f"frame of {length} bytes exceeds {max_bytes}")
    return int(length)


# --- blocking side (the child: one reader, no deadline) --------------------------------


def _read_exact_blocking(fd: int, count: int) -> bytes:
    chunks: list[bytes] = []
    remaining = count
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 16))
        if not chunk:
            raise WireClosed("pipe closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame_blocking(fd: int, max_bytes: int) -> dict[str, Any]:
    """Read one frame from a blocking ``fd``."""
    length = _length(_read_exact_blocking(fd, HEADER_BYTES), max_bytes)
    return decode(_read_exact_blocking(fd, length))


def write_all_blocking(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to a blocking ``fd``."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BrokenPipeError:
            raise WireClosed("pipe closed") from None
        view = view[written:]


# --- deadline side (the host: non-blocking descriptors, poll) ---------------------------


def _wait(fd: int, events: int, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise WireTimeout("deadline passed")
    poller = select.poll()
    poller.register(fd, events)
    if not poller.poll(remaining * 1000.0):
        raise WireTimeout("deadline passed")


def _read_exact(fd: int, count: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    remaining = count
    while remaining:
        _wait(fd, select.POLLIN, deadline)
        try:
            chunk = os.read(fd, min(remaining, 1 << 16))
        except BlockingIOError:
            continue
        if not chunk:
            raise WireClosed("pipe closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, max_bytes: int, deadline: float) -> dict[str, Any]:
    """Read one frame from a non-blocking ``fd`` before ``deadline`` (``time.monotonic``)."""
    length = _length(_read_exact(fd, HEADER_BYTES, deadline), max_bytes)
    return decode(_read_exact(fd, length, deadline))


def write_all(fd: int, data: bytes, deadline: float) -> None:
    """Write every byte of ``data`` to a non-blocking ``fd`` before ``deadline``."""
    view = memoryview(data)
    while view:
        _wait(fd, select.POLLOUT, deadline)
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            continue
        except BrokenPipeError:
            raise WireClosed("pipe closed") from None
        view = view[written:]
