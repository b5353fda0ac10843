# SPDX-License-Identifier: Apache-2.0
"""A relayed stream stays tied to its caller: it ends when the client goes away, and when
the caller's credentials stop being accepted.

A stream outlives the authentication of the request it answers: an LLM answer can stream
for minutes and an MCP event stream (``GET`` on an ``mcp-http`` gateway) stays open for
hours. A token revoked with ``haechi token-revoke`` must end those too. So while a stream is
relayed to an authenticated caller, the gateway runs the auth provider's
``authenticate(headers)`` again on the request's own ``Authorization`` about once per
``auth.streamRecheckMs`` (after 80 to 100 % of it, see below): when a frame is about to go
out and the check is due (a monotonic clock compare per frame, nothing more: the built-in
bearer store re-reads its file only when it changed), and when no frame came until it was
due (a timer, for a stream that stays silent). No identity, another identity, or a
provider that raises (fail closed) means the caller lost access: :class:`AccessLost`, and
the relay ends the stream.
A stream waits for a check twice the interval (a second at least, and a sandboxed plugin's
own time limit when longer); a check not answered by then counts as the provider raising:
one that hangs ends the stream instead of stalling it for good. The provider's call itself
is never cancelled.

The streams of one gateway process share their checks (:class:`Rechecks`): streams of one
credential that fall due within half an interval of a check take its answer instead of
calling the provider again, so a caller holding many streams costs one call per half
interval, not one per stream (a sandboxed plugin provider answers a few calls at a time and
denies the rest as over capacity, and the bearer store compares every stored token on each
call). Each stream's next check falls due after 80 to 100 % of the interval, at random, so
that streams opened together do not all call at the same instant. A revoked caller's stream
therefore ends within one and a half intervals.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Final

from haechi.proxy._asgi import Receive

__all__ = ["AccessLost", "Rechecks", "StreamAuth", "relay_until_cut"]

#: The least share of the interval after which a stream's next check falls due.
_EARLIEST: Final = 0.8
#: How many intervals a stream waits for a check before it counts as the provider failing ...
_ANSWER_WITHIN: Final = 2
#: ... and the least time it waits, in seconds: a short interval (tens of milliseconds) must
#: not deny a provider that answers, a little slower, every time.
_ANSWER_AT_LEAST_S: Final = 1.0


class AccessLost(Exception):
    """The caller of a relayed stream lost access (``reason``: ``revoked`` when the provider
    no longer names the same identity, ``provider_error`` when it raised)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Rechecks:
    """The checks of every stream's caller in one gateway process (see the module).

    Args:
        provider: the gateway's auth provider (its ``authenticate(headers)``).
        interval_s: ``auth.streamRecheckMs`` in seconds (above 0).
        provider_timeout_s: how long the provider may take to answer by its own settings
            (a sandboxed plugin's ``auth.plugin.timeoutMs``); a stream waits that long for
            a check when it is longer than twice the interval.
    """

    def __init__(self, provider: Any, interval_s: float, provider_timeout_s: float = 0.0) -> None:
        self._provider = provider
        self.interval_s = interval_s
        self._wait_s = max(interval_s * _ANSWER_WITHIN, _ANSWER_AT_LEAST_S, provider_timeout_s)
        # SHA-256 of a credential -> when its last check started, and that check (the id of
        # the identity the provider named, or None). Digests, not credentials: an entry
        # outlives the streams that made it until a later check prunes it. Kept in the
        # order the checks started, so pruning looks at the stale entries only (a scan of
        # every entry per check cost a gateway with thousands of callers' streams more
        # than a core).
        self._checks: OrderedDict[bytes, tuple[float, asyncio.Future[str | None]]] = OrderedDict()

    def stream(self, headers: Sequence[tuple[bytes, bytes]], identity_id: str) -> StreamAuth:
        """The re-check of one stream admitted as ``identity_id`` with ``headers``."""
        return StreamAuth(self, headers, identity_id)

    async def identity_id(self, credentials: Mapping[str, str]) -> str | None:
        """The id of the identity the provider names for ``credentials`` now (or within the
        last half interval); ``None`` when it names none. Raises what the provider raised."""
        presented = credentials.get("authorization", "")
        key = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        now = time.monotonic()
        held = self._checks.get(key)
        if held is None or now - held[0] >= self.interval_s / 2:
            self._prune(now)
            check = asyncio.ensure_future(self._ask(credentials))
            # Retrieved at once: a raised answer every stream stopped waiting for is no
            # error to log (its text is the provider's, which never leaves).
            check.add_done_callback(_retrieve)
            held = (now, check)
            self._checks[key] = held
            self._checks.move_to_end(key)
        # Shielded: a stream that ends while it waits must not cancel the others' answer,
        # nor the provider's call, which runs to its end (a plugin provider audits what its
        # sandbox reported once the call returns). Bounded: a provider that never answers
        # would stall the stream for good, neither relayed nor ended; past the bound the
        # wait raises TimeoutError, which denies as any provider error does.
        async with asyncio.timeout(self._wait_s):
            return await asyncio.shield(held[1])

    async def _ask(self, credentials: Mapping[str, str]) -> str | None:
        identity = await self._provider.authenticate(credentials)
        return None if identity is None else identity.id

    def _prune(self, now: float) -> None:
        checks = self._checks
        while checks and now - next(iter(checks.values()))[0] >= self.interval_s:
            checks.popitem(last=False)


def _retrieve(check: asyncio.Future[str | None]) -> None:
    if not check.cancelled():
        check.exception()


class StreamAuth:
    """The re-check of one stream's caller (see the module).

    Args:
        checks: the gateway's :class:`Rechecks`.
        headers: the request's header fields; only ``Authorization`` is presented again,
            as the gateway presented it when it admitted the request.
        identity_id: the id of the identity the request was admitted as.
    """

    __slots__ = (
        "_checks",
        "_credentials",
        "_deadline",
        "_identity_id",
        "on_lost",
        "reason",
    )

    def __init__(
        self, checks: Rechecks, headers: Sequence[tuple[bytes, bytes]], identity_id: str
    ) -> None:
        given = [value for name, value in headers if name == b"authorization"]
        self._credentials = {"authorization": given[0].decode("latin-1")} if given else {}
        self._checks = checks
        self._identity_id = identity_id
        self._deadline = self._next()
        #: Why the caller lost access, once it did.
        self.reason: str | None = None
        #: Called once the caller lost access, before the relay is stopped (the relay of an
        #: inspected stream has its inspector record why the stream ended).
        self.on_lost: Callable[[], None] | None = None

    def _next(self) -> float:
        """When the next check falls due: after 80 to 100 % of the interval."""
        share = _EARLIEST + (1 - _EARLIEST) * random.random()  # noqa: S311 - spreads timers
        return time.monotonic() + self._checks.interval_s * share

    def due(self) -> bool:
        """Whether the interval passed since the last check (the per-frame cost)."""
        return time.monotonic() >= self._deadline

    async def confirm(self) -> None:
        """Check the caller again now; :class:`AccessLost` when it lost access."""
        if not await self._holds():
            assert self.reason is not None
            raise AccessLost(self.reason)

    async def watch(self) -> None:
        """Return once the caller lost access, checking whenever the interval passed
        without a check (a stream with no frame to relay is checked all the same)."""
        while True:
            await asyncio.sleep(self._deadline - time.monotonic())
            if self.due() and not await self._holds():
                return

    async def _holds(self) -> bool:
        # The next check is due an interval from now, whichever of the frame path and the
        # timer runs this one: the other does not run a second one alongside it.
        self._deadline = self._next()
        try:
            identity_id = await self._checks.identity_id(self._credentials)
        except Exception:  # a provider that raises denies; its text never leaves
            self.reason = "provider_error"
        else:
            if identity_id == self._identity_id:
                return True
            self.reason = "revoked"
        if self.on_lost is not None:
            self.on_lost()
        return False


async def relay_until_cut(
    pump: Coroutine[Any, Any, None], receive: Receive, auth: StreamAuth | None = None
) -> None:
    """Run ``pump`` (the relay of a stream) until it ends, the client goes away, or the
    caller loses access (``auth``); in the last two cases ``pump`` is cancelled at once, and
    in the last :class:`AccessLost` is raised (as it is when ``pump`` raises it itself, from
    :meth:`StreamAuth.confirm` before a frame), for the caller to end the stream."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    pump_task = asyncio.ensure_future(pump)
    watchers = [asyncio.ensure_future(disconnected())]
    if auth is not None:
        watchers.append(asyncio.ensure_future(auth.watch()))
    cut = False
    try:
        await asyncio.wait({pump_task, *watchers}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for watcher in watchers:
            watcher.cancel()
        if not pump_task.done():
            cut = True
            pump_task.cancel()
        for watcher in watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        with contextlib.suppress(asyncio.CancelledError):
            await pump_task
    if cut and auth is not None and auth.reason is not None:
        raise AccessLost(auth.reason)
