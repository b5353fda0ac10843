# SPDX-License-Identifier: Apache-2.0
"""Builders of audit events, schema ``"1"``.

Each builder is a pure function with keyword-only arguments that returns a JSON-shaped dict
ready for :meth:`haechi.audit.AuditSink.record`, which sanitizes it, stamps
``auditIntegrity`` and persists it. Every event gets a fresh UUIDv4 ``id`` and an ISO-8601
UTC ``timestamp`` with milliseconds (``2025-01-31T12:00:00.000Z``), the form other haechi
implementations write.

What an event never holds: payload text, matched values, offsets, bearer tokens, raw
subjects or issuers, identity scopes or labels. Detections carry a *path text* in which every
object key is replaced by a short hash, so a key that is itself PII never reaches the log;
an identity is reduced to its five audit fields.

=========================  ================================================================
builder                    written by
=========================  ================================================================
:func:`protect_event`      the protect pipeline, once per protect call
:func:`vault_event`        the token vault: reveal, detokenize, purge, purge-expired
:func:`proxy_decision_event`  the gateway, for decisions taken without a protect call
:func:`stream_event`       the gateway, once per inspected response stream
=========================  ================================================================
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from haechi._canonical import canonical_json, short_hash
from haechi.models import Finding, Identity, Mode
from haechi.payload import path_text

__all__ = [
    "PROXY_DECISIONS",
    "SCHEMA_VERSION",
    "VaultOperation",
    "iso_timestamp",
    "payload_shape_hash",
    "protect_event",
    "proxy_decision_event",
    "stream_event",
    "vault_event",
]

#: The audit event schema version; it is part of every hashed event.
SCHEMA_VERSION: Final = "1"

VaultOperation = Literal["reveal", "detokenize", "purge", "purge-expired"]

#: Gateway decisions and the ``(enforced, blocked)`` pair each one implies.
PROXY_DECISIONS: Final[Mapping[str, tuple[bool, bool]]] = {
    "auth_denied": (True, True),
    "rate_limited": (True, True),
    "model_not_allowed": (True, True),
    "streaming_request_pass_through": (False, False),
    "response_unprotected_blocked": (True, True),
    "response_unprotected_allowed": (False, False),
    "forwarded": (False, False),
}


def iso_timestamp(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as ISO-8601 UTC with milliseconds and a ``Z`` suffix."""
    moment = datetime.now(UTC) if moment is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _identity(identity: Identity | None) -> dict[str, str] | None:
    return None if identity is None else identity.audit_projection()


def _decision_summary(decision: str) -> dict[str, Any]:
    return {"detectionCount": 0, "byType": {}, "byAction": {decision: 1}}


def protect_event(
    *,
    mode: Mode,
    blocked: bool,
    payload: Any,
    findings: Iterable[Finding],
    summary: Mapping[str, Any],
    protocol: str = "custom",
    operation: str = "protect",
    correlation_id: str | None = None,
    identity: Identity | None = None,
    profile: str | None = None,
) -> dict[str, Any]:
    """The event of one protect call.

    ``payload`` is the payload as it arrived (only its shape is kept, see
    :func:`payload_shape_hash`). ``findings`` are the kept detections with their decided
    ``action`` (``None`` is written as ``"unknown"``); each becomes ``{type, ruleId, path,
    kind, confidence, action, enforced}`` with the path as hashed path text and no value or
    offsets. ``summary`` is the result summary (``detectionCount``, ``byType``,
    ``byAction`` and the optional suppressed/dropped counts). ``enforced`` is derived from
    ``mode``: only ``enforce`` may change or block a payload.
    """
    enforced = mode == "enforce"
    return {
        "schemaVersion": SCHEMA_VERSION,
        "id": str(uuid.uuid4()),
        "correlationId": correlation_id,
        "timestamp": iso_timestamp(),
        "protocol": protocol,
        "operation": operation,
        "identity": _identity(identity),
        "profile": profile,
        "mode": mode,
        "enforced": enforced,
        "blocked": blocked,
        "payloadShapeHash": payload_shape_hash(payload),
        "detections": [
            {
                "type": finding.type,
                "ruleId": finding.rule_id,
                "path": path_text(finding.path),
                "kind": finding.kind,
                "confidence": finding.confidence,
                "action": finding.action or "unknown",
                "enforced": enforced,
            }
            for finding in findings
        ],
        "summary": dict(summary),
    }


def vault_event(
    *,
    operation: VaultOperation,
    decision: str,
    reason: str | None = None,
    token: str | None = None,
    token_type: str | None = None,
    count: int | None = None,
    reveal_policy: str | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """The event of one token-vault operation.

    ``decision`` is the outcome code (``reveal_allowed``, ``reveal_denied``,
    ``reveal_failed``, ``detokenize``, ``purge``, ``purge_expired``, ...); a decision ending
    in ``_denied`` marks the event ``blocked``. ``token`` must be a token id: for input that
    is not a token the vault passes a keyed hash of it (``nontoken_<hex>``), never the input.
    ``count`` is how many tokens the operation touched, ``reason`` a stable reason code.
    """
    return {
        "schemaVersion": SCHEMA_VERSION,
        "id": str(uuid.uuid4()),
        "correlationId": correlation_id,
        "timestamp": iso_timestamp(),
        "protocol": "token-vault",
        "operation": f"token-vault:{operation}",
        "identity": None,
        "mode": "n/a",
        "enforced": True,
        "blocked": decision.endswith("_denied"),
        "decision": decision,
        "reason": reason,
        "token": token,
        "tokenType": token_type,
        "count": count,
        "revealPolicy": reveal_policy,
        "summary": _decision_summary(decision),
    }


def _gateway_event(
    *,
    protocol: str,
    operation: str,
    route_id: str | None,
    path: str | None,
    mode: Mode,
    enforced: bool,
    blocked: bool,
    decision: str,
    reason: str,
    correlation_id: str | None,
    identity: Identity | None,
    profile: str | None,
    summary: dict[str, Any],
) -> dict[str, Any]:
    return {
        "schemaVersion": SCHEMA_VERSION,
        "id": str(uuid.uuid4()),
        "correlationId": correlation_id,
        "timestamp": iso_timestamp(),
        "protocol": protocol,
        "operation": operation,
        "mode": mode,
        "identity": _identity(identity),
        "profile": profile,
        "enforced": enforced,
        "blocked": blocked,
        "decision": decision,
        "reason": reason,
        "routeId": route_id,
        "pathHash": None if path is None else short_hash(path),
        "summary": summary,
    }


def proxy_decision_event(
    *,
    protocol: str,
    route_id: str | None,
    decision: str,
    reason: str,
    mode: Mode,
    correlation_id: str | None,
    identity: Identity | None = None,
    profile: str | None = None,
    path: str | None = None,
    enforced: bool | None = None,
    blocked: bool | None = None,
) -> dict[str, Any]:
    """The event of a gateway decision taken without a protect call.

    ``operation`` is written as ``proxy:<protocol>:<route_id>``. ``enforced``/``blocked``
    default to what :data:`PROXY_DECISIONS` says for ``decision``; another decision must
    pass both (``ValueError`` otherwise). ``reason`` is a reason code such as
    ``invalid_token`` or ``rate:60``. ``path`` is the request path; only its short hash is
    kept. Pass ``identity=None`` where the identity must not be recorded (auth denials).
    """
    implied = PROXY_DECISIONS.get(decision)
    if enforced is None or blocked is None:
        if implied is None:
            raise ValueError(f"decision {decision!r} needs explicit enforced and blocked")
        enforced = implied[0] if enforced is None else enforced
        blocked = implied[1] if blocked is None else blocked
    return _gateway_event(
        protocol=protocol,
        operation=f"proxy:{protocol}:{route_id}",
        route_id=route_id,
        path=path,
        mode=mode,
        enforced=enforced,
        blocked=blocked,
        decision=decision,
        reason=reason,
        correlation_id=correlation_id,
        identity=identity,
        profile=profile,
        summary=_decision_summary(decision),
    )


def stream_event(
    *,
    protocol: str,
    route_id: str | None,
    operation: str,
    mode: Mode,
    blocked: bool,
    summary: Mapping[str, Any],
    correlation_id: str | None,
    identity: Identity | None = None,
    profile: str | None = None,
    path: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The one event of an inspected response stream.

    ``operation`` is the route operation, written as ``response-stream:<operation>``.
    ``mode`` is the stream's enforcement mode and ``blocked`` whether the stream was cut;
    the decision is ``stream_blocked`` (reason ``stream_policy_block``) or
    ``stream_inspected``; ``reason`` names another cause (``stream_frame_too_large``, ...).
    ``summary`` is the stream protector's tally. Streams carry no detection list.
    """
    decision = "stream_blocked" if blocked else "stream_inspected"
    return _gateway_event(
        protocol=protocol,
        operation=f"response-stream:{operation}",
        route_id=route_id,
        path=path,
        mode=mode,
        enforced=mode == "enforce",
        blocked=blocked,
        decision=decision,
        reason=reason or ("stream_policy_block" if blocked else "stream_inspected"),
        correlation_id=correlation_id,
        identity=identity,
        profile=profile,
        summary=dict(summary),
    )


# --- payload shape -------------------------------------------------------------------------

_BATCH: Final = 4096
_MAX_INDEX: Final = 2**32 - 2


def _utf16_length(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _is_index(key: str) -> bool:
    return (
        key.isascii() and key.isdigit() and (key == "0" or key[0] != "0") and int(key) <= _MAX_INDEX
    )


def _key_order(mapping: Mapping[str, Any]) -> list[str]:
    # JavaScript objects list integer-like keys first, ascending, then the rest in order.
    keys = list(mapping)
    for key in keys:
        if not isinstance(key, str):
            raise TypeError("object keys must be strings")
    indices = [key for key in keys if _is_index(key)]
    if not indices:
        return keys
    indices.sort(key=int)
    return indices + [key for key in keys if not _is_index(key)]


def _shape_fragments(payload: Any) -> Iterator[str]:
    # Iterative, so a deep payload costs time linear in its size and no recursion.
    stack: list[tuple[bool, Any]] = [(False, payload)]
    while stack:
        literal, item = stack.pop()
        if literal:
            yield item
        elif isinstance(item, str):
            yield f'{{"type":"string","length":{_utf16_length(item)}}}'
        elif item is None:
            yield '{"type":"null"}'
        elif isinstance(item, bool):
            yield '{"type":"boolean"}'
        elif isinstance(item, int | float):
            yield '{"type":"number"}'
        elif isinstance(item, list | tuple):
            pending: list[tuple[bool, Any]] = [(True, "]")]
            for index in range(len(item) - 1, -1, -1):
                pending.append((False, item[index]))
                if index:
                    pending.append((True, ","))
            pending.append((True, "["))
            stack.extend(pending)
        elif isinstance(item, dict):
            keys = _key_order(item)
            pending = [(True, "}")]
            for position in range(len(keys) - 1, -1, -1):
                key = keys[position]
                pending.append((False, item[key]))
                separator = "," if position else ""
                pending.append((True, f"{separator}{canonical_json(key)}:"))
            pending.append((True, "{"))
            stack.extend(pending)
        else:
            raise TypeError(f"{type(item).__name__} is not a JSON value")


def payload_shape_hash(payload: Any) -> str:
    """First 12 hex of SHA-256 over the JSON of the payload's *shape*.

    The shape keeps the structure and the raw keys and replaces every leaf: a string by
    ``{"type":"string","length":<UTF-16 length>}``, ``null`` by ``{"type":"null"}``, a
    number or boolean by ``{"type":"number"}`` / ``{"type":"boolean"}``. It is serialised
    as ``JSON.stringify`` would (key order of a JavaScript object), so two implementations
    fingerprint one payload alike. Runs in time linear in the payload size.
    """
    digest = hashlib.sha256()
    batch: list[str] = []
    for fragment in _shape_fragments(payload):
        batch.append(fragment)
        if len(batch) >= _BATCH:
            digest.update("".join(batch).encode("utf-8"))
            batch.clear()
    digest.update("".join(batch).encode("utf-8"))
    return digest.hexdigest()[:12]
