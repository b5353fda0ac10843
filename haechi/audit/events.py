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

A protect event's size does not follow the payload's: it lists at most
``max_detections`` detections, whose types, rule ids and path texts hold at most
:data:`MAX_DETECTION_TEXT_BYTES` together, and counts the findings it leaves out in
``detectionsOmitted``; its ``summary`` counts every finding.

=========================  ================================================================
builder                    written by
=========================  ================================================================
:func:`protect_event`      the protect pipeline, once per protect call
:func:`vault_event`        the token vault: reveal, detokenize, purge, purge-expired
:func:`proxy_decision_event`  the gateway, for decisions taken without a protect call
:func:`stream_event`       the gateway, once per inspected response stream
:func:`auth_token_event`   ``token-add`` and ``token-revoke``, once per token changed
=========================  ================================================================
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from haechi._uuids import uuid4_text
from haechi.audit._shape import payload_shape_hash
from haechi.models import Finding, Identity, Mode, PathSegment
from haechi.payload import path_text
from haechi.providers import CryptoProvider

__all__ = [
    "DEFAULT_MAX_DETECTIONS",
    "MAX_DETECTION_TEXT_BYTES",
    "PATH_HASH_DOMAIN",
    "PROXY_DECISIONS",
    "SCHEMA_VERSION",
    "AuthTokenChange",
    "VaultOperation",
    "auth_token_event",
    "iso_timestamp",
    "keyed_path_hash",
    "payload_shape_hash",
    "protect_event",
    "proxy_decision_event",
    "stream_event",
    "vault_event",
]

#: The audit event schema version; it is part of every hashed event.
SCHEMA_VERSION: Final = "1"

VaultOperation = Literal["reveal", "detokenize", "purge", "purge-expired"]

#: Detections one protect event lists unless told otherwise (``audit.maxDetectionsPerRecord``).
DEFAULT_MAX_DETECTIONS: Final = 1000

#: UTF-8 bytes the types, rule ids and path texts of one protect event's detections hold
#: together (256 KiB). Every detection repeats its whole path, and a caller chooses how deep
#: its findings lie, up to ``limits.maxNestingDepth``: without this bound a small payload
#: nesting its values a few hundred levels deep would have the log write some 4 KiB per
#: finding. Every detection repeats its rule id and type too, which a detector plugin may
#: make as long as it likes (the configuration caps ``filters.customRules`` at 64
#: characters): a rule id of 20,000 characters made a 7 KB request of 1000 matches a 20 MB
#: record, which the log's readers refuse.
MAX_DETECTION_TEXT_BYTES: Final = 256 * 1024

#: The HMAC domain of ``pathHash`` (see :func:`keyed_path_hash`).
PATH_HASH_DOMAIN: Final = "haechi:audit:path-hash:v1"

#: Gateway decisions and the ``(enforced, blocked)`` pair each one implies.
PROXY_DECISIONS: Final[Mapping[str, tuple[bool, bool]]] = {
    "auth_denied": (True, True),
    "rate_limited": (True, True),
    "rate_limit_unavailable": (True, True),
    "model_not_allowed": (True, True),
    "token_ids_refused": (True, True),
    "streaming_request_pass_through": (False, False),
    "response_unprotected_blocked": (True, True),
    "stream_auth_revoked": (True, True),
    "response_unprotected_allowed": (False, False),
    "forwarded": (False, False),
}


#: The current second as ``(seconds since the epoch, "YYYY-MM-DDTHH:MM:SS")``.
_second: tuple[int, str] = (-1, "")


def iso_timestamp(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as ISO-8601 UTC with milliseconds and a ``Z`` suffix."""
    if moment is not None:
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # Every event is stamped, so "now" is formatted once per second and only the
    # milliseconds are written per call (floored, as datetime.now() floors them).
    global _second
    seconds, millis = divmod(time.time_ns() // 1_000_000, 1000)
    second = _second
    if second[0] != seconds:
        stamp = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")[:19]
        second = _second = (seconds, stamp)
    return f"{second[1]}.{millis:03d}Z"


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
    max_detections: int = DEFAULT_MAX_DETECTIONS,
) -> dict[str, Any]:
    """The event of one protect call.

    ``payload`` is the payload as it arrived (only its shape is kept, see
    :func:`payload_shape_hash`). ``findings`` are the kept detections with their decided
    ``action`` (``None`` is written as ``"unknown"``); each becomes ``{type, ruleId, path,
    kind, confidence, action, enforced}`` with the path as hashed path text and no value or
    offsets. A key in which a value was detected is withheld from every path text and from
    the shape (written ``key_redacted``), since its short hash can be reversed. ``summary``
    is the result summary (``detectionCount``, ``byType``, ``byAction`` and the optional
    suppressed/dropped counts). ``enforced`` is derived from ``mode``: only ``enforce`` may
    change or block a payload.

    The list holds the first findings, in order, up to ``max_detections`` of them and
    :data:`MAX_DETECTION_TEXT_BYTES` of their texts: one entry per finding made a
    1 MB payload of e-mail addresses a 15 MB record, past what the log's readers take. The
    findings left out are counted in ``detectionsOmitted``, written only when there are some
    (an event listing every finding keeps the reference shape); ``summary`` still counts
    every finding, so no reader needs the list's length.
    """
    enforced = mode == "enforce"
    findings = tuple(findings)
    withheld = frozenset(
        finding.path[-1]
        for finding in findings
        if finding.kind == "key" and finding.path and isinstance(finding.path[-1], str)
    )
    detections = _detections(findings, enforced, withheld, max_detections)
    event: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "id": uuid4_text(),
        "correlationId": correlation_id,
        "timestamp": iso_timestamp(),
        "protocol": protocol,
        "operation": operation,
        "identity": _identity(identity),
        "profile": profile,
        "mode": mode,
        "enforced": enforced,
        "blocked": blocked,
        "payloadShapeHash": payload_shape_hash(payload, withheld),
        "detections": detections,
    }
    if omitted := len(findings) - len(detections):
        event["detectionsOmitted"] = omitted
    event["summary"] = dict(summary)
    return event


def _detections(
    findings: Iterable[Finding], enforced: bool, withheld: frozenset[str], limit: int
) -> list[dict[str, Any]]:
    """The entries of the first findings, up to ``limit`` of them and
    :data:`MAX_DETECTION_TEXT_BYTES` of their types, rule ids and path texts."""
    texts: dict[tuple[PathSegment, ...], str] = {}  # findings in one leaf share its path
    rules: dict[tuple[str, str], int] = {}  # and findings of one rule its type and id
    detections: list[dict[str, Any]] = []
    room = MAX_DETECTION_TEXT_BYTES
    for finding in findings:
        if len(detections) >= limit:
            break
        path = texts.get(finding.path)
        if path is None:
            path = texts[finding.path] = path_text(finding.path, withheld)
        rule = (finding.type, finding.rule_id)
        named = rules.get(rule)
        if named is None:
            named = rules[rule] = _utf8_length(finding.type) + _utf8_length(finding.rule_id)
        room -= len(path) + named  # a path text is ASCII: as many bytes as characters
        if room < 0:
            break
        detections.append(
            {
                "type": finding.type,
                "ruleId": finding.rule_id,
                "path": path,
                "kind": finding.kind,
                "confidence": finding.confidence,
                "action": finding.action or "unknown",
                "enforced": enforced,
            }
        )
    return detections


def _utf8_length(text: str) -> int:
    """Bytes of ``text`` in the log (a lone surrogate is written U+FFFD: three bytes too)."""
    return len(text.encode("utf-8", "surrogatepass"))


def vault_event(
    *,
    operation: VaultOperation,
    decision: str,
    reason: str | None = None,
    token: str | None = None,
    token_type: str | None = None,
    count: int | None = None,
    reveal_policy: str | None = None,
    reveal_override: bool | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """The event of one token-vault operation.

    ``decision`` is the outcome code (``reveal_allowed``, ``reveal_denied``,
    ``reveal_failed``, ``detokenize``, ``purge``, ``purge_expired``, ...); a decision ending
    in ``_denied`` marks the event ``blocked``. ``token`` must be a token id: for input that
    is not a token the vault passes a keyed hash of it (``nontoken_<hex>``), never the input.
    ``count`` is how many tokens the operation touched, ``reason`` a stable reason code.
    ``reveal_override`` is ``True`` when a reveal ran under ``local-dev`` by a one-off
    override of a ``disabled`` policy (``token-reveal --allow-dev-reveal``), else ``None``.
    """
    return {
        "schemaVersion": SCHEMA_VERSION,
        "id": uuid4_text(),
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
        "revealOverride": reveal_override,
        "summary": _decision_summary(decision),
    }


def _gateway_event(
    *,
    protocol: str,
    operation: str,
    route_id: str | None,
    path_hash: str | None,
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
        "id": uuid4_text(),
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
        "pathHash": path_hash,
        "summary": summary,
    }


def keyed_path_hash(crypto: CryptoProvider, path: str) -> str | None:
    """``pathHash``: the first 12 hex characters of an HMAC of the request path under the
    key of ``crypto`` (domain :data:`PATH_HASH_DOMAIN`); ``None`` when it cannot compute one.

    A path may hold a value (``/v1/users/010-1234-5678/chat``); a short plain hash of it
    would give the value back to anyone who tries every candidate. Events of one key still
    correlate by path.
    """
    try:
        return crypto.hmac(path, PATH_HASH_DOMAIN)[:12]
    except Exception:
        return None


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
    path_hash: str | None = None,
    enforced: bool | None = None,
    blocked: bool | None = None,
) -> dict[str, Any]:
    """The event of a gateway decision taken without a protect call.

    ``operation`` is written as ``proxy:<protocol>:<route_id>``. ``enforced``/``blocked``
    default to what :data:`PROXY_DECISIONS` says for ``decision``; another decision must
    pass both (``ValueError`` otherwise). ``reason`` is a reason code such as
    ``invalid_token`` or ``rate:60``. ``path_hash`` is :func:`keyed_path_hash` of the
    request path. Pass ``identity=None`` where the identity must not be recorded (auth denials).
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
        path_hash=path_hash,
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
    path_hash: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The one event of an inspected response stream.

    ``operation`` is the route operation, written as ``response-stream:<operation>``.
    ``mode`` is the stream's enforcement mode and ``blocked`` whether the stream was cut;
    the decision is ``stream_blocked`` (reason ``stream_policy_block``) or
    ``stream_inspected``; ``reason`` names another cause (``stream_frame_too_large``, ...).
    ``summary`` is the stream protector's tally, ``path_hash`` :func:`keyed_path_hash` of
    the request path. Streams carry no detection list.
    """
    decision = "stream_blocked" if blocked else "stream_inspected"
    return _gateway_event(
        protocol=protocol,
        operation=f"response-stream:{operation}",
        route_id=route_id,
        path_hash=path_hash,
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


#: The changes ``token-add`` and ``token-revoke`` make to the gateway's bearer tokens.
AuthTokenChange = Literal["added", "revoked"]


def auth_token_event(
    *,
    change: AuthTokenChange,
    token_id: str,
    token_type: str | None,
    scopes: Iterable[object],
    label_keys: Iterable[object],
    known_scopes: Collection[str],
    known_label_keys: Collection[str],
    reason: str | None = None,
) -> dict[str, Any]:
    """The event of one change to the gateway's bearer tokens: decision
    ``auth_token_added`` or ``auth_token_revoked``.

    It holds the token's id and type, never the token, its hash or a label value. Of its
    scopes and label keys it names only those the configuration itself holds: a scope
    ``policy.profileBinding.byScope`` maps (``known_scopes``) and a key of
    ``auth.allowedLabelKeys`` (``known_label_keys``). The rest were typed on a command line
    or into the store, where a value pasted by mistake ends up, so they are counted
    (``scopesNotNamed``, ``labelKeysNotNamed``) and not written. ``reason`` says why a
    change was made other than by its own command (``token_not_shown``).
    """
    decision = f"auth_token_{change}"
    scope_list, key_list = list(scopes), list(label_keys)
    named_scopes = [s for s in scope_list if isinstance(s, str) and s in known_scopes]
    named_keys = [k for k in key_list if isinstance(k, str) and k in known_label_keys]
    return {
        "schemaVersion": SCHEMA_VERSION,
        "id": uuid4_text(),
        "correlationId": None,
        "timestamp": iso_timestamp(),
        "protocol": "auth",
        "operation": "auth:token-add" if change == "added" else "auth:token-revoke",
        "identity": None,
        "mode": "n/a",
        "enforced": True,
        "blocked": False,
        "decision": decision,
        "reason": reason,
        "tokenId": token_id,
        "tokenType": token_type,
        "scopeNames": named_scopes,
        "scopesNotNamed": len(scope_list) - len(named_scopes),
        "labelKeys": named_keys,
        "labelKeysNotNamed": len(key_list) - len(named_keys),
        "summary": _decision_summary(decision),
    }
