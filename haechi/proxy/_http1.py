# SPDX-License-Identifier: Apache-2.0
"""One keep-alive HTTP/1.1 connection to the upstream, its answers parsed by ``httptools``.

The gateway's upstream client is this module plus the pool in :mod:`haechi.proxy.upstream`.
A general-purpose client costs several times the gateway's own work per request (request
and URL objects, cookie and redirect machinery, a pool that looks at every connection on
every request); this one writes the request head and body in one call and parses the answer
with llhttp — the parser of Node.js, strict about framing, so a malformed or ambiguous
answer (two ``Content-Length`` values, a bad chunk) breaks the exchange off instead of
being guessed at.

Response header names are lowercased here, as ASGI and the header policy expect them, so
hop-by-hop and framing headers are recognised whatever case the upstream wrote them in. The
trailer fields of a chunked answer are dropped: they come after the body, so they are never
header fields of the answer.
The parser keeps a header (or trailer) field until it ends, so the bytes it may take in
without reporting anything are bounded too: a field without end is a broken answer.
Body bytes are buffered up to a high-water mark, then reading pauses until the gateway
catches up, so a fast upstream cannot fill the gateway's memory. Error messages never quote
upstream bytes.
"""

from __future__ import annotations

import asyncio
import select
from collections import deque
from typing import Final, overload

import httptools

__all__ = [
    "MAX_HEAD_BYTES",
    "Http1Connection",
    "ResponseHeaders",
    "UpstreamError",
    "UpstreamTimeout",
]

#: Buffered body bytes past which reading from the upstream pauses until they are taken.
_HIGH_WATER: Final = 1 << 20
#: Bytes of header field names and values one answer may have: the parser keeps them all
#: until the head ends, so an upstream sending fields without end would fill memory.
MAX_HEAD_BYTES: Final = 256 * 1024
_FRAMING: Final = frozenset({b"content-length", b"transfer-encoding"})


class UpstreamError(Exception):
    """The upstream could not be reached, or broke the exchange off (answered with 502)."""


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer, or stopped sending, in time (answered with 504)."""


class ResponseHeaders:
    """The header fields of an upstream answer: ``raw`` pairs with lowercase names, in order."""

    __slots__ = ("raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """The field ``name`` (lowercase), repeated fields joined with ``", "``."""
        key = name.encode("latin-1")
        found: bytes | None = None
        for field, value in self.raw:
            if field == key:
                found = value if found is None else found + b", " + value
        return default if found is None else found.decode("latin-1")


class Http1Connection(asyncio.Protocol):
    """A client connection carrying one request at a time (see :meth:`send`)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.idle_since = 0.0
        self._transport: asyncio.Transport | None = None
        self._fd = -1  # plain TCP only: polled for a peer that closed while idle
        self._parser = httptools.HttpResponseParser(self)
        # Waiters for the answer head and for body bytes: True when the wait timed out.
        self._head: asyncio.Future[bool] | None = None
        self._wake: asyncio.Future[bool] | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._status = 0
        self._fields: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._unreported = 0  # bytes fed since the parser last reported something
        self._reported = False
        self._framed = False
        self._busy = False
        self._head_only = False
        self._headers_done = False
        self._complete = False
        self._keep_alive = False
        self._error: UpstreamError | None = None
        self._spoiled = False  # bytes beyond the answer arrived: never reuse
        self._closed = False

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        if transport.get_extra_info("sslcontext") is None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                self._fd = sock.fileno()

    def data_received(self, data: bytes) -> None:
        if not self._busy or self._complete:
            # Bytes nobody asked for: the connection can no longer be trusted to frame.
            self._spoiled = True
            self.close()
            return
        self._reported = False
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._malformed()  # an upgrade was never asked for: as bad as a broken answer
            return
        # httptools keeps a field's name and value until the field ends (each piece appended
        # copies the whole), so one field without end would fill memory: the bytes taken in
        # without any report (a field, the head's end, body bytes) are bounded like the head.
        self._unreported = 0 if self._reported else self._unreported + len(data)
        if self._unreported > MAX_HEAD_BYTES:
            self._fail(UpstreamError("the upstream sent too many header bytes"))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost settles the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._busy and not self._complete and self._error is None:
            if self._headers_done and not self._framed and exc is None:
                # No Content-Length and not chunked: the body ends with the connection, when
                # it is closed in order (a reset cuts it: whatever came may be incomplete).
                self._complete = True
                self._keep_alive = False
            else:
                self._error = UpstreamError("the upstream closed the connection mid-response")
        self._settle()

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reported = True
        if self._headers_done:  # a second answer to one request: ignore it, drop the line
            self._spoiled = True
            return
        self._fields = []
        self._head_bytes = 0
        self._framed = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._reported = True
        if self._spoiled or self._headers_done or self._error is not None:
            # After the head, llhttp reports the trailer fields of a chunked body the same
            # way: they are never header fields (they arrive after the body was inspected).
            return
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._fail(UpstreamError("the upstream sent too many header bytes"))
            return
        field = name.lower()
        if field in _FRAMING:
            self._framed = True
        self._fields.append((field, value))

    def on_headers_complete(self) -> None:
        self._reported = True
        if self._spoiled or self._error is not None:
            return
        status = self._parser.get_status_code()
        if not 100 <= status <= 599:  # llhttp reads any three digits: no HTTP status
            self._fail(UpstreamError("the upstream sent a malformed HTTP response"))
            return
        if status < 200:  # an interim answer (100 Continue...): the real one follows
            return
        self._status = status
        self._keep_alive = self._parser.should_keep_alive()
        self._headers_done = True
        if self._head_only:
            # An answer to HEAD has no body whatever its framing says; this parser cannot be
            # told so, so the connection is not reused.
            self._complete = True
            self._keep_alive = False
        self._settle()

    def on_body(self, body: bytes) -> None:
        self._reported = True
        if self._head_only or self._spoiled or self._complete or self._error is not None:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._settle()

    def on_message_complete(self) -> None:
        self._reported = True
        if not self._headers_done or self._spoiled:  # an interim answer, or one too many
            return
        self._complete = True
        self._settle()

    # -- the client side ------------------------------------------------------------------

    def send(self, data: bytes, *, head_only: bool) -> None:
        """Write one request (head and body in ``data``); the connection must be idle."""
        assert self._transport is not None
        self._busy = True
        self._head_only = head_only
        self._headers_done = self._complete = self._keep_alive = False
        self._head = self.loop.create_future()
        self._transport.write(data)

    async def response_head(self, deadline: float) -> tuple[int, list[tuple[bytes, bytes]]]:
        """Wait for the status and header fields of the answer, until the loop time
        ``deadline`` at most (then :class:`UpstreamTimeout`)."""
        head = self._head
        assert head is not None
        if not self._headers_done and self._error is None and await self._wait(head, deadline):
            raise UpstreamTimeout("the upstream did not answer in time")
        if self._error is not None:
            raise self._error
        return self._status, self._fields

    async def next_chunk(self, timeout: float) -> bytes | None:
        """The body bytes received so far and not yet taken (``None`` at its end), waiting
        at most ``timeout`` s for some to arrive.

        Everything already buffered is handed over at once: a stream's frames that arrived
        together are inspected and relayed together, never held back for more.
        """
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._complete:
                return None
            self._wake = self.loop.create_future()
            if await self._wait(self._wake, self.loop.time() + timeout):
                raise UpstreamTimeout("the upstream stopped sending the response")
        chunks = self._chunks
        chunk = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return chunk

    async def _wait(self, waiter: asyncio.Future[bool], deadline: float) -> bool:
        """Wait for ``waiter`` to be settled; True when ``deadline`` passed first.

        A plain timer settles the waiter: unlike ``asyncio.timeout`` there is no task
        cancellation to arm and undo, which costs several times more on a path every
        request takes.
        """
        timer = self.loop.call_at(deadline, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    def reusable(self) -> bool:
        """Whether the answer was read to its end and both sides keep the connection."""
        return (
            self._complete
            and self._keep_alive
            and not self._chunks
            and self._error is None
            and not self._spoiled
            and not self._closed
        )

    def finish(self) -> None:
        """Mark the connection idle again (after :meth:`reusable` said yes)."""
        self._busy = False
        self._head = self._wake = None

    def alive(self) -> bool:
        """Whether an idle connection can carry another request.

        The socket is polled too: a peer that closed while the event loop was busy is seen
        before a request is written into a dead connection.
        """
        if self._closed or self._transport is None or self._transport.is_closing():
            return False
        if self._fd >= 0:
            try:
                readable, _, _ = select.select([self._fd], [], [], 0)
            except (OSError, ValueError):
                return False
            return not readable
        return True

    def close(self) -> None:
        """Drop the connection (an unfinished exchange fails with :class:`UpstreamError`)."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        self._closed = True

    def _malformed(self) -> None:
        if self._complete:  # the answer is whole; only what followed it is bad
            self._spoiled = True
            self.close()
        else:
            self._fail(UpstreamError("the upstream sent a malformed HTTP response"))

    def _fail(self, error: UpstreamError) -> None:
        if self._error is None:
            self._error = error
        self.close()
        self._settle()

    def _settle(self) -> None:
        """Wake whoever waits for the head or for body bytes."""
        for waiter in (self._head, self._wake):
            if waiter is not None and not waiter.done():
                waiter.set_result(False)


def _expire(waiter: asyncio.Future[bool]) -> None:
    """End a wait for the upstream as timed out, unless it was settled already."""
    if not waiter.done():
        waiter.set_result(True)
