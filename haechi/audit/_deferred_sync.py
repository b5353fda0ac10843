# SPDX-License-Identifier: Apache-2.0
"""Fsyncing an audit file some time after it was written (``audit.fsyncIntervalMs``).

With an interval set, the file store returns from an append once the record's line is
written to the file: it is then in the operating system's page cache, which outlives a crash
of the gateway process but not of the machine. :class:`DeferredSync` makes those lines
durable within the interval: the store hands it the descriptor each group was written
through, and one thread fsyncs each file (through a duplicate of the first descriptor it is
handed in an interval) at most ``interval`` seconds after the first write it has not synced
yet.

The thread ends once nothing has been handed to it for :data:`_LINGER_S` seconds (or one
interval, when that is longer; the next hand-over starts a new one), so an idle store keeps
no thread while a busy one keeps the same thread. Starting a thread blocks the caller until
the new thread runs, which on a loaded machine takes milliseconds: a thread per interval
would stall the gateway's event loop several times a second. It is not a daemon, and when
the interpreter starts shutting down it is woken at once and ends as soon as it has synced
what it holds: a process that exits right after writing (a one-shot ``haechi protect``)
fsyncs its last lines before it ends, without waiting out the interval.

A failed fsync is kept: the disk lost data the store already reported written, so the store
refuses every later append (fail closed) rather than go on writing records that may not last.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from typing import Final

__all__ = ["DeferredSync"]

#: How long the thread waits for another hand-over, once it has synced everything.
_LINGER_S: Final = 5.0
#: Every live instance, to hurry at interpreter shutdown.
_LIVE: Final[weakref.WeakSet[DeferredSync]] = weakref.WeakSet()


def _hurry_all() -> None:
    for deferred in list(_LIVE):
        deferred.hurry()


# Run when the interpreter shuts down, before it waits for threads such as ours (the hook
# concurrent.futures uses for its own workers; without it the last fsync waits the interval).
_register_shutdown = getattr(threading, "_register_atexit", None)
if _register_shutdown is not None:
    _register_shutdown(_hurry_all)


def _reset_all_in_child() -> None:
    for deferred in list(_LIVE):
        deferred._after_fork()


os.register_at_fork(after_in_child=_reset_all_in_child)


class DeferredSync:
    """One thread that fsyncs handed-over descriptors within ``interval`` seconds, running
    while any wait."""

    __slots__ = (
        "__weakref__",
        "_error",
        "_interval",
        "_lock",
        "_pending",
        "_syncing",
        "_thread",
        "_wake",
    )

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        #: Held while a batch is taken and synced, so that :meth:`flush` returns only once
        #: no descriptor handed over before it is still open.
        self._syncing = threading.Lock()
        self._pending: dict[tuple[int, int], int] = {}
        self._thread: threading.Thread | None = None
        self._error: OSError | None = None
        self._wake = threading.Event()
        _LIVE.add(self)

    @property
    def error(self) -> OSError | None:
        """The first fsync failure, if any (then nothing more may be appended)."""
        return self._error

    def track(self, fd: int, key: tuple[int, int]) -> None:
        """Make the file open as ``fd`` (``key``: its ``st_dev, st_ino``) durable within the
        interval. ``fd`` stays the caller's: a duplicate is kept until the fsync, once per
        file and interval."""
        with self._lock:
            if key in self._pending:
                return
            self._pending[key] = os.dup(fd)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="haechi-audit-sync")
                self._thread.start()

    def flush(self) -> None:
        """Fsync what was handed over now, and close its duplicates (the store is closing:
        its last lines are durable at once, and no descriptor of its file outlives it)."""
        with self._syncing:
            self._sync_pending()

    def _sync_pending(self) -> bool:
        """Fsync and close every descriptor waiting now; whether there was any (the caller
        holds ``_syncing``). A failure is kept (see :attr:`error`)."""
        with self._lock:
            batch, self._pending = self._pending, {}
        for fd in batch.values():
            try:
                os.fsync(fd)
            except OSError as exc:
                if self._error is None:
                    self._error = exc
            finally:
                os.close(fd)
        return bool(batch)

    def hurry(self) -> None:
        """From now on fsync what is handed over at once, without waiting for the interval
        (the interpreter is shutting down)."""
        self._wake.set()

    def _after_fork(self) -> None:
        """In a fork child: the parent's thread is not there, and its lock may have been
        held at the fork. Without this the child's writes would wait for a thread that
        never runs: never fsynced, and a failed fsync never seen. The descriptors handed
        over before the fork are the child's copies; the parent fsyncs its own."""
        for fd in self._pending.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._lock = threading.Lock()
        self._syncing = threading.Lock()
        self._pending = {}
        self._thread = None
        self._wake = threading.Event()

    def _run(self) -> None:
        linger = max(_LINGER_S, self._interval)
        last = time.monotonic()
        while True:
            self._wake.wait(self._interval)
            with self._syncing:
                synced = self._sync_pending()
            now = time.monotonic()
            if synced:
                last = now
            with self._lock:
                # Nothing came in meanwhile, and none for a while (or shutting down): end
                # (see track).
                if not self._pending and (self._wake.is_set() or now - last >= linger):
                    self._thread = None
                    return
