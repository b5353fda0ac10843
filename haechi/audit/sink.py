# SPDX-License-Identifier: Apache-2.0
"""The audit sink: the one way events enter the chain.

``record(event)`` sanitizes the event (pure), then, inside the store's exclusive section,
chains it onto the current head, persists it and writes the anchor. Records are appended in
call order within a process, anchors are written in sequence order across processes, and
any failure along the way is an :class:`~haechi.errors.AuditError`, so that the caller
blocks the request it was auditing.

Call order: a store class that sets ``ordered_appends = True`` promises that concurrent
``append`` calls from one event loop are persisted in the order they were made (the built-in
stores do; the file store writes concurrent appends as one group). The sink then lets
appends overlap. For any other store it holds an in-process lock around each append.

Anchors make truncation of the log's tail detectable. With ``anchor_mode="file"`` every
``every_records``-th record appends ``{"sequence", "eventHash", "timestamp"}`` as one JSON line
to ``anchor_path`` (created with mode 0600); ``"stdout"`` prints that line instead, for a
log collector to keep elsewhere. An anchor kept on the same file system as the log only
helps against mistakes, not against someone who can rewrite both.
"""

from __future__ import annotations

import os
import select
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Self, get_args

import anyio

from haechi._writable import writable_if_present
from haechi.audit._lines import append_durably, encode_line, writable_dir
from haechi.audit._prepared import PreparedEvent
from haechi.audit.events import iso_timestamp
from haechi.errors import AuditError, ConfigError
from haechi.providers import AuditStore, ReadyState

if TYPE_CHECKING:
    from haechi.config import HaechiConfig

__all__ = ["ANCHOR_MODES", "AnchorMode", "AuditSink"]

AnchorMode = Literal["none", "file", "stdout"]
ANCHOR_MODES: Final[tuple[AnchorMode, ...]] = get_args(AnchorMode)


class AuditSink:
    """Writes sanitized, hash-chained events to an :class:`~haechi.providers.AuditStore`.

    ``anchor_mode`` is ``none``, ``file`` (needs ``anchor_path``) or ``stdout``;
    ``every_records`` is a positive integer. Invalid settings raise
    :class:`~haechi.errors.ConfigError`.
    """

    def __init__(
        self,
        store: AuditStore,
        *,
        anchor_mode: AnchorMode = "none",
        anchor_path: str | os.PathLike[str] | None = None,
        every_records: int = 1,
    ) -> None:
        if anchor_mode not in ANCHOR_MODES:
            raise ConfigError(f"audit.anchor.mode must be one of {', '.join(ANCHOR_MODES)}")
        if anchor_mode == "file" and not anchor_path:
            raise ConfigError("audit.anchor.path is required when audit.anchor.mode is file")
        if type(every_records) is not int or every_records < 1:
            raise ConfigError("audit.anchor.everyRecords must be a positive integer")
        self._store = store
        self._anchor_mode = anchor_mode
        self._anchor_path = Path(anchor_path) if anchor_mode == "file" and anchor_path else None
        self._every = every_records
        self._committed = None if anchor_mode == "none" else self._anchor
        self._lock: anyio.Lock | None = (
            None if getattr(type(store), "ordered_appends", False) is True else anyio.Lock()
        )

    @classmethod
    def from_config(cls, config: HaechiConfig, store: AuditStore) -> Self:
        """A sink over ``store`` with the anchoring of ``config.audit.anchor``."""
        anchor = config.audit.anchor
        return cls(
            store,
            anchor_mode=anchor.mode,
            anchor_path=anchor.path,
            every_records=anchor.every_records,
        )

    @property
    def store(self) -> AuditStore:
        """The store records are written to."""
        return self._store

    @property
    def anchor_path(self) -> Path | None:
        """The anchor file, in ``file`` mode."""
        return self._anchor_path

    @property
    def integrity(self) -> str:
        """``sha256-hash-chain``, plus ``+anchor`` when anchors are written."""
        return "sha256-hash-chain" + ("" if self._anchor_mode == "none" else "+anchor")

    async def record(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Sanitize, chain, persist and anchor ``event``; return the stored record.

        The returned record's ``id`` is the audit id callers report. Raises
        :class:`~haechi.errors.AuditError` on any failure.
        """
        build = PreparedEvent(event)
        record: dict[str, Any]
        try:
            if self._lock is None:
                record = await self._store.append(build, committed=self._committed)
            else:
                async with self._lock:
                    record = await self._store.append(build, committed=self._committed)
        except AuditError:
            raise
        except Exception as exc:
            raise AuditError(
                f"audit store {self._store.name!r} failed to append a record ({type(exc).__name__})"
            ) from exc
        return record

    def _anchor(self, record: dict[str, Any]) -> None:
        integrity = record["auditIntegrity"]
        sequence = integrity["sequence"]
        if sequence % self._every:
            return
        line = encode_line(
            {
                "sequence": sequence,
                "eventHash": integrity["eventHash"],
                "timestamp": iso_timestamp(),
            }
        )
        if self._anchor_path is not None:
            append_durably(self._anchor_path, line)
        else:
            sys.stdout.write(line.decode("utf-8"))
            sys.stdout.flush()

    async def ready(self) -> ReadyState:
        """Whether a record could be written now (the store's answer, and the anchor file).

        Never raises: a store that fails its own check is reported as
        ``audit_store_error``; an anchor file an append would fail on (its directory cannot
        be made or written, or the file is there but is no regular file open for appending),
        or in ``stdout`` mode a standard output that is closed or a pipe nobody reads any
        more, as ``audit_anchor_not_writable``.
        """
        try:
            state = await self._store.ready()
        except Exception:
            return ReadyState(False, "audit_store_error")
        anchor = self._anchor_path
        if state.ok and anchor is not None:
            usable = await anyio.to_thread.run_sync(_anchor_writable, anchor)
            return state if usable else ReadyState(False, "audit_anchor_not_writable")
        if state.ok and self._anchor_mode == "stdout" and not _stdout_writable():
            return ReadyState(False, "audit_anchor_not_writable")
        return state


def _stdout_writable() -> bool:
    """Whether an anchor printed on standard output now could be written, asked without
    writing: not when it is closed, nor when it is a pipe or socket whose reader has gone
    (the log collector died). Every append would then fail, and a gateway answering every
    request 500 must not say it is ready. A stream without a descriptor (one a test or an
    embedding program put there) is taken at its word."""
    stream = sys.stdout
    if stream is None or stream.closed:
        return False
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return True
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    broken = select.POLLERR | select.POLLHUP | select.POLLNVAL
    return not any(events & broken for _fd, events in poller.poll(0))


def _anchor_writable(path: Path) -> bool:
    """Whether :func:`append_durably` could append to ``path`` now, without writing to it:
    a missing file needs a directory it can be created in, an existing one must open with
    the append's own flags."""
    return writable_dir(path.parent) and writable_if_present(path, os.O_RDWR | os.O_APPEND)
