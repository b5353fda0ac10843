# SPDX-License-Identifier: Apache-2.0
"""The audit file as one file store holds it: open once per process, locked per write.

Opening and closing the log and a separate lock file around every write cost four system
calls per group, under the lock, while another gateway worker waits for it. The store
instead keeps one descriptor of the log and takes an ``flock`` on the log itself: once the
lock is held the path is checked (one ``stat``), and when the file there is no longer the
one held (rotated, moved or removed, perhaps while the lock was awaited) the lock is let go
and the file at the path opened and locked instead, so a record always lands in the file
at the path.
A ``flock`` belongs to an open file description, which every thread of the process shares,
so a mutex keeps the process's own writers apart; the kernel keeps processes apart and
releases the lock when its holder dies.

A child made by ``fork`` shares its parent's descriptions, which would make the ``flock``
shared with the parent: the child drops the inherited descriptor and mutex before its
first write and opens its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from haechi._filelock import LockTimeout, poll_lock
from haechi.audit._lines import open_append

__all__ = ["OpenLog"]

#: How many times this process is a fork child of the one that imported the module.
_forks = 0
_reset: Final = threading.Lock()
#: How many times a write opens the file at the path again when the one it locked was
#: moved away, before it writes to the file it opened last.
_REOPENS: Final = 3


def _forked() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


class OpenLog:
    """One process's descriptor of an audit file and the lock for writing it."""

    __slots__ = ("__weakref__", "_close", "_fd", "_fork", "_key", "_mutex", "_path")

    def __init__(self, path: Path) -> None:
        self._path = path
        self._mutex = threading.Lock()
        self._fd = -1
        self._key = (0, 0)
        self._fork = _forks
        self._close: weakref.finalize[[int], OpenLog] | None = None

    @property
    def key(self) -> tuple[int, int]:
        """``(st_dev, st_ino)`` of the file held (valid while it is held)."""
        return self._key

    @contextlib.contextmanager
    def held(self, *, timeout: float | None) -> Iterator[int | None]:
        """Yield the log's descriptor with this process's writers and every other process
        kept out, or ``None`` when that is not possible within ``timeout`` seconds.

        ``timeout=0`` tries once, for an event loop that must not wait; ``None`` waits in
        the kernel (a thread whose callers keep their own deadline), woken as soon as the
        lock is released; a positive timeout polls, then raises :class:`LockTimeout`.
        """
        if self._fork != _forks:
            self._drop_inherited()
        if not self._acquire_mutex(timeout):
            yield None
            return
        try:
            fd = self._locked(timeout)
            if fd is None:
                yield None
                return
            try:
                yield fd
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def close(self) -> None:
        """Close the descriptor (the next write opens the file again)."""
        with self._mutex:
            self._forget()

    def _acquire_mutex(self, timeout: float | None) -> bool:
        if timeout is None:
            return self._mutex.acquire()
        if timeout == 0:
            return self._mutex.acquire(blocking=False)
        if self._mutex.acquire(timeout=timeout):
            return True
        raise LockTimeout(f"timed out acquiring the lock of {self._path.name}")

    def _flock(self, fd: int, timeout: float | None) -> bool:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        elif timeout == 0:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        else:
            poll_lock(fd, str(self._path), timeout)
        return True

    def _locked(self, timeout: float | None) -> int | None:
        """The descriptor of the file at the path, with its ``flock`` taken (``None``: see
        :meth:`held`).

        The path is checked once the lock is held, not before: a writer waits for the lock
        while another one writes, and a log moved away meanwhile (rotated) is no longer the
        log. A record written to it would land in a file logrotate may be compressing or
        removing, after the new one was started; the lock is let go instead, and the file
        now at the path is opened and locked. A path that names another file again and
        again (rotations in a row, or a file system whose ``stat`` of the path disagrees with
        the open file's) is given :data:`_REOPENS` tries; the file last opened is used.
        """
        reopens = _REOPENS
        while True:
            fd = self._current()
            if not self._flock(fd, timeout):
                return None
            try:
                if not reopens or self._at_path():
                    return fd
            except BaseException:
                fcntl.flock(fd, fcntl.LOCK_UN)
                raise
            fcntl.flock(fd, fcntl.LOCK_UN)
            self._forget()
            reopens -= 1

    def _at_path(self) -> bool:
        """Whether the file held is still the one at the path."""
        try:
            info = os.stat(self._path)
        except FileNotFoundError:
            return False
        return (info.st_dev, info.st_ino) == self._key

    def _current(self) -> int:
        """The descriptor held, or that of the file now at the path (opened, or created)."""
        if self._fd >= 0:
            return self._fd
        fd, _created = open_append(self._path)
        try:
            info = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        self._fd, self._key = fd, (info.st_dev, info.st_ino)
        self._close = weakref.finalize(self, os.close, fd)
        return fd

    def _forget(self) -> None:
        if self._close is not None:
            self._close()  # closes the descriptor once, now
        self._fd, self._key, self._close = -1, (0, 0), None

    def _drop_inherited(self) -> None:
        """In a fork child: forget the parent's descriptor and mutex (which another parent
        thread may have held at the fork)."""
        with _reset:
            if self._fork == _forks:
                return
            if self._close is not None:
                self._close.detach()
                with contextlib.suppress(OSError):
                    os.close(self._fd)
            self._fd, self._key, self._close = -1, (0, 0), None
            self._mutex = threading.Lock()
            self._fork = _forks
