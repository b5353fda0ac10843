# SPDX-License-Identifier: Apache-2.0
"""Operator-written rules from ``filters.customRules``.

Each entry is ``{id, type, pattern, flags?, confidence?}``. Patterns are compiled with the
``regex`` module because it can bound the time of a match (its ``timeout=`` argument): a
screen for catastrophic patterns is a useful early warning, never a guarantee, so the engine
also runs every custom rule under a deadline and fails closed when it is exceeded.

Checks done when the rules are loaded (each failure is a :class:`ConfigError` naming the
rule, never echoing inspected text; the configuration runs the pattern screen,
:func:`screen_pattern`, already when the file is read):

* ``id`` non-empty and unique; ``type`` a lowercase identifier (so that its redaction and
  token markers are recognised as genuine on responses); each at most
  :data:`~haechi.models.MAX_RULE_NAME_LENGTH` characters, as the configuration requires;
* ``pattern`` at most :data:`~haechi.models.MAX_RULE_PATTERN_LENGTH` characters, no group
  containing ``+`` or ``*`` that is itself repeated (``(a+)+``, ``([a-z]+)*``,
  ``(?:x+){2,}``), no backreferences;
* ``flags`` from the letters ``dgimsuvy``: ``i``, ``m`` and ``s`` change matching, the others
  are accepted for compatibility and have no effect (every match is global);
* ``confidence`` in [0, 1], default 0.7.

Patterns use ASCII semantics for ``\\d``, ``\\w``, ``\\b`` and ``\\s``, like the built-in rules.
A custom type named like a hard-block type (``secret``, ``card``, ...) is hard-block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import regex

from haechi.detect.rule import Rule
from haechi.errors import ConfigError
from haechi.models import DEFAULT_RULE_CONFIDENCE, MAX_RULE_NAME_LENGTH, MAX_RULE_PATTERN_LENGTH

__all__ = [
    "CustomRule",
    "compile_custom_rules",
    "screen_pattern",
]


_ALLOWED_FLAGS: Final = frozenset("dgimsuvy")
_FLAG_BITS: Final = {"i": regex.IGNORECASE, "m": regex.MULTILINE, "s": regex.DOTALL}
_TYPE_NAME: Final = re.compile(r"[a-z][a-z0-9_]*")
# A group whose body holds + or * and that is followed by another quantifier.
_NESTED_QUANTIFIER: Final = re.compile(r"\((?:[^()\\]|\\.)*[+*](?:[^()\\]|\\.)*\)[+*{]")
_BACKREFERENCE: Final = re.compile(r"(?<!\\)(?:\\\\)*\\[1-9]")


@dataclass(frozen=True, slots=True)
class CustomRule:
    """A validated custom rule: its catalogue entry and its compiled pattern."""

    rule: Rule
    compiled: regex.Pattern[str]


def _fail(label: str, problem: str) -> ConfigError:
    return ConfigError(f"{label}: {problem}")


def screen_pattern(pattern: str, flags: str = "g") -> regex.Pattern[str]:
    """Screen and compile one custom pattern; :class:`ValueError` says what is wrong with it.

    The configuration calls this when it is loaded, so that ``haechi status`` and the gateway
    refuse a catastrophic or broken pattern with the file's error location, and the engine
    calls it again when it is built. ``flags`` are the custom rule's letters.
    """
    if len(pattern) > MAX_RULE_PATTERN_LENGTH:
        raise ValueError(f"pattern is longer than {MAX_RULE_PATTERN_LENGTH} characters")
    if _NESTED_QUANTIFIER.search(pattern):
        raise ValueError(
            "pattern has nested quantifiers (a repeated group that itself contains + or *); "
            "rewrite it without the outer repetition"
        )
    if _BACKREFERENCE.search(pattern):
        raise ValueError("pattern uses a backreference, which is not allowed")
    bits = regex.ASCII | regex.VERSION0
    for letter in flags:
        bits |= _FLAG_BITS.get(letter, 0)
    try:
        return regex.compile(pattern, bits)
    except regex.error as exc:
        raise ValueError(f"pattern does not compile: {exc}") from None


def _compile_one(index: int, spec: Mapping[str, Any]) -> CustomRule:
    label = f"filters.customRules[{index}]"
    rule_id = spec.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise _fail(label, "id must be a non-empty string")
    if len(rule_id) > MAX_RULE_NAME_LENGTH:
        raise _fail(label, f"id is longer than {MAX_RULE_NAME_LENGTH} characters")
    label += f" ({rule_id!r})"
    rule_type = spec.get("type")
    if not isinstance(rule_type, str) or not _TYPE_NAME.fullmatch(rule_type):
        raise _fail(label, "type must be a lowercase identifier")
    if len(rule_type) > MAX_RULE_NAME_LENGTH:
        raise _fail(label, f"type is longer than {MAX_RULE_NAME_LENGTH} characters")
    pattern = spec.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise _fail(label, "pattern must be a non-empty string")
    flags = spec.get("flags", "g")
    if not isinstance(flags, str) or not set(flags) <= _ALLOWED_FLAGS:
        raise _fail(label, "flags may only use the letters dgimsuvy")
    confidence = spec.get("confidence", DEFAULT_RULE_CONFIDENCE)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise _fail(label, "confidence must be a number")
    if not 0 <= confidence <= 1:
        raise _fail(label, "confidence must be between 0 and 1")
    try:
        compiled = screen_pattern(pattern, flags)
    except ValueError as exc:
        raise _fail(label, str(exc)) from None
    rule = Rule(
        id=rule_id,
        type=rule_type,
        pattern=pattern,
        confidence=float(confidence),
        description="Operator-written rule from filters.customRules.",
        ignore_case="i" in flags,
    )
    return CustomRule(rule=rule, compiled=compiled)


def compile_custom_rules(
    specs: Sequence[Mapping[str, Any]], *, reserved_ids: frozenset[str] = frozenset()
) -> tuple[CustomRule, ...]:
    """Validate and compile ``specs``; ``reserved_ids`` are built-in ids they may not reuse."""
    compiled: list[CustomRule] = []
    seen: set[str] = set(reserved_ids)
    for index, spec in enumerate(specs):
        if not isinstance(spec, Mapping):
            raise _fail(f"filters.customRules[{index}]", "must be an object")
        item = _compile_one(index, spec)
        if item.rule.id in seen:
            raise _fail(
                f"filters.customRules[{index}]", f"id {item.rule.id!r} is already used by a rule"
            )
        seen.add(item.rule.id)
        compiled.append(item)
    return tuple(compiled)
