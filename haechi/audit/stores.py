# SPDX-License-Identifier: Apache-2.0
"""The built-in audit stores: a JSONL file (``jsonl``) and process memory (``memory``).

Both implement :class:`haechi.providers.AuditStore`. The file store is safe for any number of
threads and processes on one machine: each write holds an ``flock`` on the log itself (released
by the kernel if the holder dies; see :mod:`haechi.audit._open_log`), reads the last record
from the tail of the file without reading the rest, and appends. By default an append returns
once its line is written and a background thread fsyncs the file within
``audit.fsyncIntervalMs`` (see :mod:`haechi.audit._deferred_sync`); with the interval 0 it
returns only after the fsync covering its record. It assumes a local file system; replicas on
several machines share a chain through a networked store instead.

While the event loop keeps up, an append is written inside its call; when the loop is
saturated, appends are queued. Group commit: appends made on one event loop while a group of
its appends is being written are queued and written together as the next group — one lock, one
tail read, one write and one fsync — each record still chained onto the one before it. Under
concurrency a durable append then costs a fraction of an fsync instead of a whole one, and
appends from one event loop reach the file in the order they were made. When the lock is free
the group is chained and written on the event loop itself and only the fsync waits on the
store's writer thread, so the loop's thread and the writer hand the interpreter lock to each
other once per group rather than at every system call; when another writer holds the lock, the
group tries again at the loop's next turns for a moment, and then the writer thread waits for
it instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar, Final, Self

import anyio.to_thread
import orjson

from haechi._filelock import LockTimeout
from haechi._json_once import RepeatedKey
from haechi._sync_loop import off_loop
from haechi.audit._deferred_sync import DeferredSync
from haechi.audit._lines import (
    MAX_LINE_BYTES,
    iter_json_lines,
    parse_object,
    writable_dir,
    write_all,
    writers_done,
)
from haechi.audit._open_log import OpenLog
from haechi.audit._prepared import build_with_line
from haechi.audit.chain import integrity_of
from haechi.errors import AuditError
from haechi.providers import AuditIntegrity, ProviderContext, ReadyState

__all__ = ["FileAuditStore", "MemoryAuditStore"]

_TAIL_CHUNK: Final = 8 * 1024
_READ_BATCH: Final = 512
#: Seconds an append waits for its group to take the log's lock. One that waits longer fails
#: with AuditError and is never written, even if the lock comes free afterwards.
_LOCK_WAIT: Final = 10.0
#: Seconds a group may wait on its event loop for a lock held elsewhere (trying again at each
#: turn of the loop) before the writer thread waits for it instead.
_LOOP_PATIENCE: Final = 0.002
#: The default of ``audit.fsyncIntervalMs``, in seconds.
_DEFAULT_FSYNC_INTERVAL: Final = 0.2
#: Seconds a callback waits for its event loop to come round beyond which the loop counts as
#: saturated; the file store then writes appends in groups rather than one by one.
_BUSY_LAG: Final = 0.002
#: One append in this many measures how long the event loop takes to come round.
_LAG_SAMPLE: Final = 16
#: Seconds ``ready()`` waits for a store to finish the line it found unfinished (the
#: gateway's readiness check gives up after 5 s).
_READY_WAIT: Final = 2.0

Build = Callable[[AuditIntegrity | None], dict[str, Any]]
Committed = Callable[[dict[str, Any]], None] | None
#: What one queued append ends with: the persisted record, or the error to raise.
Outcome = dict[str, Any] | BaseException


#: Every file store, to reset in a fork child (see :meth:`FileAuditStore._after_fork`).
_STORES: Final[weakref.WeakSet[FileAuditStore]] = weakref.WeakSet()


def _reset_stores_in_child() -> None:
    for store in list(_STORES):
        store._after_fork()


os.register_at_fork(after_in_child=_reset_stores_in_child)


def _last_line(fd: int, size: int) -> bytes | None:
    """The last non-blank line of the open file of ``size`` bytes, read backwards from its
    end.

    A line longer than :data:`MAX_LINE_BYTES` (its line end included) is refused once that
    much of it is read, as every reader of the log refuses it: chained onto, it would leave
    a log that ``audit-verify``, ``report`` and ``status`` can no longer read, and a last
    line of gigabytes would be held whole on every append.
    """
    if size == 0:
        return None
    chunk = _TAIL_CHUNK
    while True:
        start = max(0, size - chunk)
        data = os.pread(fd, size - start, start)
        if not data.endswith(b"\n"):
            raise AuditError(
                "the audit log ends with an incomplete record (interrupted write); "
                "repair it before appending"
            )
        body = data.rstrip()
        cut = body.rfind(b"\n")
        if body and data.index(b"\n", len(body)) - cut > MAX_LINE_BYTES:
            raise AuditError(
                f"the last audit record is longer than {MAX_LINE_BYTES} bytes, more than "
                "the log's readers take; repair the log before appending"
            )
        if cut >= 0:
            return body[cut + 1 :]
        if start == 0:
            return body or None
        chunk *= 2


@dataclass(slots=True)
class _Queued:
    """One append waiting for the group write that persists it."""

    build: Build
    committed: Committed
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[dict[str, Any]] = field(init=False)
    #: Set under the store's mutex: the writer holds the lock and writes this record, or the
    #: caller gave up waiting and it must never be written.
    claimed: bool = field(default=False, init=False)
    abandoned: bool = field(default=False, init=False)

    #: ``loop.time()`` when the append was made.
    since: float = field(init=False)

    def __post_init__(self) -> None:
        self.future = self.loop.create_future()
        self.since = self.loop.time()


def _resume(queued: Sequence[_Queued], outcomes: Sequence[Outcome]) -> None:
    """Hand each waiting caller its outcome (runs on the caller's event loop)."""
    for item, outcome in zip(queued, outcomes, strict=True):
        if item.future.done():  # the caller was cancelled and no longer waits
            continue
        if isinstance(outcome, BaseException):
            item.future.set_exception(outcome)
        else:
            item.future.set_result(outcome)


class FileAuditStore:
    """Audit records as JSON lines appended to one file (mode 0600).

    Built from ``audit.path`` when ``audit.sink`` is ``jsonl``. ``ordered_appends``: appends
    made concurrently on one event loop are persisted in call order (see
    :class:`~haechi.audit.AuditSink`), written in groups (see the module documentation).
    """

    name: ClassVar[str] = "jsonl"
    ordered_appends: ClassVar[bool] = True

    def __init__(
        self, path: str | os.PathLike[str], *, fsync_interval: float = _DEFAULT_FSYNC_INTERVAL
    ) -> None:
        """``fsync_interval`` (seconds, ``audit.fsyncIntervalMs``): return from an append
        once its record is written and fsync the file within that time (see
        :mod:`haechi.audit._deferred_sync`); ``0`` returns only after the fsync."""
        if not fsync_interval >= 0:
            raise ValueError("fsync_interval must be zero or positive")
        self._path = Path(path)
        self._log = OpenLog(self._path)
        # Appends made, and the latest wait measured for a loop (see _write_at_once).
        self._appends = 0
        self._loop_lag = 0.0
        self._probing = False
        self._deferred = DeferredSync(fsync_interval) if fsync_interval > 0 else None
        # Appends waiting for their loop's next group, per event loop; a loop is in
        # ``_flushing`` while a group of its appends is being written.
        self._queues: dict[asyncio.AbstractEventLoop, list[_Queued]] = {}
        self._flushing: set[asyncio.AbstractEventLoop] = set()
        self._mutex = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None
        # The last line this store wrote and the head it carries (see _head).
        self._tail: tuple[bytes, AuditIntegrity] | None = None
        # An append failed because another writer kept the lock, and none has taken it
        # since (see _ready).
        self._lock_stuck = False
        _STORES.add(self)

    def _after_fork(self) -> None:
        """In a fork child: forget the parent's writer thread, its groups and its mutex.

        The child has none of the parent's threads: a group handed to the inherited writer
        (every group with ``fsyncIntervalMs: 0``, any group that waited for the lock) would
        wait for a thread that never runs, and its append would never return. The log's
        descriptor is dropped by :class:`~haechi.audit._open_log.OpenLog` itself.
        """
        self._writer = None
        self._mutex = threading.Lock()
        self._queues = {}
        self._flushing = set()
        self._probing = False

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        """Use ``audit.path`` and ``audit.fsyncIntervalMs`` from the configuration."""
        audit = context.config.audit
        return cls(audit.path, fsync_interval=audit.fsync_interval_ms / 1000)

    @property
    def path(self) -> Path:
        """The audit file."""
        return self._path

    async def aclose(self) -> None:
        """Close the log's descriptor (a later append opens it again), and with an fsync
        interval make what was written durable now rather than within the interval.

        The fsync runs on a worker thread, as every fsync of the store does: on the loop's
        thread a slow disk (or a batch the sync thread is fsyncing) would stop every other
        task of the loop until it returned.

        Raises:
            AuditError: a deferred fsync failed (now or before).
        """
        self._log.close()
        deferred = self._deferred
        if deferred is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # another anyio backend
            await anyio.to_thread.run_sync(deferred.flush)
        else:
            await off_loop(deferred.flush)
        self._raise_if_not_durable()

    def _raise_if_not_durable(self) -> None:
        """Raise :class:`AuditError` once a deferred fsync failed: lines reported written
        may be lost, so nothing more is written, and closing says so."""
        if self._deferred is not None and self._deferred.error is not None:
            raise AuditError(
                "the audit log could not be made durable "
                f"({type(self._deferred.error).__name__}); no more records are written"
            )

    async def append(self, build: Build, *, committed: Committed = None) -> dict[str, Any]:
        """Append one record under the cross-process lock (see the protocol).

        The record joins the group its event loop writes next; this returns once the fsync
        covering it returned (with an fsync interval: once it is written). With an fsync
        interval and no ``committed`` step, while the loop is not saturated and none of its
        appends waits, the record is written inside this call instead, which then returns
        without suspending (see :meth:`_write_at_once`). Outside asyncio (another anyio
        backend) the record is written on its own, on a worker thread.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            try:
                outcome = await anyio.to_thread.run_sync(self._persist, [(build, committed)])
            except LockTimeout:
                self._lock_stuck = True
                raise
            return _unwrap(outcome[0])
        if self._deferred is not None and committed is None and self._write_at_once(loop):
            written = self._append_now(loop, build)
            if written is not None:
                return _unwrap(written)
        queued = _Queued(build, committed, loop)
        with self._mutex:
            self._queues.setdefault(loop, []).append(queued)
            start = loop not in self._flushing
            self._flushing.add(loop)
        if start:
            loop.call_soon(self._flush, loop)
        return await queued.future

    def _expire(self, queued: _Queued) -> None:
        """Fail an append whose group has not taken the lock in time (on the caller's loop)."""
        with self._mutex:
            if queued.claimed or queued.future.done():
                return
            queued.abandoned = True
        self._lock_stuck = True
        queued.future.set_exception(
            AuditError(
                f"the audit log stayed locked for {_LOCK_WAIT:g} s; the record was not written"
            )
        )

    def _claim(self, group: Sequence[_Queued]) -> list[bool]:
        """Under the lock: which records of ``group`` are still wanted (each is then claimed)."""
        with self._mutex:
            for item in group:
                item.claimed = not item.abandoned
            return [item.claimed for item in group]

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``: write the group of its queued appends, then the next, until none wait.

        When the lock is free the group is chained and written right here, the lock is
        released, and only the fsync (if any) runs on the writer thread (see
        :meth:`_write_inline`). When another writer holds the lock, the group waits on the
        loop, which tries again at its next turns: another gateway worker holds the lock for
        the tens of microseconds of its own write, and handing the group to a thread would
        cost a wait for the interpreter lock (up to its switch interval, 5 ms, while the
        loop is busy). A group still waiting after :data:`_LOOP_PATIENCE`, or whose records
        carry a ``committed`` step, goes to the writer thread (:meth:`_persist`), which
        waits for the lock in the kernel.
        """
        with self._mutex:
            group = self._queues.pop(loop, None)
            if not group:
                self._flushing.discard(loop)
                return
        if any(item.committed is not None for item in group):
            self._wait_for_lock(loop, group)
            return
        try:
            synced = self._write_inline(group)
        except BaseException as exc:
            self._flushed(loop, group, [exc] * len(group))
            return
        if synced is None:
            if loop.time() - group[0].since >= _LOOP_PATIENCE:
                self._wait_for_lock(loop, group)
                return
            with self._mutex:  # appends made meanwhile queue behind this group
                group.extend(self._queues.pop(loop, ()))
                self._queues[loop] = group
            loop.call_soon(self._flush, loop)
            return
        sync, outcomes = synced
        if sync is not None:
            self._offload(loop, group, partial(_sync_and_close, sync, outcomes))
        else:
            self._flushed(loop, group, outcomes)

    def _wait_for_lock(self, loop: asyncio.AbstractEventLoop, group: list[_Queued]) -> None:
        """Hand ``group`` to the writer thread, which waits for the lock in the kernel; an
        append whose group has not taken it :data:`_LOCK_WAIT` seconds after the append was
        made fails (see :meth:`_expire`)."""
        pairs = [(item.build, item.committed) for item in group]
        deadlines = [loop.call_at(item.since + _LOCK_WAIT, self._expire, item) for item in group]
        work = partial(self._persist, pairs, claim=partial(self._claim, group))
        self._offload(loop, group, work, deadlines)

    def _offload(
        self,
        loop: asyncio.AbstractEventLoop,
        group: list[_Queued],
        work: Callable[[], list[Outcome]],
        deadlines: Sequence[asyncio.TimerHandle] = (),
    ) -> None:
        """Run ``work`` on the writer thread; its outcomes finish ``group`` on ``loop`` (and
        cancel its ``deadlines``)."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="haechi-audit")
        try:
            done = loop.run_in_executor(self._writer, work)
        except RuntimeError:  # the interpreter is shutting down: finish from here
            for deadline in deadlines:
                deadline.cancel()
            self._flushed(loop, group, _outcomes_of(work, len(group)))
            return

        def finished(future: asyncio.Future[list[Outcome]]) -> None:
            for deadline in deadlines:
                deadline.cancel()
            error = None if future.cancelled() else future.exception()
            if future.cancelled() or error is not None:
                exc = error if error is not None else AuditError("the audit write was cancelled")
                self._flushed(loop, group, [exc] * len(group))
            else:
                self._flushed(loop, group, future.result())

        done.add_done_callback(finished)

    def _flushed(
        self, loop: asyncio.AbstractEventLoop, group: list[_Queued], outcomes: list[Outcome]
    ) -> None:
        """Resume the callers of ``group`` and go on with the appends queued meanwhile."""
        _resume(group, outcomes)
        self._flush(loop)

    def _write_at_once(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether an append should be written inside its call (see :meth:`_append_now`)
        rather than queued for the loop's next group write.

        Writing at once spares the caller a wait for the loop, but a group write serves
        several appends with one lock, one tail read and one write; that matters only when
        the loop is saturated, and then a queued append waits for a long turn anyway. So
        every :data:`_LAG_SAMPLE`-th append schedules a probe that measures how long a
        callback waits for ``loop`` (see :meth:`_probe`), and appends are written at once
        while that wait is below :data:`_BUSY_LAG`.
        """
        self._appends += 1
        if self._appends % _LAG_SAMPLE == 0 and not self._probing:
            # One probe at a time: a loop that does not turn (``protect_sync`` steps calls
            # without turning its loop) must not pile them up.
            self._probing = True
            loop.call_soon(self._probe, time.perf_counter())
        return self._loop_lag < _BUSY_LAG

    def _probe(self, scheduled: float) -> None:
        # time.perf_counter: some loops' clocks (uvloop's) only tick once per turn, in ms.
        self._loop_lag = time.perf_counter() - scheduled
        self._probing = False

    def _append_now(self, loop: asyncio.AbstractEventLoop, build: Build) -> Outcome | None:
        """With an fsync interval: write one record inside its ``append`` call, when none of
        ``loop``'s appends is queued or being written (so call order is kept) and the lock
        is free; ``None`` otherwise (the record then joins the loop's next group).

        The caller then goes on without suspending: a queued append waits for the event loop
        to come round to the group write, behind every callback already due, which under
        load is most of the time an append takes.
        """
        with self._mutex:
            if loop in self._flushing:
                return None
            self._flushing.add(loop)
        try:
            written = self._write_if_free([(build, None)], lambda: (True,))
        finally:
            with self._mutex:
                self._flushing.discard(loop)
        return None if written is None else written[1][0]

    def _write_inline(self, group: list[_Queued]) -> tuple[int | None, list[Outcome]] | None:
        """Chain and write ``group`` on the calling thread if the lock is free at once.

        Returns a descriptor to fsync and close (without an fsync interval, when something
        was written) and one outcome per record, or ``None`` when the lock is held
        elsewhere. The lock is released before the fsync: a writer that chains onto these
        records next fsyncs the same file, which makes these lines durable before its own,
        so no durable record ever follows a lost one.
        """
        pairs = [(item.build, item.committed) for item in group]
        return self._write_if_free(pairs, partial(self._claim, group))

    def _write_if_free(
        self, pairs: Sequence[tuple[Build, Committed]], claim: Callable[[], Sequence[bool]]
    ) -> tuple[int | None, list[Outcome]] | None:
        """:meth:`_write_inline` of the records ``claim()`` still wants once the lock is
        held."""
        with self._log.held(timeout=0) as fd:
            if fd is None:
                return None
            outcomes = self._chain_and_write(fd, pairs, claim())
            if not _any_written(outcomes):
                return None, outcomes
            if self._deferred is not None:
                self._deferred.track(fd, self._log.key)
                return None, outcomes
            return os.dup(fd), outcomes

    def _persist(
        self,
        group: Sequence[tuple[Build, Committed]],
        *,
        claim: Callable[[], Sequence[bool]] | None = None,
    ) -> list[Outcome]:
        """Chain, write and fsync ``group`` in one exclusive section; one outcome each.

        A ``build`` that raises (or returns a record that cannot be chained onto) persists
        nothing and fails its own append only; a failure to lock, read, write or fsync fails
        the whole group. ``committed`` runs per record after the fsync, before the lock is
        released, in chain order.

        With ``claim`` (the writer thread) the lock is awaited in the kernel, since the
        callers keep their own deadline, and ``claim()`` tells, once it is held, which
        records are still wanted; without it the lock is polled up to :data:`_LOCK_WAIT`.
        With an fsync interval, a group without ``committed`` steps is handed to the deferred
        sync instead of fsynced here (anchors are written only after a durable record).
        """
        with self._log.held(timeout=None if claim is not None else _LOCK_WAIT) as fd:
            assert fd is not None  # a lock that is waited for is taken, or raises
            wanted = claim() if claim is not None else [True] * len(group)
            outcomes = self._chain_and_write(fd, group, wanted)
            if _any_written(outcomes):
                deferred = self._deferred
                if deferred is not None and all(step is None for _b, step in group):
                    deferred.track(fd, self._log.key)
                else:
                    os.fsync(fd)
            for index, (_build, committed) in enumerate(group):
                outcome = outcomes[index]
                if committed is None or isinstance(outcome, BaseException):
                    continue
                try:
                    committed(outcome)
                except Exception as exc:  # the record stays written; its caller learns
                    outcomes[index] = exc
        return outcomes

    def _chain_and_write(
        self, fd: int, group: Sequence[tuple[Build, Committed]], wanted: Sequence[bool]
    ) -> list[Outcome]:
        """Under the lock: chain the wanted records of ``group`` onto the log's head and
        append their lines in one write (not yet fsynced); one outcome per record."""
        self._lock_stuck = False  # the lock is held: whoever kept it let go
        self._raise_if_not_durable()
        outcomes: list[Outcome] = []
        lines: list[bytes] = []
        previous = self._head(fd)
        for (build, _committed), write in zip(group, wanted, strict=True):
            if not write:
                outcomes.append(_GAVE_UP)
                continue
            try:
                record, line = build_with_line(build, previous)
                head = integrity_of(record)
            except Exception as exc:
                outcomes.append(exc)
                continue
            previous = head
            lines.append(line)
            outcomes.append(record)
        if lines:
            write_all(fd, b"".join(lines))
            if previous is not None:
                self._tail = (lines[-1], previous)
        return outcomes

    def _head(self, fd: int) -> AuditIntegrity | None:
        """The integrity block of the last record in the open file (``None``: empty log).

        When the file still ends with the line this store wrote last, that line is the last
        record, so its head is known without reading and parsing it again. Anything else
        (another writer appended, the log was rotated or edited) reads the tail.
        """
        size = os.fstat(fd).st_size
        if self._tail is not None:
            line, head = self._tail
            if size == len(line):
                ours = os.pread(fd, size, 0) == line
            else:
                ours = size > len(line) and os.pread(fd, len(line) + 1, size - len(line) - 1) == (
                    b"\n" + line
                )
            if ours:
                return head
        return _read_head(fd, size)

    async def records(self) -> AsyncIterator[dict[str, Any]]:
        """Every record in file order; a missing file has none, a malformed line raises."""
        lines = iter_json_lines(self._path, missing_ok=True)
        try:
            while True:
                batch, error = await anyio.to_thread.run_sync(_take, lines)
                for record in batch:
                    yield record
                if error is not None:
                    raise error
                if not batch:
                    break
        finally:
            lines.close()

    async def ready(self) -> ReadyState:
        """Whether the directory and (if present) the file accept appends; writes nothing.

        A file that is there must be a regular file: a pipe or a device keeps no record.

        A file whose last line is incomplete (an interrupted write), or is not a record the
        next one can be chained onto, is not ready either: appends to it are refused until
        it is repaired.
        """
        return await anyio.to_thread.run_sync(self._ready)

    def _ready(self) -> ReadyState:
        if self._deferred is not None and self._deferred.error is not None:
            return ReadyState(False, "audit_fsync_failed")
        if not writable_dir(self._path.parent):
            return ReadyState(False, "audit_dir_not_writable")
        if os.path.lexists(self._path):
            flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | os.O_NONBLOCK
            try:
                fd = os.open(self._path, flags)
            except OSError:
                return ReadyState(False, "audit_file_not_writable")
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):  # a pipe or a device keeps no record
                    return ReadyState(False, "audit_file_not_writable")
                state = _tail_state(fd)
                if state is not None:  # perhaps a write in progress: look again once it is done
                    with writers_done(fd, _READY_WAIT) as done:
                        if done:
                            state = _tail_state(fd)
                if state is None and self._lock_stuck:
                    state = self._lock_state(fd)
                return state or ReadyState(True)
            except OSError:
                return ReadyState(False, "audit_file_not_writable")
            finally:
                os.close(fd)
        return ReadyState(True)

    def _lock_state(self, fd: int) -> ReadyState | None:
        """After an append failed on a lock another writer kept (a process stopped or hung
        while writing): ``audit_file_locked`` while the lock is still kept, ``None`` once
        it can be had.

        Every append fails then, after waiting its 10 s, and a gateway answering every
        request 500 must not say it is ready. The lock is tried only in that case: taking it
        as a matter of course would keep writers waiting for readiness probes.
        """
        with writers_done(fd, _READY_WAIT) as done:
            if not done:
                return ReadyState(False, "audit_file_locked")
        self._lock_stuck = False
        return None


def _tail_state(fd: int) -> ReadyState | None:
    """Why the next append would refuse the end of the open log, or ``None``.

    Read without the lock, the end may be that of a group a store is writing right now
    (some of its pages in, the rest not yet): :meth:`FileAuditStore._ready` asks again once
    no store writes, or a gateway under load would answer not ready now and then.
    """
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        return ReadyState(False, "audit_file_incomplete")
    try:
        _read_head(fd, size)
    except (AuditError, ValueError, RecursionError):
        return ReadyState(False, "audit_file_unreadable")
    return None


def _read_head(fd: int, size: int) -> AuditIntegrity | None:
    """The integrity block of the last record in the open file of ``size`` bytes (``None``:
    empty log).

    The record is read as the verifier reads it: one that gives a key twice is read
    differently by different readers (see :class:`~haechi.errors.AuditRepeatedKey`) and
    breaks the chain for ``audit-verify``, and going on from it would bury that break under
    records written later. With several gateway workers on one log, most appends follow
    another worker's record, so this runs on most appends: see :func:`_as_written`.
    """
    line = _last_line(fd, size)
    if line is None:
        return None
    head = _as_written(line)
    if head is None:
        try:
            head = parse_object(line)
        except RepeatedKey:
            raise AuditError("the last audit record gives a key twice in one object") from None
    if head is None:
        raise AuditError("the last audit record is not a JSON object")
    return integrity_of(head)


def _as_written(line: bytes) -> dict[str, Any] | None:
    """The object on ``line`` when orjson writes it back byte for byte, else ``None``.

    orjson reads a record several times faster than the standard library with a hook that
    refuses a key given twice (about 3 µs against 11 µs for a record of 1 KB: a quarter of
    an append without fsync), but keeps the last value of such a key without a word. A line
    it writes back unchanged names every key once (orjson writes each key of an object
    once), and a record a store wrote is such a line but for a rare number or escape orjson
    writes otherwise; any other line (a key given twice, such a record, a byte order mark)
    is left to the strict reader.
    """
    try:
        head = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(head) is not dict or orjson.dumps(head) != line:
        return None
    return head


#: The outcome of a record whose caller stopped waiting before its group took the lock (the
#: caller has already been given its error).
_GAVE_UP: Final = AuditError("the record was given up before it was written")


def _any_written(outcomes: Sequence[Outcome]) -> bool:
    return any(not isinstance(outcome, BaseException) for outcome in outcomes)


def _sync_and_close(fd: int, outcomes: list[Outcome]) -> list[Outcome]:
    """Writer thread: make the lines written on ``fd`` (a duplicate of the log's
    descriptor) durable, then close it."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return outcomes


def _outcomes_of(work: Callable[[], list[Outcome]], count: int) -> list[Outcome]:
    try:
        return work()
    except BaseException as exc:  # never leave a caller waiting
        return [exc] * count


def _unwrap(outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _take(lines: Iterator[dict[str, Any]]) -> tuple[list[dict[str, Any]], Exception | None]:
    """The next batch of ``lines``, and what stopped the reading within it: the records read
    before a line that fails are still the caller's, in order, before the failure."""
    batch: list[dict[str, Any]] = []
    try:
        for record in islice(lines, _READ_BATCH):
            batch.append(record)
    except Exception as exc:
        return batch, exc
    return batch, None


class MemoryAuditStore:
    """Audit records in a list: for tests, demos and single-process embedding.

    Records are stored as their JSON line, so what is read back is what a file store would
    have held, and every record read back is a fresh parse of it that callers may keep or
    change; ``append`` returns the record it built, as the file store does. Appends finish
    without suspending, so they are persisted in call order (``ordered_appends``).
    """

    name: ClassVar[str] = "memory"
    ordered_appends: ClassVar[bool] = True

    def __init__(self) -> None:
        self._lines: list[bytes] = []
        self._head: AuditIntegrity | None = None
        self._lock = threading.Lock()

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        """A fresh, empty store (nothing in the configuration applies)."""
        return cls()

    async def append(self, build: Build, *, committed: Committed = None) -> dict[str, Any]:
        """Append one record under a lock shared by every thread (see the protocol)."""
        with self._lock:
            record, line = build_with_line(build, self._head)
            self._head = integrity_of(record)
            self._lines.append(line)
            if committed is not None:
                committed(record)
        return record

    async def records(self) -> AsyncIterator[dict[str, Any]]:
        """A snapshot of every record, in order."""
        with self._lock:
            snapshot = list(self._lines)
        for line in snapshot:
            yield json.loads(line)

    async def ready(self) -> ReadyState:
        """Always ready."""
        return ReadyState(True)
