# SPDX-License-Identifier: Apache-2.0
"""The per-message decision every MCP surface shares (stdio filter, wrapper, HTTP gateway).

A message is parsed strictly, checked for shape, checked against the client method allowlist
and then protected by who sent it: everything the client sends (``params``, and the
``result`` or ``error`` answering a server request such as an elicitation) as a request,
everything the server sends as a response (its results, requests and notifications are tool
output, so the response-only injection rules run on them).

The decision is one of three :class:`Outcome` actions:

``forward``
    send ``message`` on to the peer it was meant for. That is the protected message, or, for
    a *response* that was refused, an error with the response's id (the peer is waiting for
    that id, so it gets an answer instead of hanging).
``answer``
    send ``message`` (an error object) back to the peer that sent the refused message; the
    other peer never sees it. Requests get their own id back (an unparseable one too, when
    its id can be read), other unparseable lines ``null``. A batch (a JSON array) is refused
    whole and answered as JSON-RPC answers a batch: an array of the error, once per request
    in it (``Outcome.batch``); an answer in it that the other peer waits for gets that peer
    the error with its id (``Outcome.receiver_errors``).
``drop``
    send nothing: a refused notification is never answered (JSON-RPC forbids it).

Fail closed: a message is only forwarded once every part of it that can carry text was
inspected. Members other than the JSON-RPC ones are refused rather than passed uninspected,
and a failure while protecting refuses the message.

Every refusal leaves one audit event: a part that blocks is recorded by its protect call,
every other refusal by :meth:`McpFilter.audit_refusal` (decision ``mcp_refused``, a reason
code, never the refused value; see :mod:`haechi.mcp._audit`). When that record cannot be
written the message is still refused, with ``-32001`` ``protection_failed`` as the error.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from haechi._documents import LoneSurrogate, decode_document
from haechi.errors import AuditError, LimitError, ProviderError
from haechi.mcp._audit import refusal_event
from haechi.mcp._embedded import EmbeddedJson, NestedTooDeeply, ReservedKey
from haechi.mcp._oversized import line_ends
from haechi.models import Direction, Finding, Identity, Mode

__all__ = [
    "ANY_AWAITED",
    "INVALID_JSONRPC",
    "MCP_METHODS",
    "METHOD_NOT_ALLOWED",
    "POLICY_BLOCK",
    "STDIO_ERROR",
    "McpFilter",
    "MessageError",
    "Outcome",
    "Side",
    "encode_message",
    "error_message",
    "parse_message",
]

#: A message the gateway could not parse or handle (``data: {reason}``).
STDIO_ERROR: Final = -32000
#: A message refused by policy, or one that could not be inspected (``data: {auditId, summary}``).
POLICY_BLOCK: Final = -32001
#: A message that is not JSON-RPC 2.0 while ``mcp.requireJsonRpc`` is on (``data: {reason}``).
INVALID_JSONRPC: Final = -32002
#: A client method outside ``mcp.allowedMethods`` (``data: {method}``).
METHOD_NOT_ALLOWED: Final = -32003

_ERROR_NAMES: Final[Mapping[int, str]] = {
    STDIO_ERROR: "haechi_mcp_stdio_error",
    POLICY_BLOCK: "haechi_policy_block",
    INVALID_JSONRPC: "haechi_mcp_invalid_jsonrpc",
    METHOD_NOT_ALLOWED: "haechi_mcp_method_not_allowed",
}

#: Methods of the MCP specification. Their names are written to the audit log as the
#: ``operation``; any other method is recorded as ``other`` unless the operator listed it in
#: ``mcp.allowedMethods``, because a method name chosen by a peer is untrusted text.
MCP_METHODS: Final = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "sampling/createMessage",
        "elicitation/create",
        "roots/list",
        "subscriptions/listen",
        "tasks/get",
        "tasks/list",
        "tasks/result",
        "tasks/cancel",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/message",
        "notifications/resources/updated",
        "notifications/resources/list_changed",
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
        "notifications/roots/list_changed",
        "notifications/elicitation/complete",
        "notifications/tasks/status",
    }
)

_MEMBERS: Final = frozenset({"jsonrpc", "id", "method", "params", "result", "error"})
_JSON_RPC_REASON: Final = "MCP messages must use JSON-RPC 2.0"
_PROTECTION_FAILED: Final[Mapping[str, Any]] = {"reason": "protection_failed"}
#: The limit a protect call refuses a payload by before inspecting or recording anything
#: (``limits.maxNestingDepth``), so that its refusal is recorded as an MCP refusal. The
#: protect call records every other limit it stops at (``limit_exceeded``: too many tokens,
#: ``limits.maxInspectionMs``...), which a second record would count twice.
_UNRECORDED_LIMIT: Final = "haechi_request_too_deeply_nested"
#: The audit reason of a part refused while its embedded JSON documents are expanded.
_EXPANSION_REFUSALS: Final[Mapping[type[ValueError], str]] = {
    ReservedKey: "mcp_reserved_key",
    LoneSurrogate: "mcp_lone_surrogate",
    NestedTooDeeply: "mcp_nesting_too_deep",
}


class _AnyAwaited:
    """Every id: see :data:`ANY_AWAITED`."""

    def __contains__(self, message_id: object) -> bool:
        return True


#: The ``awaited`` of :meth:`McpFilter.refuse_line` where the receiver's requests are not
#: known (the gateway sees a client's answer in a request of its own): an answer that
#: cannot be parsed is refused to the receiver with any id it reads as, once the detector
#: finds nothing in it (the receiver ignores an id it is not waiting for).
ANY_AWAITED: Final = _AnyAwaited()

#: Who sent a message: the MCP client, or the MCP server.
Side = Literal["client", "server"]
#: The direction a sender's messages are protected in: what the client sends (its requests,
#: and its answers to the server's requests) goes out like a request, and what the server
#: sends is tool output, on which the response-only rules (prompt injection) run.
_DIRECTIONS: Final[Mapping[Side, Direction]] = {"client": "request", "server": "response"}


class MessageError(Exception):
    """A line or body that is not one JSON-RPC message object.

    The text is a fixed description, never a quote of the input (it is sent to the peer).
    """


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to do with one message: ``forward``, ``answer`` or ``drop`` (see the module).

    ``message`` is ``None`` only for ``drop``. ``blocked`` says the message was refused.
    ``batch``, when not empty, is sent in place of ``message`` (as one JSON array): the
    answer to a refused batch holding requests, one error per request, while ``message``
    is the refusal of the batch as a whole (``id: null``; see :meth:`McpFilter.refuse_line`).
    ``receiver_errors`` go to the other peer, each as a message of its own, whatever the
    action: the errors a refused batch owes the requests of that peer it answered.
    """

    action: Literal["forward", "answer", "drop"]
    message: dict[str, Any] | None
    blocked: bool = False
    batch: tuple[dict[str, Any], ...] = ()
    receiver_errors: tuple[dict[str, Any], ...] = ()


def error_message(code: int, data: Mapping[str, Any], message_id: Any = None) -> dict[str, Any]:
    """A JSON-RPC error object: ``{jsonrpc, error: {code, message, data}, id}``."""
    return {
        "jsonrpc": "2.0",
        "error": {"code": code, "message": _ERROR_NAMES[code], "data": dict(data)},
        "id": message_id,
    }


def parse_message(data: bytes) -> dict[str, Any]:
    """Parse one message: strict UTF-8 JSON holding one object.

    Raises :class:`MessageError` for anything else: invalid UTF-8 (decoding it lossily could
    hide a value from inspection), invalid JSON, ``NaN``/``Infinity`` or a number too large
    for a double, a lone UTF-16 surrogate escape (each decoder reads it its own way, so the
    receiver would not read what was inspected; see :func:`decode_document`), nesting too
    deep to parse, a batch (arrays are not supported), or another JSON value. A key named
    twice needs no care here: a message always goes on encoded again from what was inspected.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MessageError("MCP message is not valid UTF-8") from None
    try:
        value, _whole = decode_document(text)
    except RecursionError:
        raise MessageError("MCP message nests too deeply to parse") from None
    except LoneSurrogate:
        raise MessageError("MCP message holds a lone UTF-16 surrogate") from None
    except ValueError:
        raise MessageError("MCP message is not valid JSON") from None
    if isinstance(value, list):
        raise MessageError("JSON-RPC batch messages are not supported")
    if not isinstance(value, dict):
        raise MessageError("MCP message must be a JSON object")
    return value


def encode_message(message: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> bytes:
    """Compact JSON of ``message``, or of an array of messages (no trailing newline).

    Text is written as UTF-8; a string holding a lone surrogate (which UTF-8 cannot carry)
    makes the whole message fall back to ``\\u`` escapes instead of failing.
    """
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(message, separators=(",", ":")).encode("ascii")


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, str | int) and not isinstance(value, bool))


class McpFilter:
    """Decides messages for one runtime and one surface (``protocol`` names it in the audit).

    Args:
        runtime: the :class:`~haechi.runtime.Runtime` that protects and audits.
        protocol: ``"mcp-stdio"`` or ``"mcp-http"``.
        mode: the enforcement mode; defaults to the configuration's effective mode.
    """

    __slots__ = (
        "_allow_all",
        "_allowed",
        "_config",
        "_max_depth",
        "_mode",
        "_operations",
        "_protocol",
        "_rt",
    )

    def __init__(self, runtime: Any, *, protocol: str, mode: Mode | None = None) -> None:
        self._rt = runtime
        self._config = runtime.config.mcp
        self._protocol = protocol
        self._mode: Mode = mode or runtime.config.effective_mode
        allowed: Iterable[str] = self._config.allowed_methods
        self._allowed = frozenset(allowed)
        self._allow_all = "*" in self._allowed
        self._operations = (MCP_METHODS | self._allowed) - {"*"}
        self._max_depth: int = runtime.config.limits.max_nesting_depth

    async def decide_line(
        self,
        line: bytes,
        *,
        side: Side,
        allowlist: bool,
        awaited: Collection[Any] | None = None,
    ) -> Outcome:
        """Parse and decide one newline-delimited message (see :meth:`decide`).

        A line that cannot be parsed is refused with ``id: null`` back to its sender, unless
        it reads leniently (invalid UTF-8, lone surrogates, ``NaN``, text after the object)
        as a message someone waits for the answer to, which then gets the error with its id
        (see :meth:`_stand_in`): a request, whose sender waits for it, or a response with
        exactly the id of a request in ``awaited`` (a peer cutting a text in the middle of a
        surrogate pair, or writing Latin-1, is enough to make either unreadable).
        """
        try:
            message = parse_message(line)
        except MessageError as exc:
            return await self.refuse_line(line, str(exc), side=side, awaited=awaited)
        return await self.decide(message, side=side, allowlist=allowlist, awaited=awaited)

    async def refuse_line(
        self,
        line: bytes,
        reason: str,
        *,
        side: Side,
        awaited: Container[Any] | None = None,
        **context: Any,
    ) -> Outcome:
        """Refuse ``line``, which could not be parsed (``reason`` says why; see
        :meth:`decide_line`). ``context`` is written to the audit event (gateway).

        A batch (a line reading leniently as a JSON array) is refused whole with one audit
        event, and nothing of it goes on. Its sender waits for the ids of the requests in
        it, which an error with ``id: null`` answers none of; so, as JSON-RPC answers a
        batch, the error is answered once per request (see :meth:`_batch_ids`), as an array
        in ``Outcome.batch``. A batch holding no request gets the one error with ``id: null``.
        The receiver waits too when the batch answers its requests (a peer of MCP 2025-03-26
        may answer several at once): each answer whose id is one of ``awaited`` gets the
        receiver the error with that id, in ``Outcome.receiver_errors`` (see
        :meth:`_batch_answered`).
        """
        read = _lenient_read(line)
        stand_in = None
        if isinstance(read, dict):
            stand_in = self._stand_in(read, read.keys(), side, awaited)
        refusal = await self.refused(
            STDIO_ERROR,
            {"reason": reason},
            stand_in,
            side=side,
            reason="mcp_unparseable_message",
            call=stand_in is None or "method" in stand_in,
            **context,
        )
        if not isinstance(read, list):
            return refusal
        error = refusal.message
        assert error is not None
        return replace(
            refusal,
            batch=tuple({**error, "id": i} for i in self._batch_ids(read, side)),
            receiver_errors=tuple(
                {**error, "id": i} for i in self._batch_answered(read, side, awaited)
            ),
        )

    def _batch_ids(self, batch: list[Any], side: Side) -> list[Any]:
        """The id the error answering each request of ``batch`` carries, in order.

        Elements are only read for their ``id``: a request is an object with a ``method``
        and an id that is a string or an integer. Its own id is repeated when the detector
        finds nothing in it (the rule of any refusal repeating an id), otherwise the error
        carries ``null``. Notifications, answers, and elements that are not objects or whose
        id is none of those are not answered (JSON-RPC answers a batch's requests only).
        """
        ids: list[Any] = []
        for element in batch:
            if not isinstance(element, dict) or "method" not in element:
                continue
            message_id = element.get("id")
            if message_id is None or not _valid_id(message_id):
                continue
            repeatable = _text_id(message_id) and self._repeatable(message_id, side)
            ids.append(message_id if repeatable else None)
        return ids

    def _batch_answered(
        self, batch: list[Any], side: Side, awaited: Container[Any] | None
    ) -> list[Any]:
        """The ids of the receiver's requests that answers in ``batch`` (a ``result`` or an
        ``error``) answer, in order and each once: those the receiver waits for, by the rule
        of a response that cannot be read (:meth:`_stand_in`). The receiver chose them, so
        repeating them shows it nothing new."""
        ids: list[Any] = []
        seen: set[tuple[type, Any]] = set()
        for element in batch:
            if not isinstance(element, dict) or "method" in element:
                continue
            stand_in = self._stand_in(element, element.keys(), side, awaited)
            if stand_in is None:
                continue
            key = (type(stand_in["id"]), stand_in["id"])
            if key not in seen:
                seen.add(key)
                ids.append(stand_in["id"])
        return ids

    async def refuse_oversized(
        self,
        head: bytes,
        tail: bytes,
        data: Mapping[str, Any],
        *,
        side: Side,
        awaited: Collection[Any] | None = None,
    ) -> Outcome:
        """Refuse a line too long to be read, known only by its first and last bytes
        (``head``, ``tail``; see :mod:`haechi.mcp._oversized`).

        Its sender waits for an answer when it is a request, and the receiver when it is a
        response to one of its requests; either would wait for ever for a refusal with
        ``id: null``. So a request (a ``method`` and an id at an end of the line) is
        answered with its id, screened like any id that is repeated, and a response
        (a ``result`` or ``error`` with an id at an end) with exactly the id of a request in
        ``awaited`` gives that request the error. Anything else is answered to its sender
        with ``id: null``.
        """
        ends = line_ends(head, tail)
        stand_in = self._stand_in(ends.members, ends.names, side, awaited)
        return await self.refused(
            STDIO_ERROR,
            data,
            stand_in,
            side=side,
            reason="mcp_message_too_long",
            call=stand_in is None or "method" in stand_in,
        )

    def _stand_in(
        self,
        members: Mapping[str, Any],
        names: Collection[str],
        side: Side,
        awaited: Container[Any] | None,
    ) -> dict[str, Any] | None:
        """What a refusal of a message that could not be read answers, from what could be
        read of it (``members``, and the ``names`` of all its members seen): a request
        (``method`` and an id) is answered to its sender with its id when the detector finds
        nothing in the id, and a response (``result`` or ``error``) whose id is exactly one
        of ``awaited`` (with :data:`ANY_AWAITED`, any id the detector finds nothing in) is
        refused to its receiver with that id. ``None`` for anything else (the refusal goes
        to the sender with ``id: null``)."""
        message_id = members.get("id")
        if message_id is None or not _valid_id(message_id) or not _text_id(message_id):
            return None
        if "method" in names:
            if self._repeatable(message_id, side):
                return {"id": message_id, "method": members.get("method")}
            return None
        if {"result", "error"} & set(names) and awaited is not None and message_id in awaited:
            if awaited is ANY_AWAITED and not self._repeatable(message_id, side):
                return None
            return {"id": message_id}
        return None

    def _repeatable(self, message_id: Any, side: Side) -> bool:
        """Whether ``message_id`` may be repeated: the detector finds nothing in it."""
        try:
            flagged, _findings = self._names_flagged({"id": message_id}, side)
        except Exception:
            return False
        return flagged is None

    async def audit_refusal(
        self,
        reason: str,
        *,
        side: Side,
        operation: str,
        findings: Iterable[Finding] = (),
        identity: Identity | None = None,
        profile: str | None = None,
        correlation_id: str | None = None,
        route_id: str | None = None,
        path_hash: str | None = None,
    ) -> None:
        """Write the one audit event of a refusal taken without a protect call.

        ``reason`` is a code of :data:`~haechi.mcp._audit.REFUSAL_REASONS`, ``operation`` a
        fixed name, ``findings`` what the detector found in the refused part (counted by
        type; no value is written). Raises :class:`~haechi.errors.AuditError` when the event
        could not be written: the caller then fails closed.
        """
        event = refusal_event(
            protocol=self._protocol,
            reason=reason,
            operation=operation,
            direction=_DIRECTIONS[side],
            mode=self._mode,
            findings=findings,
            correlation_id=correlation_id,
            identity=identity,
            profile=profile,
            route_id=route_id,
            path_hash=path_hash,
        )
        try:
            await self._rt.audit.record(event)
        except AuditError:
            raise
        except Exception as exc:
            raise AuditError(f"the audit record failed: {type(exc).__name__}") from None

    async def refused(
        self,
        code: int,
        data: Mapping[str, Any],
        message: Mapping[str, Any] | None = None,
        *,
        side: Side,
        reason: str,
        call: bool = True,
        operation: str | None = None,
        findings: Iterable[Finding] = (),
        **context: Any,
    ) -> Outcome:
        """Audit a refusal (:meth:`audit_refusal`) and return where its error goes.

        ``message`` is the refused message (``None`` when it could not be parsed), ``call``
        whether it was a request or notification. When the audit event cannot be written
        the error becomes ``-32001`` ``protection_failed``; it goes where the refusal would
        have gone.
        """
        try:
            await self.audit_refusal(
                reason,
                side=side,
                operation=operation or self._refused_operation(message),
                findings=findings,
                **context,
            )
        except AuditError:
            code, data = POLICY_BLOCK, _PROTECTION_FAILED
        return self._refuse(code, data, message, call=call)

    def _refused_operation(self, message: Mapping[str, Any] | None) -> str:
        """The fixed name a refused message is audited under."""
        if message is None:
            return "message"
        if "method" in message:
            method = message["method"]
            return method if isinstance(method, str) and method in self._operations else "other"
        for key in ("result", "error"):
            if key in message:
                return key
        return "message"

    async def decide(
        self,
        message: dict[str, Any],
        *,
        side: Side,
        allowlist: bool,
        identity: Identity | None = None,
        profile: str | None = None,
        correlation_id: str | None = None,
        route_id: str | None = None,
        path_hash: str | None = None,
        awaited: Collection[Any] | None = None,
    ) -> Outcome:
        """Decide one parsed message.

        Args:
            message: the JSON-RPC object (not modified).
            side: who sent it; decides the direction every part is protected in.
            allowlist: whether ``mcp.allowedMethods`` applies (client messages).
            identity, profile, correlation_id: passed to the protect calls (gateway).
            route_id, path_hash: written to the audit events of refusals (gateway).
            awaited: ids of the requests the receiver of this message is waiting for. A
                response refused because of its id is otherwise answered with ``id: null``
                (the id is not repeated); when its id is exactly one of these, the receiver
                sent that id itself, so the refusal goes to it with that id instead.
        """
        method = message.get("method")
        is_call = "method" in message
        message_id = message.get("id")
        audit: dict[str, Any] = {
            "identity": identity,
            "profile": profile,
            "correlation_id": correlation_id,
            "route_id": route_id,
            "path_hash": path_hash,
        }
        if not _valid_id(message_id):
            reason = "JSON-RPC id must be a string, an integer or null"
            return await self.refused(
                STDIO_ERROR,
                {"reason": reason},
                None,
                side=side,
                reason="mcp_invalid_id",
                operation=self._refused_operation(message),
                **audit,
            )
        try:
            flagged, findings = self._names_flagged(message, side)
        except Exception:
            return await self.refused(
                POLICY_BLOCK,
                _PROTECTION_FAILED,
                _without_id(message),
                side=side,
                reason="mcp_protection_failed",
                call=is_call,
                **audit,
            )
        if flagged is not None:
            reason = "a JSON-RPC id, method or version holds a value haechi protects"
            # Only an id that holds a value is not repeated, and a response the receiver is
            # waiting for keeps even that one: the receiver chose it.
            matched = not is_call and awaited is not None and message_id in awaited
            keep_id = flagged != "mcp_id_refused" or matched
            return await self.refused(
                STDIO_ERROR,
                {"reason": reason},
                message if keep_id else _without_id(message),
                side=side,
                reason=flagged,
                call=is_call,
                findings=findings,
                **audit,
            )
        if self._config.require_json_rpc and message.get("jsonrpc") != "2.0":
            return await self.refused(
                INVALID_JSONRPC,
                {"reason": _JSON_RPC_REASON},
                message,
                side=side,
                reason="mcp_invalid_jsonrpc",
                call=is_call,
                **audit,
            )
        shape = _shape_problem(message)
        if shape is not None:
            return await self.refused(
                INVALID_JSONRPC,
                {"reason": shape},
                message,
                side=side,
                reason="mcp_invalid_shape",
                call=is_call,
                **audit,
            )
        if allowlist and is_call and not self._allow_all and method not in self._allowed:
            return await self.refused(
                METHOD_NOT_ALLOWED,
                {"method": method},
                message,
                side=side,
                reason="mcp_method_not_allowed",
                **audit,
            )
        context = {"identity": identity, "profile": profile, "correlation_id": correlation_id}
        forward = dict(message)
        parts: list[tuple[str, str]] = []
        if self._config.protect_params and "params" in message:
            parts.append(("params", self._operation(method)))
        if self._config.protect_results:
            parts.extend((key, key) for key in ("result", "error") if key in message)
        direction = _DIRECTIONS[side]
        for key, operation in parts:
            embedded = EmbeddedJson(self._max_depth)
            try:
                subject = embedded.expand(message[key])
            except (ReservedKey, LoneSurrogate, NestedTooDeeply) as exc:
                return await self.refused(
                    STDIO_ERROR,
                    {"reason": str(exc)},
                    message,
                    side=side,
                    reason=_EXPANSION_REFUSALS[type(exc)],
                    call=is_call,
                    operation=operation,
                    **audit,
                )
            try:
                result = await self._rt.protect(
                    subject,
                    direction=direction,
                    protocol=self._protocol,
                    operation=operation,
                    mode=self._mode,
                    **context,
                )
            except LimitError as exc:
                if exc.error_code != _UNRECORDED_LIMIT:
                    return self._refuse(STDIO_ERROR, {"reason": str(exc)}, message, call=is_call)
                # Refused before anything was inspected or recorded.
                return await self.refused(
                    STDIO_ERROR,
                    {"reason": str(exc)},
                    message,
                    side=side,
                    reason="mcp_nesting_too_deep",
                    call=is_call,
                    operation=operation,
                    **audit,
                )
            except (ProviderError, AuditError):
                # Fail closed: an inspection that failed was recorded by the protect call
                # (an internal-error block); an audit log that failed cannot take another
                # record. Either way the message does not pass.
                return self._refuse(POLICY_BLOCK, _PROTECTION_FAILED, message, call=is_call)
            except Exception:
                # Whatever else broke, the message does not pass, and its refusal is
                # recorded here. The failure's text may quote input; it is not sent.
                return await self.refused(
                    POLICY_BLOCK,
                    _PROTECTION_FAILED,
                    message,
                    side=side,
                    reason="mcp_protection_failed",
                    call=is_call,
                    operation=operation,
                    **audit,
                )
            if result.blocked:
                data = {"auditId": result.audit_id, "summary": result.summary}
                return self._refuse(POLICY_BLOCK, data, message, call=is_call)
            forward[key] = embedded.collapse(result.payload)
        return Outcome("forward", forward)

    def _names_flagged(
        self, message: Mapping[str, Any], side: Side
    ) -> tuple[str | None, list[Finding]]:
        """What the detector finds in the ``id``, in a ``method`` outside the known ones and
        in a ``jsonrpc`` other than ``"2.0"`` (which passes without ``mcp.requireJsonRpc``),
        and the refusal reason it makes (``None`` when it finds nothing): they go on as they
        came (a peer matches answers by id, a method cannot be rewritten), so a value in
        them would pass uninspected. A number id is scanned as number leaves are (in the
        response direction only with ``responseProtection.scanNumbers``)."""
        direction = _DIRECTIONS[side]
        message_id = message.get("id")
        in_id = self._rt.scan([message_id], direction=direction) if message_id is not None else []
        method = message.get("method")
        in_method = []
        if isinstance(method, str) and method not in self._operations:
            in_method = self._rt.scan([method], direction=direction)
        version = message.get("jsonrpc", "2.0")
        in_version = self._rt.scan([version], direction=direction) if version != "2.0" else []
        if in_id:
            return "mcp_id_refused", [*in_id, *in_method, *in_version]
        if in_method:
            return "mcp_method_refused", [*in_method, *in_version]
        if in_version:
            return "mcp_version_refused", in_version
        return None, []

    def _operation(self, method: Any) -> str:
        return method if method in self._operations else "other"

    @staticmethod
    def _refuse(
        code: int, data: Mapping[str, Any], message: Mapping[str, Any] | None, *, call: bool
    ) -> Outcome:
        message_id = message.get("id") if message is not None else None
        if call:
            if message is not None and "id" not in message:
                return Outcome("drop", None, True)
            return Outcome("answer", error_message(code, data, message_id), True)
        if message is not None and message_id is not None:
            return Outcome("forward", error_message(code, data, message_id), True)
        return Outcome("answer", error_message(code, data, None), True)


def _lenient_read(line: bytes) -> dict[str, Any] | list[Any] | None:
    """The object, or the array (a batch), ``line`` starts with, read as leniently as a JSON
    decoder can (invalid UTF-8 kept as surrogate escapes, lone surrogates, ``NaN``, text
    after the object, a byte order mark before it, which a .NET or PowerShell writer puts at
    the start of its output and Python's ``json.loads`` of bytes skips), or ``None``. Only
    chooses where a refusal goes: nothing of it is forwarded."""
    text = line.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff").lstrip()
    try:
        value, _end = json.JSONDecoder().raw_decode(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict | list) else None


def _text_id(message_id: Any) -> bool:
    """Whether ``message_id`` can be written as UTF-8 (a leniently read string id may hold
    a lone surrogate, which would go out as an escape its receiver reads its own way)."""
    if not isinstance(message_id, str):
        return True
    try:
        message_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _without_id(message: Mapping[str, Any]) -> dict[str, Any]:
    """``message`` with a ``null`` id in place of its own, so that a refusal does not
    repeat it (a notification stays one)."""
    return {**message, "id": None} if "id" in message else dict(message)


def _shape_problem(message: Mapping[str, Any]) -> str | None:
    """Why ``message`` is not a request, notification or response, or ``None``."""
    extra = message.keys() - _MEMBERS
    if extra:
        return "MCP messages may only carry JSON-RPC 2.0 members"
    if not isinstance(message.get("jsonrpc", ""), str):
        return "JSON-RPC jsonrpc must be a string"
    if "method" in message:
        if not isinstance(message["method"], str) or not message["method"]:
            return "JSON-RPC method must be a non-empty string"
        if "result" in message or "error" in message:
            return "a JSON-RPC request carries no result or error"
        return None
    if "params" in message:
        return "JSON-RPC params belong to a request"
    if ("result" in message) == ("error" in message):
        return "a JSON-RPC response carries exactly one of result or error"
    if "id" not in message:
        return "a JSON-RPC response carries an id"
    return None
