# SPDX-License-Identifier: Apache-2.0
"""Recognising haechi's own markers, so a response that echoes them is not re-detected.

Models often repeat what they were given: ``[REDACTED:email]``, ``[TOKEN:tok_email_...]`` or
``[HAECHI_ENC:...]``. On the response direction a finding that overlaps one of these markers
is skipped, but only when the marker is *genuine*:

* ``REDACTED``: the inner part is a lowercase identifier (a detection type);
* ``TOKEN``: a vault id ``tok_<type>_<16+ lowercase hex>`` or ``<type>:<8+ lowercase hex>``;
* ``HAECHI_ENC``: unpadded base64url that round-trips exactly and decodes to a UTF-8 JSON
  object carrying string ``kid`` and ``aadHash`` (an encryption envelope).

A correctly shaped TOKEN or REDACTED marker is still not genuine when any rule detects
something in its inner text, or in its ``<type>`` segment scanned alone: this catches a
secret dressed up as a marker (``[REDACTED:sk-ant-...]``) and a lowercase secret glued into
one (``[TOKEN:tok_<secret>_0123456789abcdef]``). Requests never trust markers: a client can
type anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Final

__all__ = ["MarkerCheck", "genuine_marker_spans", "is_genuine_marker"]

#: Answers "does any rule detect something in this text?"
MarkerCheck = Callable[[str], bool]

_MARKER: Final = re.compile(r"\[(TOKEN|HAECHI_ENC|REDACTED):([^\]]*)\]")
_IDENTIFIER: Final = re.compile(r"[a-z][a-z0-9_]*")
_VAULT_TOKEN: Final = re.compile(r"tok_([a-z0-9_]+)_[0-9a-f]{16,}")
_HASH_TOKEN: Final = re.compile(r"([a-z][a-z0-9_]*):[0-9a-f]{8,}")
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")


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


def _type_segment(kind: str, inner: str) -> str | None:
    """The ``<type>`` part of a well-shaped TOKEN/REDACTED inner, or ``None`` if ill-shaped."""
    if kind == "REDACTED":
        return inner if _IDENTIFIER.fullmatch(inner) else None
    for shape in (_VAULT_TOKEN, _HASH_TOKEN):
        match = shape.fullmatch(inner)
        if match:
            return match.group(1)
    return None


def _genuine(kind: str, inner: str, detects: MarkerCheck) -> bool:
    if kind == "HAECHI_ENC":
        return _is_envelope(inner)
    segment = _type_segment(kind, inner)
    if segment is None:
        return False
    return not detects(inner) and not detects(segment)


def genuine_marker_spans(text: str, detects: MarkerCheck) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the genuine markers in ``text``."""
    if "[" not in text:
        return []
    return [
        match.span()
        for match in _MARKER.finditer(text)
        if _genuine(match.group(1), match.group(2), detects)
    ]


def is_genuine_marker(text: str, detects: MarkerCheck) -> bool:
    """Whether ``text`` (ignoring surrounding whitespace) is exactly one genuine marker."""
    match = _MARKER.fullmatch(text.strip())
    return match is not None and _genuine(match.group(1), match.group(2), detects)
