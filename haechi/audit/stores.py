# SPDX-License-Identifier: Apache-2.0
"""The built-in audit stores: a JSONL file (``jsonl``) and process memory (``memory``).

Both implement :class:`haechi.providers.AuditStore`. The file store is safe for any number of
threads and processes on one machine: each append holds an ``flock`` on ``<path>.lock``
(released by the kernel if the holder dies), reads the last record from the tail of the file
without reading the rest, appends one line and fsyncs before releasing. It assumes a local
file system; replicas on several machines share a chain through a networked store instead.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar, Final, Self

import anyio.to_thread

from haechi._filelock import locked
from haechi.audit._lines import (
    encode_line,
    iter_json_lines,
    open_append,
    parse_object,
    writable_dir,
    write_all,
)
from haechi.audit.chain import integrity_of
from haechi.errors import AuditError
from haechi.providers import AuditIntegrity, ProviderContext, ReadyState

__all__ = ["FileAuditStore", "MemoryAuditStore"]

_TAIL_CHUNK: Final = 64 * 1024
_READ_BATCH: Final = 512

Build = Callable[[AuditIntegrity | None], dict[str, Any]]
Committed = Callable[[dict[str, Any]], None] | None


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


class FileAuditStore:
    """Audit records as JSON lines appended to one file (mode 0600).

    Built from ``audit.path`` when ``audit.sink`` is ``jsonl``.
    """

    name: ClassVar[str] = "jsonl"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        """Use ``audit.path`` from the configuration."""
        return cls(context.config.audit.path)

    @property
    def path(self) -> Path:
        """The audit file."""
        return self._path

    async def append(self, build: Build, *, committed: Committed = None) -> dict[str, Any]:
        """Append one record under the cross-process lock (see the protocol)."""
        return await anyio.to_thread.run_sync(self._append, build, committed)

    def _append(self, build: Build, committed: Committed) -> dict[str, Any]:
        with locked(self._path):
            fd, _ = open_append(self._path)
            try:
                line = _last_line(fd)
                previous = None
                if line is not None:
                    head = parse_object(line)
                    if head is None:
                        raise AuditError("the last audit record is not a JSON object")
                    previous = integrity_of(head)
                record = build(previous)
                write_all(fd, encode_line(record))
                os.fsync(fd)
            finally:
                os.close(fd)
            if committed is not None:
                committed(record)
        return record

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


def _take(lines: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(islice(lines, _READ_BATCH))


class MemoryAuditStore:
    """Audit records in a list: for tests, demos and single-process embedding.

    Records are stored as a JSON round trip of what was built, so what is read back is what
    a file store would have held.
    """

    name: ClassVar[str] = "memory"

    def __init__(self) -> None:
        self._records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        """A fresh, empty store (nothing in the configuration applies)."""
        return cls()

    async def append(self, build: Build, *, committed: Committed = None) -> dict[str, Any]:
        """Append one record under a lock shared by every thread (see the protocol)."""
        with self._lock:
            previous = integrity_of(self._records[-1]) if self._records else None
            record = build(previous)
            stored = json.loads(encode_line(record))
            self._records.append(stored)
            if committed is not None:
                committed(copy.deepcopy(stored))
        return copy.deepcopy(stored)

    async def records(self) -> AsyncIterator[dict[str, Any]]:
        """A snapshot of every record, in order."""
        with self._lock:
            snapshot = list(self._records)
        for record in snapshot:
            yield copy.deepcopy(record)

    async def ready(self) -> ReadyState:
        """Always ready."""
        return ReadyState(True)
