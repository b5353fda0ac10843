# SPDX-License-Identifier: Apache-2.0
"""JSON files read with every key of an object given once.

JSON readers differ on a key given twice: Python's, like most, keeps the last value, some
keep the first. A file haechi reads its settings or its tokens from is edited by hand, and a
line added above one already there (``"disabled": true`` over a ``"disabled": false``) would
be read as the line below, so the change made by the edit is lost without a word. Such a
file is refused instead, as :func:`json.loads` with this hook makes it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RepeatedKey", "members_once"]


class RepeatedKey(ValueError):
    """An object of the document gives ``key`` twice (the key may hold anything typed in
    the file: whoever names it in a message decides whether it may be shown)."""

    def __init__(self, key: str) -> None:
        super().__init__("a key is given twice in one object")
        self.key = key


def members_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` of :func:`json.loads`: the object of ``pairs``, or
    :class:`RepeatedKey` naming the first key given twice."""
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise RepeatedKey(key)
            seen.add(key)
    return members
