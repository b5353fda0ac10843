# SPDX-License-Identifier: Apache-2.0
"""Cross-process file locking and atomic replacement for the embedded file stores.

The lock is an ``fcntl.flock`` on ``<path>.lock``: the kernel releases it when the holder
dies, so there is no stale-lock guessing. Writers replace files atomically (temp file in the
same directory, fsync, ``os.replace``, fsync of the directory), so readers never see a
half-written file, a crash never corrupts the previous version, and once a write returns a
power loss cannot take the new version back: the rename lives in the directory, which is
made durable too.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from haechi.errors import HaechiError

__all__ = [
    "LockTimeout",
    "atomic_write",
    "locked",
    "make_directories",
    "poll_lock",
    "sync_directory",
]

#: What ``fsync`` of a directory fails with on a file system that cannot sync directories.
_NO_DIRECTORY_SYNC = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EBADF})

# A held lock is retried after a short pause that doubles up to a ceiling: writers hold it
# for a write and an fsync (well under a millisecond), so a first retry after 5 ms would
# make every contended append wait ten times longer than the holder needs.
_FIRST_PAUSE = 0.0001
_LAST_PAUSE = 0.005


class LockTimeout(HaechiError):
    """The store lock could not be taken in time."""


@contextlib.contextmanager
def locked(path: str | os.PathLike[str], *, timeout: float = 10.0) -> Iterator[None]:
    """Hold an exclusive inter-process lock tied to ``path`` for the ``with`` body.

    A held lock is polled for up to ``timeout`` seconds (then :class:`LockTimeout`).
    """
    lock_path, fd = _open_lock(path)
    try:
        poll_lock(fd, lock_path, timeout)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open_lock(path: str | os.PathLike[str]) -> tuple[str, int]:
    """The lock file's path and an open descriptor of it (created 0600 if missing)."""
    lock_path = f"{os.fspath(path)}.lock"
    try:  # the directory usually exists: no mkdir on every lock
        return lock_path, os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        # The file it guards goes in the same directory: made as atomic_write makes it.
        make_directories(Path(lock_path).parent, 0o777)
        return lock_path, os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)


def poll_lock(fd: int, lock_path: str, timeout: float, *, shared: bool = False) -> None:
    """Take an exclusive (or ``shared``) ``flock`` on ``fd`` (the file at ``lock_path``)
    within ``timeout`` seconds, trying again after pauses that double, or raise
    :class:`LockTimeout`."""
    operation = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout
    pause = _FIRST_PAUSE
    while True:
        try:
            fcntl.flock(fd, operation)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeout(f"timed out acquiring lock {Path(lock_path).name}") from None
            time.sleep(pause)
            pause = min(pause * 2, _LAST_PAUSE)


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that readers see either the old or the new file."""
    target = Path(path)
    make_directories(target.parent, 0o777)  # the umask decides, as for any mkdir
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    sync_directory(target.parent)


def make_directories(directory: Path, mode: int) -> None:
    """``mkdir -p`` giving ``mode`` to every directory it makes, not only the last one (as
    ``Path.mkdir(parents=True)`` does, leaving the others to the umask alone). Each one made
    is synced into its parent, so that a power loss once the command returned cannot take
    it away with the files written in it."""
    if directory.is_dir():  # the usual case: one stat
        return
    for missing in [*reversed(directory.parents), directory]:
        if not missing.is_dir():
            missing.mkdir(mode=mode, exist_ok=True)
            sync_directory(missing.parent)


def sync_directory(directory: str | os.PathLike[str]) -> None:
    """Make ``directory``'s entries durable: until the file system writes the directory
    back, a power loss can leave a file created in it under no name, and bring back the old
    file in place of one renamed over it.

    Skipped where a directory cannot be opened (a platform without directory descriptors,
    a directory without read permission) or its file system cannot sync it; any other
    failure (an I/O error) is raised, as the durability of the entry is then unknown.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_DIRECTORY_SYNC:
            raise
    finally:
        os.close(fd)
