# SPDX-License-Identifier: Apache-2.0
"""The respawn circuit breaker of the plugin sandbox.

A plugin that keeps dying (timeouts, crashes, protocol violations) must not turn into a
fork storm. Each kill is recorded; before the next start the supervisor waits an
exponentially growing backoff, and once too many kills fall inside the window the breaker
trips for good: the provider denies every call until the operator restarts it.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

__all__ = ["BreakerPolicy", "RespawnBreaker"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """``max_kills`` kills within ``window_s`` trip the breaker; backoff doubles per kill."""

    max_kills: int = 5
    window_s: float = 10.0
    backoff_s: float = 0.1
    max_doublings: int = 6


class RespawnBreaker:
    """Counts kills in a sliding window; not thread-safe (the supervisor holds a lock)."""

    def __init__(self, policy: BreakerPolicy | None = None) -> None:
        self._policy = policy or BreakerPolicy()
        self._kills: deque[float] = deque()
        self.tripped = False

    def _recent(self, now: float) -> int:
        while self._kills and now - self._kills[0] > self._policy.window_s:
            self._kills.popleft()
        return len(self._kills)

    def record_kill(self, now: float | None = None) -> bool:
        """Count one kill; return True when this kill tripped the breaker."""
        now = time.monotonic() if now is None else now
        self._kills.append(now)
        if not self.tripped and self._recent(now) >= self._policy.max_kills:
            self.tripped = True
            return True
        return False

    def backoff(self, now: float | None = None) -> float:
        """Seconds to wait before the next start (0 when nothing died recently)."""
        recent = self._recent(time.monotonic() if now is None else now)
        if recent == 0:
            return 0.0
        return self._policy.backoff_s * float(2 ** min(recent - 1, self._policy.max_doublings))
