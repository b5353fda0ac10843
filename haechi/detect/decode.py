# SPDX-License-Identifier: Apache-2.0
"""Decode-and-rescan: the decoded views of a leaf that is one encoded token.

With ``filters.decodeAndRescan`` on, a leaf that is wholly base64, base64url or
percent-encoded is decoded and the result scanned again, so that ``NDExMTExMTExMTExMTExMQ==``
(a card number in base64) is caught. Only *canonical* encodings count: the decoded bytes must
re-encode to exactly the leaf and be valid UTF-8. Random base64-looking identifiers rarely
survive that, and the engine further limits which rules may fire on decoded text (see
``haechi.detect.engine``). Nested encodings, hex, gzip and custom alphabets are out of scope.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final
from urllib.parse import unquote

__all__ = ["MAX_LENGTH", "MIN_LENGTH", "decoded_views"]

#: Leaves shorter or longer than this (in characters) are not decoded.
MIN_LENGTH: Final = 16
MAX_LENGTH: Final = 8192

_BASE64: Final = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_PERCENT_ESCAPE: Final = re.compile(r"%[0-9A-Fa-f]{2}")
_BAD_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _utf8(raw: bytes) -> str | None:
    if not raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _base64_view(leaf: str) -> str | None:
    if len(leaf) % 4 == 0 and _BASE64.fullmatch(leaf):
        try:
            raw = base64.b64decode(leaf, validate=True)
        except (binascii.Error, ValueError):
            return None
        if base64.b64encode(raw).decode("ascii") != leaf:
            return None
        return _utf8(raw)
    if len(leaf) % 4 != 1 and _BASE64URL.fullmatch(leaf):
        try:
            raw = base64.urlsafe_b64decode(leaf + "=" * (-len(leaf) % 4))
        except (binascii.Error, ValueError):
            return None
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != leaf:
            return None
        return _utf8(raw)
    return None


def _percent_view(leaf: str) -> str | None:
    if not _PERCENT_ESCAPE.search(leaf) or _BAD_PERCENT.search(leaf):
        return None
    try:
        decoded = unquote(leaf, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return None
    return decoded if decoded != leaf else None


def decoded_views(leaf: str) -> list[str]:
    """Every decoded form of ``leaf`` worth scanning (empty for most leaves)."""
    if not MIN_LENGTH <= len(leaf) <= MAX_LENGTH:
        return []
    views = [view for view in (_base64_view(leaf), _percent_view(leaf)) if view is not None]
    return views
