# SPDX-License-Identifier: Apache-2.0
"""The protect pipeline: walk -> detect -> precision dials -> decide -> transform -> audit.

Attachments declared as text are read decoded by the detect step and encoded back by the
transform step (:mod:`haechi.attachments`).

:class:`Protector` runs one JSON payload through every step and writes exactly one sanitized
audit event per call. Only ``enforce`` changes or blocks anything; ``dry-run`` and
``report-only`` detect, decide and audit, and return the payload untouched.

Failing closed: when detection, the vault, the crypto provider or any other provider raises
while a payload is being protected, no content is returned. The call records an audit event
saying it blocked on an internal error (the error class only, never a value) and
raises :class:`~haechi.errors.ProviderError`; the gateway answers such calls with a 5xx, not
with the 403 of a policy block. If the audit log itself cannot be written, the call raises
:class:`~haechi.errors.AuditError`: nothing is returned that was not recorded. A payload
nested too deeply raises :class:`~haechi.errors.LimitError`, and a value that is not JSON
``TypeError``, before anything is inspected or audited.

The pieces shared with the stream window (:mod:`haechi.stream_window`) live here too: the
call context, the precision dials, the per-call tallies and the decision step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Final, Literal, Protocol

from haechi._sync_loop import off_loop
from haechi.actions import Item, Tokenizer, Transformer, transform_payload
from haechi.attachments import TextAttachments
from haechi.audit import protect_event
from haechi.audit.events import DEFAULT_MAX_DETECTIONS
from haechi.detect.budget import InspectionBudget, charged
from haechi.detect.overlaps import resolve_overlaps
from haechi.detect.rule import HARD_BLOCK_TYPES
from haechi.errors import AuditError, HaechiError, LimitError, ProviderError
from haechi.models import (
    ACTION_STRENGTH,
    DIRECTIONS,
    MODES,
    Action,
    Detection,
    Direction,
    Entry,
    EntryKind,
    Finding,
    Identity,
    Mode,
    PathSegment,
    ProtectResult,
)
from haechi.payload import DEFAULT_MAX_NESTING_DEPTH, PathTexts, collect_entries
from haechi.pieces import (
    PieceRun,
    find_piece_runs,
    merge_findings,
    plan_scrub,
    scrub_piece_runs,
)
from haechi.policy import Policy
from haechi.providers import CryptoProvider

__all__ = [
    "CallContext",
    "Detector",
    "Evaluation",
    "Inspection",
    "PrecisionDials",
    "Protector",
    "Recorder",
    "Tally",
    "TextResult",
    "inspect",
]


#: Characters of text a payload must hold before its scan runs in a worker thread. A scan
#: is CPU work on the event loop: a megabyte of digit-heavy text (a pasted table, a log) takes
#: seconds, and every other request of the process would wait for it. In a thread the loop
#: keeps its turn (the interpreter switches threads every few milliseconds); below this size
#: the hand-off costs more than the scan.
_OFFLOAD_CHARS: Final = 64 * 1024


class Detector(Protocol):
    """The part of the detection engine the pipeline needs (safe to call from any thread)."""

    def detect(
        self, entries: Sequence[Entry], *, direction: Direction, scan_numbers: bool = False
    ) -> list[Detection]:
        """Every detection in ``entries``."""
        ...

    def scan_text(
        self,
        text: str,
        *,
        direction: Direction,
        path: tuple[PathSegment, ...] = (),
        kind: EntryKind = "value",
    ) -> list[Detection]:
        """Every detection in one piece of text."""
        ...


class Recorder(Protocol):
    """The part of the audit sink the pipeline needs."""

    async def record(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        """Append ``event`` to the chain and return the stored record."""
        ...


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling and how: what the audit event records and vault records are bound to.

    ``scan_numbers`` only matters for responses: number leaves of requests are always
    scanned, those of responses only on request (timings and counters are long numbers).
    """

    direction: Direction = "request"
    mode: Mode = "dry-run"
    protocol: str = "custom"
    operation: str = "protect"
    identity: Identity | None = None
    profile: str | None = None
    correlation_id: str | None = None
    scan_numbers: bool = False

    def __post_init__(self) -> None:
        # A mistyped mode must not quietly mean "do not enforce".
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be request or response, not {self.direction!r}")

    @property
    def enforced(self) -> bool:
        """Whether this call may change or block content."""
        return self.mode == "enforce"

    def binding(self) -> dict[str, Any]:
        """The context bound into vault records and encryption AAD.

        The identity appears as its audit projection (ids and keyed hashes); scopes and
        labels stay out, because vault records keep their AAD in clear.
        """
        return {
            "direction": self.direction,
            "protocol": self.protocol,
            "operation": self.operation,
            "mode": self.mode,
            "correlationId": self.correlation_id,
            "profile": self.profile,
            "identity": None if self.identity is None else self.identity.audit_projection(),
        }


@dataclass(frozen=True, slots=True)
class PrecisionDials:
    """``filters.allowlist`` and ``filters.minConfidence``.

    The allowlist is checked first (a match *suppresses*), then the confidence floor (below
    it a finding is *dropped*). Neither ever removes a hard-block type: an allowlisted card
    number is still a card, and a low-confidence secret is still a secret. Nor do they remove
    what a removed finding contains: each finding nested in it is judged on its own.
    """

    min_confidence: float = 0.0
    values: frozenset[str] = frozenset()
    paths: frozenset[str] = frozenset()
    pairs: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def from_config(cls, min_confidence: float, allowlist: Iterable[Any]) -> PrecisionDials:
        """Build the dials from ``filters``: allowlist entries are strings or objects with
        ``value`` and/or ``path``."""
        values: set[str] = set()
        paths: set[str] = set()
        pairs: set[tuple[str, str]] = set()
        for entry in allowlist:
            if isinstance(entry, str):
                values.add(entry)
                continue
            value = getattr(entry, "value", None)
            path = getattr(entry, "path", None)
            if value is not None and path is not None:
                pairs.add((value, path))
            elif value is not None:
                values.add(value)
            elif path is not None:
                paths.add(path)
        return cls(float(min_confidence), frozenset(values), frozenset(paths), frozenset(pairs))

    def screen(
        self, detection: Detection, path_texts: Callable[[tuple[PathSegment, ...]], str]
    ) -> Literal["keep", "suppress", "drop"]:
        """What the dials do with one detection; ``path_texts`` names its path, and is only
        asked to when the allowlist has path entries."""
        if detection.hard_block or detection.type in HARD_BLOCK_TYPES:
            return "keep"
        value = detection.value
        if value in self.values:
            return "suppress"
        if self.paths or self.pairs:
            text = path_texts(detection.path)
            if text in self.paths or (value, text) in self.pairs:
                return "suppress"
        if detection.confidence < self.min_confidence:
            return "drop"
        return "keep"

    def survivors(
        self, container: Detection, path_texts: Callable[[tuple[PathSegment, ...]], str]
    ) -> list[Detection]:
        """The findings nested in ``container`` (see :attr:`Detection.nested`) that the dials
        keep once they removed it: the dials remove the value they match, never what it
        contains, so each is judged on its own (a hard-block one always stays) and then
        stands for its own span.

        ``container.nested`` holds every finding beneath it in one list, so those that stay
        are resolved against each other as they would have been without the container: the
        SSN an address that stays is written with is nested in that address again, and a
        shorter reading of the address goes, so that each value is decided and counted once,
        as it is outside the container."""
        kept = [
            replace(inner, nested=())
            for inner in container.nested
            if self.screen(inner, path_texts) == "keep"
        ]
        return resolve_overlaps(kept)

    def passed(
        self,
        detections: Iterable[Detection],
        path_texts: Callable[[tuple[PathSegment, ...]], str],
    ) -> Iterator[Detection]:
        """The detections the dials keep, and the :meth:`survivors` of those they remove."""
        for detection in detections:
            if self.screen(detection, path_texts) == "keep":
                yield detection
            elif detection.nested:
                yield from self.survivors(detection, path_texts)


class Tally:
    """Counts for a summary: kept findings by type and action, suppressed and dropped ones.

    The summary is ``{detectionCount, byType, byAction}`` plus ``suppressedCount``,
    ``suppressedByType``, ``droppedCount`` and ``droppedByType`` when they are not zero.
    """

    __slots__ = ("by_action", "by_type", "dropped", "suppressed")

    def __init__(self) -> None:
        # Plain dicts rather than Counters: a protect call builds one tally, and Counter's
        # construction and updates cost more than the counting (keys keep first-seen order).
        self.by_type: dict[str, int] = {}
        self.by_action: dict[str, int] = {}
        self.suppressed: dict[str, int] = {}
        self.dropped: dict[str, int] = {}

    def add(self, inspection: Inspection) -> None:
        """Add the counts of one inspection."""
        by_type = self.by_type
        by_action = self.by_action
        for item in inspection.items:
            kind = item.detection.type
            by_type[kind] = by_type.get(kind, 0) + 1
            action = item.action
            by_action[action] = by_action.get(action, 0) + 1
        if inspection.suppressed:
            _add_counts(self.suppressed, inspection.suppressed)
        if inspection.dropped:
            _add_counts(self.dropped, inspection.dropped)

    def summary(self) -> dict[str, Any]:
        """The summary document (fresh dicts, safe to modify)."""
        summary: dict[str, Any] = {
            "detectionCount": sum(self.by_type.values()),
            "byType": dict(self.by_type),
            "byAction": dict(self.by_action),
        }
        if self.suppressed:
            summary["suppressedCount"] = sum(self.suppressed.values())
            summary["suppressedByType"] = dict(self.suppressed)
        if self.dropped:
            summary["droppedCount"] = sum(self.dropped.values())
            summary["droppedByType"] = dict(self.dropped)
        return summary


def _add_counts(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for key, count in counts.items():
        into[key] = into.get(key, 0) + count


@dataclass(frozen=True, slots=True)
class Inspection:
    """Detections that survived the dials, each with its decided action."""

    items: tuple[Item, ...]
    suppressed: Mapping[str, int]
    dropped: Mapping[str, int]

    def blocks(self) -> bool:
        """Whether any decision is ``block``."""
        return any(item.action == "block" for item in self.items)


def inspect(
    detections: Iterable[Detection],
    *,
    policy: Policy,
    dials: PrecisionDials,
    path_texts: PathTexts,
) -> Inspection:
    """Apply the dials and decide every surviving detection, the :meth:`~PrecisionDials.survivors`
    of removed ones included."""
    items: list[Item] = []
    suppressed: dict[str, int] = {}
    dropped: dict[str, int] = {}
    screen = dials.screen
    for detection in detections:
        verdict = screen(detection, path_texts)
        if verdict == "keep":
            items.extend(_decided(detection, policy, dials, path_texts))
            continue
        _count_removed(detection, verdict, dials, path_texts, (suppressed, dropped))
        if detection.nested:
            for inner in dials.survivors(detection, path_texts):
                items.extend(_decided(inner, policy, dials, path_texts))
    return Inspection(tuple(items), suppressed, dropped)


def _count_removed(
    detection: Detection,
    verdict: Literal["suppress", "drop"],
    dials: PrecisionDials,
    path_texts: PathTexts,
    counts: tuple[dict[str, int], dict[str, int]],
) -> None:
    """Count ``detection``, which the dials removed, into ``counts`` (suppressed, dropped),
    and what it contains that they remove too, as if each value stood alone.

    ``detection.nested`` holds every finding beneath it in one list, one value possibly
    twice (in its written and its escaped reading), so it is resolved against itself first,
    as :meth:`PrecisionDials.survivors` does: each value is counted once, and one held by a
    finding the dials keep is not counted, as it would not be if that finding stood alone."""
    removed = counts[0] if verdict == "suppress" else counts[1]
    removed[detection.type] = removed.get(detection.type, 0) + 1
    if not detection.nested:
        return
    for inner in resolve_overlaps([replace(inner, nested=()) for inner in detection.nested]):
        inner_verdict = dials.screen(inner, path_texts)
        if inner_verdict != "keep":
            _count_removed(inner, inner_verdict, dials, path_texts, counts)


def _decided(
    detection: Detection, policy: Policy, dials: PrecisionDials, path_texts: PathTexts
) -> Iterator[Item]:
    """A detection the dials keep, with its type's action, and what it contains that policy
    acts on more strongly (see :func:`_stronger_inside`)."""
    action = policy.action_for(detection.type)
    yield Item(detection, action)
    if detection.nested:
        yield from _stronger_inside(detection, action, policy, dials, path_texts)


def _stronger_inside(
    container: Detection,
    action: Action,
    policy: Policy,
    dials: PrecisionDials,
    path_texts: PathTexts,
) -> Iterator[Item]:
    """The detections ``container`` contains (see :attr:`Detection.nested`) whose type policy
    acts on more strongly than on the container's, decided over the container's span: that
    span is what gets replaced, and it holds them."""
    for inner in container.nested:
        inner_action = policy.action_for(inner.type)
        if ACTION_STRENGTH[inner_action] > ACTION_STRENGTH[action] and (
            dials.screen(inner, path_texts) == "keep"
        ):
            yield Item(
                replace(
                    inner,
                    start=container.start,
                    end=container.end,
                    value=container.value,
                    nested=(),
                ),
                inner_action,
            )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of :meth:`Protector.evaluate`: ``output`` is ``None`` when blocked."""

    output: Any
    blocked: bool
    inspection: Inspection


@dataclass(frozen=True, slots=True)
class TextResult:
    """What protecting one piece of text returns: ``text`` is ``None`` when blocked."""

    text: str | None
    blocked: bool
    summary: dict[str, Any]


class Protector:
    """Runs payloads through the protect pipeline (one audit event per call).

    With ``text_attachments`` (``filters.scanTextAttachments``), attachments declared as
    text are scanned decoded and encoded back protected, and one that does not decode as
    declared blocks (see :mod:`haechi.attachments`). ``max_detections``
    (``audit.maxDetectionsPerRecord``) bounds the detection list of each event, so a payload
    full of findings cannot make a record larger than the log's readers take.
    """

    __slots__ = (
        "_audit",
        "_block_binary",
        "_crypto",
        "_detector",
        "_dials",
        "_inspection_s",
        "_max_depth",
        "_max_detections",
        "_max_tokens",
        "_text_attachments",
        "_vault",
    )

    def __init__(
        self,
        *,
        detector: Detector,
        audit: Recorder,
        crypto: CryptoProvider,
        vault: Tokenizer | None,
        dials: PrecisionDials | None = None,
        max_depth: int = DEFAULT_MAX_NESTING_DEPTH,
        text_attachments: bool = True,
        block_binary_attachments: bool = False,
        max_tokens: int = 0,
        max_inspection_ms: int = 0,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
    ) -> None:
        self._detector = detector
        self._audit = audit
        self._crypto = crypto
        self._vault = vault
        self._dials = dials or PrecisionDials()
        self._max_depth = max_depth
        self._max_tokens = max_tokens
        self._text_attachments = text_attachments
        self._block_binary = block_binary_attachments
        self._inspection_s = max_inspection_ms / 1000
        self._max_detections = max_detections

    @property
    def detector(self) -> Detector:
        """The detection engine."""
        return self._detector

    @property
    def dials(self) -> PrecisionDials:
        """The precision dials."""
        return self._dials

    def text_attachments(
        self, payload: Any, entries: Sequence[Entry], runs: Iterable[PieceRun]
    ) -> TextAttachments | None:
        """The attachments of ``payload`` declared as text, which are scanned decoded (see
        :mod:`haechi.attachments`), and its binary ones with ``block_binary_attachments``
        (``filters.binaryAttachments: block``), which block; ``None`` when it has none or
        they are not scanned."""
        if not self._text_attachments:
            return None
        return TextAttachments.find(payload, entries, runs, block_binary=self._block_binary)

    def transformer(self, context: CallContext) -> Transformer:
        """A transformer bound to ``context`` (one per call, or one per stream)."""
        return Transformer(
            crypto=self._crypto,
            vault=self._vault,
            context=context.binding,
            max_tokens=self._max_tokens,
        )

    async def evaluate(
        self, payload: Any, *, context: CallContext, policy: Policy, transformer: Transformer
    ) -> Evaluation:
        """Walk, detect, screen, decide and (in enforce mode) transform, without auditing.

        Errors propagate as raised; :meth:`protect` turns them into a fail-closed block.
        """
        entries = collect_entries(payload, max_depth=self._max_depth)
        return await self._evaluate(payload, entries, context, policy, transformer)

    async def _evaluate(
        self,
        payload: Any,
        entries: Sequence[Entry],
        context: CallContext,
        policy: Policy,
        transformer: Transformer,
    ) -> Evaluation:
        budget = self._budget()
        prepare = partial(self._prepare, payload, entries, context.direction)
        if _text_chars(entries) < _OFFLOAD_CHARS:
            runs, attachments = charged(budget, prepare)
        else:
            runs, attachments = await off_loop(partial(charged, budget, prepare))
        if attachments is not None:
            entries = attachments.entries(entries)
        detections = await self._detect(entries, context.direction, context.scan_numbers, budget)
        if runs:
            joined = [Entry(where, run.text) for where, run in runs.items()]
            found = await self._detect(joined, context.direction, False, budget)
            detections = merge_findings(runs, detections, found)
        inspection = inspect(detections, policy=policy, dials=self._dials, path_texts=PathTexts())
        if attachments is not None:
            forced = inspection.items + attachments.blocks()
            inspection = Inspection(forced, inspection.suppressed, inspection.dropped)
        items: Sequence[Item] = inspection.items
        if not context.enforced or not items:
            return Evaluation(payload, False, inspection)
        if inspection.blocks():
            return Evaluation(None, True, inspection)
        transformer.reserve(items)
        output = payload
        if attachments is not None:
            output, items = await attachments.rewrite(payload, items, transformer)
        if not runs:
            output = await transform_payload(output, items, transformer)
            return Evaluation(output, False, inspection)
        leaves, spans = plan_scrub(runs, items)
        # Keys last: a key found on the path of a run would move the run the scrub finds by
        # the path as it was.
        values = [item for item in leaves if item.detection.kind != "key"]
        keys = [item for item in leaves if item.detection.kind == "key"]
        output = await transform_payload(output, values, transformer) if values else output
        output = scrub_piece_runs(output, spans)
        output = await transform_payload(output, keys, transformer) if keys else output
        return Evaluation(output, False, inspection)

    def _prepare(
        self, payload: Any, entries: Sequence[Entry], direction: Direction
    ) -> tuple[dict[tuple[PathSegment, ...], PieceRun], TextAttachments | None]:
        """The runs of pieces of ``payload`` and its attachments, the walk's work besides
        detection: linear in the payload, but a request of many small attachments or pieces
        holds a good part of a second of it, so a large one is prepared off the loop too.

        Texts cut into pieces (token log-probabilities, adjacent text parts) are scanned
        joined: each piece on its own hides the values (see haechi.pieces)."""
        runs = {run.where: run for run in find_piece_runs(payload, answer=direction == "response")}
        return runs, self.text_attachments(payload, entries, runs.values())

    async def _detect(
        self,
        entries: Sequence[Entry],
        direction: Direction,
        scan_numbers: bool,
        budget: InspectionBudget | None,
    ) -> list[Detection]:
        """Every detection in ``entries``, charged to ``budget``; in a worker thread when
        they hold at least :data:`_OFFLOAD_CHARS` characters of text."""
        detect = partial(
            self._detector.detect, entries, direction=direction, scan_numbers=scan_numbers
        )
        # Charged in the thread that scans: the budget counts that thread's CPU time.
        if _text_chars(entries) < _OFFLOAD_CHARS:
            return charged(budget, detect)
        return await off_loop(partial(charged, budget, detect))

    def scan_text(self, text: str, *, direction: Direction) -> list[Detection]:
        """Every detection in ``text`` (a part of a streamed answer), within an inspection
        budget of its own."""
        return charged(self._budget(), partial(self._detector.scan_text, text, direction=direction))

    def _budget(self) -> InspectionBudget | None:
        """A fresh ``limits.maxInspectionMs`` budget for one payload, if there is a limit."""
        return InspectionBudget(self._inspection_s) if self._inspection_s else None

    async def protect(self, payload: Any, *, context: CallContext, policy: Policy) -> ProtectResult:
        """Protect ``payload``; see the module documentation for every outcome."""
        # A payload too deep (LimitError) or not JSON (TypeError) is refused before anything
        # is inspected; from here on every error fails closed.
        entries = collect_entries(payload, max_depth=self._max_depth)
        transformer = self.transformer(context)
        try:
            evaluation = await self._evaluate(payload, entries, context, policy, transformer)
        except Exception as exc:
            raise await self._fail_closed(payload, context, exc) from None
        items = evaluation.inspection.items
        tally = Tally()
        tally.add(evaluation.inspection)
        summary = tally.summary()
        findings = tuple(Finding.from_detection(item.detection, item.action) for item in items)
        event = _event(
            context,
            payload,
            blocked=evaluation.blocked,
            findings=findings,
            summary=summary,
            max_detections=self._max_detections,
        )
        record = await self._record(event)
        return ProtectResult(
            payload=evaluation.output,
            blocked=evaluation.blocked,
            mode=context.mode,
            summary=summary,
            findings=findings,
            audit_id=record.get("id"),
            issued_tokens=transformer.issued_tokens,
        )

    async def _record(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            return await self._audit.record(event)
        except AuditError:
            raise
        except Exception as exc:
            raise AuditError(f"the audit record failed: {type(exc).__name__}") from None

    async def _fail_closed(self, payload: Any, context: CallContext, exc: Exception) -> HaechiError:
        """Audit a block on an internal error, or on a limit the payload exceeds (decision
        ``limit_exceeded``, the limit's error code as the reason), and return the error to
        raise: the limit's own, or :class:`~haechi.errors.ProviderError`."""
        limit = exc if isinstance(exc, LimitError) else None
        decision = "internal_error" if limit is None else "limit_exceeded"
        reason = f"internal_error:{type(exc).__name__}" if limit is None else limit.error_code
        message = f"protect failed closed: {type(exc).__name__} while inspecting"
        event = _event(
            context,
            payload,
            blocked=True,
            findings=(),
            summary={"detectionCount": 0, "byType": {}, "byAction": {decision: 1}},
            max_detections=self._max_detections,
        )
        event["decision"] = decision
        event["reason"] = reason
        try:
            await self._record(event)
        except AuditError:
            return ProviderError(message + "; the audit record failed too")
        return ProviderError(message) if limit is None else limit


def _event(
    context: CallContext,
    payload: Any,
    *,
    blocked: bool,
    findings: Sequence[Finding],
    summary: Mapping[str, Any],
    max_detections: int,
) -> dict[str, Any]:
    return protect_event(
        mode=context.mode,
        blocked=blocked,
        payload=payload,
        findings=findings,
        summary=summary,
        protocol=context.protocol,
        operation=context.operation,
        correlation_id=context.correlation_id,
        identity=context.identity,
        profile=context.profile,
        max_detections=max_detections,
    )


def _text_chars(entries: Sequence[Entry]) -> int:
    """How many characters of text ``entries`` hold (what decides where they are scanned)."""
    size = 0
    for entry in entries:
        if isinstance(entry.value, str):
            size += len(entry.value)
    return size
