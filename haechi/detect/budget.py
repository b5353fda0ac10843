# SPDX-License-Identifier: Apache-2.0
"""A bound on the CPU time the inspection of one payload may take (``limits.maxInspectionMs``).

Scanning is linear in the text, but its constant is not: prose scans at megabytes a second,
while a body made of digit groups (a pasted table, a list of phone-like numbers, each one
validated) can take seconds of CPU per megabyte, all of it spent before the request is
forwarded. Sizes are bounded by ``limits.maxRequestBytes`` and
``responseProtection.maxBytes``; this bounds the time. An inspection that spends its budget
stops and raises :class:`~haechi.errors.LimitError` (``haechi_inspection_budget_exceeded``),
which the protect pipeline turns into a block with an audit record, like any other limit:
nothing is forwarded that was not inspected whole.

The time counted is the CPU time of the thread that scans (``time.thread_time``), not the
time on the clock: a scan that waits for the interpreter lock, or for a busy machine, is not
charged for the wait, so the same payload is refused or not whatever else the process is
doing. The budget is checked at the detection engine's natural steps (each text, each rule
tried on it, each candidate match), every :data:`_STEPS_PER_CHECK` steps, so a scan stops
within a few milliseconds of the bound.

:meth:`InspectionBudget.running` makes a budget the current one of the thread (a context
variable, so scans running at the same time in other threads or tasks each see their own);
:func:`current_budget` is what the engine reads at each step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final, TypeVar

from haechi.errors import LimitError

__all__ = ["InspectionBudget", "charged", "current_budget"]

_T = TypeVar("_T")

#: Steps between two readings of the thread's CPU clock (reading it is a system call).
_STEPS_PER_CHECK: Final = 16

_CURRENT: ContextVar[InspectionBudget | None] = ContextVar("haechi_inspection_budget", default=None)


class InspectionBudget:
    """The CPU time left for one payload's inspection, spent across the scans run under
    :meth:`running` one after the other (the payload's texts, then the texts joined from
    pieces)."""

    __slots__ = ("_left_s", "_limit", "_steps")

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("an inspection budget must be positive")
        self._left_s = seconds
        self._limit = 0.0
        self._steps = _STEPS_PER_CHECK

    @contextmanager
    def running(self) -> Iterator[None]:
        """Charge the scan run inside to this budget; enter it in the thread that scans."""
        self._limit = time.thread_time() + self._left_s
        self._steps = 1  # check at the first step: an earlier scan may have spent it all
        token = _CURRENT.set(self)
        try:
            yield
        finally:
            _CURRENT.reset(token)
            self._left_s = self._limit - time.thread_time()

    def step(self) -> None:
        """Count one step of the scan; raise :class:`~haechi.errors.LimitError` when the
        budget is spent."""
        self._steps -= 1
        if self._steps > 0:
            return
        self._steps = _STEPS_PER_CHECK
        if time.thread_time() > self._limit:
            raise LimitError(
                "inspection exceeded limits.maxInspectionMs",
                status_code=413,
                error_code="haechi_inspection_budget_exceeded",
            )


def current_budget() -> InspectionBudget | None:
    """The budget the running scan is charged to, ``None`` when it has none."""
    return _CURRENT.get()


def charged(budget: InspectionBudget | None, scan: Callable[[], _T]) -> _T:
    """``scan()`` charged to ``budget``, in the thread that calls it (no bound without one)."""
    if budget is None:
        return scan()
    with budget.running():
        return scan()
