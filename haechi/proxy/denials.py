# SPDX-License-Identifier: Apache-2.0
"""How many refusals of one kind a gateway process audits one by one.

A refusal that is cheap to provoke would otherwise let a client make the gateway write one
record per request, as fast as it sends them: an authentication denial (audited before any
rate limit can apply, since the limit needs an identity) and a rate-limit refusal (a caller
over its budget keeps sending). Each kind has its bound, ``auth.deniedRecordsPerSecond`` and
``rateLimit.deniedRecordsPerSecond``: up to that many refusals a second (a burst of as many),
each is its own record, as always; past it, a refusal is counted instead, and a second in
which some were counted ends with one record saying how many, by reason (reason
``aggregated``, counts in ``summary.byAction`` and ``summary.byReason``). Every refusal is
still answered and counted in its metric; none goes unrecorded, only uncorrelated. ``0``
records every refusal on its own. Refusals because the rate limiter failed are bounded by
``rateLimit.deniedRecordsPerSecond`` too, in a bucket of their own: a broken limiter refuses
every request.

A summary that cannot be written is logged (``auth_denials_unrecorded``; rate-limit
refusals: ``rate_limited_unrecorded``; limiter failures:
``rate_limit_unavailable_unrecorded``) and its counts are kept for the next one; the gateway
writes what is pending when it stops.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from haechi.proxy.logs import log_event

__all__ = ["DenialRecords"]

#: Seconds between the first counted refusal and the summary that reports it.
_SUMMARY_DELAY_S: Final = 1.0

WriteSummary = Callable[[Mapping[str, int]], Awaitable[None]]


class DenialRecords:
    """A token bucket of refusal records, and the counts of the refusals past it."""

    def __init__(
        self,
        per_second: int,
        write_summary: WriteSummary,
        *,
        unrecorded: str = "auth_denials_unrecorded",
    ) -> None:
        self._rate = float(per_second)
        self._unrecorded = unrecorded
        self._tokens = self._rate
        self._last = time.monotonic()
        self._write_summary = write_summary
        self._pending: dict[str, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    def admit(self, reason: str) -> bool:
        """Whether this refusal gets its own record; when not, it is counted for the next
        summary (written within a second)."""
        if not self._rate:
            return True
        now = time.monotonic()
        self._tokens = min(self._rate, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self._pending[reason] = self._pending.get(reason, 0) + 1
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(_SUMMARY_DELAY_S, self._due)
        return False

    def _due(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flushes.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._flushes.discard)

    async def flush(self) -> None:
        """Write the summary of the refusals counted so far, if any."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        counts, self._pending = self._pending, {}
        if not counts:
            return
        try:
            await self._write_summary(counts)
        except Exception as exc:  # kept for the next summary: the count is never dropped
            for reason, count in counts.items():
                self._pending[reason] = self._pending.get(reason, 0) + count
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(_SUMMARY_DELAY_S, self._due)
            log_event(
                40,
                self._unrecorded,
                count=sum(counts.values()),
                errorName=type(exc).__name__,
            )

    async def aclose(self) -> None:
        """Write what is pending (the gateway is stopping)."""
        await asyncio.gather(*self._flushes, return_exceptions=True)
        await self.flush()
