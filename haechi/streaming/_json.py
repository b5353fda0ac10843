# SPDX-License-Identifier: Apache-2.0
"""JSON writing for frames that clients split into lines."""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["dumps"]

# Line readers built on ``str.splitlines`` (httpx's ``aiter_lines``, used by NDJSON clients)
# also break lines at these characters; JSON may carry them raw inside strings, so they are
# escaped to keep every frame on one line for every reader.
_LINE_BREAKERS: Final = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}
# Built once: ``json.dumps`` with options builds a new encoder on every call (every frame).
# Neither writes NaN or an infinity: JavaScript's and Go's parsers refuse them, and a
# client that skips a frame it cannot parse would join the text around it.
_UNICODE: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_ASCII: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON with the Unicode line breakers escaped.

    A value holding NaN or an infinity (Python reads ``NaN``, ``Infinity`` and a number too
    large for a double, ``1e400``, as such) raises :class:`ValueError`: written as Python
    writes it (``Infinity``), the frame would be no JSON to JavaScript's and Go's parsers,
    even where the upstream's was.
    A string holding a lone surrogate (legal as a JSON escape, not encodable as UTF-8) is
    written with ASCII escapes instead, so the frame stays what the upstream meant.
    """
    text = _UNICODE.encode(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _ASCII.encode(value)
    if "\x85" in text or "\u2028" in text or "\u2029" in text:
        text = text.translate(_LINE_BREAKERS)
    return text
