# SPDX-License-Identifier: Apache-2.0
"""Handing accepted connections from the supervisor to the worker processes, in turn.

With several workers (``proxy.workers``), the supervisor listens on the port, accepts each
connection and passes its descriptor to the next worker over a Unix socket pair
(``SCM_RIGHTS``); the worker serves it as if it had accepted it. Letting the kernel pick a
worker per connection instead (``SO_REUSEPORT`` hashes each connection's addresses) splits a
client's pool of keep-alive connections unevenly: 32 connections came out as 22 and 10 on two
workers, and the busier worker's queue then sets the latency of most requests. Taking turns
gives each worker the same number of connections, whatever their addresses.

A connection costs the supervisor one ``accept`` and one ``sendmsg``; its requests never pass
through the supervisor.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import socket
import ssl
import sys
import time
from collections.abc import Callable, Sequence
from typing import Final

if sys.platform != "win32":  # workers run where descriptors can be handed over
    import fcntl
    import termios

__all__ = ["ConnectionDealer", "HandedConnections", "hand_off_pair"]

#: The byte each descriptor travels with (a message must carry at least one byte).
_TAG: Final = b"c"
#: How long the supervisor pauses when it cannot accept (no descriptor left).
_PAUSE_S: Final = 0.05
#: Received descriptors are closed in programs the worker runs (plugin processes).
_CLOEXEC: Final = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
#: Descriptors a worker takes off its socket per wake-up before it lets the loop go on.
_BATCH: Final = 64


def _unread(hand_off: socket.socket) -> int:
    """How much of what was handed over on ``hand_off`` its worker has not taken yet
    (``SIOCOUTQ``, which is ``TIOCOUTQ``; 0 where the system cannot say)."""
    size = array.array("i", [0])
    try:
        fcntl.ioctl(hand_off.fileno(), termios.TIOCOUTQ, size)
    except (OSError, AttributeError):
        return 0
    return size[0]


def hand_off_pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of Unix sockets: the supervisor's end, then the worker's.

    The supervisor's end does not block: a worker that stops taking connections must not
    stall the supervisor (its connections go to the next worker instead).
    """
    dealer, worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    dealer.setblocking(False)
    return dealer, worker


class ConnectionDealer:
    """The supervisor's side: accept every pending connection and pass it on, in turn."""

    __slots__ = ("_listener", "_next")

    def __init__(self, listener: socket.socket) -> None:
        listener.setblocking(False)
        self._listener = listener
        self._next = 0

    @property
    def listener(self) -> socket.socket:
        """The listening socket (to wait on for readability)."""
        return self._listener

    def deal(self, workers: Sequence[socket.socket]) -> None:
        """Accept the connections waiting now and send each to one of ``workers`` (their
        hand-off sockets): the one with the fewest connections handed over but not taken
        yet, taking turns among equals. A worker whose loop is stuck (a CPU-bound step
        that never ends) takes none, and would otherwise get its share of connections,
        each left hanging, until its socket is full.

        A connection no worker takes (every hand-off socket full or closed) is closed: its
        client sees the connection reset, as when a listen queue overflows.
        """
        while True:
            try:
                connection, _address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # Out of descriptors or memory: the rest stay queued. The listener still
                # reads as ready, so pause rather than spin until the next turn.
                time.sleep(_PAUSE_S)
                return
            with connection:
                self._send(connection, workers)

    def _send(self, connection: socket.socket, workers: Sequence[socket.socket]) -> None:
        count = len(workers)
        turns = [(self._next + offset) % count for offset in range(count)]
        unread = {index: _unread(workers[index]) for index in turns}
        for index in sorted(turns, key=unread.__getitem__):  # stable: turn order on ties
            try:
                socket.send_fds(workers[index], [_TAG], [connection.fileno()])
            except OSError:  # full (the worker is stuck) or closed (it died): the next one
                continue
            self._next = (index + 1) % count
            return

    def close(self) -> None:
        """Stop listening (pending connections are reset)."""
        self._listener.close()


class HandedConnections:
    """The worker's side: serve each connection the supervisor hands over.

    It stands where uvicorn keeps its listening servers (``close`` and ``wait_closed``), so
    uvicorn's graceful shutdown stops taking connections the same way. When the supervisor's
    end closes (it died, even by ``SIGKILL``), no connection can come any more and
    ``orphaned`` runs: the worker drains and exits rather than linger without a supervisor.
    """

    __slots__ = (
        "_handshake_timeout_s",
        "_loop",
        "_orphaned",
        "_protocol",
        "_shutdown_timeout_s",
        "_socket",
        "_ssl",
        "_starting",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        hand_off: socket.socket,
        protocol: Callable[[], asyncio.Protocol],
        ssl_context: ssl.SSLContext | None,
        orphaned: Callable[[], None],
        handshake_timeout_s: float | None = None,
        shutdown_timeout_s: float | None = None,
    ) -> None:
        self._loop = loop
        #: Seconds a TLS handshake, and a TLS close, may take (``None``: asyncio's default).
        self._handshake_timeout_s = handshake_timeout_s
        self._shutdown_timeout_s = shutdown_timeout_s
        self._socket = hand_off
        self._protocol = protocol
        self._ssl = ssl_context
        self._orphaned = orphaned
        self._starting: set[asyncio.Task[object]] = set()
        hand_off.setblocking(False)
        loop.add_reader(hand_off.fileno(), self._receive)

    def _receive(self) -> None:
        for _ in range(_BATCH):
            try:
                data, fds, _flags, _address = socket.recv_fds(self._socket, len(_TAG), 1, _CLOEXEC)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds = b"", []
            if not data:  # the supervisor's end is closed: no more connections come
                self.close()
                self._orphaned()
                return
            if not fds:  # the descriptor did not fit (no descriptor left): that one is lost
                continue
            connection = socket.socket(fileno=fds[0])
            connection.setblocking(False)
            task = self._loop.create_task(
                self._loop.connect_accepted_socket(
                    self._protocol,
                    connection,
                    ssl=self._ssl,
                    ssl_handshake_timeout=self._handshake_timeout_s,
                    ssl_shutdown_timeout=self._shutdown_timeout_s,
                )
            )
            self._starting.add(task)
            task.add_done_callback(self._started)

    def _started(self, task: asyncio.Task[object]) -> None:
        self._starting.discard(task)
        if not task.cancelled():
            # Taken, not raised: a failed TLS handshake or a connection reset before it was
            # served closes that connection only, as it would on a listening server.
            task.exception()

    def close(self) -> None:
        """Take no more connections (those being served go on)."""
        if self._socket.fileno() >= 0:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._socket.fileno())
            self._socket.close()

    async def wait_closed(self) -> None:
        """Nothing to wait for: handed connections are tracked by uvicorn itself."""
