# SPDX-License-Identifier: Apache-2.0
"""Value types shared by the engine, the providers and every surface.

They are plain frozen dataclasses: cheap to build on the hot path, and their ``repr`` never
shows an inspected value (a detection's matched text is kept out of ``repr`` on purpose, so a
stray log line or traceback cannot leak it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "ACTIONS",
    "ACTION_STRENGTH",
    "DEFAULT_RULE_CONFIDENCE",
    "DIRECTIONS",
    "MAX_RULE_NAME_LENGTH",
    "MAX_RULE_PATTERN_LENGTH",
    "MODES",
    "Action",
    "Detection",
    "Direction",
    "Entry",
    "EntryKind",
    "Finding",
    "Identity",
    "Mode",
    "PathSegment",
    "ProtectResult",
]

Mode = Literal["dry-run", "report-only", "enforce"]
Direction = Literal["request", "response"]
Action = Literal["allow", "redact", "mask", "tokenize", "encrypt", "block"]
EntryKind = Literal["value", "number", "key"]
PathSegment = str | int

MODES: tuple[Mode, ...] = ("dry-run", "report-only", "enforce")
DIRECTIONS: tuple[Direction, ...] = ("request", "response")
ACTIONS: tuple[Action, ...] = ("allow", "redact", "mask", "tokenize", "encrypt", "block")
#: The longest custom rule id or type: every audit entry of a rule's findings repeats them (and
#: every marker and token of them the type), so a long one must not make each of them long.
MAX_RULE_NAME_LENGTH: Final = 64
#: The longest custom rule pattern (its match time is bounded besides).
MAX_RULE_PATTERN_LENGTH: Final = 500
#: The confidence of a custom rule's match when the rule does not say.
DEFAULT_RULE_CONFIDENCE: Final = 0.7
#: How strong an action is; policy merges may only move a type upwards on this scale.
ACTION_STRENGTH: dict[str, int] = {
    "allow": 0,
    "redact": 1,
    "mask": 1,
    "tokenize": 2,
    "encrypt": 2,
    "block": 3,
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One inspectable leaf of a JSON document: a string value, a finite number or a key."""

    path: tuple[PathSegment, ...]
    value: str = field(repr=False)
    kind: EntryKind = "value"


@dataclass(frozen=True, slots=True)
class Detection:
    """One match of one rule inside one entry.

    ``start``/``end`` are Python string indices into the original (un-normalised) text,
    so ``entry.value[start:end] == value`` always holds. ``value`` stays in the process: it
    is used for allowlists and transforms and is never written to audit, logs or reprs.

    ``nested`` holds the detections of other types that overlap resolution dropped because
    this one contains them (:mod:`haechi.detect.overlaps`): this one's span already covers
    them, but policy may act more strongly on their type (an SSN written as an email's local
    part), so the decision step still weighs them.
    """

    type: str
    rule_id: str
    path: tuple[PathSegment, ...]
    kind: EntryKind
    start: int
    end: int
    confidence: float
    value: str = field(repr=False)
    hard_block: bool = False
    nested: tuple[Detection, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Finding:
    """A detection as shown to callers and tools: everything but the matched value."""

    type: str
    rule_id: str
    path: tuple[PathSegment, ...]
    kind: EntryKind
    start: int
    end: int
    confidence: float
    action: Action | None = None

    @classmethod
    def from_detection(cls, detection: Detection, action: Action | None = None) -> Finding:
        """Drop the matched value from ``detection``."""
        return cls(
            type=detection.type,
            rule_id=detection.rule_id,
            path=detection.path,
            kind=detection.kind,
            start=detection.start,
            end=detection.end,
            confidence=detection.confidence,
            action=action,
        )

    def to_json(self) -> dict[str, Any]:
        """Return the JSON shape used by ``haechi scan`` and the library API."""
        return {
            "type": self.type,
            "ruleId": self.rule_id,
            "path": list(self.path),
            "start": self.start,
            "end": self.end,
            "confidence": self.confidence,
        }


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller, PII-safe by construction.

    ``subject_hash``/``issuer_hash`` are keyed HMACs, never the raw subject or issuer.
    ``scopes`` and ``labels`` select policy profiles but are never written to the audit log.
    """

    id: str
    type: str
    subject_hash: str
    issuer_hash: str
    provider: str
    scopes: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    def audit_projection(self) -> dict[str, str]:
        """The five fields the audit schema stores for an identity."""
        return {
            "id": self.id,
            "type": self.type,
            "subjectHash": self.subject_hash,
            "issuerHash": self.issuer_hash,
            "provider": self.provider,
        }


@dataclass(frozen=True, slots=True)
class ProtectResult:
    """What one protect call returns, on every surface.

    ``payload`` is ``None`` when ``blocked``. ``findings`` never carry values.
    ``issued_tokens`` lists the vault tokens minted or reused for this call, so that a
    response to the same request can be de-tokenized (and nothing else).
    """

    payload: Any = field(repr=False)
    blocked: bool
    mode: Mode
    summary: dict[str, Any]
    findings: tuple[Finding, ...]
    audit_id: str | None
    issued_tokens: tuple[str, ...] = ()

    @property
    def enforced(self) -> bool:
        """True when the mode may change or block the payload."""
        return self.mode == "enforce"
