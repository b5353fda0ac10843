# SPDX-License-Identifier: Apache-2.0
"""Recognising haechi's own markers, so a response that echoes them is not re-detected.

Models often repeat what they were given: ``[REDACTED:email]``, ``[TOKEN:tok_email_...]`` or
``[HAECHI_ENC:...]``. On the response direction a finding inside one of these markers is
skipped, and so is one that overlaps it when the text with the markers cut out holds
nothing a rule detects there (see ``DetectionEngine``), but only when the marker is
*genuine*:

* ``REDACTED``: the inner part is a lowercase identifier (a detection type);
* ``TOKEN``: a vault id ``tok_<type>_<16+ lowercase hex>`` or ``<type>:<8+ lowercase hex>``;
* ``HAECHI_ENC``: unpadded base64url that round-trips exactly and decodes to a UTF-8 JSON
  object carrying string ``kid`` and ``aadHash`` (an encryption envelope).

A correctly shaped TOKEN or REDACTED marker is still not genuine when any rule detects
something in its inner text, or in its ``<type>`` segment scanned alone. The engine does
those two scans itself (see :class:`MarkerShape`) and reports what they find: that is how a
secret dressed up as a marker (``[REDACTED:sk-ant-...]``) or glued into one without a word
boundary (``[TOKEN:tok_<secret>_0123456789abcdef]``) is caught. Requests never trust
markers: a client can type anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["MarkerCheck", "MarkerShape", "is_genuine_marker", "marker_shapes"]

#: Answers "does any rule detect something in this text?"
MarkerCheck = Callable[[str], bool]

_MARKER: Final = re.compile(r"\[(TOKEN|HAECHI_ENC|REDACTED):([^\]]*)\]")
_IDENTIFIER: Final = re.compile(r"[a-z][a-z0-9_]*")
_VAULT_TOKEN: Final = re.compile(r"tok_([a-z0-9_]+)_[0-9a-f]{16,}")
_HASH_TOKEN: Final = re.compile(r"([a-z][a-z0-9_]*):[0-9a-f]{8,}")
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class MarkerShape:
    """One ``[KIND:inner]`` span and what its shape says about it.

    ``segment`` is the ``(start, end)`` of the ``<type>`` part when a TOKEN or REDACTED inner
    is well shaped (``None`` otherwise); such a marker is genuine only if neither the inner
    text nor the segment holds a detection. ``envelope`` tells whether a HAECHI_ENC inner is
    a real encryption envelope (those are genuine without a re-scan).
    """

    start: int
    end: int
    kind: Literal["TOKEN", "HAECHI_ENC", "REDACTED"]
    inner: tuple[int, int]
    segment: tuple[int, int] | None
    envelope: bool


def _is_envelope(inner: str) -> bool:
    if not _BASE64URL.fullmatch(inner) or len(inner) % 4 == 1:
        return False
    try:
        raw = base64.urlsafe_b64decode(inner + "=" * (-len(inner) % 4))
    except (binascii.Error, ValueError):
        return False
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != inner:
        return False
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return (
        isinstance(document, dict)
        and isinstance(document.get("kid"), str)
        and isinstance(document.get("aadHash"), str)
    )


def _segment(kind: str, inner: str) -> tuple[int, int] | None:
    """The ``<type>`` part of a well-shaped TOKEN/REDACTED inner, relative to the inner."""
    if kind == "REDACTED":
        return (0, len(inner)) if _IDENTIFIER.fullmatch(inner) else None
    for shape in (_VAULT_TOKEN, _HASH_TOKEN):
        match = shape.fullmatch(inner)
        if match:
            return match.span(1)
    return None


def marker_shapes(text: str) -> list[MarkerShape]:
    """Every marker-shaped span of ``text``, genuine or not."""
    if "[" not in text:
        return []
    shapes = []
    for match in _MARKER.finditer(text):
        kind = match.group(1)
        inner_start, inner_end = match.span(2)
        inner = match.group(2)
        segment = None if kind == "HAECHI_ENC" else _segment(kind, inner)
        shapes.append(
            MarkerShape(
                start=match.start(),
                end=match.end(),
                kind=kind,  # type: ignore[arg-type]
                inner=(inner_start, inner_end),
                segment=None
                if segment is None
                else (inner_start + segment[0], inner_start + segment[1]),
                envelope=kind == "HAECHI_ENC" and _is_envelope(inner),
            )
        )
    return shapes


def is_genuine_marker(text: str, detects: MarkerCheck) -> bool:
    """Whether ``text`` (ignoring surrounding whitespace) is exactly one genuine marker."""
    stripped = text.strip()
    shapes = marker_shapes(stripped)
    if len(shapes) != 1 or (shapes[0].start, shapes[0].end) != (0, len(stripped)):
        return False
    shape = shapes[0]
    if shape.kind == "HAECHI_ENC":
        return shape.envelope
    if shape.segment is None:
        return False
    inner = stripped[shape.inner[0] : shape.inner[1]]
    segment = stripped[shape.segment[0] : shape.segment[1]]
    return not detects(inner) and not detects(segment)
