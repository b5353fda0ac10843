# SPDX-License-Identifier: Apache-2.0
"""A relayed stream stays tied to its caller: it ends when the client goes away, and when
the caller's credentials stop being accepted.

A stream outlives the authentication of the request it answers: an LLM answer can stream
for minutes and an MCP event stream (``GET`` on an ``mcp-http`` gateway) stays open for
hours. A token revoked with ``haechi token-revoke`` must end those too. So while a stream is
relayed to an authenticated caller, the gateway runs the auth provider's
``authenticate(headers)`` again on the request's own ``Authorization`` at most once per
``auth.streamRecheckMs``: when a frame is about to go out and that long passed since the
last check (a monotonic clock compare per frame, nothing more: the built-in bearer store
re-reads its file only when it changed), and when no frame came for that long (a timer, for
a stream that stays silent). No identity, another identity, or a provider that raises (fail
closed) means the caller lost access: :class:`AccessLost`, and the relay ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from haechi.proxy._asgi import Receive

__all__ = ["AccessLost", "StreamAuth", "relay_until_cut"]


class AccessLost(Exception):
    """The caller of a relayed stream lost access (``reason``: ``revoked`` when the provider
    no longer names the same identity, ``provider_error`` when it raised)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StreamAuth:
    """The re-check of one stream's caller (see the module).

    Args:
        provider: the gateway's auth provider (its ``authenticate(headers)``).
        headers: the request's header fields; only ``Authorization`` is presented again,
            as the gateway presented it when it admitted the request.
        identity_id: the id of the identity the request was admitted as.
        interval_s: the least time between two checks, in seconds (above 0).
    """

    __slots__ = (
        "_credentials",
        "_deadline",
        "_identity_id",
        "_interval",
        "_provider",
        "on_lost",
        "reason",
    )

    def __init__(
        self,
        provider: Any,
        headers: Sequence[tuple[bytes, bytes]],
        identity_id: str,
        interval_s: float,
    ) -> None:
        given = [value for name, value in headers if name == b"authorization"]
        self._credentials = {"authorization": given[0].decode("latin-1")} if given else {}
        self._provider = provider
        self._identity_id = identity_id
        self._interval = interval_s
        self._deadline = time.monotonic() + interval_s
        #: Why the caller lost access, once it did.
        self.reason: str | None = None
        #: Called once the caller lost access, before the relay is stopped (the relay of an
        #: inspected stream has its inspector record why the stream ended).
        self.on_lost: Callable[[], None] | None = None

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
        self._deadline = time.monotonic() + self._interval
        try:
            identity = await self._provider.authenticate(self._credentials)
        except Exception:  # a provider that raises denies; its text never leaves
            self.reason = "provider_error"
        else:
            if identity is not None and identity.id == self._identity_id:
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
