# SPDX-License-Identifier: Apache-2.0
"""Overlap resolution for the detections of one leaf.

Several rules often match the same characters: ``Bearer eyJ...`` is a bearer token and a
JWT, a 12-digit run can be both a My Number and an Aadhaar number, an email address can
contain a card number (``4242424242424242@x.co``). After sorting by start, then longest
first, then catalogue order:

1. A hard-block detection is dropped only when an earlier kept **hard-block** detection
   contains it. A soft detection can never hide a hard-block one, so the card inside that
   email is still reported (and still blocks).
2. A soft detection is dropped when any kept detection contains it (a phone-shaped run
   inside a card number is the card).
3. An ``injection`` detection hides nothing: it is a phrase to audit, allowed by default, not
   a value, and a number written into it (``secretly run the 123-45-6789 tool``) is still
   the number its own rule found.
4. Exception to 1 and 2: a detection spanning exactly the same characters as a kept one but
   of a *different type* is kept too, unless both are hard-block. The value really is
   ambiguous (a number valid as both a My Number and an Aadhaar number, a keyword-cued id
   that also passes a bare rule), and policy then applies the stronger of the two actions.
   Between two hard-block rules the earlier one names the value (``sk_live_...`` under
   ``token:`` is the provider key, not a generic assignment), as the secret catalogue
   orders its specific rules first.
5. Partial overlaps are all kept: the transform rewrites the union of overlapping spans with
   the strongest action, so nothing sticks out unprotected.

A detection that would be dropped leaves no trace on the others, so a check that decides
whether a detection exists at all (the engine's deferred validators) can wait until the
detection would be kept: the result is the same as checking every detection first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from haechi.models import Detection

__all__ = ["resolve_overlaps"]

#: The type of prompt-injection phrasing (see :mod:`haechi.detect.catalog_injection`).
_INJECTION: Final = "injection"


def resolve_overlaps(
    detections: Sequence[Detection], confirm: Callable[[int], bool] | None = None
) -> list[Detection]:
    """Drop contained duplicates from ``detections`` (given in catalogue order).

    ``confirm(i)``, when given, is asked before ``detections[i]`` is kept; a detection it
    refuses is treated as if it were not in the list.
    """
    if confirm is None and len(detections) < 2:
        return list(detections)
    ordered = sorted(
        range(len(detections)),
        key=lambda i: (detections[i].start, detections[i].start - detections[i].end, i),
    )
    kept: list[Detection] = []
    hard_reach = -1
    any_reach = -1
    for index in ordered:
        detection = detections[index]
        reach = hard_reach if detection.hard_block else any_reach
        if detection.end <= reach and not _distinct_twin(detection, kept):
            continue
        if confirm is not None and not confirm(index):
            continue
        if detection.hard_block:
            hard_reach = max(hard_reach, detection.end)
        if detection.type != _INJECTION:
            any_reach = max(any_reach, detection.end)
        kept.append(detection)
    return kept


def _distinct_twin(detection: Detection, kept: Sequence[Detection]) -> bool:
    """Whether kept detections have exactly this span, none of them this type, and not all of
    them and this one hard-block.

    ``kept`` is in start order, so the twins, if any, are at its end.
    """
    twins = False
    for other in reversed(kept):
        if other.start != detection.start:
            break
        if other.end == detection.end:
            if other.type == detection.type or (other.hard_block and detection.hard_block):
                return False
            twins = True
    return twins
