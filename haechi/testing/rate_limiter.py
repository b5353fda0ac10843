# SPDX-License-Identifier: Apache-2.0
"""Contract suite every rate limiter must pass.

Subclass :class:`RateLimiterContract` and provide a ``rate_limiter`` fixture returning a
fresh limiter (a shared backend is fine: every test uses its own random keys)::

    class TestMyLimiter(RateLimiterContract):
        @pytest.fixture
        def rate_limiter(self):
            return MyLimiter(...)

The suite checks the semantics the gateway relies on: a budget is honoured exactly (also
under concurrent calls), keys never share budgets, and the answer is a real ``bool``. A
limiter that also offers :class:`~haechi.providers.RetryAfterHint` is held to it: a refused
key is told a wait within the window; one that does not is skipped there.
"""

from __future__ import annotations

import asyncio
import math
import secrets

import pytest

from haechi.providers import RateLimiter, RetryAfterHint
from haechi.ratelimit import WINDOW_SECONDS

__all__ = ["RateLimiterContract"]


def _key() -> str:
    return f"contract:{secrets.token_hex(8)}"


@pytest.mark.anyio
class RateLimiterContract:
    """Inherit this class and supply the ``rate_limiter`` fixture."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        """Run on asyncio, the loop the gateway uses."""
        return "asyncio"

    async def test_allows_exactly_the_budget(self, rate_limiter: RateLimiter) -> None:
        key = _key()
        answers = [await rate_limiter.allow(key, 3) for _ in range(5)]
        assert answers == [True, True, True, False, False]

    async def test_answers_are_booleans(self, rate_limiter: RateLimiter) -> None:
        key = _key()
        assert await rate_limiter.allow(key, 1) is True
        assert await rate_limiter.allow(key, 1) is False

    async def test_keys_do_not_share_budgets(self, rate_limiter: RateLimiter) -> None:
        first, second = _key(), _key()
        assert await rate_limiter.allow(first, 1) is True
        assert await rate_limiter.allow(first, 1) is False
        assert await rate_limiter.allow(second, 1) is True

    async def test_concurrent_calls_never_exceed_the_budget(
        self, rate_limiter: RateLimiter
    ) -> None:
        key = _key()
        answers = await asyncio.gather(*(rate_limiter.allow(key, 10) for _ in range(40)))
        assert sum(answers) == 10

    async def test_is_a_rate_limiter(self, rate_limiter: RateLimiter) -> None:
        assert isinstance(rate_limiter, RateLimiter)
        assert isinstance(type(rate_limiter).name, str)
        assert type(rate_limiter).name

    async def test_a_refused_key_is_told_a_wait_within_the_window(
        self, rate_limiter: RateLimiter
    ) -> None:
        if not isinstance(rate_limiter, RetryAfterHint):
            pytest.skip("the limiter only answers allow/deny (the gateway says the window)")
        key = _key()
        assert await rate_limiter.allow(key, 1) is True
        assert await rate_limiter.allow(key, 1) is False
        wait = await rate_limiter.retry_after(key, 1)
        assert isinstance(wait, int | float)
        assert math.isfinite(wait)
        assert 0 < wait <= WINDOW_SECONDS
