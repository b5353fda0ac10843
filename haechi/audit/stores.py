# SPDX-License-Identifier: Apache-2.0
"""The built-in audit stores: a JSONL file (``jsonl``) and process memory (``memory``).

Both implement :class:`haechi.providers.AuditStore`. The file store is safe for any number of
threads and processes on one machine: each write holds an ``flock`` on ``<path>.lock``
(released by the kernel if the holder dies), reads the last record from the tail of the file
without reading the rest, and appends. By default an append returns once its line is
written and a background thread fsyncs the file within ``audit.fsyncIntervalMs`` (see
:mod:`haechi.audit._deferred_sync`); with the interval 0 it returns only after the fsync
covering its record. It assumes a local file system; replicas on several machines share a
chain through a networked store instead.

Group commit: appends made on one event loop while a group of its appends is being written are
queued and written together as the next group — one lock, one tail read, one write and one
fsync — each record still chained onto the one before it. Under concurrency a durable append
then costs a fraction of an fsync instead of a whole one, and appends from one event loop reach
the file in the order they were made. When the lock is free the group is chained and written on
the event loop itself and only the fsync waits on the store's writer thread, so the loop's
thread and the writer hand the interpreter lock to each other once per group rather than at
every system call; when another writer holds the lock, the writer thread waits for it instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar, Final, Self

import anyio.to_thread

from haechi._filelock import locked, try_locked
from haechi.audit._deferred_sync import DeferredSync
from haechi.audit._lines import (
    iter_json_lines,
    open_append,
    parse_object,
    writable_dir,
    write_all,
)
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
#: The default of ``audit.fsyncIntervalMs``, in seconds.
_DEFAULT_FSYNC_INTERVAL: Final = 0.05

Build = Callable[[AuditIntegrity | None], dict[str, Any]]
Committed = Callable[[dict[str, Any]], None] | None
#: What one queued append ends with: the persisted record, or the error to raise.
Outcome = dict[str, Any] | BaseException


def _last_line(fd: int) -> bytes | None:
    """The last non-blank line of the open file, read backwards from its end."""
    size = os.fstat(fd).st_size
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

    def __post_init__(self) -> None:
        self.future = self.loop.create_future()


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
        self._deferred = DeferredSync(fsync_interval) if fsync_interval > 0 else None
        # Appends waiting for their loop's next group, per event loop; a loop is in
        # ``_flushing`` while a group of its appends is being written.
        self._queues: dict[asyncio.AbstractEventLoop, list[_Queued]] = {}
        self._flushing: set[asyncio.AbstractEventLoop] = set()
        self._mutex = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None
        # The last line this store wrote and the head it carries (see _head).
        self._tail: tuple[bytes, AuditIntegrity] | None = None

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        """Use ``audit.path`` and ``audit.fsyncIntervalMs`` from the configuration."""
        audit = context.config.audit
        return cls(audit.path, fsync_interval=audit.fsync_interval_ms / 1000)

    @property
    def path(self) -> Path:
        """The audit file."""
        return self._path

    async def append(self, build: Build, *, committed: Committed = None) -> dict[str, Any]:
        """Append one record under the cross-process lock (see the protocol).

        The record joins the group its event loop writes next; this returns once the fsync
        covering it returned (with an fsync interval: once it is written). Outside asyncio
        (another anyio backend) the record is written on its own, on a worker thread.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            outcome = await anyio.to_thread.run_sync(self._persist, [(build, committed)])
            return _unwrap(outcome[0])
        queued = _Queued(build, committed, loop)
        with self._mutex:
            self._queues.setdefault(loop, []).append(queued)
            start = loop not in self._flushing
            self._flushing.add(loop)
        if start:
            loop.call_soon(self._flush, loop)
        deadline = loop.call_later(_LOCK_WAIT, self._expire, queued)
        try:
            return await queued.future
        finally:
            deadline.cancel()

    def _expire(self, queued: _Queued) -> None:
        """Fail an append whose group has not taken the lock in time (on the caller's loop)."""
        with self._mutex:
            if queued.claimed or queued.future.done():
                return
            queued.abandoned = True
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
        released, and only the fsync runs on the writer thread (see :meth:`_write_inline`).
        When another writer holds the lock, or records carry a ``committed`` step, the whole
        group goes to the writer thread (:meth:`_persist`), which waits for the lock.
        """
        with self._mutex:
            group = self._queues.pop(loop, None)
            if not group:
                self._flushing.discard(loop)
                return
        try:
            synced = self._write_inline(group)
        except BaseException as exc:
            self._flushed(loop, group, [exc] * len(group))
            return
        if synced is not None:
            fd, outcomes = synced
            if self._deferred is None:
                self._offload(loop, group, partial(_sync_and_close, fd, outcomes))
                return
            try:
                _hand_over(self._deferred, fd, outcomes)
            except OSError as exc:
                outcomes = [exc] * len(group)
            self._flushed(loop, group, outcomes)
        else:
            pairs = [(item.build, item.committed) for item in group]
            self._offload(
                loop, group, partial(self._persist, pairs, claim=partial(self._claim, group))
            )

    def _offload(
        self,
        loop: asyncio.AbstractEventLoop,
        group: list[_Queued],
        work: Callable[[], list[Outcome]],
    ) -> None:
        """Run ``work`` on the writer thread; its outcomes finish ``group`` on ``loop``."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="haechi-audit")
        try:
            done = loop.run_in_executor(self._writer, work)
        except RuntimeError:  # the interpreter is shutting down: finish from here
            self._flushed(loop, group, _outcomes_of(work, len(group)))
            return

        def finished(future: asyncio.Future[list[Outcome]]) -> None:
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

    def _write_inline(self, group: list[_Queued]) -> tuple[int, list[Outcome]] | None:
        """Chain and write ``group`` on the calling thread if the lock is free at once.

        Returns the open log descriptor (to be fsynced and closed) and one outcome per
        record, or ``None`` when the lock is held elsewhere or a record has a ``committed``
        step (the group then goes to :meth:`_persist`). The lock is released before the
        fsync: a writer that chains onto these records next fsyncs the same file, which makes
        these lines durable before its own, so no durable record ever follows a lost one.
        """
        if any(item.committed is not None for item in group):
            return None
        with try_locked(self._path) as held:
            if not held:
                return None
            wanted = self._claim(group)
            fd, _ = open_append(self._path)
            try:
                outcomes = self._chain_and_write(
                    fd, [(item.build, item.committed) for item in group], wanted
                )
            except BaseException:
                os.close(fd)
                raise
        return fd, outcomes

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
        with locked(self._path, timeout=None if claim is not None else _LOCK_WAIT):
            wanted = claim() if claim is not None else [True] * len(group)
            fd, _ = open_append(self._path)
            try:
                outcomes = self._chain_and_write(fd, group, wanted)
                deferred = self._deferred
                if deferred is not None and all(step is None for _b, step in group):
                    handed, fd = fd, -1
                    _hand_over(deferred, handed, outcomes)
                elif _any_written(outcomes):
                    os.fsync(fd)
            finally:
                if fd >= 0:
                    os.close(fd)
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
        if self._deferred is not None and self._deferred.error is not None:
            raise AuditError(
                "the audit log could not be made durable "
                f"({type(self._deferred.error).__name__}); no more records are written"
            )
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
        if self._tail is not None:
            line, head = self._tail
            size = os.fstat(fd).st_size
            if size == len(line):
                ours = os.pread(fd, size, 0) == line
            else:
                ours = size > len(line) and os.pread(fd, len(line) + 1, size - len(line) - 1) == (
                    b"\n" + line
                )
            if ours:
                return head
        return _read_head(fd)

    async def records(self) -> AsyncIterator[dict[str, Any]]:
        """Every record in file order; a missing file has none, a malformed line raises."""
        lines = iter_json_lines(self._path, missing_ok=True)
        try:
            while batch := await anyio.to_thread.run_sync(_take, lines):
                for record in batch:
                    yield record
        finally:
            lines.close()

    async def ready(self) -> ReadyState:
        """Whether the directory and (if present) the file accept appends; writes nothing.

        A file whose last line is incomplete (an interrupted write) is not ready either:
        appends to it are refused until it is repaired.
        """
        return await anyio.to_thread.run_sync(self._ready)

    def _ready(self) -> ReadyState:
        if self._deferred is not None and self._deferred.error is not None:
            return ReadyState(False, "audit_fsync_failed")
        if not writable_dir(self._path.parent):
            return ReadyState(False, "audit_dir_not_writable")
        if os.path.lexists(self._path):
            try:
                fd = os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
            except OSError:
                return ReadyState(False, "audit_file_not_writable")
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    return ReadyState(False, "audit_file_incomplete")
            except OSError:
                return ReadyState(False, "audit_file_not_writable")
            finally:
                os.close(fd)
        return ReadyState(True)


def _read_head(fd: int) -> AuditIntegrity | None:
    """The integrity block of the last record in the open file (``None``: empty log)."""
    line = _last_line(fd)
    if line is None:
        return None
    head = parse_object(line)
    if head is None:
        raise AuditError("the last audit record is not a JSON object")
    return integrity_of(head)


#: The outcome of a record whose caller stopped waiting before its group took the lock (the
#: caller has already been given its error).
_GAVE_UP: Final = AuditError("the record was given up before it was written")


def _any_written(outcomes: Sequence[Outcome]) -> bool:
    return any(not isinstance(outcome, BaseException) for outcome in outcomes)


def _hand_over(deferred: DeferredSync, fd: int, outcomes: Sequence[Outcome]) -> None:
    """Give ``fd`` to the deferred sync if lines were written through it, else close it."""
    if _any_written(outcomes):
        deferred.add(fd)
    else:
        os.close(fd)


def _sync_and_close(fd: int, outcomes: list[Outcome]) -> list[Outcome]:
    """Writer thread: make the lines written on ``fd`` durable, then close it."""
    try:
        if _any_written(outcomes):
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


def _take(lines: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(islice(lines, _READ_BATCH))


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
