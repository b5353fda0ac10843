# SPDX-License-Identifier: Apache-2.0
"""Driving coroutines to completion from synchronous code without idle event-loop turns.

``Runtime.protect_sync`` runs ``await runtime.protect(...)`` for callers without an event
loop. Handing the coroutine to ``loop.run_until_complete`` costs two turns of the loop (each
one a selector poll) and a task per call, even though a protect call over in-memory stores
never waits for anything: a noticeable share of a small call.

:class:`SyncLoop` keeps a private loop with one resident *host* task parked on it. A call
first steps its coroutine inline, on the caller's thread, with the private loop set as the
running loop and the host task as the current task. When the coroutine finishes in that one
step (nothing it awaited had to wait) the result is returned without turning the loop. When
it suspends, the coroutine is handed to the host task, which drives the rest while the loop
runs until the call is done. Code in the call therefore always sees a running loop and one
and the same current task from start to end (``asyncio.timeout``, anyio cancel scopes and
worker threads behave as they do in any task), and its context variables live in a copy of
the caller's context, as they would in a task of its own.

Callbacks that a call scheduled without waiting for them run the next time the loop turns:
when a later call suspends, or at the latest after :data:`_TURN_EVERY` calls that did not.
An interrupted call (Ctrl-C while it is suspended) is cancelled and unwound before the
interruption propagates, so it never resumes inside a later call.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from asyncio.events import _set_running_loop
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import Coroutine, Generator
from typing import Any, Final, Generic, TypeVar

__all__ = ["SyncLoop"]

_T = TypeVar("_T")
#: The loop turns at least once per this many calls that finished inline, so callbacks they
#: scheduled run and cancelled timers are purged.
_TURN_EVERY: Final = 64


class _Call(Generic[_T]):
    """A suspended call handed to the host task, and the future its outcome goes to."""

    __slots__ = ("context", "coro", "must_cancel", "outcome", "started", "yielded")

    def __init__(
        self,
        coro: Coroutine[Any, Any, _T],
        context: contextvars.Context,
        yielded: Any,
        outcome: asyncio.Future[_T],
    ) -> None:
        self.coro = coro
        self.context = context
        self.yielded = yielded
        self.outcome = outcome
        self.started = False
        self.must_cancel = False

    def __await__(self) -> Generator[Any, Any, _T]:
        """Resume the coroutine where its inline step left it, passing what it waits on to
        the driving task and every value or exception the task sends back into it (in the
        call's context)."""
        coro, run = self.coro, self.context.run
        try:
            if self.must_cancel:
                yielded = run(coro.throw, asyncio.CancelledError())
            else:
                yielded = self.yielded
            while True:
                try:
                    sent = yield yielded
                except GeneratorExit:
                    coro.close()
                    raise
                except BaseException as exc:
                    yielded = run(coro.throw, exc)
                else:
                    yielded = run(coro.send, sent)
        except StopIteration as stop:
            result: _T = stop.value
            return result

    def cancel(self, host: asyncio.Task[None]) -> None:
        """Cancel the call the way ``Task.cancel`` cancels a task: the future it waits on is
        cancelled, or a ``CancelledError`` is thrown in at its next step."""
        if host.done():  # nothing can drive it any more: unwind it here
            self.coro.close()
            self.outcome.cancel()
        elif self.started:
            host.cancel()
        elif not (isinstance(self.yielded, asyncio.Future) and self.yielded.cancel()):
            self.must_cancel = True

    def abandon(self) -> None:
        """Unwind a call the host can no longer drive (its loop is closing)."""
        self.coro.close()
        self.outcome.cancel()


class SyncLoop:
    """A private event loop for running coroutines from synchronous code, one at a time.

    :meth:`run` may be called from any thread but never from inside a running event loop;
    calls from several threads take turns. :meth:`close` releases the loop (a later
    :meth:`run` starts a fresh one).
    """

    __slots__ = ("_host", "_inline", "_lock", "_runner", "_waiter")

    def __init__(self) -> None:
        self._runner: asyncio.Runner | None = None
        self._host: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[_Call[Any]] | None = None
        self._inline = 0
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        """Whether a loop is open (:meth:`close` has something to release)."""
        return self._runner is not None

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` to completion and return its result (or raise its exception)."""
        if asyncio._get_running_loop() is not None:
            coro.close()
            raise RuntimeError("SyncLoop.run cannot be called from a running event loop")
        with self._lock:
            loop, host = self._start()
            context = contextvars.copy_context()
            try:
                _set_running_loop(loop)
                _enter_task(loop, host)
                yielded = context.run(coro.send, None)
            except StopIteration as stop:
                result: _T = stop.value
                yielded = _FINISHED
            finally:
                # Undone whatever interrupted the step: the thread must not be left inside.
                if asyncio.current_task(loop) is host:
                    _leave_task(loop, host)
                _set_running_loop(None)
            if yielded is _FINISHED:
                self._inline += 1
                if self._inline >= _TURN_EVERY:
                    self._inline = 0
                    _turn(loop)
                return result
            outcome: asyncio.Future[_T] = loop.create_future()
            call = _Call(coro, context, yielded, outcome)
            assert self._waiter is not None  # set while the host is parked
            self._waiter.set_result(call)
            try:
                return loop.run_until_complete(outcome)
            except BaseException:
                if not call.outcome.done():
                    call.cancel(host)
                    with contextlib.suppress(BaseException):
                        loop.run_until_complete(call.outcome)
                raise

    def close(self) -> None:
        """Cancel the host task and close the loop (idle: no call is running)."""
        with self._lock:
            runner, self._runner = self._runner, None
            self._host = self._waiter = None
            if runner is not None:
                runner.close()

    def _start(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Task[None]]:
        """The private loop, with a host task parked on it (a new one if the last ended)."""
        host = self._host
        if host is not None and not host.done():
            return host.get_loop(), host
        if self._runner is None:
            self._runner = asyncio.Runner()
        loop = self._runner.get_loop()
        if host is not None and not host.cancelled():
            host.exception()  # retrieved: its end was already reported to its caller
        host = self._host = loop.create_task(self._serve())
        # Parked between calls by design; never report it as a forgotten task.
        host._log_destroy_pending = False  # type: ignore[attr-defined]
        _turn(loop)
        return loop, host

    async def _serve(self) -> None:
        """The host task: drive each call handed over until it is done."""
        host = asyncio.current_task()
        assert host is not None
        loop = asyncio.get_running_loop()
        while True:
            waiter = self._waiter = loop.create_future()
            try:
                call = await waiter
            except asyncio.CancelledError:
                # The loop is closing: a call handed over meanwhile is unwound, not lost.
                if waiter.done() and not waiter.cancelled():
                    waiter.result().abandon()
                raise
            call.started = True
            try:
                result = await call
            except asyncio.CancelledError:
                call.outcome.cancel()
            except BaseException as exc:
                call.outcome.set_exception(exc)
            else:
                call.outcome.set_result(result)
            finally:
                # A cancellation meant for the call must not stay on the host.
                while host.cancelling():
                    host.uncancel()


_FINISHED: Final[Any] = object()


def _turn(loop: asyncio.AbstractEventLoop) -> None:
    """Turn ``loop`` once: run what is ready now, then stop."""
    stop = loop.call_soon(loop.stop)
    try:
        loop.run_forever()
    finally:
        stop.cancel()
