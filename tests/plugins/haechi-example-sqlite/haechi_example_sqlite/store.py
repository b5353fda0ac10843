# SPDX-License-Identifier: Apache-2.0
"""Token records in one SQLite table; SQLite's own locking makes each call atomic."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Self

import anyio.to_thread

from haechi.providers import ProviderContext, ReadyState, TokenRecord

_SCHEMA = "CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, expires REAL, record TEXT)"


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class SqliteTokenStore:
    """Selected with ``"tokenVault": {"provider": "sqlite", "path": "vault.db"}``."""

    name: ClassVar[str] = "sqlite"

    def __init__(self, path: str) -> None:
        self._path = Path(path)

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        return cls(context.config.token_vault.path)

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        connection.execute(_SCHEMA)
        return connection

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._connect() as connection:
            cursor = connection.execute(sql, args)
            rows = cursor.fetchall()
            count = cursor.rowcount
        connection.close()
        return rows if rows else [(count,)]

    async def get(self, token: str) -> TokenRecord | None:
        rows = await anyio.to_thread.run_sync(
            self._run, "SELECT record FROM tokens WHERE token = ?", (token,)
        )
        value = rows[0][0]
        return json.loads(value) if isinstance(value, str) else None

    async def put(self, token: str, record: TokenRecord, *, only_if_absent: bool = False) -> bool:
        verb = "INSERT OR IGNORE" if only_if_absent else "INSERT OR REPLACE"
        rows = await anyio.to_thread.run_sync(
            self._run,
            f"{verb} INTO tokens VALUES (?, ?, ?)",
            (token, _epoch(record["expiresAt"]), json.dumps(record)),
        )
        return rows[0][0] == 1

    async def delete(self, token: str) -> bool:
        rows = await anyio.to_thread.run_sync(
            self._run, "DELETE FROM tokens WHERE token = ?", (token,)
        )
        return rows[0][0] == 1

    async def delete_expired(self, now: datetime) -> int:
        rows = await anyio.to_thread.run_sync(
            self._run, "DELETE FROM tokens WHERE expires <= ?", (now.timestamp(),)
        )
        return int(rows[0][0])  # type: ignore[call-overload]

    async def items(self) -> AsyncIterator[tuple[str, TokenRecord]]:
        rows = await anyio.to_thread.run_sync(self._run, "SELECT token, record FROM tokens")
        for row in rows:
            if len(row) == 2:
                yield str(row[0]), json.loads(str(row[1]))

    async def ready(self) -> ReadyState:
        try:
            await anyio.to_thread.run_sync(self._run, "SELECT 1")
        except sqlite3.Error:
            return ReadyState(ok=False, reason="sqlite_unavailable")
        return ReadyState(ok=True)
