# SPDX-License-Identifier: Apache-2.0
"""The built-in per-process rate limiter: a fixed 60-second window per key.

A key's window starts with its first request; requests are allowed while the window's count
is below the budget. The map bounds itself without a timer: windows are kept in the order
they started, and once it holds many keys each call evicts a few of the oldest expired ones,
so a flood of one-shot identities cannot grow it without limit. A refused key waits until
its window ends (:meth:`MemoryRateLimiter.retry_after`, the gateway's ``Retry-After``).

Budgets are per process. Replicas that must share one fleet budget use a shared limiter
(the Redis satellite) selected by ``rateLimit.provider``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar, Final, Self

from haechi.providers import ProviderContext

__all__ = ["WINDOW_SECONDS", "MemoryRateLimiter"]

#: Length of one budget window, in seconds.
WINDOW_SECONDS: Final = 60.0
_PRUNE_THRESHOLD = 1024
_PRUNE_SCAN = 256


class MemoryRateLimiter:
    """Fixed-window limiter (``rateLimit.provider: "memory"``)."""

    name: ClassVar[str] = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # key -> [window_start, count]; insertion order == window start order.
        self._windows: dict[str, list[float]] = {}

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        """Build an empty limiter; budgets come with each call."""
        return cls()

    def __len__(self) -> int:
        """Number of keys currently tracked."""
        return len(self._windows)

    async def allow(self, key: str, requests_per_minute: float) -> bool:
        """Count one request for ``key``; False once ``requests_per_minute`` is used up."""
        now = self._clock()
        if len(self._windows) >= _PRUNE_THRESHOLD:
            self._prune(now)
        window = self._windows.get(key)
        if window is None or now - window[0] >= WINDOW_SECONDS:
            if window is not None:
                del self._windows[key]  # re-insert at the end: its window starts now
            self._windows[key] = [now, 1.0]
            return requests_per_minute >= 1
        if window[1] < requests_per_minute:
            window[1] += 1
            return True
        return False

    async def retry_after(self, key: str, requests_per_minute: float) -> float:
        """Seconds until ``key``'s window ends, when its whole budget is back (0 without a
        window running); the budget does not matter, as one window holds all of it."""
        window = self._windows.get(key)
        if window is None:
            return 0.0
        return window[0] + WINDOW_SECONDS - self._clock()

    def _prune(self, now: float) -> None:
        expired = []
        for scanned, (key, window) in enumerate(self._windows.items()):
            if scanned >= _PRUNE_SCAN or now - window[0] < WINDOW_SECONDS:
                break
            expired.append(key)
        for key in expired:
            del self._windows[key]
