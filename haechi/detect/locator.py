# SPDX-License-Identifier: Apache-2.0
"""One combined regex that tells which of a group of rules can match a text at all.

Prose is full of short numbers (years, prices, times) that open the digit gate of dozens of
number-shaped rules, although none of them matches. Running each of those regexes over the
leaf costs one pass per rule. The locator folds the group into a single pass:

    [union of first characters](?=(?:(?<=first_0)rest_0|(?<=first_1)rest_1|...))
        (?:(?<=first_0)(?=rest_0)(?P<_w0>))?(?:(?<=first_1)(?=rest_1)(?P<_w1>))?...

For a rule written ``first rest`` (its pattern starts with one character or character class),
alternative ``i`` matches at a position exactly when the rule's own pattern matches there:
``first`` is checked by the one-character look-behind and ``rest`` runs unchanged from the
next character, look-arounds included. The look-ahead rejects a position where no rule
matches in one pass; where one does, the empty marker group ``_w<i>`` of every rule that
matches there takes part in the match. Each match consumes one character, so ``finditer``
visits every candidate position: the rules whose marker never takes part cannot match and
are skipped, the others run one by one as usual (the locator never decides what a finding
is). A phone number thus opens the phone rules that can read it, not every number rule.

A rule joins the group only when its pattern splits cleanly that way, its first class holds
no lowercase letter (the union must stay rare in prose), and it has no numbered
backreference. Named groups are renamed per alternative so they cannot clash.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

__all__ = ["build_locator", "leading_token"]

# One leading character: a bracket class, an escaped punctuation character, or a plain
# literal character.
_FIRST_TOKEN: Final = re.compile(r"\[(?:\\.|[^\\\]])+\]|\\[^0-9A-Za-z]|[^\\\[\](){}.*+?^$|]")
_GROUP_DEFINITION: Final = re.compile(r"\(\?P<([A-Za-z_][A-Za-z0-9_]*)>")
_GROUP_REFERENCE: Final = re.compile(r"\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)")
_NUMBERED_REFERENCE: Final = re.compile(r"\\[1-9]")
_LOWERCASE: Final = "abcdefghijklmnopqrstuvwxyz"


def leading_token(pattern: str) -> str | None:
    """The one character or class ``pattern`` starts with, matched exactly once (not followed
    by a quantifier), or ``None``."""
    match = _FIRST_TOKEN.match(pattern)
    if match is None or pattern[match.end() : match.end() + 1] in ("*", "+", "?", "{"):
        return None
    return match.group()


def _split(pattern: str) -> tuple[str, str, str] | None:
    """``(first, class body for the union, rest)``, or ``None`` if the pattern does not fit."""
    first = leading_token(pattern)
    if first is None or first.startswith("[^"):
        return None
    rest = pattern[len(first) :]
    if _NUMBERED_REFERENCE.search(rest):
        return None
    try:
        if re.compile(first, re.ASCII).search(_LOWERCASE):
            return None
    except re.error:
        return None
    if first.startswith("["):
        body = first[1:-1]
        # A hyphen at either end is literal in its own class but would form a range once
        # classes are concatenated.
        if body.endswith("-") and not body.endswith("\\-"):
            body = body[:-1] + "\\-"
        if body.startswith("-"):
            body = "\\" + body
    elif first.startswith("\\"):
        body = first
    else:
        body = re.escape(first)
    return first, body, rest


def _renamed(rest: str, prefix: str) -> str:
    """``rest`` with every named group (and reference to one) prefixed by ``prefix``."""

    def definition(match: re.Match[str]) -> str:
        return f"(?P<{prefix}{match[1]}>"

    def reference(match: re.Match[str]) -> str:
        return f"(?P={prefix}{match[1]})"

    return _GROUP_REFERENCE.sub(reference, _GROUP_DEFINITION.sub(definition, rest))


def _leading_assertion(rest: str) -> tuple[str, str]:
    """Split a leading look-behind (``(?<!...)`` or ``(?<=...)``) off ``rest``.

    Returns ``("", rest)`` when ``rest`` does not start with one. Parentheses are counted
    outside character classes and escapes, so nested groups are kept whole.
    """
    if not rest.startswith(("(?<!", "(?<=")):
        return "", rest
    depth = 0
    index = 0
    in_class = False
    while index < len(rest):
        char = rest[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return rest[: index + 1], rest[index + 1 :]
        index += 1
    return "", rest


def _factored(rests: Sequence[str]) -> str:
    """The alternation of ``rests``, those starting with the same look-behind sharing it."""
    by_lead: dict[str, list[str]] = {}
    for rest in rests:
        lead, remainder = _leading_assertion(rest)
        by_lead.setdefault(lead, []).append(remainder)
    return "|".join(
        f"{lead}(?:{'|'.join(remainders)})" if lead else "|".join(remainders)
        for lead, remainders in by_lead.items()
    )


def build_locator(patterns: Sequence[str]) -> tuple[re.Pattern[str] | None, frozenset[int]]:
    """The combined regex for ``patterns`` (compiled with ASCII semantics, case-sensitive),
    and the indices of the patterns it covers; pattern ``i`` matches where the locator's
    group ``_w<i>`` takes part in a match.

    Alternatives that begin with the same first character class and the same look-behind
    share them (``A B1 | A B2`` is ``A (B1 | B2)`` for a zero-width ``A``), and so do those
    that then begin with the same second look-behind (``patterns.AFTER_LETTER``). A
    look-behind that every alternative begins with is hoisted in front of the alternation,
    so at a digit inside a longer number (see ``patterns.NOT_INSIDE_NUMBER``) one test
    rejects them all.
    """
    bodies: list[str] = []
    groups: dict[tuple[str, str], list[str]] = {}
    markers: list[tuple[int, str, str, str]] = []
    for index, pattern in enumerate(patterns):
        split = _split(pattern)
        if split is None:
            continue
        first, body, rest = split
        guard, remainder = _leading_assertion(_renamed(rest, f"_l{index}_"))
        if body not in bodies:
            bodies.append(body)
        groups.setdefault((first, guard), []).append(remainder)
        # The markers repeat the alternatives, with their own group names.
        _guard, marked = _leading_assertion(_renamed(rest, f"_m{index}_"))
        markers.append((index, first, guard, marked))
    if not groups:
        return None, frozenset()
    # A look-behind every alternative starts with is tested once, before the alternation.
    shared = "" if len({guard for _first, guard in groups}) != 1 else next(iter(groups))[1]
    alternatives = "|".join(
        f"(?<={first}){'' if shared else guard}(?:{_factored(rests)})"
        for (first, guard), rests in groups.items()
    )
    marked = "".join(
        f"(?:(?<={first}){'' if shared else guard}(?={rest})(?P<_w{index}>))?"
        for index, first, guard, rest in markers
    )
    try:
        locator = re.compile(f"[{''.join(bodies)}]{shared}(?={alternatives}){marked}", re.ASCII)
    except re.error:
        return None, frozenset()
    return locator, frozenset(index for index, *_rest in markers)
