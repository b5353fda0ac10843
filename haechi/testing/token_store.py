# SPDX-License-Identifier: Apache-2.0
"""Contract suite for :class:`haechi.providers.TokenStore` implementations.

Subclass it in a test module and provide one fixture, ``token_store``, returning a fresh,
empty store::

    from haechi.testing.token_store import TokenStoreContract

    class TestRedisTokenStore(TokenStoreContract):
        @pytest.fixture
        def token_store(self, redis_url):
            return RedisTokenStore(redis_url, prefix=f"test:{uuid.uuid4()}:")

Every test runs on asyncio through anyio. What it pins: a declared ``name``; an empty store
is empty; records round-trip as plain JSON and are copies (mutating what was passed in or
handed out changes nothing stored); ``put`` overwrites unless ``only_if_absent``, and then
exactly one of many concurrent writers wins; ``delete`` and ``delete_expired`` report what
they removed (expiry is inclusive: a record expiring at ``now`` is expired); ``items`` is a
snapshot; concurrent writers lose nothing; ``ready`` answers.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from haechi.providers import ReadyState, TokenRecord, TokenStore

__all__ = ["TokenStoreContract", "sample_record"]

_NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sample_record(
    token: str, *, expires_at: datetime | None = None, kind: str = "email"
) -> TokenRecord:
    """A well-formed record (with an opaque stand-in envelope) for store tests."""
    expires = expires_at or _NOW + timedelta(days=30)
    aad = {"purpose": "token-vault", "token": token, "type": kind, "context": {}}
    return {
        "type": kind,
        "createdAt": _iso(_NOW - timedelta(days=1)),
        "expiresAt": _iso(expires),
        "metadata": {"path": "$.messages[0].content", "ruleId": f"{kind}-rule"},
        "envelope": {"v": 2, "kid": "contract", "ct": secrets.token_hex(8), "aadHash": "x"},
        "aad": aad,
    }


def _token(kind: str = "email") -> str:
    return f"tok_{kind}_{secrets.token_hex(8)}"


async def _all(store: TokenStore) -> dict[str, TokenRecord]:
    return {token: record async for token, record in store.items()}


class TokenStoreContract:
    """Inherit, and define the ``token_store`` fixture."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def anyio_backend(self) -> str:
        """The contract runs on asyncio."""
        return "asyncio"

    async def test_declares_a_name(self, token_store: TokenStore) -> None:
        assert isinstance(type(token_store).name, str)
        assert type(token_store).name

    async def test_empty_store(self, token_store: TokenStore) -> None:
        token = _token()
        assert await token_store.get(token) is None
        assert await _all(token_store) == {}
        assert await token_store.delete(token) is False
        assert await token_store.delete_expired(_NOW) == 0

    async def test_put_then_get_round_trips(self, token_store: TokenStore) -> None:
        token = _token()
        record = sample_record(token)
        assert await token_store.put(token, record) is True
        assert await token_store.get(token) == record
        assert await _all(token_store) == {token: record}

    async def test_records_are_plain_json(self, token_store: TokenStore) -> None:
        token = _token()
        record = sample_record(token)
        record["metadata"] = {"path": "ü/😀", "nested": {"list": [1, 2.5, None, True, "é"]}}
        await token_store.put(token, record)
        stored = await token_store.get(token)
        assert stored is not None
        assert json.loads(json.dumps(stored)) == stored == record

    async def test_stored_record_is_a_copy(self, token_store: TokenStore) -> None:
        token = _token()
        record = sample_record(token)
        await token_store.put(token, record)
        record["metadata"]["path"] = "changed by caller"
        fetched = await token_store.get(token)
        assert fetched is not None
        assert fetched["metadata"]["path"] == "$.messages[0].content"
        fetched["metadata"]["path"] = "changed again"
        again = await token_store.get(token)
        assert again is not None
        assert again["metadata"]["path"] == "$.messages[0].content"

    async def test_put_overwrites_by_default(self, token_store: TokenStore) -> None:
        token = _token()
        first, second = sample_record(token), sample_record(token)
        await token_store.put(token, first)
        assert await token_store.put(token, second) is True
        assert await token_store.get(token) == second

    async def test_only_if_absent_keeps_the_existing_record(self, token_store: TokenStore) -> None:
        token = _token()
        first, second = sample_record(token), sample_record(token)
        assert await token_store.put(token, first, only_if_absent=True) is True
        assert await token_store.put(token, second, only_if_absent=True) is False
        assert await token_store.get(token) == first

    async def test_concurrent_only_if_absent_has_one_winner(self, token_store: TokenStore) -> None:
        token = _token()
        records = [sample_record(token) for _ in range(12)]
        wins: list[int] = []

        async def attempt(index: int) -> None:
            if await token_store.put(token, records[index], only_if_absent=True):
                wins.append(index)

        async with anyio.create_task_group() as group:
            for index in range(len(records)):
                group.start_soon(attempt, index)
        assert len(wins) == 1
        assert await token_store.get(token) == records[wins[0]]

    async def test_delete_reports_existence(self, token_store: TokenStore) -> None:
        keep, drop = _token(), _token()
        await token_store.put(keep, sample_record(keep))
        await token_store.put(drop, sample_record(drop))
        assert await token_store.delete(drop) is True
        assert await token_store.get(drop) is None
        assert await token_store.delete(drop) is False
        assert set(await _all(token_store)) == {keep}

    async def test_delete_expired_is_inclusive_and_counts(self, token_store: TokenStore) -> None:
        past, at_now, future = _token(), _token(), _token()
        await token_store.put(past, sample_record(past, expires_at=_NOW - timedelta(days=1)))
        await token_store.put(at_now, sample_record(at_now, expires_at=_NOW))
        await token_store.put(future, sample_record(future, expires_at=_NOW + timedelta(1)))
        assert await token_store.delete_expired(_NOW) == 2
        assert set(await _all(token_store)) == {future}
        assert await token_store.delete_expired(_NOW) == 0

    async def test_items_is_a_snapshot(self, token_store: TokenStore) -> None:
        tokens = [_token() for _ in range(5)]
        for token in tokens:
            await token_store.put(token, sample_record(token))
        seen: list[str] = []
        async for token, record in token_store.items():
            seen.append(token)
            assert record["aad"]["token"] == token
            await token_store.delete(token)
            extra = _token()
            await token_store.put(extra, sample_record(extra))
        assert sorted(seen) == sorted(tokens)

    async def test_concurrent_writers_lose_nothing(self, token_store: TokenStore) -> None:
        tokens = [_token("phone") for _ in range(25)]

        async def write(token: str) -> None:
            await token_store.put(token, sample_record(token, kind="phone"))

        async with anyio.create_task_group() as group:
            for token in tokens:
                group.start_soon(write, token)
        stored = await _all(token_store)
        assert set(stored) == set(tokens)
        assert all(record["type"] == "phone" for record in stored.values())

    async def test_ready_answers(self, token_store: TokenStore) -> None:
        state = await token_store.ready()
        assert isinstance(state, ReadyState)
        assert state.ok
        assert state.reason is None
