# SPDX-License-Identifier: Apache-2.0
"""The names of a stream's windowed texts, read as the clients that add the pieces up read them.

Each streamed text other than the answer (a later choice's answer, a tool call's arguments, the
model's reasoning, a Responses output's text) has a cross-frame window of its own,
named by the fields a client adds its pieces up by: a choice's or tool call's ``index``, an
Anthropic content block's ``index``, a Responses event's ``output_index`` and
``content_index``, Gemini's ``thought`` flag. Two pieces a client adds to one text must share
a window, or a value cut between them is never seen whole; so a name is what the clients read,
not the JSON value as written. Clients do not read these fields alike:

- pydantic models in lax mode (as servers and some client libraries validate) read ``0.0``,
  ``True``, ``"0"``, ``"00"``, ``" 0"``, ``"+0"``, ``"-0"`` and ``"0.0"`` as the integer 0 or 1,
  and ``"false"``, ``"0"`` or ``"off"`` as the flag ``False``;
- JavaScript clients (openai-node, anthropic-node) index arrays with the value: ``0``,
  ``0.0``, ``-0`` and ``"0"`` are element 0, while ``"00"``, ``" 0"`` or ``true`` are other
  properties, integers past 2**53 are rounded (two of them can be one element), and
  ``Array.prototype.at`` reads a missing index as 0; any string is a true flag;
- Python list indexing (the openai and anthropic SDKs' stream accumulators) reads ``True`` as
  1 and a negative index from the end.

A position is therefore named by the one integer all of them read: an integer, a float
without a fraction, or a string of ASCII decimal digits without a leading zero, below 2**53.
A flag is ``true`` or ``false``, a missing one being ``false``. Any other spelling is read
differently by some client, and naming it raises :class:`AmbiguousName`: the stream stops
(fails closed) rather than guess which text the piece continues.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from haechi.protocols.types import FragmentSpec

__all__ = ["AmbiguousName", "position", "reader"]

#: The integers JavaScript holds exactly; past it two JSON integers can be one number.
_EXACT: Final = 2**53
_DIGITS: Final = re.compile("0|[1-9][0-9]{0,15}")


class AmbiguousName(ValueError):
    """A field that names a streamed text is written in a form clients read differently."""


def position(value: Any) -> int:
    """The list position every client reads ``value`` (an ``index``) as; raises
    :class:`AmbiguousName` when they do not agree."""
    kind = type(value)
    if kind is int:
        if 0 <= value < _EXACT:
            return int(value)
    elif kind is float:
        if value.is_integer() and 0 <= value < _EXACT:  # -0.0 is 0 to every client
            return int(value)
    elif kind is str and _DIGITS.fullmatch(value) and int(value) < _EXACT:
        return int(value)
    raise AmbiguousName("a streamed text is named by a position clients read differently")


def _optional_position(value: Any) -> int | None:
    return None if value is None else position(value)


def _required_position(value: Any) -> int:
    if value is None:  # Array.prototype.at reads it as 0, a Python list cannot
        raise AmbiguousName("a streamed text lacks the position that names it")
    return position(value)


def _flag(value: Any) -> bool:
    if value is None or type(value) is bool:
        return bool(value)
    raise AmbiguousName("a streamed text is named by a flag clients read differently")


def _as_is(value: Any) -> Any:
    return value


def reader(spec: FragmentSpec, key: str) -> Callable[[Any], Any]:
    """How the value of ``spec``'s ``key`` names a text: as a position (one the pieces must
    carry, or not), as a flag, or as it is (a label such as a Responses event's ``type``)."""
    if key in spec.positions:
        return _required_position if key in spec.required else _optional_position
    if key in spec.flags:
        return _flag
    return _as_is
