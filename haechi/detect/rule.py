# SPDX-License-Identifier: Apache-2.0
"""The shape of one detection rule: data, not code.

The catalogue is a list of :class:`Rule` values. The engine compiles each pattern once per
runtime, runs it only when its cheap prefilter says the leaf could match, and confirms each
candidate with the rule's validator (checksums, issuer ranges, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["HARD_BLOCK_TYPES", "Rule", "Validator"]

#: Types that neither ``filters.minConfidence`` nor ``filters.allowlist`` can suppress.
HARD_BLOCK_TYPES: Final[frozenset[str]] = frozenset(
    {"secret", "api_key", "kr_rrn", "card", "fr_nir", "es_dni", "it_codice_fiscale", "sg_nric"}
)

#: A validator receives the matched text (after NFKC folding) and confirms or rejects it.
Validator = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Rule:
    """One detection rule.

    Attributes:
        id: stable rule id (``ruleId`` in findings and audit).
        type: detection type that policy acts on (``email``, ``secret``, ``de_steuer_id``...).
        pattern: Python regular expression. If it has a group named ``value``, only that
            group is the finding (assignment rules keep the key and replace the value).
        confidence: fixed confidence of a match, in [0, 1].
        description: one-line summary shown by ``haechi rules``.
        validator: optional confirmation of a candidate match.
        validator_name: how ``haechi rules`` names the validator.
        direction: ``"response"`` for rules that only run on responses (injection), or
            ``None`` for both directions.
        ignore_case: match case-insensitively.
        prefilter: literal substrings (compared case-insensitively); when non-empty the rule
            runs only on text that contains at least one of them.
        hard_block: overrides the type-based default of :data:`HARD_BLOCK_TYPES`.
        min_digits: every match contains a digit run of at least this many digits (digits
            may be split by up to two of whitespace and ``.-/()``, as in ``(02) 9876-5432``);
            the engine skips the rule on text without such a run. ``0`` = no requirement.
        sub_run_digits: for a value written as digit groups (a card, a resident number)
            that must not be lost next to other digit groups: the fewest digits it has inside
            one digit run. The engine then also runs the rule on the sub-runs of longer runs
            (:mod:`haechi.detect.subruns`). Needs a digit prefilter and a pattern of bounded
            width. ``0`` = never.
        sub_run_joiners: for a ``sub_run_digits`` rule whose matches split their digit
            groups by one character of this string, the same one throughout (a card's
            groups: one space, dot, dash or underscore, never a tab). Sub-runs whose groups
            are split otherwise are skipped, since no match spans them: a table of numbers
            split by tabs or line breaks, or a list of IP addresses, is not cut into
            thousands of sub-runs to rescan. ``""`` = any split.
        anchored: every match starts where one of the ``prefilter`` literals occurs
            (compared case-insensitively), so the engine tries the pattern only at those
            places instead of scanning the whole text for it.
    """

    id: str
    type: str
    pattern: str
    confidence: float
    description: str
    validator: Validator | None = None
    validator_name: str | None = None
    direction: Literal["request", "response"] | None = None
    ignore_case: bool = False
    prefilter: tuple[str, ...] = ()
    hard_block: bool | None = None
    min_digits: int = 0
    sub_run_digits: int = 0
    sub_run_joiners: str = ""
    anchored: bool = False

    @property
    def is_hard_block(self) -> bool:
        """Whether precision dials may never suppress this rule's findings."""
        if self.hard_block is not None:
            return self.hard_block
        return self.type in HARD_BLOCK_TYPES
