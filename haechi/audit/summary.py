# SPDX-License-Identifier: Apache-2.0
"""Totals over an audit log, for ``haechi report`` and dashboards.

Every event counts once in ``events``; ``blocked`` counts events with ``blocked: true``;
``detections``, ``byType`` and ``byAction`` add up each event's ``summary``. Events that
are not protect calls (vault, gateway decisions) have ``byAction: {<decision>: 1}``, so their
decisions (``reveal_denied``, ``auth_denied``, ...) show up in ``byAction`` too. Only
counts that are whole numbers from 0 to 2^53 - 1 (which every JSON reader holds exactly) are
added, however they are written (``5``, ``5.0``, ``5e0``: one number to the hash chain);
anything else in a summary is ignored, so a damaged or forged line can neither
subtract from the totals nor grow them past what can be printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from haechi.audit._lines import iter_json_lines
from haechi.errors import AuditError

__all__ = ["read_summary"]


#: Largest count added: the largest integer a double holds exactly.
_MAX_COUNT: Final = 2**53 - 1


def _count(value: Any) -> int | None:
    """``value`` as a count, or ``None``.

    A whole number written as a float (``5.0``, ``5e0``) is the number 5 to the hash chain,
    which hashes numbers as JavaScript writes them: a count re-spelled so keeps its record's
    hash and anchor, and must count as what the chain vouches for.
    """
    if type(value) is float and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_COUNT:
        return value
    return None


def _add(totals: dict[str, int], counts: Any) -> None:
    if not isinstance(counts, Mapping):
        return
    for name, value in counts.items():
        amount = _count(value)
        if amount is not None:
            totals[name] = totals.get(name, 0) + amount


def read_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{events, blocked, detections, byType, byAction}`` over the JSONL log at ``path``.

    A missing file gives zeros; a line that is not a JSON object raises
    :class:`~haechi.errors.AuditError`. The file is streamed, not loaded.
    """
    audit = Path(path)
    events = blocked = detections = 0
    by_type: dict[str, int] = {}
    by_action: dict[str, int] = {}
    try:
        for event in iter_json_lines(audit, missing_ok=True):
            events += 1
            if event.get("blocked") is True:
                blocked += 1
            summary = event.get("summary")
            if isinstance(summary, Mapping):
                detections += _count(summary.get("detectionCount")) or 0
                _add(by_type, summary.get("byType"))
                _add(by_action, summary.get("byAction"))
    except OSError as exc:
        raise AuditError(f"cannot read audit log {audit}: {exc.strerror}") from None
    return {
        "events": events,
        "blocked": blocked,
        "detections": detections,
        "byType": by_type,
        "byAction": by_action,
    }
