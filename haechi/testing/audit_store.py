# SPDX-License-Identifier: Apache-2.0
"""Contract suite for :class:`haechi.providers.AuditStore` implementations.

Subclass it in a test module and provide one fixture, ``audit_store``, returning a fresh,
empty store::

    from haechi.testing.audit_store import AuditStoreContract

    class TestRedisAuditStore(AuditStoreContract):
        @pytest.fixture
        def audit_store(self, redis_url):
            return RedisAuditStore(redis_url, prefix=f"test:{uuid.uuid4()}:")

Every test runs on asyncio through anyio. What it pins: a declared ``name``; an empty store
has no records; ``build`` sees the head (``None`` first); records come back in order and
form a chain that verifies; a failing ``build`` persists nothing; ``committed`` runs once
with the persisted record; concurrent writers (two sinks over one store) never fork the
chain; records survive a JSON round trip unchanged; ``ready`` answers.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from haechi.audit import AuditSink, build_integrity_record, verify_store
from haechi.providers import AuditIntegrity, AuditStore, ReadyState

__all__ = ["AuditStoreContract"]


async def _all(store: AuditStore) -> list[dict[str, Any]]:
    return [record async for record in store.records()]


class AuditStoreContract:
    """Inherit, and define the ``audit_store`` fixture."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def anyio_backend(self) -> str:
        """The contract runs on asyncio."""
        return "asyncio"

    async def test_declares_a_name(self, audit_store: AuditStore) -> None:
        assert isinstance(type(audit_store).name, str)
        assert type(audit_store).name

    async def test_empty_store_has_no_records(self, audit_store: AuditStore) -> None:
        assert await _all(audit_store) == []
        result = await verify_store(audit_store)
        assert result.valid
        assert result.records == 0

    async def test_build_sees_the_head(self, audit_store: AuditStore) -> None:
        seen: list[AuditIntegrity | None] = []

        def build(previous: AuditIntegrity | None) -> dict[str, Any]:
            seen.append(previous)
            return build_integrity_record(previous, {"n": len(seen)})

        first = await audit_store.append(build)
        second = await audit_store.append(build)
        assert seen[0] is None
        assert seen[-1] is not None
        assert seen[-1]["sequence"] == 1
        assert seen[-1]["eventHash"] == first["auditIntegrity"]["eventHash"]
        assert second["auditIntegrity"]["previousHash"] == first["auditIntegrity"]["eventHash"]

    async def test_records_come_back_in_order_and_verify(self, audit_store: AuditStore) -> None:
        sink = AuditSink(audit_store)
        written = [await sink.record({"n": n, "text": "héllo 😀"}) for n in range(5)]
        stored = await _all(audit_store)
        assert stored == written
        assert [record["auditIntegrity"]["sequence"] for record in stored] == [1, 2, 3, 4, 5]
        result = await verify_store(audit_store)
        assert result.valid
        assert result.records == 5
        assert result.head_hash == written[-1]["auditIntegrity"]["eventHash"]

    async def test_failed_build_persists_nothing(self, audit_store: AuditStore) -> None:
        def build(previous: AuditIntegrity | None) -> dict[str, Any]:
            raise RuntimeError("build refused")

        with pytest.raises(RuntimeError):
            await audit_store.append(build)
        assert await _all(audit_store) == []

    async def test_committed_runs_once_with_the_persisted_record(
        self, audit_store: AuditStore
    ) -> None:
        calls: list[dict[str, Any]] = []
        record = await audit_store.append(
            lambda previous: build_integrity_record(previous, {"n": 1}), committed=calls.append
        )
        assert calls == [record]
        assert await _all(audit_store) == [record]

    async def test_concurrent_writers_never_fork(self, audit_store: AuditStore) -> None:
        sinks = [AuditSink(audit_store), AuditSink(audit_store)]

        async def write(n: int) -> None:
            await sinks[n % 2].record({"n": n})

        async with anyio.create_task_group() as group:
            for n in range(24):
                group.start_soon(write, n)
        stored = await _all(audit_store)
        assert [record["auditIntegrity"]["sequence"] for record in stored] == list(range(1, 25))
        assert sorted(record["n"] for record in stored) == list(range(24))
        assert (await verify_store(audit_store)).valid

    async def test_records_are_plain_json(self, audit_store: AuditStore) -> None:
        event = {"nested": {"list": [1, 2.5, None, True, "ü"]}, "émoji": "😀"}
        record = await AuditSink(audit_store).record(event)
        (stored,) = await _all(audit_store)
        assert json.loads(json.dumps(stored)) == stored == record

    async def test_ready_answers(self, audit_store: AuditStore) -> None:
        state = await audit_store.ready()
        assert isinstance(state, ReadyState)
        assert state.ok
        assert state.reason is None
