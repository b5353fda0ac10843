# SPDX-License-Identifier: Apache-2.0
"""The members of a request body that a lenient JSON decoder binds to a field.

A strict server reads a field from the member spelled exactly like it; others do not.
Go's ``encoding/json`` (Ollama, on its native and its OpenAI-compatible routes) binds a
member whose name equals the field's under its case folding — ASCII letters in either case,
any other character by its lower-then-upper mapping, so ``"MODEL"``, ``"Stream"``,
``stream`` spelled with a long s (U+017F) and ``input`` with a dotted capital I (U+0130)
all count, and of several the last one wins. Other decoders fold by Unicode's full case
folding. The gateway reads a body as the loosest of them would: a member is named like a
field when the names match under either folding, so that a check on a field sees every
member some server may take for it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["members_named", "named_like"]


def named_like(name: str, field: str) -> bool:
    """Whether a lenient decoder may bind the member ``name`` to ``field``."""
    if name == field:
        return True
    if len(name) != len(field) and name.isascii():
        return False
    return _go_fold(name) == _go_fold(field) or name.casefold() == field.casefold()


def members_named(body: Any, field: str) -> list[str]:
    """The names of ``body``'s members a lenient decoder may bind to ``field``, in order
    (none when ``body`` is not an object)."""
    if not isinstance(body, dict):
        return []
    return [name for name in body if named_like(name, field)]


def _go_fold(text: str) -> str:
    """``text`` as Go's JSON decoder folds member names to compare them."""
    if text.isascii():
        return text.upper()
    return "".join(_go_fold_character(character) for character in text)


def _go_fold_character(character: str) -> str:
    if character.isascii():
        return character.upper()
    # Go maps one rune to one rune (simple case mapping); Python's full mapping may give
    # several, of which the first is the simple one where it matters (U+0130 lowers to
    # "i" and a combining dot).
    folded = character.lower()[:1].upper()
    return folded if len(folded) == 1 else character
