# SPDX-License-Identifier: Apache-2.0
"""``local``: the embedded file token store (``tokenVault.path``).

File format, shared with the reference system (2-space indent, trailing newline)::

    {"version": 1, "createdAt": ISO, "tokens": {<token id>: <record>}}

Every mutation takes the cross-process lock ``<path>.lock``, re-reads the file, changes it and
replaces it atomically with mode 0600, so any number of processes can share one vault file
without losing records, and a crash leaves the previous version intact. A path that is a
symbolic link to an existing file is followed: the lock and the replaced file are that
file's. A missing file is an empty vault; a file that does not parse, or gives a key twice in
one object, is an error, never an empty vault.

The file is rewritten whole on every change (the format has no room for appends), so the
serialized text of each record is kept between writes and only new or changed records are
encoded again: a change to a vault of ten thousand records costs a join, a write and an
fsync rather than re-encoding every record. Puts that arrive while a write is under way
(the tokens of one payload are stored concurrently) wait for it and are then written
together, in one rewrite: a payload of a thousand values costs a few rewrites, not a
thousand.

Reads take no lock (replacement is atomic). The parsed file is cached together with an open
descriptor of the inode it came from: while that descriptor is open the inode number cannot
be reused, and writers never change a file in place, so an unchanged inode number (with
unchanged size and mtime) proves the cache current. File work runs in a worker thread so the
event loop never waits on the disk or the lock. :meth:`FileTokenStore.aclose` closes that
descriptor; a store used after it reads the file again.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Self, TypeVar

import anyio

from haechi._filelock import atomic_write, locked
from haechi._json_once import RepeatedKey, members_once
from haechi._writable import writable_if_present
from haechi.crypto._codec import format_timestamp, utc_now
from haechi.errors import VaultError
from haechi.providers import ReadyState, TokenRecord
from haechi.vault._records import is_expired, json_copy

if TYPE_CHECKING:
    from haechi.providers import ProviderContext

__all__ = ["FileTokenStore"]

_T = TypeVar("_T")


def _corrupted() -> VaultError:
    return VaultError("token vault file is not a valid vault document", "store_error")


@dataclass(frozen=True, slots=True)
class _Put:
    """A put waiting for the next write of the file."""

    token: str
    record: TokenRecord
    only_if_absent: bool
    written: asyncio.Future[bool]

    def fail(self, error: BaseException) -> None:
        if not self.written.done():
            self.written.set_exception(error)


def _apply(puts: list[_Put], tokens: dict[str, TokenRecord]) -> tuple[list[str], list[bool]]:
    """Apply ``puts`` in order to ``tokens``: the tokens written, and each put's result."""
    touched: list[str] = []
    results: list[bool] = []
    for put in puts:
        if put.only_if_absent and put.token in tokens:
            results.append(False)
            continue
        tokens[put.token] = put.record
        touched.append(put.token)
        results.append(True)
    return touched, results


@dataclass(frozen=True, slots=True)
class _Snapshot:
    identity: tuple[int, int, int, int]
    created_at: str
    tokens: dict[str, TokenRecord]


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _parse(data: bytes) -> tuple[str, dict[str, TokenRecord]]:
    """The ``createdAt`` and the records of the vault file ``data``.

    An object giving a key twice is refused, as a file that does not parse is: a line added
    by hand above one already there (an ``expiresAt`` in the past above the record's own)
    would be read as the line below, so the token the edit meant to end would go on being
    revealed and restored, and another reader (keeping the first value) would read another
    vault. The message never names the key, which may be a token or hold anything typed.
    """
    try:
        document = json.loads(data, object_pairs_hook=members_once)
    except RepeatedKey:
        raise VaultError(
            "token vault file gives a key twice in one object", "store_error"
        ) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _corrupted() from None
    if not isinstance(document, dict) or not isinstance(document.get("tokens"), dict):
        raise _corrupted()
    created_at = document.get("createdAt")
    tokens: dict[str, TokenRecord] = document["tokens"]
    return (created_at if isinstance(created_at, str) else format_timestamp(utc_now())), tokens


def _fragment(token: str, record: TokenRecord) -> str:
    """``token: record`` as ``json.dumps(document, indent=2)`` writes it inside ``tokens``.

    Encoded strings hold no raw newline (JSON escapes it), so indenting every line of the
    record's own indented text by four spaces puts it at the depth of the document.
    """
    return f"    {json.dumps(token)}: " + json.dumps(record, indent=2).replace("\n", "\n    ")


def _copy(record: TokenRecord) -> TokenRecord:
    copied: TokenRecord = json_copy(record)
    return copied


class FileTokenStore:
    """Token records in one JSON file, safe across threads and processes."""

    name: ClassVar[str] = "local"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._cache_lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._closer: weakref.finalize[[int], FileTokenStore] | None = None
        # token -> (record, fragment) for the token dict last written (used under the lock).
        self._fragments: dict[str, tuple[TokenRecord, str]] = {}
        self._rendered_from: dict[str, TokenRecord] | None = None
        # Puts waiting for a write, and the task writing them, per event loop.
        self._queued: dict[asyncio.AbstractEventLoop, list[_Put]] = {}
        self._writers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        """A store over ``tokenVault.path``."""
        return cls(context.config.token_vault.path)

    @property
    def path(self) -> Path:
        """The vault file."""
        return self._path

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self._path)!r})"

    # --- reading --------------------------------------------------------------------------

    def _remember(self, fd: int, created_at: str, tokens: dict[str, TokenRecord]) -> _Snapshot:
        """Cache the version of the file open at ``fd`` and return it.

        Callers use the returned snapshot, never ``self._snapshot`` read back: a reader on
        another thread may cache an older version in between, and a change that started
        from that version would write the file back without the records added since.
        """
        snapshot = _Snapshot(_identity(os.fstat(fd)), created_at, tokens)
        closer = weakref.finalize(self, os.close, fd)
        with self._cache_lock:
            self._snapshot = snapshot
            previous, self._closer = self._closer, closer
        if previous is not None:
            previous()
        return snapshot

    def _current(self) -> _Snapshot | None:
        """The parsed file, from cache when the file is unchanged; ``None`` if missing."""
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return None
        with self._cache_lock:
            snapshot = self._snapshot
            if snapshot is not None and snapshot.identity == _identity(st):
                return snapshot
        try:
            # Without waiting: a named pipe in its place would block the read (a writer, under
            # the lock, with it) until something wrote to it.
            fd = os.open(self._path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            mode = os.fstat(fd).st_mode
            # A pipe or a device is refused unread (a device such as /dev/zero never ends);
            # a directory fails its read, with IsADirectoryError.
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise VaultError("token vault file is not a regular file", "store_error")
            with os.fdopen(os.dup(fd), "rb") as handle:
                created_at, tokens = _parse(handle.read())
        except BaseException:
            os.close(fd)
            raise
        return self._remember(fd, created_at, tokens)

    def _tokens(self) -> dict[str, TokenRecord]:
        snapshot = self._current()
        return {} if snapshot is None else snapshot.tokens

    # --- writing --------------------------------------------------------------------------

    def _target(self) -> Path:
        """The file a write replaces, and whose lock it takes: the existing file a link at
        the path points to. A vault kept elsewhere (a persistent volume) and linked to would
        otherwise be cut off by its first write, which would put a new file in the link's
        place. A dangling link is not followed: no file is created where a link points."""
        target = Path(os.path.realpath(self._path))
        return target if target.is_file() else self._path

    def _mutate(self, change: Callable[[dict[str, TokenRecord]], tuple[Collection[str], _T]]) -> _T:
        """Under the lock: read the file, apply ``change`` to a copy (it returns the tokens
        it added, replaced or removed, and its result) and write it if anything changed."""
        target = self._target()
        with locked(target):
            snapshot = self._current()
            created_at = snapshot.created_at if snapshot else format_timestamp(utc_now())
            tokens = dict(snapshot.tokens) if snapshot else {}
            touched, result = change(tokens)
            if touched:
                base = snapshot.tokens if snapshot else None
                data = self._render(created_at, tokens, base, touched)
                atomic_write(target, data, mode=0o600)
                fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
                self._remember(fd, created_at, tokens)
        return result

    def _render(
        self,
        created_at: str,
        tokens: dict[str, TokenRecord],
        base: dict[str, TokenRecord] | None,
        touched: Collection[str],
    ) -> bytes:
        """The vault document, byte for byte ``json.dumps(document, indent=2)`` plus a
        newline, encoding again only the records that changed.

        The kept fragments follow the records this store wrote last; when ``base`` (what
        the change started from) is that version, only ``touched`` is encoded (a fragment
        dict changes order exactly as the token dict does). Otherwise another process wrote
        in between: every record is compared with the kept one and encoded if it differs.
        """
        if base is not None and base is self._rendered_from:
            fragments = dict(self._fragments)
            for token in touched:
                record = tokens.get(token)
                if record is None:
                    fragments.pop(token, None)
                else:
                    fragments[token] = (record, _fragment(token, record))
        else:
            kept = self._fragments
            fragments = {}
            for token, record in tokens.items():
                entry = kept.get(token)
                if entry is None or entry[0] != record:
                    entry = (record, _fragment(token, record))
                fragments[token] = entry
        self._fragments, self._rendered_from = fragments, tokens
        body = ",\n".join(text for _record, text in fragments.values())
        head = f'{{\n  "version": 1,\n  "createdAt": {json.dumps(created_at)},\n  "tokens": '
        return (head + (f"{{\n{body}\n  }}" if body else "{}") + "\n}\n").encode("utf-8")

    async def _run(self, work: Callable[[], _T]) -> _T:
        return await anyio.to_thread.run_sync(work)

    # --- TokenStore -----------------------------------------------------------------------

    async def get(self, token: str) -> TokenRecord | None:
        """Return a copy of the record for ``token``, or ``None``."""

        def work() -> TokenRecord | None:
            record = self._tokens().get(token)
            return None if record is None else _copy(record)

        return await self._run(work)

    async def put(self, token: str, record: TokenRecord, *, only_if_absent: bool = False) -> bool:
        """Store ``record``; with ``only_if_absent`` an existing record wins.

        The put joins the puts waiting for the next write of the file (see the module's
        docstring); it returns once that write is done, and raises what it raised.
        """
        loop = asyncio.get_running_loop()
        put = _Put(token, _copy(record), only_if_absent, loop.create_future())
        self._queued.setdefault(loop, []).append(put)
        if loop not in self._writers:
            self._writers[loop] = loop.create_task(self._write_queued(loop))
        return await put.written

    async def _write_queued(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write the puts queued on ``loop``, all that wait at once, until none is left."""
        try:
            while puts := self._queued.pop(loop, None):
                try:
                    results = await self._run(lambda: self._mutate(lambda t: _apply(puts, t)))
                except Exception as exc:
                    for put in puts:
                        put.fail(exc)
                    continue
                except BaseException:
                    interrupted = VaultError("token vault write was interrupted", "store_error")
                    for put in (*puts, *self._queued.pop(loop, ())):
                        put.fail(interrupted)
                    raise
                for put, written in zip(puts, results, strict=True):
                    if not put.written.done():
                        put.written.set_result(written)
        finally:
            del self._writers[loop]

    async def delete(self, token: str) -> bool:
        """Remove ``token``; return whether it existed."""

        def change(tokens: dict[str, TokenRecord]) -> tuple[tuple[str, ...], bool]:
            existed = tokens.pop(token, None) is not None
            return ((token,) if existed else ()), existed

        return await self._run(lambda: self._mutate(change))

    async def delete_expired(self, now: datetime) -> int:
        """Remove every record expired at or before ``now``; return how many."""

        def change(tokens: dict[str, TokenRecord]) -> tuple[list[str], int]:
            expired = [token for token, record in tokens.items() if is_expired(record, now)]
            for token in expired:
                del tokens[token]
            return expired, len(expired)

        return await self._run(lambda: self._mutate(change))

    async def items(self) -> AsyncIterator[tuple[str, TokenRecord]]:
        """Yield copies of the records of one snapshot of the file."""
        tokens = await self._run(self._tokens)
        for token, record in list(tokens.items()):
            yield token, _copy(record)

    async def aclose(self) -> None:
        """Close the descriptor of the cached file (a later call reads the file again)."""
        with self._cache_lock:
            self._snapshot = None
            closer, self._closer = self._closer, None
        if closer is not None:
            closer()

    async def ready(self) -> ReadyState:
        """Whether a write could succeed now; writes nothing and takes no lock (it is polled).

        A write creates ``<path>.lock`` and a temporary file in the vault's directory (made
        if missing) and replaces the file, so it needs that directory writable, and the
        file and the lock file, where they exist, to be regular files this process can open
        for writing. A write also reads the file first, so one that does not parse as a
        vault is not ready either.
        """
        return await self._run(self._ready)

    def _ready(self) -> ReadyState:
        target = self._target()
        if not _can_create_in(target.parent):
            return ReadyState(False, "token_vault_dir_not_writable")
        if not writable_if_present(target, os.O_RDWR):
            return ReadyState(False, "token_vault_file_not_writable")
        if not writable_if_present(Path(f"{target}.lock"), os.O_RDWR):
            return ReadyState(False, "token_vault_lock_not_writable")
        try:
            self._current()  # parsed once per version of the file
        except (OSError, VaultError, RecursionError):
            return ReadyState(False, "token_vault_file_unreadable")
        return ReadyState(True)


def _can_create_in(directory: Path) -> bool:
    """Whether files can be created in ``directory``, or it can be made where missing.

    Checked on the nearest existing ancestor, which must be a searchable, writable
    directory: that is where a write makes the missing levels.
    """
    probe = directory
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)
