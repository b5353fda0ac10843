# SPDX-License-Identifier: Apache-2.0
"""The audit event of an MCP refusal taken without a protect call.

A message refused before any part of it was protected (it could not be parsed, its id or
method holds a value, it is not JSON-RPC, its method is not allowed...), and an event-stream
field line or event the gateway withholds, get one event each: a gateway decision event
(:func:`~haechi.audit.proxy_decision_event`) with the decision ``mcp_refused``, a reason
code naming what was refused (:data:`REFUSAL_REASONS`), the ``direction`` the refused part
travelled in and, when the detector found something, its findings counted by type. The
event never holds the refused value, nor any text of the message. Refusals that are cheap
to provoke over and over (ids the gateway did not hand the caller) are audited one by one
only within a per-second budget; past it one summary event counts them (see
:func:`refusal_summary_event`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from haechi.audit import proxy_decision_event
from haechi.models import Direction, Finding, Identity, Mode

__all__ = ["REFUSAL_DECISION", "REFUSAL_REASONS", "refusal_event", "refusal_summary_event"]

#: The decision of every MCP refusal event.
REFUSAL_DECISION: Final = "mcp_refused"

#: Reason codes of MCP refusal events and what each says was refused.
REFUSAL_REASONS: Final = {
    "mcp_unparseable_message": "a line or body that is not one JSON-RPC message object",
    "mcp_message_too_long": "a stdio line over the line limit",
    "mcp_invalid_id": "an id that is not a string, an integer or null",
    "mcp_id_refused": "a string id in which the detector found something",
    "mcp_method_refused": "an unknown method in which the detector found something",
    "mcp_version_refused": "a jsonrpc other than 2.0 in which the detector found something",
    "mcp_invalid_jsonrpc": "a message whose jsonrpc is not 2.0 (mcp.requireJsonRpc)",
    "mcp_invalid_shape": "a message that is not a request, notification or response",
    "mcp_method_not_allowed": "a client method outside mcp.allowedMethods",
    "mcp_reserved_key": "a message holding haechi's embedded-JSON marker key",
    "mcp_lone_surrogate": "JSON in a string that escapes a lone UTF-16 surrogate",
    "mcp_nesting_too_deep": "a part nested deeper than limits.maxNestingDepth or the walk",
    "mcp_protection_failed": "a message whose inspection failed without an audit event",
    "mcp_sse_field_dropped": "an event-stream field line no client reads",
    "mcp_sse_field_refused": "an event/id/retry line in which the detector found something",
    "mcp_sse_field_line_break": "a field line holding a character line readers break at",
    "mcp_sse_event_unparseable": "an event whose data is not one JSON-RPC message",
    "mcp_sse_event_too_large": "an event over responseProtection.maxBytes",
    "mcp_sse_event_not_utf8": "an event stream that is not valid UTF-8",
    "mcp_session_not_owned": "an Mcp-Session-Id the gateway did not hand the caller",
    "mcp_event_not_owned": "a Last-Event-ID the gateway did not hand the caller in that session",
}


def refusal_event(
    *,
    protocol: str,
    reason: str,
    operation: str,
    direction: Direction,
    mode: Mode,
    findings: Iterable[Finding] = (),
    correlation_id: str | None = None,
    identity: Identity | None = None,
    profile: str | None = None,
    route_id: str | None = None,
    path_hash: str | None = None,
) -> dict[str, Any]:
    """The event of one refusal (see the module). ``reason`` must be one of
    :data:`REFUSAL_REASONS`; ``operation`` is a fixed name (a method of the specification,
    ``other``, ``result``, ``message``, ``event-stream``...), never text a peer chose."""
    if reason not in REFUSAL_REASONS:
        raise ValueError(f"unknown MCP refusal reason {reason!r}")
    event = proxy_decision_event(
        protocol=protocol,
        route_id=route_id,
        decision=REFUSAL_DECISION,
        reason=reason,
        mode=mode,
        correlation_id=correlation_id,
        identity=identity,
        profile=profile,
        path_hash=path_hash,
        enforced=True,
        blocked=True,
    )
    by_type: dict[str, int] = {}
    for finding in findings:
        by_type[finding.type] = by_type.get(finding.type, 0) + 1
    return _described(event, operation, direction, by_type, 1)


def refusal_summary_event(
    *, protocol: str, operation: str, direction: Direction, mode: Mode, counts: Mapping[str, int]
) -> dict[str, Any]:
    """The one event standing for the refusals past their per-second budget: reason
    ``aggregated``, ``summary.byAction`` how many refusals it stands for and
    ``summary.byReason`` how many of each reason (of :data:`REFUSAL_REASONS`). It names no
    caller, request or route, as the gateway's other summaries of refusals."""
    event = proxy_decision_event(
        protocol=protocol,
        route_id=None,
        decision=REFUSAL_DECISION,
        reason="aggregated",
        mode=mode,
        correlation_id=None,
        enforced=True,
        blocked=True,
    )
    event = _described(event, operation, direction, {}, sum(counts.values()))
    event["summary"]["byReason"] = dict(counts)
    return event


def _described(
    event: dict[str, Any],
    operation: str,
    direction: Direction,
    by_type: dict[str, int],
    refusals: int,
) -> dict[str, Any]:
    event["operation"] = f"mcp:{operation}"
    event["direction"] = direction
    event["summary"] = {
        "detectionCount": sum(by_type.values()),
        "byType": by_type,
        "byAction": {REFUSAL_DECISION: refusals},
    }
    return event
