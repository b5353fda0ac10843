# SPDX-License-Identifier: Apache-2.0
"""What the two ends of an oversized message line say about the message.

A stdio line over the length limit is never read whole: it is skipped up to its end, and
only its first and last :data:`KEPT_BYTES` are kept. Its sender's peer may still wait for an
answer to it, and the id that answer needs is nearly always at one end of the line, because
the large part is one member (``params``, ``result``) and encoders write the id either
before it (``{"jsonrpc", "id", "result"}``, as Python's SDK does) or after it
(``{"result", "jsonrpc", "id"}``, as TypeScript's does). :func:`line_ends` reads the members
at the start of the object forward, as far as each is whole, and the scalar members at its
end backward.

What is read here only chooses where a refusal goes and which id it carries; nothing of it
is forwarded. A line crafted to be misread (it can only be misread at its ends) can at
worst make its sender's own peer get an error for a request it is waiting for, which the
sender could have sent itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["KEPT_BYTES", "LineEnds", "line_ends"]

#: How many bytes of each end of an oversized line are kept.
KEPT_BYTES: Final = 64 * 1024

_SPACE: Final = " \t\r\n"
#: Characters a JSON number, ``true``, ``false`` or ``null`` is written with.
_SCALAR: Final = frozenset("0123456789+-.eEtruefalsn")
_DECODER: Final = json.JSONDecoder()


@dataclass(frozen=True)
class LineEnds:
    """The members read at the ends of one object: ``members`` those read whole (the last
    one of a name wins, as JSON readers take it), ``names`` every member name seen,
    including that of a member cut by the part of the line that was not kept."""

    members: dict[str, Any] = field(default_factory=dict)
    names: frozenset[str] = frozenset()


def line_ends(head: bytes, tail: bytes) -> LineEnds:
    """What the start ``head`` and the end ``tail`` of one line say (see the module)."""
    first, cut = _leading(_text(head))
    last = _trailing(_text(tail))
    return LineEnds({**first, **last}, frozenset({*first, *cut, *last}))


def _text(data: bytes) -> str:
    # A kept end may start or stop inside a character: its bytes stay apart, unread.
    return data.decode("utf-8", errors="surrogateescape")


def _forward(text: str, index: int) -> int:
    while index < len(text) and text[index] in _SPACE:
        index += 1
    return index


def _backward(text: str, index: int) -> int:
    while index > 0 and text[index - 1] in _SPACE:
        index -= 1
    return index


def _leading(text: str) -> tuple[dict[str, Any], set[str]]:
    """The whole members at the start of the object ``text`` starts, and the name of a
    member whose value goes past the end of ``text`` (if any)."""
    members: dict[str, Any] = {}
    cut: set[str] = set()
    index = _forward(text, 0)
    if not text.startswith("{", index):
        return members, cut
    index += 1
    while True:
        index = _forward(text, index)
        if not text.startswith('"', index):
            return members, cut
        try:
            name, index = _DECODER.raw_decode(text, index)
        except ValueError:
            return members, cut
        index = _forward(text, index)
        if not text.startswith(":", index):
            return members, cut
        try:
            value, index = _DECODER.raw_decode(text, _forward(text, index + 1))
        except (ValueError, RecursionError):
            index = len(text)
        index = _forward(text, index)
        if index == len(text):  # a number ending there may go on past it
            cut.add(name)
            return members, cut
        if text[index] not in ",}":  # not JSON, or a number read short of its exponent
            return members, cut
        members[name] = value
        if text[index] == "}":
            return members, cut
        index += 1


def _trailing(text: str) -> dict[str, Any]:
    """The scalar members at the end of the object ``text`` ends, read backward from its
    closing brace until a member whose value is not a string, number, boolean or null."""
    members: dict[str, Any] = {}
    index = _backward(text, len(text))
    if not text.endswith("}", 0, index):
        return members
    index -= 1
    while True:
        end = _backward(text, index)
        start = _string_start(text, end) if text.endswith('"', 0, end) else _scalar_start(text, end)
        colon = _backward(text, start) if start is not None else 0
        if start is None or not text.endswith(":", 0, colon):
            return members
        name_end = _backward(text, colon - 1)
        name_start = _string_start(text, name_end) if text.endswith('"', 0, name_end) else None
        if name_start is None:
            return members
        try:
            value = json.loads(text[start:end])
            name = json.loads(text[name_start:name_end])
        except (ValueError, RecursionError):
            return members
        members.setdefault(name, value)
        before = _backward(text, name_start)
        if not text.endswith(",", 0, before):
            return members
        index = before - 1


def _string_start(text: str, end: int) -> int | None:
    """Where the string whose closing quote is ``text[end - 1]`` opens: the nearest quote
    before it that an even number of backslashes precedes (inside a string every quote is
    escaped)."""
    quote = end - 1
    while True:
        quote = text.rfind('"', 0, quote)
        if quote < 0:
            return None
        slashes = quote
        while slashes > 0 and text[slashes - 1] == "\\":
            slashes -= 1
        if slashes == 0:
            return None  # backslashes escaping it may be just before the start of ``text``
        if (quote - slashes) % 2 == 0:
            return quote


def _scalar_start(text: str, end: int) -> int | None:
    start = end
    while start > 0 and text[start - 1] in _SCALAR:
        start -= 1
    # A number starting where ``text`` starts may begin before it.
    return start if 0 < start < end else None
