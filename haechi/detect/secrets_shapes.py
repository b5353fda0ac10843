# SPDX-License-Identifier: Apache-2.0
"""Building blocks shared by the secret rule families.

Provider tokens are matched as whole runs of their alphabet: ``bounded`` wraps a body in
look-arounds so a token embedded in a longer run of the same alphabet (a hash, a base64 blob)
does not match a prefix of it. Formats without a distinctive literal are *context-gated*:
``keyed`` only matches a value that follows a key naming the provider
(``DD_API_KEY=...``, ``"cohere_api_key": "..."``), and the rule's prefilter lists that key's
literals so the engine never runs the pattern on text that cannot contain it.
"""

from __future__ import annotations

import re
from typing import Final

from haechi.detect.rule import Rule, Validator

__all__ = [
    "API_KEY_TYPE",
    "KEY_SEPARATOR",
    "SECRET_TYPE",
    "TOKEN_CHARS",
    "UUID",
    "bounded",
    "keyed",
    "secret_rule",
]

#: The two detection types of this catalogue; both are hard-block.
API_KEY_TYPE: Final = "api_key"
SECRET_TYPE: Final = "secret"  # noqa: S105 - a type name, not a credential
#: The alphabet of most URL-safe tokens, used as their boundary class.
TOKEN_CHARS: Final = "A-Za-z0-9_-"  # noqa: S105 - a character class
#: A UUID in either case.
UUID: Final = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

#: A key's closing quote, the assignment operator and the value's opening quote, in the
#: spellings of JSON (also escaped inside a string), YAML, env files, HTTP headers, PHP/Ruby
#: (``=>``) and Go (``:=``). Whitespace stays on one line so a YAML key never captures the
#: next line.
KEY_SEPARATOR: Final = r"""\\?["'`]?[ \t]*(?:=>|:=|[:=])[ \t]*\\?["'`]?"""


#: One character matched exactly as written: a literal (escaped or not) or a class.
_FIXED_CHAR: Final = re.compile(r"[A-Za-z0-9_\-]|\\[^0-9A-Za-z]|\[(?:\\.|[^\\\]])+\]")
_QUANTIFIERS: Final = ("*", "+", "?", "{")


def _fixed_head(body: str) -> int:
    """Length of the head of ``body`` made of single characters (literals and classes) that
    each match exactly once: a fixed-width start every match has (0 if there is none)."""
    end = 0
    while (match := _FIXED_CHAR.match(body, end)) is not None:
        if body[match.end() : match.end() + 1] in _QUANTIFIERS:
            break
        end = match.end()
    return end


def bounded(body: str, chars: str = "A-Za-z0-9_") -> str:
    """Match ``body`` only when no character of the class ``[chars]`` touches either end.

    The left boundary is checked looking back from the end of the body's fixed head
    (``sk_`` in ``sk_[A-Za-z0-9]{24}``): the same condition as a look-behind in front, but a
    pattern that starts with its head lets the regex engine skip straight to it instead of
    trying every position of the text.
    """
    head = _fixed_head(body)
    if head == 0:
        return rf"(?<![{chars}]){body}(?![{chars}])"
    return rf"{body[:head]}(?<![{chars}]{body[:head]}){body[head:]}(?![{chars}])"


def keyed(key: str, value: str, tail: str = "A-Za-z0-9_") -> str:
    """Match ``value`` (as the ``value`` group) when it follows ``key`` and a separator.

    ``key`` is matched case-insensitively; a key directly after ``[`` is skipped so haechi's own
    ``[TOKEN:...]`` markers are never read as assignments.
    """
    return rf"(?<!\[)(?i:{key}){KEY_SEPARATOR}(?P<value>{value})(?![{tail}])"


def secret_rule(
    rule_id: str,
    rule_type: str,
    pattern: str,
    prefilter: tuple[str, ...],
    description: str,
    *,
    validator: Validator | None = None,
    confidence: float = 0.95,
    ignore_case: bool = False,
    anchored: bool = False,
) -> Rule:
    """Build a secret :class:`Rule`; the validator's name is the function's ``__name__``.

    Prefilter literals are stored lower-cased because the engine compares them with the
    lower-cased text.
    """
    if not prefilter:
        raise ValueError(f"secret rule {rule_id} needs a prefilter")
    return Rule(
        id=rule_id,
        type=rule_type,
        pattern=pattern,
        confidence=confidence,
        description=description,
        validator=validator,
        validator_name=None if validator is None else validator.__name__,
        ignore_case=ignore_case,
        prefilter=tuple(p.lower() for p in prefilter),
        anchored=anchored,
    )
