# SPDX-License-Identifier: Apache-2.0
"""Overlap resolution for the detections of one leaf.

Several rules often match the same characters: ``Bearer eyJ...`` is a bearer token and a
JWT, a 12-digit run can be both a My Number and an Aadhaar number, an email address can
contain a card number (``4242424242424242@x.co``). After sorting by start, then longest
first, then catalogue order:

1. A hard-block detection is dropped only when an earlier kept **hard-block** detection
   contains it. A soft detection can never hide a hard-block one, so the card inside that
   email is still reported (and still blocks).
2. A soft detection is dropped when a kept hard-block detection contains it (a phone-shaped
   run inside a card number is the card), or a kept soft detection of at least its
   confidence does. A container of lower confidence never hides: ``filters.minConfidence``
   may drop it and must not take the more certain value inside with it. Of several soft
   detections of one type and span, the most confident one is kept.
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
6. A detection dropped under 1 or 2 by a container of another type is not forgotten: it goes
   into the container's :attr:`~haechi.models.Detection.nested`, so that the decision step
   can still apply its type's action when policy acts more strongly on it than on the
   container's (an SSN written as an email's local part blocks when SSNs block).

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

    ``confirm(i)``, when given, is asked before ``detections[i]`` is kept or nested; a
    detection it refuses is treated as if it were not in the list.
    """
    if confirm is None and len(detections) < 2:
        return list(detections)
    ordered = sorted(
        range(len(detections)),
        key=lambda i: (detections[i].start, detections[i].start - detections[i].end, i),
    )
    kept: list[Detection] = []
    # The kept hard-block detection reaching farthest, and the kept soft detection (injection
    # aside) reaching farthest at each confidence: rules have few distinct confidences, so the
    # lookup stays short however many are kept.
    hard_reach: Detection | None = None
    soft_reach: dict[float, Detection] = {}
    nested: dict[int, list[Detection]] = {}
    for index in ordered:
        detection = detections[index]
        container = _container(detection, hard_reach, soft_reach)
        if container is not None and not _distinct_twin(detection, kept):
            named = detection.type not in (container.type, _INJECTION)
            if (named or detection.nested) and (confirm is None or confirm(index)):
                inside = nested.setdefault(id(container), [])
                if named:
                    inside.append(detection)
                inside.extend(detection.nested)
            continue
        if confirm is not None and not confirm(index):
            continue
        if detection.hard_block:
            if hard_reach is None or detection.end > hard_reach.end:
                hard_reach = detection
        elif detection.type != _INJECTION:
            held = soft_reach.get(detection.confidence)
            if held is None or detection.end > held.end:
                soft_reach[detection.confidence] = detection
            _drop_less_confident_twins(detection, kept, soft_reach, nested)
        kept.append(detection)
    if not nested:
        return kept
    return [_with_nested(one, nested[id(one)]) if nested.get(id(one)) else one for one in kept]


def _with_nested(detection: Detection, inside: list[Detection]) -> Detection:
    # Built directly: ``dataclasses.replace`` costs several times more, on most requests that
    # hold a secret (a provider key is also a generic assignment).
    return Detection(
        detection.type,
        detection.rule_id,
        detection.path,
        detection.kind,
        detection.start,
        detection.end,
        detection.confidence,
        detection.value,
        detection.hard_block,
        (*detection.nested, *inside),
    )


def _drop_less_confident_twins(
    detection: Detection,
    kept: list[Detection],
    soft_reach: dict[float, Detection],
    nested: dict[int, list[Detection]],
) -> None:
    """Remove from ``kept`` the soft detections of this span and type but lower confidence:
    ``detection`` names the value (one finding per value, the most confident one), and takes
    over what they contain and the reach they held.

    ``kept`` is in start order, so the twins, if any, are at its end.
    """
    index = len(kept)
    while index and kept[index - 1].start == detection.start:
        index -= 1
        other = kept[index]
        if (
            other.end == detection.end
            and other.type == detection.type
            and not other.hard_block
            and other.confidence < detection.confidence
        ):
            del kept[index]
            nested.setdefault(id(detection), []).extend((*other.nested, *nested.pop(id(other), ())))
            for confidence, held in soft_reach.items():
                if held is other:
                    soft_reach[confidence] = detection


def _container(
    detection: Detection, hard_reach: Detection | None, soft_reach: dict[float, Detection]
) -> Detection | None:
    """A kept detection that contains ``detection`` and is removed by nothing that would
    leave ``detection``: a hard-block one, or (for a soft detection) a soft one of at least
    its confidence; one of another type if there is one. ``None`` if there is none.

    Kept detections all start at or before ``detection``, so containing it means reaching
    its end.
    """
    found = None
    if hard_reach is not None and detection.end <= hard_reach.end:
        if hard_reach.type != detection.type:
            return hard_reach
        found = hard_reach
    if detection.hard_block:
        return found
    for confidence, held in soft_reach.items():
        if held.end >= detection.end and confidence >= detection.confidence:
            if held.type != detection.type:
                return held
            found = held
    return found


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
