# SPDX-License-Identifier: Apache-2.0
"""The built-in fixed-window rate limiter."""

from __future__ import annotations

import pytest

from haechi.ratelimit import WINDOW_SECONDS, MemoryRateLimiter
from haechi.testing.rate_limiter import RateLimiterContract


class TestMemoryRateLimiterContract(RateLimiterContract):
    @pytest.fixture
    def rate_limiter(self) -> MemoryRateLimiter:
        return MemoryRateLimiter()


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_window_resets_after_sixty_seconds() -> None:
    clock = _Clock()
    limiter = MemoryRateLimiter(clock)
    assert await limiter.allow("a", 2)
    assert await limiter.allow("a", 2)
    assert not await limiter.allow("a", 2)
    clock.now += WINDOW_SECONDS - 0.001
    assert not await limiter.allow("a", 2)
    clock.now += 0.001
    assert await limiter.allow("a", 2)


@pytest.mark.anyio
async def test_a_refused_key_waits_for_the_rest_of_its_window() -> None:
    clock = _Clock()
    limiter = MemoryRateLimiter(clock)
    assert await limiter.retry_after("a", 1) == 0
    assert await limiter.allow("a", 1)
    clock.now += 20.5
    assert not await limiter.allow("a", 1)
    assert await limiter.retry_after("a", 1) == WINDOW_SECONDS - 20.5
    clock.now += WINDOW_SECONDS - 20.5
    assert await limiter.retry_after("a", 1) == 0
    assert await limiter.allow("a", 1)


@pytest.mark.anyio
async def test_fractional_budgets() -> None:
    limiter = MemoryRateLimiter(_Clock())
    answers = [await limiter.allow("a", 1.5) for _ in range(3)]
    assert answers == [True, True, False]


@pytest.mark.anyio
async def test_one_shot_identities_do_not_grow_the_map_forever() -> None:
    clock = _Clock()
    limiter = MemoryRateLimiter(clock)
    for number in range(5000):
        await limiter.allow(f"one-shot-{number}", 10)
        clock.now += 0.05  # 5000 keys over 250 s: most windows expire on the way
    assert len(limiter) < 2000


def test_is_the_registered_limiter() -> None:
    from haechi.plugins.manager import load_registry

    assert load_registry().select("rate_limiter", "memory") is MemoryRateLimiter
