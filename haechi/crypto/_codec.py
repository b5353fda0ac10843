# SPDX-License-Identifier: Apache-2.0
"""Byte and time encodings shared by envelopes, key files and vault records.

Everything written to disk or into an envelope uses the forms the reference system writes, so
files move between the two implementations: unpadded base64url for bytes and
``YYYY-MM-DDTHH:MM:SS.mmmZ`` (JavaScript's ``toISOString``) for instants.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime

__all__ = ["b64url_decode", "b64url_encode", "format_timestamp", "parse_timestamp", "utc_now"]

_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, as Node's ``Buffer.toString("base64url")`` writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; raise ``ValueError`` on anything else.

    The alphabet is checked first because ``base64`` would otherwise silently skip foreign
    characters, and a tampered envelope must never decode to something plausible.
    """
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    stripped = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


def utc_now() -> datetime:
    """The current instant, timezone-aware (UTC)."""
    return datetime.now(UTC)


def format_timestamp(instant: datetime) -> str:
    """Millisecond ISO-8601 in UTC with a ``Z`` suffix; naive datetimes are refused.

    A naive datetime has no defined instant, and guessing one would silently move expiries.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    utc = instant.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 instant into an aware UTC datetime; raise ``ValueError`` otherwise.

    Every timestamp haechi writes carries ``Z``; a hand-edited one without an offset is read
    as UTC rather than as the host's local time, so expiry never depends on where it runs.
    An instant whose UTC form falls outside years 1 to 9999 (``0001-01-01T00:00:00+01:00``)
    is refused like any other unreadable one, not with ``OverflowError``.
    """
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None
