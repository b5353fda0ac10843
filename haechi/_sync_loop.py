# SPDX-License-Identifier: Apache-2.0
"""Driving coroutines to completion from synchronous code without idle event-loop turns.

``Runtime.protect_sync`` runs ``await runtime.protect(...)`` for callers without an event
loop. Handing the coroutine to ``loop.run_until_complete`` costs two turns of the loop (each
one a selector poll) and a task per call, even though a protect call over in-memory stores
never waits for anything: a noticeable share of a small call.

:class:`SyncLoop` keeps a private loop with a *host* task parked on it. A call first steps
its coroutine inline, on the caller's thread, with the private loop set as the running loop
and the host task as the current task. When the coroutine finishes in that one step (nothing
it awaited had to wait) the result is returned without turning the loop, and the host stays
parked for the next call. When it suspends, the coroutine is handed to the host task, which
drives the rest while the loop runs until the call is done, and then ends; the next call
parks a new host. Code in the call therefore always sees a running loop and one and the same
current task from start to end (``asyncio.timeout``, anyio cancel scopes and worker threads
behave as they do in any task), and its context variables live in a copy of the caller's
context, as they would in a task of its own. A host ending with its call matters for what
the call left behind on it: anyio stops the worker threads it started for a task when that
task ends, and a host parked for ever would keep them waiting, so that the interpreter could
never exit.

Callbacks that a call scheduled without waiting for them run the next time the loop turns:
when a later call suspends, or at the latest after :data:`_TURN_EVERY` calls that did not.
An interrupted call (Ctrl-C while it is suspended) is cancelled and unwound before the
interruption propagates, so it never resumes inside a later call.

A process forked after a call (a server that composes its runtime before forking workers,
``multiprocessing`` with the fork start method) starts over in the child with a loop and a
lock of its own: the parent's loop shares its selector and wake-up socket with the parent, its
default executor counts worker threads the child does not have (a call handing work to one,
such as the scan of a large payload, would wait for ever), and a call another thread was in
at the fork leaves the lock held for good. The parent's loop is left to the parent: the child
never closes it (see :meth:`SyncLoop._after_fork`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import threading
import weakref
from asyncio.events import _set_running_loop
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Final, Generic, TypeVar

__all__ = ["SyncLoop", "off_loop"]

_T = TypeVar("_T")
#: The loop turns at least once per this many calls that finished inline, so callbacks they
#: scheduled run and cancelled timers are purged.
_TURN_EVERY: Final = 64
#: What :class:`concurrent.futures.ThreadPoolExecutor` says when it refuses work because the
#: interpreter is shutting down (not because the executor itself was shut down).
_SHUTDOWN_REFUSAL: Final = "after interpreter shutdown"
#: Every live instance, to start over in a fork child.
_LIVE: Final[weakref.WeakSet[SyncLoop]] = weakref.WeakSet()
#: In a fork child, the parent's loops that cannot be marked closed (uvloop's, where an
#: application installed its policy): kept for the life of the child, never closed (see
#: :func:`_abandon`).
_ABANDONED: Final[list[asyncio.AbstractEventLoop]] = []


def _reset_all_in_child() -> None:
    for sync_loop in list(_LIVE):
        sync_loop._after_fork()


os.register_at_fork(after_in_child=_reset_all_in_child)


class _Call(Generic[_T]):
    """A suspended call handed to a host task."""

    __slots__ = ("context", "coro", "must_cancel", "started", "yielded")

    def __init__(
        self, coro: Coroutine[Any, Any, _T], context: contextvars.Context, yielded: Any
    ) -> None:
        self.coro = coro
        self.context = context
        self.yielded = yielded
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

    def cancel(self, host: asyncio.Task[Any]) -> None:
        """Cancel the call the way ``Task.cancel`` cancels a task: the future it waits on is
        cancelled, or a ``CancelledError`` is thrown in at its next step."""
        if self.started:
            host.cancel()
        elif not (isinstance(self.yielded, asyncio.Future) and self.yielded.cancel()):
            self.must_cancel = True


class SyncLoop:
    """A private event loop for running coroutines from synchronous code, one at a time.

    :meth:`run` may be called from any thread but never from inside a running event loop;
    calls from several threads take turns. :meth:`close` releases the loop (a later
    :meth:`run` starts a fresh one).
    """

    __slots__ = ("__weakref__", "_host", "_inline", "_lock", "_runner", "_waiter")

    def __init__(self) -> None:
        self._runner: asyncio.Runner | None = None
        self._host: asyncio.Task[Any] | None = None
        self._waiter: asyncio.Future[_Call[Any]] | None = None
        self._inline = 0
        self._lock = threading.Lock()
        _LIVE.add(self)

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
            loop, host, waiter = self._start()
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
            call = _Call(coro, context, yielded)
            waiter.set_result(call)
            self._host = self._waiter = None  # this host drives this call, then ends
            try:
                outcome: _T = loop.run_until_complete(host)
            except BaseException:
                if not host.done():
                    call.cancel(host)
                    with contextlib.suppress(BaseException):
                        loop.run_until_complete(host)
                raise
            return outcome

    def close(self) -> None:
        """Cancel the host task and close the loop (idle: no call is running)."""
        with self._lock:
            runner, self._runner = self._runner, None
            self._host = self._waiter = None
            if runner is not None:
                runner.close()

    def _after_fork(self) -> None:
        """In a fork child: drop the parent's loop and lock (see the module documentation),
        so that the next call opens a loop of the child's own.

        The parent's loop is left unclosed (see :func:`_abandon`): closing it (here, or when
        the child collects it) takes its wake-up socket out of its selector, and the selector
        is the parent's too, whose loop would then no longer wake for work finished on a
        worker thread."""
        runner, self._runner = self._runner, None
        self._host = self._waiter = None
        self._inline = 0
        self._lock = threading.Lock()
        if runner is not None:
            _abandon(runner.get_loop())

    def _start(
        self,
    ) -> tuple[asyncio.AbstractEventLoop, asyncio.Task[Any], asyncio.Future[_Call[Any]]]:
        """The private loop, with a host task for the next call and the future that hands the
        call over to it. A host that a call asked to cancel is not reused."""
        host, waiter = self._host, self._waiter
        if (
            host is not None
            and waiter is not None
            and not (host.done() or host.cancelling() or waiter.done())
        ):
            return host.get_loop(), host, waiter
        if self._runner is None:
            self._runner = asyncio.Runner()
        loop = self._runner.get_loop()
        waiter = self._waiter = loop.create_future()
        host = self._host = loop.create_task(_serve(waiter))
        # Waits between calls by design; never report it as a forgotten task.
        host._log_destroy_pending = False  # type: ignore[attr-defined]
        _turn(loop)  # parked on its waiter: a loop dropped unclosed finds no unstarted step
        return loop, host, waiter


def _abandon(loop: asyncio.AbstractEventLoop) -> None:
    """Leave the parent's ``loop`` to the parent in a fork child: never closed by the child.

    asyncio's loop is marked closed, so that collecting it does not close it. uvloop's
    ``_closed`` cannot be set (assigning it raised in the fork hook, which then left every
    other instance with the parent's loop and lock): its loop closes nothing when collected,
    but logs an error, so it is kept instead."""
    if isinstance(loop, asyncio.BaseEventLoop):
        loop._closed = True  # type: ignore[attr-defined]
    else:
        _ABANDONED.append(loop)


async def _serve(waiter: asyncio.Future[_Call[_T]]) -> _T:
    """A host task: wait for one call to be handed over and drive it to its end."""
    try:
        call = await waiter
    except asyncio.CancelledError:
        # The loop is closing: a call handed over meanwhile is unwound, not lost.
        if waiter.done() and not waiter.cancelled():
            waiter.result().coro.close()
        raise
    call.started = True
    return await call


_FINISHED: Final[Any] = object()


async def off_loop(work: Callable[[], _T]) -> _T:
    """``work`` (blocking: a large scan, an fsync) on a worker thread of the running loop's
    executor, in a copy of this context as :func:`asyncio.to_thread` runs it, or on this
    thread when the interpreter is shutting down.

    From then on (a thread still working after the main thread ended, an ``atexit``
    handler) every thread pool refuses new work, and refused, the work would fail: a large
    payload could not be protected at all, an audit store could not be closed. Only that
    refusal, raised before ``work`` started, runs it here; the loop then waits for it, as a
    synchronous caller would.
    """
    loop = asyncio.get_running_loop()
    try:
        running = loop.run_in_executor(None, contextvars.copy_context().run, work)
    except RuntimeError as exc:
        if _SHUTDOWN_REFUSAL not in str(exc):
            raise
        return work()
    return await running


def _turn(loop: asyncio.AbstractEventLoop) -> None:
    """Turn ``loop`` once: run what is ready now, then stop."""
    stop = loop.call_soon(loop.stop)
    try:
        loop.run_forever()
    finally:
        stop.cancel()
