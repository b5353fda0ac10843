# SPDX-License-Identifier: Apache-2.0
"""Sub-runs: where to look again for a hard-block number inside a longer run of digit groups.

Number rules refuse to cut a number out of a longer one (``4111 1111 1111 1111 2222`` is not
read as a 16-digit card followed by ``2222`` by the regex), because a greedy match that
fails its checksum is not retried at other lengths. That is the right default for soft
types, but it loses hard-block values: a card written right after a phone number, an order
number or a date (``call 010-1234-5678 4111 1111 1111 1111``) is one run of digit groups to
the regex, and no card is reported.

For the hard-block number rules (cards, Korean RRN, French NIR, Spanish DNI/NIE) the engine
therefore runs the rule again on every *sub-run*: the text from the start of one digit group
to the end of a later group of the same run, cut out of its surroundings so that the rule's
boundary checks see the cut as an edge. At the two ends of the whole run the real
neighbouring characters are kept (a DNI's check letter, a word glued to the number), so only
the interior cuts are new. Contiguous digits are never split: a run of 23 digits is not a
card anywhere inside.

Work stays linear in the run length: a sub-run longer than the rule's longest possible match
cannot be one, so each start group is paired with a bounded number of end groups.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Final

from haechi.detect.prefilter import DROP_DIGITS, digits_in

__all__ = ["sub_runs"]

_GROUP: Final = re.compile(r"[0-9]+")
_DIGITS: Final = "0123456789"
#: Characters of real context kept beyond the two ends of a run, for look-arounds and for
#: the letters some identifiers end with.
_CONTEXT: Final = 8


@lru_cache(maxsize=8)
def _segments(joiners: str) -> re.Pattern[str]:
    """The stretches of a digit run whose groups are split by one character of ``joiners``
    each."""
    return re.compile(f"[0-9]+(?:[{re.escape(joiners)}][0-9]+)*")


def sub_runs(
    text: str,
    runs: Sequence[tuple[int, int]],
    *,
    min_digits: int,
    width: int,
    covered: Sequence[tuple[int, int]] = (),
    joiners: str = "",
) -> Iterator[tuple[int, int]]:
    """``(low, high)``: rescan ``text[low:high]``, one sub-run of ``runs`` (``(start, end)``
    spans of digit runs in ``text``) with its real context where it touches an end of its run.

    The whole run is skipped (the ordinary pass saw it), as are sub-runs of fewer than
    ``min_digits`` digits, longer than ``width`` characters, or inside a ``covered`` span
    (already found). With ``joiners`` (the rule splits the groups of a match by one of these
    characters, the same one throughout), so are sub-runs whose groups are split otherwise:
    no match can span them, and every match inside one is a sub-run that is not skipped.
    """
    for run_start, run_end in runs:
        if run_end - run_start <= min_digits or _most_digits(text[run_start:run_end]) < min_digits:
            continue
        if joiners:
            spans = _segments(joiners).finditer(text, run_start, run_end)
            segments = [match.span() for match in spans]
        else:
            segments = [(run_start, run_end)]
        for segment_start, segment_end in segments:
            if segment_end - segment_start < min_digits:
                continue
            groups = [match.span() for match in _GROUP.finditer(text, segment_start, segment_end)]
            # The real context is kept only at the ends of the run; a segment's other ends
            # are cuts like any other between two groups.
            opens_run = segment_start == run_start
            closes_run = segment_end == run_end
            last = len(groups) - 1
            # digits[i]: digits in groups[:i]. reach: one past the last group within
            # ``width`` of the start group, so a start whose reach holds too few digits is
            # passed over at once (a table of short numbers has thousands of such starts).
            digits = [0]
            for group_start, group_end in groups:
                digits.append(digits[-1] + group_end - group_start)
            # A segment's gaps are one joiner each: the segment without its digits.
            gaps = text[segment_start:segment_end].translate(DROP_DIGITS) if joiners else ""
            alike = _alike(gaps)
            reach = 0
            for first, (start, _end) in enumerate(groups):
                reach = max(reach, first)
                while reach <= last and groups[reach][1] - start <= width:
                    reach += 1
                limit = reach if alike is None else min(reach, alike[first])
                if digits[limit] - digits[first] < min_digits:
                    continue
                for index in range(first, limit):
                    group_start, end = groups[index]
                    if digits[index + 1] - digits[first] < min_digits:
                        continue
                    if opens_run and closes_run and first == 0 and index == last:
                        continue  # the whole run
                    if covered and any(low <= start and end <= high for low, high in covered):
                        continue
                    low = max(0, start - _CONTEXT) if opens_run and first == 0 else start
                    high = min(len(text), end + _CONTEXT) if closes_run and index == last else end
                    yield low, high


def _alike(gaps: str) -> list[int] | None:
    """For each group of a segment whose gaps are ``gaps`` (one character each), one past
    the last group after it reached through gaps all equal to the gap that follows it;
    ``None`` when every gap is the same (every group reaches the end)."""
    if not gaps or gaps.count(gaps[0]) == len(gaps):
        return None
    last = len(gaps)
    alike = [0] * (last + 1)
    alike[last] = last + 1
    following = ""
    for index in range(last - 1, -1, -1):
        gap = gaps[index]
        alike[index] = alike[index + 1] if gap == following else index + 2
        following = gap
    return alike


def _most_digits(run: str) -> int:
    """The most digits a sub-run of ``run`` can have: every sub-run but the whole run (which
    is skipped) leaves out its first or its last group at least."""
    digits = digits_in(run)
    first = len(run) - len(run.lstrip(_DIGITS))
    last = len(run) - len(run.rstrip(_DIGITS))
    return digits - min(first, last)
