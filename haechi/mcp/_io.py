# SPDX-License-Identifier: Apache-2.0
"""Newline-delimited byte streams for the stdio surfaces: bounded reads, backpressured writes.

Pipes, sockets and terminals are driven by the event loop (a slow peer only blocks the task
that writes to it, never the other direction). Regular files and other descriptors the loop
cannot poll (``/dev/null``) are read and written directly: such reads and writes finish
promptly, so doing them inline cannot stall anything for long.

A stream socket is written through a socket transport that never reads it, not a pipe
transport: a pipe transport takes its descriptor becoming readable for the reader having
gone, and standard input and output may be one socket (``inetd``, systemd socket activation,
``socat EXEC``), which becomes readable whenever the client sends a message.

A line longer than :data:`MAX_LINE_BYTES` is skipped up to its end and reported as
:class:`LineTooLong`, which keeps the line's first and last
:data:`~haechi.mcp._oversized.KEPT_BYTES` (see :mod:`haechi.mcp._oversized`); memory stays
bounded by roughly twice the limit per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
from typing import BinaryIO, Final, Protocol

from haechi.mcp._oversized import KEPT_BYTES

__all__ = [
    "FLUSH_TIMEOUT_S",
    "MAX_LINE_BYTES",
    "POST_BUFFER_BYTES",
    "LineReader",
    "LineSink",
    "LineTooLong",
    "open_input",
    "open_output",
]

#: Largest message line accepted on any stdio stream (64 MiB).
MAX_LINE_BYTES: Final = 64 * 1024 * 1024
#: How much unsent data :meth:`LineSink.post` lets queue up before it drops a line.
POST_BUFFER_BYTES: Final = 16 * 1024 * 1024
#: How long :meth:`LineSink.close` waits for a destination to take what is queued.
FLUSH_TIMEOUT_S: Final = 5.0


class LineTooLong(Exception):
    """A line exceeded the limit; it was discarded up to its end but for ``head`` and
    ``tail``, its first and last :data:`~haechi.mcp._oversized.KEPT_BYTES` (without the
    line end)."""

    def __init__(self, head: bytes, tail: bytes) -> None:
        super().__init__("the line exceeds the length limit")
        self.head = head
        self.tail = tail


class _Ends:
    """The first and last bytes of a line being skipped."""

    __slots__ = ("head", "tail")

    def __init__(self, first: bytes) -> None:
        self.head = first[:KEPT_BYTES]
        self.tail = first[-KEPT_BYTES:]

    def add(self, data: bytes) -> None:
        self.tail = (self.tail + data[-KEPT_BYTES:])[-KEPT_BYTES:]

    def skipped(self) -> LineTooLong:
        tail = self.tail.removesuffix(b"\n").removesuffix(b"\r")
        return LineTooLong(self.head, tail)


class _Source(Protocol):
    async def readline(self) -> bytes | None: ...


def _pollable(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and os.isatty(fd))


class _StreamSource:
    """Lines from an :class:`asyncio.StreamReader` whose limit is the line limit."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def readline(self) -> bytes | None:
        reader = self._reader
        try:
            return await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial or None
        except asyncio.LimitOverrunError as exc:
            ends = _Ends(await reader.readexactly(exc.consumed))
        while True:  # skip the rest of the oversized line
            try:
                ends.add(await reader.readuntil(b"\n"))
            except asyncio.IncompleteReadError as exc:
                ends.add(exc.partial)
                raise ends.skipped() from None
            except asyncio.LimitOverrunError as exc:
                ends.add(await reader.readexactly(exc.consumed))
                continue
            raise ends.skipped()


class _FileSource:
    """Lines from a file the event loop cannot poll (read directly)."""

    def __init__(self, handle: BinaryIO, limit: int) -> None:
        self._handle = handle
        self._limit = limit

    async def readline(self) -> bytes | None:
        line = self._handle.readline(self._limit + 1)
        if len(line) <= self._limit or line.endswith(b"\n"):
            return line or None
        ends = _Ends(line)
        while line and not line.endswith(b"\n"):
            line = self._handle.readline(self._limit)
            ends.add(line)
        raise ends.skipped()


class LineReader:
    """Reads one line at a time, without its line end (``\\n`` or ``\\r\\n``).

    :meth:`readline` returns ``None`` at the end of the stream and raises
    :class:`LineTooLong` for an oversized line (the next call reads the line after it).
    """

    def __init__(self, source: _Source, on_close: list[int] | None = None) -> None:
        self._source = source
        self._restore = on_close or []

    @classmethod
    def from_stream(cls, reader: asyncio.StreamReader) -> LineReader:
        """Lines of ``reader`` (its ``limit`` is the line limit)."""
        return cls(_StreamSource(reader))

    async def readline(self) -> bytes | None:
        """The next line, ``None`` at the end; see the class."""
        line = await self._source.readline()
        if line is None:
            return None
        return line.removesuffix(b"\n").removesuffix(b"\r")

    def close(self) -> None:
        """Put descriptors shared with other processes back into blocking mode."""
        for fd in self._restore:
            with contextlib.suppress(OSError):
                os.set_blocking(fd, True)


class LineSink:
    """Writes whole lines to one destination.

    :meth:`send` waits until the destination took the line (backpressure). :meth:`post` only
    queues it, for replies that must not wait on a peer which may itself be waiting on us.
    Both raise :class:`BrokenPipeError` once the destination is gone.
    """

    def __init__(
        self,
        writer: asyncio.StreamWriter | None = None,
        *,
        handle: BinaryIO | None = None,
        restore_blocking: int | None = None,
    ) -> None:
        self._writer = writer
        self._handle = handle
        self._restore = restore_blocking
        self._closed = False

    def _check(self) -> None:
        if self._closed or (self._writer is not None and self._writer.transport.is_closing()):
            raise BrokenPipeError("the destination is closed")

    def _write(self, data: bytes) -> None:
        self._check()
        if self._writer is not None:
            self._writer.write(data + b"\n")
            return
        assert self._handle is not None
        self._handle.write(data + b"\n")
        self._handle.flush()

    async def send(self, data: bytes) -> None:
        """Write ``data`` and a newline, and wait until the destination can take more."""
        self._write(data)
        if self._writer is not None:
            await self._writer.drain()

    def post(self, data: bytes) -> bool:
        """Queue ``data`` and a newline without waiting.

        Returns ``False`` (and drops the line) when more than :data:`POST_BUFFER_BYTES` are
        already waiting: the destination has stopped reading.
        """
        writer = self._writer
        if writer is not None and writer.transport.get_write_buffer_size() > POST_BUFFER_BYTES:
            return False
        self._write(data)
        return True

    async def close(self, flush_timeout: float = FLUSH_TIMEOUT_S) -> None:
        """Flush what is queued and close; a destination that takes nothing for
        ``flush_timeout`` seconds is cut off (what it did not take is lost)."""
        if self._closed:
            return
        self._closed = True
        writer = self._writer
        if writer is not None:
            try:
                async with asyncio.timeout(flush_timeout):
                    await writer.drain()
            except ConnectionError:
                pass  # the destination is gone; its transport closed itself
            except TimeoutError:
                if not writer.transport.is_closing():
                    writer.transport.abort()
            else:
                if writer.can_write_eof():
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                writer.close()
        if self._restore is not None:
            with contextlib.suppress(OSError):
                os.set_blocking(self._restore, True)


async def open_input(fd: int, limit: int = MAX_LINE_BYTES) -> LineReader:
    """A :class:`LineReader` over a duplicate of ``fd`` (for example 0, standard input)."""
    if not _pollable(fd):
        return LineReader(_FileSource(os.fdopen(os.dup(fd), "rb"), limit))
    handle = os.fdopen(os.dup(fd), "rb", buffering=0)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), handle)
    return LineReader(_StreamSource(reader), on_close=[fd])


class _WriteOnly(asyncio.streams.FlowControlMixin):
    """Flow control for a socket that is only written: reading it is paused before it
    starts, since what arrives on it is for the reader of standard input (see the module)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.ReadTransport)
        transport.pause_reading()


def _stream_socket(fd: int) -> socket.socket | None:
    """A duplicate of ``fd`` as a socket when ``fd`` is a stream socket, else ``None``."""
    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
        return None
    sock = socket.socket(fileno=os.dup(fd))
    if sock.type == socket.SOCK_STREAM:
        return sock
    sock.close()
    return None


async def _write_transport(
    fd: int,
) -> tuple[asyncio.WriteTransport, asyncio.streams.FlowControlMixin]:
    """An event-loop transport writing to a duplicate of ``fd`` (see the module)."""
    loop = asyncio.get_running_loop()
    sock = _stream_socket(fd)
    if sock is not None:
        return await loop.create_connection(_WriteOnly, sock=sock)
    handle = os.fdopen(os.dup(fd), "wb")
    return await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, handle)


async def open_output(fd: int) -> LineSink:
    """A :class:`LineSink` over a duplicate of ``fd`` (for example 1, standard output)."""
    if not _pollable(fd):
        return LineSink(handle=os.fdopen(os.dup(fd), "wb"))
    transport, protocol = await _write_transport(fd)
    writer = asyncio.StreamWriter(transport, protocol, None, asyncio.get_running_loop())
    return LineSink(writer, restore_blocking=fd)
