# SPDX-License-Identifier: Apache-2.0
"""The detection engine: compile the catalogue once, then find PII and secrets in leaves.

Per leaf the engine

1. skips response-side number leaves unless ``scan_numbers`` (durations and timestamps in
   model metadata are not card numbers);
2. folds the text with NFKC (see :mod:`haechi.detect.unicode`) and picks the rules that can
   possibly match it with cheap prefilter passes (literals and digit runs, see
   :mod:`haechi.detect.prefilter`, then one combined locator pass for the number-shaped
   rules, see :mod:`haechi.detect.locator`), unless the leaf is a short text in which
   nothing was found before (see ``_QuietLeaves``: steps 2 to 4 are then skipped);
3. runs those rules, confirming candidates with their validators on the folded text (a
   candidate that repeats an earlier hit is confirmed only if step 6 would keep it), and
   drops a number rule's match inside a hexadecimal id (:mod:`haechi.detect.hexids`);
4. re-scans marker-shaped spans, reporting what hides in fake markers, and on responses
   skips findings that haechi's own genuine markers account for (:mod:`haechi.detect.markers`):
   those inside a marker, and those overlapping one that hold nothing a rule detects once
   the markers are cut out of the text;
5. adds a whole-value ``secret`` finding when the leaf sits under a sensitive key
   (``password``, ``api_key``, ...; under ambiguous keys such as ``token``, which LLM APIs
   use for vocabulary pieces, only when the value looks like a credential);
6. resolves overlaps (:mod:`haechi.detect.overlaps`);
7. with decode-and-rescan on, scans the decoded forms of an encoded leaf
   (:mod:`haechi.detect.decode`).

Offsets are Python string indices into the original text: ``text[start:end] == value``.
Any failure while inspecting (a validator raising, a custom rule running out of time) raises
:class:`haechi.errors.DetectionError`; callers block and audit.
"""

from __future__ import annotations

import importlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Final, NamedTuple

from haechi.detect.budget import InspectionBudget, current_budget
from haechi.detect.catalog_secrets import key_names_secret
from haechi.detect.custom import compile_custom_rules
from haechi.detect.decode import decoded_views
from haechi.detect.hexids import inside_hex_id
from haechi.detect.locator import build_locator, leading_token
from haechi.detect.markers import MarkerCheck, MarkerShape, is_genuine_marker, marker_shapes
from haechi.detect.overlaps import resolve_overlaps
from haechi.detect.patterns import head_groups
from haechi.detect.prefilter import DigitRuns, LiteralScanner
from haechi.detect.rule import Rule
from haechi.detect.subruns import sub_runs
from haechi.detect.unicode import as_read, fold
from haechi.errors import DetectionError, LimitError
from haechi.models import Detection, Direction, Entry, EntryKind, PathSegment

__all__ = ["KEY_NAME_RULE_ID", "DetectionEngine"]

#: ``ruleId`` of the whole-value finding for a value under a sensitive key.
KEY_NAME_RULE_ID: Final = "key-name-secret"
_KEY_NAME_CONFIDENCE: Final = 0.9
_DIGIT_LITERALS: Final = frozenset("0123456789")
# A windowed rule looks this far beyond its longest possible match, so that look-arounds at a
# window's edge still see the real neighbouring characters. Reaches are rounded up to a
# multiple of _REACH_STEP so that rules of similar width share one set of windows.
_WINDOW_MARGIN: Final = 8
_REACH_STEP: Final = 16
_MAX_WINDOWED_WIDTH: Final = 128
# Number rules that need a digit run of at least one of these many digits share a locator
# that only searches around such runs (see _Locator); the others share one for whole texts.
_LONG_RUNS: Final = (6, 9)
# A pattern starting with a run of one class not preceded by that class (see _run_chars).
_RUN_HEAD: Final = re.compile(r"\(\?<!\[(?P<members>(?:\\.|[^\]\\])+)\]\)\[(?P=members)\]\+")
# The levels of digits that windowed rules search around (see _Compiled.window_digits).
_WINDOW_DIGITS: Final = (2, *_LONG_RUNS, 13)
# How many distinct sets of rules a rule set remembers in catalogue order.
_CHOSEN_SETS: Final = 4096
# Leaves of at most this many characters in which no rule found anything are remembered,
# up to this many per direction (see _QuietLeaves).
_QUIET_LENGTH: Final = 64
_QUIET_LEAVES: Final = 4096
# How many times a text is read as a reader reads it (see unicode.as_read), each reading of
# the one before: HTML escaped twice (``&amp;#64;``) or JSON escapes in HTML take two. Each
# reading costs a scan of the text, and a text escaped over and over must not cost one per
# level.
_READINGS: Final = 4


@dataclass(frozen=True, slots=True)
class _Compiled:
    """One rule ready to run: its pattern, its gate and its place in the catalogue."""

    rule: Rule
    #: ``finditer(text, start, end)`` of the compiled pattern (time-bounded for custom rules).
    finditer: Callable[[str, int, int], Iterator[Any]]
    literals: frozenset[str]
    #: The finding is the ``value`` group, or starts at the first ``head`` look-behind group
    #: that took part in the match (see :func:`haechi.detect.patterns.head_groups`).
    value_group: bool
    head_groups: tuple[str, ...]
    hard_block: bool
    #: For digit-gated rules of bounded width: how far around a digit run a match can reach,
    #: and the digits such a run has at least (the rule's ``min_digits`` rounded down to one
    #: of a few levels, so that rules share their windows).
    reach: int | None = None
    window_digits: int = 0
    #: For rules with ``sub_run_digits``: their longest match, the bound of the sub-runs
    #: they are retried on (see :mod:`haechi.detect.subruns`).
    split_width: int | None = None
    #: For ``anchored`` rules: ``match(text, pos)`` of the pattern, tried at each place one
    #: of the rule's literals occurs.
    match: Callable[[str, int], Any] | None = None
    #: For ``anchored`` rules, when known: the ASCII characters a match can start with.
    #: Literals are found case-insensitively, so ``ac`` occurs all over prose while a
    #: Twilio SID starts with a capital ``A``.
    first_chars: frozenset[str] | None = None
    #: For rules that start with a run of one class right before one of their literals (an
    #: e-mail address's local part before its ``@``): the ASCII characters of that class.
    #: Such a rule is tried only at the start of the run before each occurrence.
    run_chars: frozenset[str] | None = None

    @property
    def decodable(self) -> bool:
        """Whether the rule may fire on decoded text (the decode-and-rescan precision guard)."""
        if self.hard_block:
            return True
        return self.rule.validator is not None and self.rule.type != "phone"


#: What makes two hits interchangeable for overlap resolution: span, type and hard-block.
_Key = tuple[int, int, str, bool]


class _Hit(NamedTuple):
    rule: _Compiled
    start: int
    end: int
    #: The candidate text when the validator has not run yet: the hit repeats the key of an
    #: earlier one, so overlap resolution decides whether its verdict matters at all.
    unconfirmed: str | None = None


class _Leaf(NamedTuple):
    """What the prefilters learned about one text: its digit runs and the rules to run.

    ``sub_run_only`` are hard-block number rules the locator ruled out on the text as a
    whole; they may still match a sub-run of a longer digit run.
    """

    runs: DigitRuns
    rules: Sequence[_Compiled]
    sub_run_only: Sequence[_Compiled] = ()
    #: The lowercased text, when its offsets are the text's (for anchored rules).
    lowered: str | None = None


@dataclass(frozen=True, slots=True)
class _Locator:
    """One combined pass standing for the number rules it covers: ``markers`` pairs the
    number of each rule's marker group in ``pattern`` with the rule's bit in the rule set's
    masks (see :mod:`haechi.detect.locator`); ``mask`` has every covered rule's bit.

    With a ``reach``, every covered rule needs a digit run of at least ``min_digits`` digits
    and matches within ``reach`` characters of it, so the pass only searches windows around
    such runs: on code and logs, full of short numbers, that is a small part of the text.
    """

    pattern: re.Pattern[str]
    markers: tuple[tuple[int, int], ...]
    mask: int
    min_digits: int = 0
    reach: int | None = None

    def possible(self, text: str, runs: DigitRuns) -> int:
        """The mask of the covered rules that may match ``text`` (over-approximated, never
        under)."""
        windows = None if self.reach is None else runs.around(self.min_digits, self.reach)
        possible = 0
        budget = current_budget()
        for low, high in windows or ((0, len(text)),):
            for match in self.pattern.finditer(text, low, high):
                if budget is not None:
                    budget.step()
                groups = match.groups()
                for group, bit in self.markers:
                    if groups[group - 1] is not None:
                        possible |= bit
                if possible == self.mask:
                    return possible
        return possible


def _mask(indices: Iterable[int]) -> int:
    mask = 0
    for index in indices:
        mask |= 1 << index
    return mask


def _indices(mask: int) -> Iterator[int]:
    """The set bits of ``mask``, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class _QuietLeaves:
    """Short leaf texts (or marker parts) in which no rule of one direction found anything.

    Keys, roles, model names and other short values repeat in every request; remembering
    that their rules find nothing skips folding, prefilters and rules for them. Only texts
    whose whole scan found nothing are kept (never a text holding a detected value, and a
    text that a later scan detects, or that equals a value detected elsewhere, is dropped
    at once); they are short and at most ``_QUIET_LEAVES`` of them are kept, the set is
    emptied when full. What depends on the path (key-name context) or on decoding is
    still done on every scan.
    """

    __slots__ = ("_texts",)

    def __init__(self) -> None:
        self._texts: dict[str, None] = {}

    def __contains__(self, text: str) -> bool:
        return len(text) <= _QUIET_LENGTH and text in self._texts

    def add(self, text: str) -> None:
        """Remember ``text`` (its scan found nothing, and it needs no folding)."""
        if len(text) > _QUIET_LENGTH:
            return
        if len(self._texts) >= _QUIET_LEAVES:
            self._texts.clear()
        self._texts[text] = None

    def discard(self, text: str) -> None:
        """Forget ``text``: it is, or it holds, a detected value."""
        if len(text) <= _QUIET_LENGTH:
            self._texts.pop(text, None)


class _RuleSet:
    """The rules of one direction, indexed by what gates them.

    Sets of rules are bit masks over the rule indices (bit ``i`` is ``rules[i]``), so that
    picking a leaf's rules is a few integer operations; the rules of a mask, in catalogue
    order, are remembered per mask (a mask says nothing about the text it came from).
    """

    def __init__(self, rules: Sequence[_Compiled]) -> None:
        self.rules = tuple(rules)
        self.scanner = LiteralScanner(lit for c in rules for lit in c.literals)
        self.by_literal: dict[str, int] = {}
        digit_gated: list[int] = []
        ungated: list[int] = []
        for index, compiled in enumerate(self.rules):
            if compiled.literals:
                for literal in compiled.literals:
                    self.by_literal[literal] = self.by_literal.get(literal, 0) | 1 << index
            elif set(compiled.rule.prefilter) == _DIGIT_LITERALS:
                digit_gated.append(index)
            else:
                ungated.append(index)
        self.ungated = _mask(ungated)
        self.max_digits = max((c.rule.min_digits for c in self.rules), default=0) or 1
        #: Runs of digit groups with more digits than this may hide a sub-run value.
        self.sub_run_digits = min(
            (c.rule.sub_run_digits for c in self.rules if c.split_width is not None),
            default=None,
        )
        self.splittable = _mask(i for i, c in enumerate(self.rules) if c.split_width is not None)
        levels = range(self.max_digits + 1)
        # allowed[n]: the rules that can match text whose longest run has n digits.
        self.allowed = [
            _mask(i for i, c in enumerate(self.rules) if c.rule.min_digits <= n) for n in levels
        ]
        # by_digits[n]: digit-gated rules that can run on text whose longest run has n digits.
        self._by_digits = [
            tuple(i for i in digit_gated if max(1, self.rules[i].rule.min_digits) <= n)
            for n in levels
        ]
        self.by_digits = [_mask(indices) for indices in self._by_digits]
        # Combined passes standing for the by_digits[n] rules, built when first needed
        # (compiling them is most of the cost of building the engine).
        self._built: dict[tuple[int, ...], tuple[_Locator, ...]] = {}
        self._chosen: dict[int, tuple[_Compiled, ...]] = {}
        self.quiet = _QuietLeaves()
        # Marker parts (``REDACTED:email``, ``email``) in which no rule found anything: an
        # answer that repeats protected text carries the same few markers again and again.
        self.quiet_parts = _QuietLeaves()

    def locators(self, digits: int) -> tuple[_Locator, ...]:
        """The locators of the rules that can run on text whose longest run has ``digits``
        digits."""
        indices = self._by_digits[digits]
        locators = self._built.get(indices)
        if locators is None:
            locators = self._built[indices] = self._locators(indices)
        return locators

    def _locators(self, indices: Sequence[int]) -> tuple[_Locator, ...]:
        """The locators of one digit level: rules that need a long digit run in one pass
        searched only around such runs, the others in one pass over the whole text."""
        # The locator is case-sensitive; case-insensitive rules run on their own.
        eligible = [i for i in indices if not self.rules[i].rule.ignore_case]
        tiers: dict[int, list[int]] = {}
        for i in eligible:
            compiled = self.rules[i]
            floor = 0
            if compiled.reach is not None:
                floor = max((t for t in _LONG_RUNS if t <= compiled.rule.min_digits), default=0)
            tiers.setdefault(floor, []).append(i)
        locators: list[_Locator] = []
        for floor, tier in sorted(tiers.items()):
            pattern, covered = build_locator([self.rules[i].rule.pattern for i in tier])
            if pattern is None:
                continue
            markers = tuple((pattern.groupindex[f"_w{j}"], 1 << tier[j]) for j in sorted(covered))
            members = [tier[j] for j in covered]
            if floor:
                reach = max(self.rules[i].reach or 0 for i in members)
                locators.append(_Locator(pattern, markers, _mask(members), floor, reach))
            else:
                locators.append(_Locator(pattern, markers, _mask(members)))
        return tuple(locators)

    def chosen(self, mask: int) -> tuple[_Compiled, ...]:
        """The rules of ``mask`` in catalogue order."""
        rules = self._chosen.get(mask)
        if rules is None:
            rules = tuple(self.rules[i] for i in _indices(mask))
            if len(self._chosen) < _CHOSEN_SETS:
                self._chosen[mask] = rules
        return rules

    def leaf(self, text: str) -> _Leaf:
        """The rules that may match ``text``, in catalogue order."""
        runs = DigitRuns(text)
        digits = min(runs.longest, self.max_digits)
        mask = self.ungated | self.by_digits[digits]
        located = 0
        for locator in self.locators(digits):
            located |= locator.mask & ~locator.possible(text, runs)
        mask &= ~located
        lowered = None
        if self.by_literal:
            lowered = text.lower()
            by_literal = self.by_literal
            for literal in self.scanner.present(lowered):
                mask |= by_literal[literal]
            if len(lowered) != len(text):
                lowered = None  # a letter lowercased to two: offsets differ
        mask &= self.allowed[digits]
        sub_run_only: Sequence[_Compiled] = ()
        located &= self.splittable
        if (
            located
            and self.sub_run_digits is not None
            and runs.longest > self.sub_run_digits
            and runs.grouped > self.sub_run_digits
        ):
            grouped = runs.grouped
            sub_run_only = [c for c in self.chosen(located) if c.rule.sub_run_digits < grouped]
        return _Leaf(runs, self.chosen(mask) if mask else (), sub_run_only, lowered)


def _max_width(pattern: str, flags: int) -> int | None:
    """The longest possible match of ``pattern``, from the standard library's regex parser.

    The parser is an internal module; if it is missing or refuses the pattern, the rule is
    simply scanned over whole leaves.
    """
    try:
        parser = importlib.import_module("re._parser")
        _low, high = parser.parse(pattern, flags).getwidth()
    except Exception:
        return None
    return int(high) if high <= _MAX_WINDOWED_WIDTH else None


def _first_chars(pattern: str, flags: int) -> frozenset[str] | None:
    """The ASCII characters a match of ``pattern`` can start with, when its first element is
    one character or class (``None`` otherwise, or if the standard library's parser, an
    internal module, is missing or refuses the pattern)."""
    token = leading_token(pattern)
    if token is None:
        return None
    try:
        parser = importlib.import_module("re._parser")
        first = str(parser.parse(pattern, flags)[0][0])
        probe = re.compile(token, flags)
    except Exception:
        return None
    if first not in ("LITERAL", "IN"):
        return None
    return frozenset(char for char in map(chr, range(128)) if probe.fullmatch(char))


def _run_chars(pattern: str, flags: int, literals: frozenset[str]) -> frozenset[str] | None:
    """The characters of the run ``pattern`` starts with, when it reads
    ``(?<![C])[C]+`` followed by one of ``literals`` that does not start with a ``C``, with
    ``C`` a class of ASCII characters (``None`` otherwise).

    Every match then starts where the run of ``C`` before an occurrence of that literal
    starts, and there is one such place per occurrence.
    """
    head = _RUN_HEAD.match(pattern)
    if head is None:
        return None
    members = head["members"]
    if not members.isascii() or members.startswith("^"):
        return None
    try:
        probe = re.compile(f"[{members}]", flags)
    except re.error:
        return None
    chars = frozenset(char for char in map(chr, range(128)) if probe.fullmatch(char))
    rest = pattern[head.end() :]
    for literal in literals:
        if rest.startswith(re.escape(literal)) and literal[0] not in chars:
            return chars
    return None


def _reach(width: int) -> int:
    padded = width + _WINDOW_MARGIN
    return -(-padded // _REACH_STEP) * _REACH_STEP


def _compile(rule: Rule) -> _Compiled:
    """Compile a catalogue rule (built-in or from a detector plugin) with ASCII semantics."""
    flags = re.ASCII | (re.IGNORECASE if rule.ignore_case else 0)
    try:
        pattern = re.compile(rule.pattern, flags)
    except re.error as exc:
        raise DetectionError(f"rule {rule.id!r} does not compile: {exc}") from None
    prefilter = frozenset(rule.prefilter)
    digit_gated = prefilter == _DIGIT_LITERALS
    literals = frozenset() if digit_gated else frozenset(literal.lower() for literal in prefilter)
    width = _max_width(rule.pattern, flags) if digit_gated else None
    run_chars = None if rule.anchored else _run_chars(rule.pattern, flags, literals)
    if rule.sub_run_digits and width is None:
        raise DetectionError(
            f"rule {rule.id!r} asks for sub-runs but is not a digit-gated rule of bounded width"
        )
    return _Compiled(
        rule=rule,
        finditer=pattern.finditer,
        literals=literals,
        value_group="value" in pattern.groupindex,
        head_groups=head_groups(pattern.groupindex),
        hard_block=rule.is_hard_block,
        reach=None if width is None or rule.min_digits < 2 else _reach(width),
        window_digits=max((n for n in _WINDOW_DIGITS if n <= rule.min_digits), default=0),
        split_width=width if rule.sub_run_digits else None,
        match=pattern.match if (rule.anchored and literals) or run_chars else None,
        first_chars=_first_chars(rule.pattern, flags) if rule.anchored and literals else None,
        run_chars=run_chars,
    )


def _hit(
    compiled: _Compiled, match: Any, text: str, offset: int, confirmed: set[_Key] | None
) -> _Hit | None:
    """The finding of one match (its ``value`` or ``head`` groups), if the validator agrees.

    ``confirmed`` holds the keys of the hits found so far in the leaf (``None``: validate
    every candidate). A candidate with the key of an earlier hit is returned unconfirmed;
    overlap resolution drops such a twin anyway unless an unusual neighbourhood keeps it,
    and only then runs its validator (four phone rules read ``010-1234-5678`` alike, and
    each libphonenumber check is costly).
    """
    first, last = match.span("value") if compiled.value_group else match.span()
    for head in compiled.head_groups:
        if match.start(head) >= 0:
            first = match.start(head)
            break
    if first >= last:
        return None
    start, end = first + offset, last + offset
    rule = compiled.rule
    validator = rule.validator
    if confirmed is None:
        if validator is None or validator(text[first:last]):
            return _Hit(compiled, start, end)
        return None
    key = (start, end, rule.type, compiled.hard_block)
    if validator is not None:
        # A rule retried on sub-runs needs its own verdicts: its hits decide where it looks.
        if key in confirmed and compiled.split_width is None:
            return _Hit(compiled, start, end, text[first:last])
        if not validator(text[first:last]):
            return None
    confirmed.add(key)
    return _Hit(compiled, start, end)


def _validated(hit: _Hit) -> bool:
    """Whether ``hit`` holds: confirmed when found, or its deferred validator agrees now (a
    validator that raises fails the scan closed)."""
    if hit.unconfirmed is None:
        return True
    validator = hit.rule.rule.validator
    try:
        return validator is None or bool(validator(hit.unconfirmed))
    except Exception as exc:
        raise DetectionError(
            f"rule {hit.rule.rule.id!r} failed while matching ({type(exc).__name__})"
        ) from None


def _matches(
    compiled: _Compiled,
    text: str,
    start: int,
    end: int,
    offset: int,
    confirmed: set[_Key] | None,
    budget: InspectionBudget | None,
) -> Iterator[_Hit]:
    """Matches of one rule in ``text[start:end]``, shifted by ``offset`` (see :func:`_hit`);
    each is a step of ``budget``."""
    for match in compiled.finditer(text, start, end):
        if budget is not None:
            budget.step()
        hit = _hit(compiled, match, text, offset, confirmed)
        if hit is not None:
            yield hit


def _anchored_matches(
    compiled: _Compiled,
    text: str,
    lowered: str,
    confirmed: set[_Key] | None,
    budget: InspectionBudget | None,
) -> Iterator[_Hit]:
    """Matches of an anchored rule, tried only where its literals occur in ``lowered`` (or
    where the run before them starts, see ``_Compiled.run_chars``); like ``finditer``, a
    match never starts inside the previous one. Each place tried is a step of ``budget``."""
    assert compiled.match is not None
    first = compiled.first_chars
    run = compiled.run_chars
    starts: set[int] = set()
    for literal in compiled.literals:
        position = lowered.find(literal)
        while position >= 0:
            if run is not None:
                start = position
                while start > 0 and text[start - 1] in run:
                    start -= 1
                if start < position:
                    starts.add(start)
            elif first is None or text[position] in first or text[position] >= "\x80":
                starts.add(position)
            position = lowered.find(literal, position + 1)
    done = 0
    for position in sorted(starts):
        if position < done:
            continue
        if budget is not None:
            budget.step()
        match = compiled.match(text, position)
        if match is None:
            continue
        done = max(match.end(), position + 1)
        hit = _hit(compiled, match, text, 0, confirmed)
        if hit is not None:
            yield hit


def _sub_run_hits(
    text: str,
    runs: DigitRuns,
    compiled: _Compiled,
    found: Sequence[_Hit],
    confirmed: set[_Key] | None,
    budget: InspectionBudget | None,
) -> list[_Hit]:
    """Matches of a hard-block number rule on the sub-runs of longer digit runs, so that a
    card glued to a phone number or a date is not lost (see :mod:`haechi.detect.subruns`);
    each sub-run is a step of ``budget``."""
    width = compiled.split_width
    digits = compiled.rule.sub_run_digits
    # A strict sub-run drops at least one digit of its run.
    if width is None or runs.longest <= digits or runs.grouped <= digits:
        return []
    seen = {(hit.start, hit.end) for hit in found}
    extra: list[_Hit] = []
    candidates = sub_runs(
        text,
        runs.spans(),
        min_digits=digits,
        width=width,
        covered=sorted(seen),
        joiners=compiled.rule.sub_run_joiners,
    )
    for low, high in candidates:
        if budget is not None:
            budget.step()
        piece = text[low:high]
        for hit in _matches(compiled, piece, 0, len(piece), low, confirmed, budget):
            if (hit.start, hit.end) not in seen:
                seen.add((hit.start, hit.end))
                extra.append(hit)
    return extra


def _covered(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    """Whether every character of ``[start, end)`` lies in one of the disjoint ``spans``."""
    for low, high in sorted(spans):
        if low <= start < high:
            start = high
        if start >= end:
            return True
    return start >= end


def _cut(text: str, spans: Sequence[tuple[int, int]]) -> tuple[str, list[int]]:
    """``text`` without the disjoint ``spans``, and the offset in ``text`` of each character
    left."""
    pieces: list[str] = []
    origins: list[int] = []
    position = 0
    for low, high in [*sorted(spans), (len(text), len(text))]:
        pieces.append(text[position:low])
        origins.extend(range(position, low))
        position = max(position, high)
    return "".join(pieces), origins


class DetectionEngine:
    """Finds detections in JSON leaves or free text; build once, call from any thread.

    Args:
        rules: the catalogue, in priority order (see :func:`haechi.detect.default_rules`).
        custom_rules: ``filters.customRules`` entries; they run after every built-in rule.
        decode_and_rescan: also scan the decoded form of base64/base64url/percent leaves.
        custom_rule_timeout: seconds one custom rule may spend on one leaf before detection
            fails closed.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        custom_rules: Sequence[Mapping[str, Any]] = (),
        decode_and_rescan: bool = False,
        custom_rule_timeout: float = 0.05,
    ) -> None:
        if custom_rule_timeout <= 0:
            raise ValueError("custom_rule_timeout must be positive")
        ids = [rule.id for rule in rules]
        duplicates = sorted(rule_id for rule_id, count in Counter(ids).items() if count > 1)
        if duplicates:
            raise DetectionError(f"duplicate rule ids: {', '.join(duplicates)}")
        compiled = [_compile(rule) for rule in rules]
        for item in compile_custom_rules(custom_rules, reserved_ids=frozenset(ids)):
            compiled.append(
                _Compiled(
                    rule=item.rule,
                    finditer=partial(item.compiled.finditer, timeout=custom_rule_timeout),
                    literals=frozenset(),
                    value_group="value" in item.compiled.groupindex,
                    head_groups=(),
                    hard_block=item.rule.is_hard_block,
                )
            )
        self._rules = tuple(c.rule for c in compiled)
        self._sets: dict[str, _RuleSet] = {
            direction: _RuleSet([c for c in compiled if c.rule.direction in (None, direction)])
            for direction in ("request", "response")
        }
        self._decode = decode_and_rescan
        self._timeout = custom_rule_timeout

    @property
    def rules(self) -> tuple[Rule, ...]:
        """Every rule the engine runs, built-in then custom, in priority order."""
        return self._rules

    def warm(self) -> None:
        """Build now what the engine otherwise builds on first use: the combined passes of
        every digit level and the phone-number metadata of the validators.

        A one-shot command is better off without (most of it is never needed); a gateway
        calls this before it serves, so that no request pays tens of milliseconds for it.
        """
        for rule_set in self._sets.values():
            for digits in range(rule_set.max_digits + 1):
                rule_set.locators(digits)
        for rule in self._rules:
            warm = getattr(rule.validator, "warm", None)
            if callable(warm):
                warm()

    def detect(
        self, entries: Sequence[Entry], *, direction: Direction, scan_numbers: bool = False
    ) -> list[Detection]:
        """Every detection in ``entries``, entry by entry, each entry's sorted by start."""
        found: list[Detection] = []
        budget = current_budget()
        for entry in entries:
            if entry.kind == "number" and direction == "response" and not scan_numbers:
                continue
            if budget is not None:
                budget.step()
            found.extend(self._scan(entry.value, direction, entry.path, entry.kind))
        return found

    def scan_text(
        self,
        text: str,
        *,
        direction: Direction,
        path: tuple[PathSegment, ...] = (),
        kind: EntryKind = "value",
    ) -> list[Detection]:
        """Every detection in one piece of text, reported at ``path`` with ``kind``."""
        return self._scan(text, direction, path, kind)

    # -- internals ---------------------------------------------------------------------------

    def _scan(
        self,
        text: str,
        direction: str,
        path: tuple[PathSegment, ...],
        kind: EntryKind,
        readings: int = 0,
    ) -> list[Detection]:
        """Every detection in ``text``; ``readings``: how many times ``text`` was read from
        the leaf (see :meth:`_as_read`)."""
        rule_set = self._sets[direction]
        quiet = text in rule_set.quiet
        if quiet:
            case, scan = "original", text
        else:
            case, scan = fold(text)
        sensitive = (
            kind == "value"
            and bool(path)
            and isinstance(path[-1], str)
            and key_names_secret(path[-1], scan)
        )
        hits: list[_Hit] = []
        if not quiet:
            leaf = rule_set.leaf(scan)
            if leaf.rules or leaf.sub_run_only:
                hits = self._run(scan, leaf, confirmed=set())
        if case == "unstable":
            # One finding per type, named by the type's first hit: an unconfirmed hit always
            # follows a confirmed one of its type, so its verdict cannot change the result.
            detections = self._whole_leaf(text, path, kind, hits)
        else:
            shapes = [] if quiet else marker_shapes(text)
            if shapes:
                hits = self._vet_markers(text, hits, shapes, rule_set, direction)
            detections = [self._detection(hit, text, path, kind) for hit in hits]
        if (
            sensitive
            and not any(d.hard_block and d.start == 0 and d.end == len(text) for d in detections)
            and not is_genuine_marker(text, self._detector(rule_set))
        ):
            detections.append(self._key_name(text, path))
        if case != "unstable" and detections:
            detections = resolve_overlaps(detections, self._confirmation(hits))
        if not quiet and readings < _READINGS:
            reading = as_read(text)
            if reading is not None:
                detections = self._as_read(
                    text, reading, direction, path, kind, detections, readings + 1
                )
        if self._decode and kind != "number":
            detections.extend(self._decoded(text, path, kind, rule_set, detections))
        if detections:
            for detected in detections:
                for other in self._sets.values():
                    other.quiet.discard(detected.value)
        elif not quiet and case == "original" and not readings:
            # Only a leaf: a reading of one is read fewer times than a leaf is.
            rule_set.quiet.add(text)
        return detections

    def _as_read(
        self,
        text: str,
        reading: tuple[str, tuple[int, ...], tuple[int, ...]],
        direction: str,
        path: tuple[PathSegment, ...],
        kind: EntryKind,
        detections: list[Detection],
        readings: int,
    ) -> list[Detection]:
        """``detections`` and the findings of ``text`` as a reader reads it (see
        :func:`~haechi.detect.unicode.as_read`: a card number with zero-width spaces between
        its digits, an address in tag characters, in JSON escapes or in HTML character
        references), each mapped back to the span of ``text`` it was read from, with the
        findings it holds (see :func:`_read_back`). A finding that one of its type found as
        written already covers adds only what it holds that none covers: the link as
        written is the link as read, but only the reading finds the SSN written
        ``078&#45;05&#45;1120`` in its query. The reading is scanned, and read again, like a
        leaf, up to ``_READINGS`` readings from the leaf (``readings`` is this one's
        number)."""
        known = [*detections, *(inner for detection in detections for inner in detection.nested)]
        found: list[Detection] = []
        for detection in self._scan(reading[0], direction, path, kind, readings):
            mapped = _read_back(detection, text, reading)
            if mapped is None:
                continue
            if not _typed_cover(mapped, known):
                found.append(mapped)
            else:  # its nested findings hold every one beneath it (see resolve_overlaps)
                found.extend(inner for inner in mapped.nested if not _typed_cover(inner, known))
        return resolve_overlaps([*detections, *found]) if found else detections

    @staticmethod
    def _confirmation(hits: Sequence[_Hit]) -> Callable[[int], bool] | None:
        """The check overlap resolution makes before keeping detection ``i`` (made from
        ``hits[i]``): the validator of an unconfirmed hit runs there, if at all."""
        pending = {i: hit for i, hit in enumerate(hits) if hit.unconfirmed is not None}
        if not pending:
            return None

        def confirm(index: int) -> bool:
            hit = pending.get(index)
            return hit is None or _validated(hit)

        return confirm

    def _run(self, text: str, leaf: _Leaf, confirmed: set[_Key] | None = None) -> list[_Hit]:
        """Run the leaf's candidate rules over ``text`` and keep the validated matches, but
        not a number rule's match inside a hexadecimal id a server minted (see
        :mod:`haechi.detect.hexids`).

        With ``confirmed``, a candidate repeating the key of an earlier hit is kept
        unconfirmed (see :func:`_hit`); the caller must then resolve overlaps with
        :meth:`_confirmation`.
        """
        hits: list[_Hit] = []
        runs = leaf.runs
        lowered = leaf.lowered
        whole = len(leaf.rules)
        budget = current_budget()
        for index, compiled in enumerate((*leaf.rules, *leaf.sub_run_only)):
            try:
                if budget is not None:
                    budget.step()
                found: list[_Hit] = []
                # The sub-run-only rules were ruled out on the whole text: sub-runs only.
                if index < whole and compiled.match is not None and lowered is not None:
                    found.extend(_anchored_matches(compiled, text, lowered, confirmed, budget))
                elif index < whole:
                    reach = compiled.reach
                    spans = None if reach is None else runs.windows(compiled.window_digits, reach)
                    for start, end in spans or ((0, len(text)),):
                        found.extend(_matches(compiled, text, start, end, 0, confirmed, budget))
                if compiled.split_width is not None:
                    found.extend(_sub_run_hits(text, runs, compiled, found, confirmed, budget))
                if compiled.rule.min_digits:
                    found = [hit for hit in found if not inside_hex_id(text, hit.start, hit.end)]
                hits.extend(found)
            except LimitError:
                raise
            except TimeoutError:
                raise DetectionError(
                    f"custom rule {compiled.rule.id!r} exceeded its match time budget "
                    f"({self._timeout}s)"
                ) from None
            except Exception as exc:
                raise DetectionError(
                    f"rule {compiled.rule.id!r} failed while matching ({type(exc).__name__})"
                ) from None
        return hits

    def _detector(self, rule_set: _RuleSet) -> MarkerCheck:
        """A "does anything match?" check, used to vet marker inner text."""

        def detects(text: str) -> bool:
            scan = fold(text).text
            return bool(self._run(scan, rule_set.leaf(scan)))

        return detects

    def _vet_markers(
        self,
        text: str,
        hits: list[_Hit],
        shapes: Sequence[MarkerShape],
        rule_set: _RuleSet,
        direction: str,
    ) -> list[_Hit]:
        """Re-scan marker-shaped spans; on responses, drop the hits genuine markers account for.

        A well-shaped TOKEN/REDACTED inner is scanned whole and its ``<type>`` segment alone;
        whatever they find is reported (a secret glued into a fake marker), in both
        directions, and makes the marker not genuine.
        """
        genuine: list[tuple[int, int]] = []
        found: list[_Hit] = []
        for shape in shapes:
            if shape.kind == "HAECHI_ENC":
                if shape.envelope:
                    genuine.append((shape.start, shape.end))
                continue
            if shape.segment is None:
                continue
            inside = self._scan_part(text, *shape.inner, rule_set)
            inside += self._scan_part(text, *shape.segment, rule_set)
            if inside:
                found.extend(inside)
            else:
                genuine.append((shape.start, shape.end))
        if direction == "response" and genuine:
            hits = self._beside_markers(text, hits, genuine, rule_set)
        return hits + found

    def _beside_markers(
        self,
        text: str,
        hits: list[_Hit],
        genuine: Sequence[tuple[int, int]],
        rule_set: _RuleSet,
    ) -> list[_Hit]:
        """The response hits that ``genuine`` markers do not account for, in order.

        A hit within markers is the echo of a redaction: dropped. A hit reaching past a
        marker is dropped only if, once the markers are cut out of the text, no rule detects
        anything where the hit lies: ``password='[REDACTED:secret] [REDACTED:secret]'``
        quotes redactions, while ``password="[REDACTED:email] Tr0ub4dor&3xyz"`` still holds
        a password. Otherwise anyone able to write a marker into a secret would hide it.
        """
        kept: list[_Hit] = []
        cut: list[tuple[int, int]] | None = None
        for hit in hits:
            if not any(hit.start < end and start < hit.end for start, end in genuine):
                kept.append(hit)
                continue
            if _covered(hit.start, hit.end, genuine):
                continue
            if cut is None:
                cut = self._found_without(text, genuine, rule_set)
            if any(hit.start < end and start < hit.end for start, end in cut):
                kept.append(hit)
        return kept

    def _found_without(
        self, text: str, genuine: Sequence[tuple[int, int]], rule_set: _RuleSet
    ) -> list[tuple[int, int]]:
        """The spans of ``text`` (outer bounds) where a rule detects something once the
        ``genuine`` markers are cut out; the whole text when the cut text folds to other
        offsets (fail closed: its findings cannot be placed)."""
        kept, origins = _cut(text, genuine)
        case, scan = fold(kept)
        if case == "unstable":
            return [(0, len(text))]
        return [
            (origins[hit.start], origins[hit.end - 1] + 1)
            for hit in self._run(scan, rule_set.leaf(scan))
            if hit.end > hit.start
        ]

    def _scan_part(self, text: str, start: int, end: int, rule_set: _RuleSet) -> list[_Hit]:
        """Hits in ``text[start:end]`` scanned on its own (marker parts are plain ASCII)."""
        part = text[start:end]
        if part in rule_set.quiet_parts:
            return []
        hits = [
            _Hit(hit.rule, hit.start + start, hit.end + start)
            for hit in self._run(part, rule_set.leaf(part))
        ]
        if not hits:
            rule_set.quiet_parts.add(part)
        return hits

    @staticmethod
    def _detection(
        hit: _Hit, text: str, path: tuple[PathSegment, ...], kind: EntryKind
    ) -> Detection:
        rule = hit.rule.rule
        return Detection(
            type=rule.type,
            rule_id=rule.id,
            path=path,
            kind=kind,
            start=hit.start,
            end=hit.end,
            confidence=rule.confidence,
            value=text[hit.start : hit.end],
            hard_block=hit.rule.hard_block,
        )

    @staticmethod
    def _key_name(text: str, path: tuple[PathSegment, ...]) -> Detection:
        return Detection(
            type="secret",
            rule_id=KEY_NAME_RULE_ID,
            path=path,
            kind="value",
            start=0,
            end=len(text),
            confidence=_KEY_NAME_CONFIDENCE,
            value=text,
            hard_block=True,
        )

    @staticmethod
    def _whole_leaf(
        text: str, path: tuple[PathSegment, ...], kind: EntryKind, hits: Sequence[_Hit]
    ) -> list[Detection]:
        """One whole-leaf detection per distinct type among ``hits`` (fail closed), named
        by the type's most confident confirmed hit: ``filters.minConfidence`` must not drop
        the leaf for a less certain rule that read the same value first."""
        first: dict[str, _Compiled] = {}
        hard: set[str] = set()
        for hit in hits:
            rule_type = hit.rule.rule.type
            named = first.setdefault(rule_type, hit.rule)
            if hit.rule.rule.confidence > named.rule.confidence and _validated(hit):
                first[rule_type] = hit.rule
            if hit.rule.hard_block:
                hard.add(rule_type)
        return [
            Detection(
                type=rule_type,
                rule_id=compiled.rule.id,
                path=path,
                kind=kind,
                start=0,
                end=len(text),
                confidence=compiled.rule.confidence,
                value=text,
                hard_block=rule_type in hard,
            )
            for rule_type, compiled in first.items()
        ]

    def _decoded(
        self,
        text: str,
        path: tuple[PathSegment, ...],
        kind: EntryKind,
        rule_set: _RuleSet,
        existing: Sequence[Detection],
    ) -> list[Detection]:
        views = decoded_views(text)
        if not views:
            return []
        hits: list[_Hit] = []
        for view in views:
            scan = fold(view).text
            leaf = rule_set.leaf(scan)
            eligible = _Leaf(
                leaf.runs, [c for c in leaf.rules if c.decodable], lowered=leaf.lowered
            )
            hits.extend(self._run(scan, eligible))
        whole = {d.type for d in existing if d.start == 0 and d.end == len(text)}
        return [d for d in self._whole_leaf(text, path, kind, hits) if d.type not in whole]


def _typed_cover(detection: Detection, known: Sequence[Detection]) -> bool:
    """Whether a finding of ``known`` of the type of ``detection`` spans it."""
    return any(
        other.type == detection.type
        and other.start <= detection.start
        and detection.end <= other.end
        for other in known
    )


def _read_back(
    detection: Detection, text: str, reading: tuple[str, tuple[int, ...], tuple[int, ...]]
) -> Detection | None:
    """``detection``, found in a reading of ``text`` (see :func:`as_read`), moved to the span
    of ``text`` it was read from (a whole-reading finding to the whole text), and so are the
    findings it holds in ``nested``: the precision dials may remove it and leave them, which
    then stand for their own spans. ``None`` for an empty finding, which maps to nothing."""
    seen, starts, ends = reading
    if detection.start == 0 and detection.end == len(seen):
        start, end = 0, len(text)
    elif detection.end > detection.start:
        start, end = starts[detection.start], ends[detection.end - 1]
    else:
        return None
    nested = tuple(
        mapped
        for inner in detection.nested
        if (mapped := _read_back(inner, text, reading)) is not None
    )
    return replace(detection, start=start, end=end, value=text[start:end], nested=nested)
