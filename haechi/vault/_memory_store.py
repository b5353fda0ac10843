# SPDX-License-Identifier: Apache-2.0
"""``memory``: an in-process token store, for tests and for vaults that must not touch disk.

Records live only as long as the process; use it where tokens need not outlive a run.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Self

from haechi.providers import ReadyState, TokenRecord
from haechi.vault._records import is_expired, json_copy

if TYPE_CHECKING:
    from haechi.providers import ProviderContext

__all__ = ["MemoryTokenStore"]


def _copy(record: TokenRecord) -> TokenRecord:
    copied: TokenRecord = json_copy(record)
    return copied


class MemoryTokenStore:
    """A dict behind a lock; every record is copied in and out."""

    name: ClassVar[str] = "memory"

    def __init__(self) -> None:
        self._records: dict[str, TokenRecord] = {}
        self._lock = threading.Lock()

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        """A fresh, empty store (configuration has nothing to say about it)."""
        return cls()

    async def get(self, token: str) -> TokenRecord | None:
        """Return a copy of the record for ``token``, or ``None``."""
        with self._lock:
            record = self._records.get(token)
        return None if record is None else _copy(record)

    async def put(self, token: str, record: TokenRecord, *, only_if_absent: bool = False) -> bool:
        """Store a copy of ``record``; with ``only_if_absent`` an existing record wins."""
        stored = _copy(record)
        with self._lock:
            if only_if_absent and token in self._records:
                return False
            self._records[token] = stored
        return True

    async def delete(self, token: str) -> bool:
        """Remove ``token``; return whether it existed."""
        with self._lock:
            return self._records.pop(token, None) is not None

    async def delete_expired(self, now: datetime) -> int:
        """Remove every record expired at or before ``now``; return how many."""
        with self._lock:
            expired = [token for token, rec in self._records.items() if is_expired(rec, now)]
            for token in expired:
                del self._records[token]
        return len(expired)

    async def items(self) -> AsyncIterator[tuple[str, TokenRecord]]:
        """Yield copies of a snapshot of all records."""
        with self._lock:
            snapshot = list(self._records.items())
        for token, record in snapshot:
            yield token, _copy(record)

    async def ready(self) -> ReadyState:
        """Always writable."""
        return ReadyState(True)
