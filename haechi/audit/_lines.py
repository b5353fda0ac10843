# SPDX-License-Identifier: Apache-2.0
"""JSON-lines I/O shared by the file store, the anchor writer, the verifier and the summary.

Reading streams one line at a time, so verifying or summarising a log of any size uses
constant memory; a line longer than :data:`MAX_LINE_BYTES` is refused as soon as that much
of it is read (a path may name ``/dev/zero`` or a pipe without a line break). Parsing is
strict: a line is UTF-8 without a byte order mark, ``NaN``/``Infinity`` literals are not
JSON, and a line that is not one JSON object is an :class:`~haechi.errors.AuditError` naming
the line number (never its content, which could be anything an attacker wrote into the
file); one giving a key twice is an :class:`~haechi.errors.AuditRepeatedKey`, which the
verifier reports as a broken chain.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

from haechi._canonical import compact_json_encoder
from haechi._filelock import LockTimeout, poll_lock, sync_directory
from haechi._json_once import RepeatedKey, members_once
from haechi.errors import AuditError, AuditRepeatedKey

_FILE_MODE = 0o600
#: Seconds a reader of the log waits for a store to finish the line it met unfinished.
_READ_WAIT: Final = 10.0
#: Longest line, its line end included, a reader of the log or of an anchor file takes
#: (16 MiB), eight times what a record haechi writes can take. Most records are a few hundred
#: bytes; only a protect record grows with its payload, and it lists at most
#: ``audit.maxDetectionsPerRecord`` detections (10000 at most) of about 120 bytes each besides
#: their types, rule ids and paths, which hold at most 256 KiB together
#: (:mod:`haechi.audit.events`): under 512 KiB at the default of 1000, under 2 MiB at 10000.
MAX_LINE_BYTES: Final = 16 * 1024 * 1024


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_object(line: bytes | str) -> dict[str, Any] | None:
    """Return the JSON object on ``line``, or ``None`` when it is not exactly one object
    (nor one nested past the interpreter's recursion limit); an object giving a key twice,
    at any depth, raises :class:`~haechi._json_once.RepeatedKey`.

    Such a line is an edit, never a write torn by a crash (it is a whole object), so it
    is told apart from one (see :class:`~haechi.errors.AuditRepeatedKey`).

    Bytes must be UTF-8 without a byte order mark. ``json.loads`` would also take UTF-16 or
    UTF-32, a BOM, and surrogates encoded as bytes: a record re-encoded so would keep its
    hash, and its anchor, while every reader of the log as UTF-8 (``grep``, ``jq``, a log
    collector, other haechi implementations) fails on it or never finds it.
    """
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        value = json.loads(text, object_pairs_hook=members_once, parse_constant=_refuse_constant)
    except RepeatedKey:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def numbered_lines(handle: BinaryIO, name: str) -> Iterator[tuple[int, bytes]]:
    """``(number, line)`` for every line of ``handle``, reading no line past
    :data:`MAX_LINE_BYTES` (an :class:`~haechi.errors.AuditError` naming ``name`` and the
    line number, never its content)."""
    number = 0
    while line := _read_line(handle, name, number + 1):
        number += 1
        yield number, line


def _read_line(handle: BinaryIO, name: str, number: int) -> bytes:
    line = handle.readline(MAX_LINE_BYTES + 1)
    if len(line) > MAX_LINE_BYTES:
        raise AuditError(f"{name}: line {number} is longer than {MAX_LINE_BYTES} bytes")
    return line


def iter_json_lines(
    path: Path, *, missing_ok: bool = False
) -> Generator[dict[str, Any], None, None]:
    """Yield the JSON object of every non-blank line of ``path``.

    A missing file yields nothing when ``missing_ok``; otherwise it raises
    ``FileNotFoundError`` for the caller to phrase. A line giving a key twice raises
    :class:`~haechi.errors.AuditRepeatedKey`, any other line that is not one object an
    :class:`~haechi.errors.AuditError`, both naming the line number.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    with handle:
        offset = 0
        for number, line in numbered_lines(handle, str(path)):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            try:
                record = parse_object(line)
                if record is None and not line.endswith(b"\n"):
                    # The last line, unfinished: a write in progress, or one a crash cut short.
                    line = _finished_line(handle, start, str(path), number) or line
                    offset = start + len(line)
                    record = parse_object(line)
            except RepeatedKey:
                raise AuditRepeatedKey(path.name, f"line {number}") from None
            if record is None:
                raise AuditError(f"{path}: line {number} is not a JSON object")
            yield record


def _finished_line(handle: BinaryIO, start: int, name: str, number: int) -> bytes | None:
    """The line at ``start`` of ``handle`` read again once no writer is writing the log, or
    ``None`` when that cannot be waited for (a pipe, or a writer that keeps the lock).

    A store writes a group of lines in one ``write`` under the log's lock, and a reader may
    meet its end while only some pages of it are in: the line looks torn, and a log under
    load would fail verification now and then. Once a shared lock is had, the write is done.
    """
    if not handle.seekable():
        return None
    with writers_done(handle.fileno(), _READ_WAIT) as done:
        if not done:
            return None
        handle.seek(start)
        return _read_line(handle, name, number)


@contextlib.contextmanager
def writers_done(fd: int, timeout: float) -> Iterator[bool]:
    """Hold a shared ``flock`` on the open log ``fd`` for the body, so that no store is in
    the middle of writing it; yield ``False`` (holding nothing) when it is not had within
    ``timeout`` seconds or cannot be taken on ``fd``.

    Stores hold the exclusive lock for one write (and, without an fsync interval or with
    anchors, the fsync and the anchors): a reader waits for it only when what it read looks
    unfinished, never as a matter of course.
    """
    try:
        poll_lock(fd, "audit log", timeout, shared=True)
    except (LockTimeout, OSError):
        yield False
        return
    try:
        yield True
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


#: ``json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)``,
#: with the encoder built once instead of on every call.
_ENCODE: Final = compact_json_encoder(sort_keys=False)


def encode_line(document: Any) -> bytes:
    """Compact JSON of ``document`` plus a newline, as UTF-8 (non-ASCII kept as-is)."""
    return f"{_ENCODE(document)}\n".encode()


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def open_append(path: Path) -> tuple[int, bool]:
    """Open ``path`` for reading and appending, creating it with mode 0600.

    Returns the descriptor and whether this call created the file; a new file's directory
    entry is made durable too, so an fsynced first record cannot vanish with its name.
    Anything at ``path`` but a regular file (or a link to one) is refused with
    :class:`~haechi.errors.AuditError` (see :func:`_regular`).
    """
    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
    with contextlib.suppress(FileNotFoundError):  # the usual case: the log exists
        return _regular(path, os.open(path, flags | os.O_NONBLOCK)), False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    except FileExistsError:  # another writer created it meanwhile
        return _regular(path, os.open(path, flags | os.O_NONBLOCK)), False
    try:
        sync_directory(path.parent)
    except BaseException:
        os.close(fd)
        raise
    return fd, True


def _regular(path: Path, fd: int) -> int:
    """``fd`` (opened without blocking) made blocking again, when it is a regular file.

    A record written to a named pipe or a device (``/dev/null``) is gone: the file never
    grows, so every append would read an empty log and start the chain again at sequence
    1, and a pipe nobody reads blocks the writer, with the log's lock held, once its
    buffer is full. Such a file is closed and refused instead.
    """
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
        if regular:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    if not regular:
        os.close(fd)
        raise AuditError(f"{path} is not a regular file; no record is written to it")
    return fd


def append_durably(path: Path, data: bytes) -> None:
    """Append the line ``data`` to ``path`` (created 0600) and fsync it.

    A file that does not end with a newline ends with a line torn by a crash: it is ended
    first, or ``data`` would complete it and be skipped with it by every reader.
    """
    fd, _ = open_append(path)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def writable_dir(directory: Path) -> bool:
    """Create ``directory`` if needed (0700) and tell whether files can be created in it."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return False
    return directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)
