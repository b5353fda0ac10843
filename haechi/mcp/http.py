# SPDX-License-Identifier: Apache-2.0
"""MCP over streamable HTTP through the gateway (``target.type: "mcp-http"``).

The gateway fronts a remote MCP server's endpoint. Authentication, policy profile and rate
limiting run first, in the gateway (:mod:`haechi.proxy.app`); then this handler takes over:

``POST``
    One JSON-RPC message. The client's message is decided like on stdio (allowlist,
    ``params`` protected as a request). A refused request is answered here with its
    JSON-RPC error (HTTP 200) and a refused notification with ``202`` — neither reaches the
    server. A refusal answered with ``id: null`` (a message without a usable id,
    or whose id is not repeated) goes with ``400``: it answers no request. Otherwise the
    protected message is forwarded. A body that cannot be parsed is answered ``400``, unless
    it reads leniently as an answer of the client: the server then gets the error for that
    answer's id (see :meth:`McpFilter.refuse_line`). A batch is refused whole, nothing of it
    forwarded: one holding requests is answered with the array of their errors (``200`` when
    one of them carries a request's id, ``400`` otherwise), any other with one error with
    ``id: null`` (``400``).
``GET``
    The server-to-client event stream, proxied with every message decided.
``DELETE``
    Ends the session upstream; its answer is relayed like any other.

Upstream answers are inspected whatever their shape. ``application/json``: the message is
decided as coming from the server (``result`` protected; a blocked result becomes a
``-32001`` error with the same id). ``text/event-stream``: every ``data:`` is one message,
decided on its own and written back as a normalised event, with only the field lines a
client reads and the detector finds nothing in (see :meth:`StreamableHttpHandler._fields`);
a blocked result becomes an error event with the same id, a refused server request is
answered to the server (by a POST of the error) and never shown to the client. A server answer
refused because of its id still answers the client's request when that id is exactly the one
the client sent. An answer that cannot be inspected — not JSON, not an event stream, over
``responseProtection.maxBytes``, an event that is not a message or whose inspection fails —
never reaches the client: a body is refused with 502, and a stream answering a request ends
with a ``-32000`` error for that request unless its answer went out already. So does a
stream answering a request that the upstream ends or breaks off before the answer, unless
the client holds an event id to resume it from (it then gets the answer by resuming). An
answer (JSON or event stream) that declares a ``content-encoding`` other than ``identity``,
or a charset other than UTF-8 in its ``content-type``, is refused with 502 before anything
of it is sent: it would be inspected as the UTF-8 text its bytes spell, and relayed for a
client that decodes it first (gunzips it, reads it as UTF-7) into text the gateway never
saw. The gateway asks for ``identity`` (``accept-encoding``), so a server honouring the
request never compresses.

Every refusal is audited once: messages by the shared decision, a dropped field line and a
stream ended early here (decision ``mcp_refused``, see :mod:`haechi.mcp._audit`). A field
line whose drop cannot be recorded ends the stream.

Sessions: the upstream's ``Mcp-Session-Id`` goes back to the client bound to the caller
(:mod:`haechi.mcp._sessions`), and every request's is checked to be one the gateway handed
that caller and replaced by the upstream's before anything is read or forwarded (``404``
otherwise, as for a session the server does not know). The upstream never sees the caller's
``Authorization``, so without this any caller holding another's session id would get that
session's event stream and post into it.

Event ids: the ``id`` of every event the upstream sends goes to the client bound to the caller
and the session (:mod:`haechi.mcp._sessions`), and a request's ``Last-Event-ID`` is checked
and replaced alike (``400`` otherwise): the server replays the events after any id it knows,
whichever session asks. Refusals for ids the gateway did not hand the caller are audited one
by one within ``mcp.deniedRecordsPerSecond`` a second, counted in a summary past it.

Headers: ``Mcp-Protocol-Version`` is passed to the upstream as sent, and ``Mcp-Session-Id``
and ``Last-Event-ID`` once they are replaced as above. When the client sends
``Mcp-Method``/``Mcp-Name`` (protocol revisions that mirror the body in headers), they are
rewritten from the *forwarded* body so that a header never carries a value the body no
longer does. Every other header follows the gateway's header boundary.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from haechi.audit import keyed_path_hash
from haechi.errors import AuditError, HaechiError, LimitError
from haechi.mcp._audit import refusal_summary_event
from haechi.mcp._sessions import (
    bind_event,
    bind_session,
    event_id_limit,
    session_id_limit,
    unbind_event,
    unbind_session,
)
from haechi.mcp.jsonrpc import (
    ANY_AWAITED,
    STDIO_ERROR,
    McpFilter,
    MessageError,
    Outcome,
    Side,
    encode_message,
    error_message,
    parse_message,
)
from haechi.models import Finding
from haechi.protocols import Route
from haechi.proxy._asgi import Receive, Send, send_json, send_response
from haechi.proxy._reauth import AccessLost, StreamAuth, relay_until_cut
from haechi.proxy.app import GatewayApp, GatewayRequest
from haechi.proxy.denials import DenialRecords
from haechi.proxy.errors import GatewayError
from haechi.proxy.headers import HeaderList, connection_named, response_headers
from haechi.proxy.responses import is_json_media_type, unreadable_reason
from haechi.proxy.upstream import (
    ResponseTooLarge,
    UpstreamError,
    UpstreamResponse,
    read_capped,
)
from haechi.streaming import Frame, SseParser, encode_sse
from haechi.streaming._json import dumps
from haechi.streaming._lines import reader_breaks

__all__ = ["StreamableHttpHandler", "create_handler"]

#: Request headers of the streamable HTTP transport passed upstream (``Mcp-Session-Id`` and
#: ``Last-Event-ID`` once the bound ids the client sent are replaced by the upstream's, see
#: ``_own_session`` and ``_own_event``).
_PASSED: Final = (b"mcp-session-id", b"mcp-protocol-version", b"last-event-id")
#: Methods whose name-bearing parameter is mirrored in the ``Mcp-Name`` header.
_NAME_PARAMS: Final[Mapping[str, str]] = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
}
_ACCEPT: Final = (b"accept", b"application/json, text/event-stream")
_STREAM_DROPPED: Final = frozenset(
    {b"etag", b"last-modified", b"content-md5", b"digest", b"cache-control", b"content-length"}
)
#: The field lines of an event a client reads: its name (which listener takes it), its id
#: (where to resume) and the reconnection delay. Comments and other fields are not relayed.
_RELAYED_FIELDS: Final = frozenset({"event", "id", "retry"})
_HEADER_SAFE: Final = re.compile(r"[\x20-\x7e]*")
#: An event id that a header field carries back as it is: visible ASCII, with spaces only
#: inside. A field value loses the spaces and tabs around it, other controls are refused,
#: and servers read the bytes past ASCII as Latin-1 or as UTF-8 (the SDKs' as Latin-1),
#: so such an id could come back as another.
_CARRIED_ID: Final = re.compile(r"[!-~](?:[ !-~]*[!-~])?")
_ENCODED_FORM: Final = re.compile(r"=\?base64\?.*\?=")


def create_handler(gateway: GatewayApp) -> StreamableHttpHandler:
    """The handler the gateway calls for every request of an ``mcp-http`` target."""
    return StreamableHttpHandler(gateway)


def _header_text(value: str) -> bytes:
    """``value`` as an ``Mcp-Method`` or ``Mcp-Name`` header: verbatim when it is safe
    printable ASCII, otherwise in the transport's ``=?base64?...?=`` form (a method that
    ``mcp.allowedMethods: ["*"]`` lets through may hold a line break, which no header
    value may)."""
    plain = _HEADER_SAFE.fullmatch(value) and not _ENCODED_FORM.fullmatch(value)
    if plain and value == value.strip():
        return value.encode("ascii")
    return b"=?base64?" + base64.b64encode(value.encode("utf-8")) + b"?="


def _answer_status(*refusals: Mapping[str, Any]) -> int:
    """The HTTP status of the refusals the gateway answers a posted message (or batch) with.

    A refusal carrying the refused request's id is an answer the client matches to its
    request like any other, so it goes with ``200``, and so does the array answering a
    batch when one of its errors does. One with ``id: null`` answers no request (the id was
    not usable, or not to be repeated): the streamable HTTP transport has a server that
    cannot accept the input answer with an HTTP error status, so ``400``.
    """
    return 200 if any(refusal.get("id") is not None for refusal in refusals) else 400


def _forwarded(request: GatewayRequest, name: bytes) -> list[bytes]:
    """The values of the header ``name`` the gateway forwards (none when the client's
    ``Connection`` names it: such a field is for the gateway alone)."""
    headers: HeaderList = request.scope["headers"]
    if name in connection_named(headers):
        return []
    return [value for key, value in headers if key == name]


def _replace(request: GatewayRequest, name: bytes, value: bytes) -> None:
    """Put ``value`` in place of the one header field ``name`` of ``request``."""
    headers: HeaderList = request.scope["headers"]
    request.scope["headers"] = [(key, value if key == name else old) for key, old in headers]


def _upstream_session(request: GatewayRequest) -> bytes | None:
    """The server's session id the request goes to the server with (once
    :meth:`StreamableHttpHandler._own_session` has replaced the bound one), if any."""
    given = _forwarded(request, b"mcp-session-id")
    return given[0] if given else None


def _event_id(value: str) -> str:
    """The id an ``id`` field line's ``value`` (what follows its colon) sets: the value
    without the one space that may lead it."""
    return value[1:] if value.startswith(" ") else value


def _is_event_stream(response: UpstreamResponse) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


@dataclass
class _Relay:
    """An event stream being relayed: the posted request it answers (``fallback_id``,
    ``None`` on a ``GET``), the server's session its event ids are bound to, the re-check of
    its caller (``auth``, see :mod:`haechi.proxy._reauth`), whether that request's answer
    (or its error) went out, whether the client holds an event id to resume from, and why
    the stream ends without the answer, once that is known (``unanswered``)."""

    fallback_id: Any
    session: bytes | None
    auth: StreamAuth | None
    answered: bool = False
    resumable: bool = False
    unanswered: str | None = None

    def sent(self, meta: tuple[str, ...]) -> None:
        """Note the field lines of an event that went out: the last ``id`` is where the
        client resumes (an empty one leaves it nothing to resume from)."""
        for line in meta:
            name, _colon, value = line.partition(":")
            if name == "id":
                self.resumable = bool(_event_id(value))

    def owed(self) -> dict[str, Any] | None:
        """The error the posted request still needs as the stream ends: none when it was
        answered, when the stream ends with no reason noted (``unanswered``: the client
        resumes it, or went away), or when this is no posted request's stream. The request
        counts as answered from here on, so that it never gets a second error."""
        if self.fallback_id is None or self.answered or self.unanswered is None:
            return None
        self.answered = True
        return error_message(STDIO_ERROR, {"reason": self.unanswered}, self.fallback_id)


class _StreamEnded(Exception):
    """The event stream must stop here (a message could not be inspected); ``reason`` is
    the audit reason, ``None`` when the cause was recorded already (or could not be)."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(reason)
        self.reason = reason


class StreamableHttpHandler:
    """Serves one ``mcp-http`` gateway (see the module)."""

    def __init__(self, gateway: GatewayApp) -> None:
        self._gateway = gateway
        self._filter = McpFilter(gateway.runtime, protocol="mcp-http", mode=gateway.mode)
        self._cap: int = gateway.config.response_protection.max_bytes
        self._longest_id = event_id_limit(gateway.config.limits.max_header_bytes)
        self._longest_session = session_id_limit(gateway.config.limits.max_header_bytes)
        self._refusals = DenialRecords(
            gateway.config.mcp.denied_records_per_second,
            self._refusal_summary,
            unrecorded="mcp_refusals_unrecorded",
        )

    async def aclose(self) -> None:
        """Write the pending summary of refusals (the gateway is stopping)."""
        await self._refusals.aclose()

    async def __call__(self, request: GatewayRequest, receive: Receive, send: Send) -> None:
        """Answer one request (after the gateway's authentication and rate limits)."""
        method: str = request.scope["method"]
        request.route = Route(
            adapter_id="mcp-http",
            protocol="mcp-http",
            route_id="mcp",
            path=request.path,
            operation=f"{method} mcp",
        )
        if method not in ("POST", "GET", "DELETE"):
            raise GatewayError("haechi_method_not_allowed", headers={"allow": "GET, POST, DELETE"})
        await self._own_session(request)
        await self._own_event(request)
        if method == "POST":
            await self._post(request, receive, send)
        else:
            await self._exchange(request, receive, send, None, fallback_id=None)

    # -- client to server ----------------------------------------------------------------

    async def _own_session(self, request: GatewayRequest) -> None:
        """Put the server's session id in place of the bound ``Mcp-Session-Id`` the client
        sent (see :mod:`haechi.mcp._sessions`), or refuse the request, before anything of it
        is read or forwarded, when it is not an id the gateway handed this caller.

        The refusal is the ``404`` a server answers for a session it does not know (a client
        then starts a new one), audited as ``mcp_session_not_owned`` (see :meth:`_refuse`); it
        never holds the id. Several ``Mcp-Session-Id`` fields are refused alike: which one
        counts would be up to each reader. A field the client's ``Connection`` names is not
        forwarded, so it is left alone.
        """
        given = _forwarded(request, b"mcp-session-id")
        if not given:
            return
        crypto = self._gateway.runtime.crypto
        session = unbind_session(crypto, request.identity, given[0]) if len(given) == 1 else None
        if session is None:
            await self._refuse(request, "mcp_session_not_owned", "haechi_mcp_session_not_found")
        _replace(request, b"mcp-session-id", session)

    async def _own_event(self, request: GatewayRequest) -> None:
        """Put the server's event id in place of the bound ``Last-Event-ID`` the client sent
        (the ``id`` of an event the gateway relayed, see :meth:`_fields`), or refuse the
        request before anything of it is read or forwarded, when it is not an id the
        gateway handed this caller in this session: the server replays the events after
        any id it knows, whichever session asks.

        Runs after :meth:`_own_session`, so the session is the server's. The refusal is
        ``400`` ``haechi_mcp_event_id_refused``, audited as ``mcp_event_not_owned``;
        several ``Last-Event-ID`` fields are refused alike, one the ``Connection`` names is
        left alone, as for sessions. An empty one names no event (a server reads it as none,
        as a request without it), so it goes on as it is.
        """
        given = _forwarded(request, b"last-event-id")
        if given in ([], [b""]):
            return
        crypto = self._gateway.runtime.crypto
        session = _upstream_session(request)
        event = (
            unbind_event(crypto, request.identity, session, given[0]) if len(given) == 1 else None
        )
        # An id bound by an earlier version, which bound ids no client can send back (NUL,
        # controls), would reach the server as a field line it cannot carry: refused alike.
        if event is None or not self._carried(event.decode("latin-1")):
            await self._refuse(request, "mcp_event_not_owned", "haechi_mcp_event_id_refused")
        _replace(request, b"last-event-id", event)

    async def _refuse(self, request: GatewayRequest, reason: str, code: str) -> NoReturn:
        """Refuse ``request`` for an id the gateway did not hand its caller, with ``code``.

        Any client can send such ids as fast as it likes, so only the first
        ``mcp.deniedRecordsPerSecond`` refusals of a second are audited one by one (as
        ``reason``); the others are counted in a summary (:meth:`_refusal_summary`). The
        refusal itself never depends on its record.
        """
        self._gateway.metrics.increment("haechi_blocks_total")
        if self._refusals.admit(reason):
            await self._filter.audit_refusal(
                reason, side="client", operation="session", **self._audit_context(request)
            )
        raise GatewayError(code)

    async def _refusal_summary(self, counts: Mapping[str, int]) -> None:
        """Write the record of the refusals past ``mcp.deniedRecordsPerSecond``."""
        event = refusal_summary_event(
            protocol="mcp-http",
            operation="session",
            direction="request",
            mode=self._gateway.mode,
            counts=counts,
        )
        await self._gateway.runtime.audit.record(event)

    async def _post(self, request: GatewayRequest, receive: Receive, send: Send) -> None:
        body = await self._gateway.read_body(request, receive)
        cid = request.correlation_id.encode()
        try:
            message = parse_message(body)
        except MessageError as exc:
            # The gateway does not see which requests the server waits for: an answer of
            # the client that cannot be parsed goes to the server as the error for any id
            # it reads as (one the server is not waiting for, it ignores).
            request.decision = "invalid_request"
            refused = await self._filter.refuse_line(
                body, str(exc), side="client", awaited=ANY_AWAITED, **self._audit_context(request)
            )
            assert refused.message is not None
            # A refused batch of answers to the server's requests: the server gets the error
            # for each, as for one unreadable answer, instead of waiting for ever.
            for error in refused.receiver_errors:
                await self._answer_upstream(request, error)
            if refused.action == "forward":
                await self._exchange(request, receive, send, refused.message, fallback_id=None)
                return
            if refused.batch:
                status = _answer_status(*refused.batch)
                await send_json(send, status, list(refused.batch), correlation_id=cid)
                return
            await send_json(send, 400, refused.message, correlation_id=cid)
            return
        outcome = await self._decide(request, message, side="client")
        if outcome.action == "drop":
            await send_response(send, 202, [(b"x-haechi-correlation-id", cid)], b"")
            return
        assert outcome.message is not None
        if outcome.action == "answer":
            status = _answer_status(outcome.message)
            await send_json(send, status, outcome.message, correlation_id=cid)
            return
        fallback_id = message.get("id") if "method" in message else None
        await self._exchange(request, receive, send, outcome.message, fallback_id=fallback_id)

    def _audit_context(self, request: GatewayRequest) -> dict[str, Any]:
        """Who and where, for the audit events of refusals (see :meth:`McpFilter.refused`)."""
        return {
            "identity": request.identity,
            "profile": request.profile,
            "correlation_id": request.correlation_id,
            "route_id": "mcp",
            "path_hash": keyed_path_hash(self._gateway.runtime.crypto, request.path),
        }

    async def _decide(
        self,
        request: GatewayRequest,
        message: dict[str, Any],
        *,
        side: Side,
        fallback_id: Any = None,
    ) -> Outcome:
        # A server answer is for the client's request when it carries the request's id.
        awaited = (fallback_id,) if side == "server" and fallback_id is not None else None
        outcome = await self._filter.decide(
            message,
            side=side,
            allowlist=side == "client",
            awaited=awaited,
            **self._audit_context(request),
        )
        if outcome.blocked:
            request.decision = "blocked"
            self._gateway.metrics.increment("haechi_blocks_total")
        return outcome

    def _upstream_headers(
        self, client: HeaderList, message: Mapping[str, Any] | None
    ) -> HeaderList:
        out = [
            (name, value)
            for name, value in self._gateway.header_policy.upstream_headers(client)
            if name != b"accept"
        ]
        out.append(_ACCEPT)
        sent = {name: value for name, value in client if name.startswith(b"mcp-")}
        hop_by_hop = connection_named(client)
        out.extend(
            (name, value) for name, value in client if name in _PASSED and name not in hop_by_hop
        )
        method = message.get("method") if message is not None else None
        if not isinstance(method, str):
            return out
        if b"mcp-method" in sent:
            out.append((b"mcp-method", _header_text(method)))
        params = message.get("params") if message is not None else None
        name_key = _NAME_PARAMS.get(method)
        if b"mcp-name" in sent and name_key is not None and isinstance(params, dict):
            name = params.get(name_key)
            if isinstance(name, str):
                out.append((b"mcp-name", _header_text(name)))
        return out

    async def _exchange(
        self,
        request: GatewayRequest,
        receive: Receive,
        send: Send,
        message: Mapping[str, Any] | None,
        *,
        fallback_id: Any,
    ) -> None:
        """Send the request upstream and relay its inspected answer."""
        scope = request.scope
        upstream = self._gateway.upstream
        url = upstream.url(request.raw_path, scope.get("query_string", b""))
        headers = self._upstream_headers(scope["headers"], message)
        body = encode_message(message) if message is not None else None
        try:
            response = await self._gateway.unless_client_leaves(
                request, self._open(scope["method"], url, headers, body), receive
            )
        except (TimeoutError, UpstreamError) as failure:
            await self._gateway.upstream_failed(request, failure)
        try:
            if _is_event_stream(response):
                await self._refuse_unreadable(request, response)
                # The event ids of the stream are bound to the session it belongs to: the
                # one the request names, or the one a new session's first answer names.
                issued = [
                    value
                    for name, value in response.headers.raw
                    if name.lower() == b"mcp-session-id"
                ]
                session = _upstream_session(request) or (issued[0] if issued else None)
                auth = self._gateway.stream_auth(request)
                relay = _Relay(fallback_id, session, auth)
                try:
                    await relay_until_cut(
                        self._stream(request, response, send, relay), receive, auth
                    )
                except AccessLost as lost:
                    await self._gateway.stream_access_lost(request, lost.reason)
                    relay.unanswered = "the caller's credentials are no longer accepted"
                # Ended here, not in the relay: a re-check that cut the relay while it sent
                # its own error would add a second one for the same request.
                await self._end(send, relay)
            else:
                response.read_as_whole()
                await self._relay_body(request, response, send, fallback_id)
        finally:
            await response.aclose()

    async def _open(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes | None
    ) -> UpstreamResponse:
        """The head of the server's answer, within ``limits.upstreamTimeoutMs``."""
        upstream = self._gateway.upstream
        async with asyncio.timeout(upstream.timeout_s):
            return await upstream.open(method, url, headers, body)

    async def _answer_upstream(self, request: GatewayRequest, refusal: Mapping[str, Any]) -> None:
        """POST the refusal of a server-initiated request back to the server."""
        upstream = self._gateway.upstream
        url = upstream.url(request.raw_path, b"")
        headers = self._upstream_headers(request.scope["headers"], None)
        try:
            response = await self._open("POST", url, headers, encode_message(refusal))
            await response.aclose()
        except (TimeoutError, UpstreamError):
            pass  # the server's request then times out on its side; nothing was disclosed

    # -- server to client ----------------------------------------------------------------

    async def _relay_body(
        self, request: GatewayRequest, response: UpstreamResponse, send: Send, fallback_id: Any
    ) -> None:
        try:
            raw = await read_capped(response, self._cap)
        except ResponseTooLarge:
            await self._unprotected(request, "response_body_too_large")
        except UpstreamError as failure:  # cut short
            await self._gateway.upstream_failed(request, failure, answered=True)
        if not raw:
            headers = await self._response_headers(request, response)
            await send_response(send, response.status_code, headers, b"")
            return
        await self._refuse_unreadable(request, response)
        if not is_json_media_type(response.headers.get("content-type", "")):
            await self._unprotected(request, "non_json_response")
        try:
            message = parse_message(raw)
        except MessageError:
            await self._unprotected(request, "invalid_json_response")
        outcome = await self._decide(request, message, side="server", fallback_id=fallback_id)
        status = response.status_code
        if outcome.action != "forward" or outcome.message is None:
            # A body answering a request must be that request's response; anything refused
            # in its place becomes an error for the client's request.
            status = 502
            reason = "the upstream answer was refused"
            outcome = Outcome(
                "forward", error_message(STDIO_ERROR, {"reason": reason}, fallback_id)
            )
        assert outcome.message is not None
        headers = await self._response_headers(request, response, rewritten=True)
        await send_response(send, status, headers, encode_message(outcome.message))

    async def _response_headers(
        self, request: GatewayRequest, response: UpstreamResponse, *, rewritten: bool = False
    ) -> HeaderList:
        """The headers of ``response`` for the client: every field in which the detector
        finds a value dropped, as on the gateway's other routes (see
        :meth:`~haechi.proxy.responses.ResponseHandler.client_headers`), and the server's
        ``Mcp-Session-Id`` bound to the caller (see :meth:`_own_session`). The session id is
        not scanned: the server makes it, the gateway MACs it, and a random id a detector
        mistook for a value would end the session. Raises when it cannot be bound: the
        server's id never goes out as it is. A session id no client could send back to it
        (empty, beyond :func:`~haechi.mcp._sessions.session_id_limit`, or not the visible
        ASCII the protocol asks for) refuses the answer (``unusable_session_id``): every
        later request of the session would fail, the first one answered already."""
        crypto = self._gateway.runtime.crypto
        cid = request.correlation_id.encode()
        fields = response_headers(response.headers.raw, correlation_id=cid, rewritten=rewritten)
        sessions = [value for name, value in fields if name == b"mcp-session-id"]
        if not all(self._carried_session(value) for value in sessions):
            await self._unprotected(request, "unusable_session_id")
        others = [(name, value) for name, value in fields if name != b"mcp-session-id"]
        kept = await self._gateway.responses.client_headers(request, others)
        kept.extend(
            (b"mcp-session-id", bind_session(crypto, request.identity, value)) for value in sessions
        )
        return kept

    async def _refuse_unreadable(self, request: GatewayRequest, response: UpstreamResponse) -> None:
        """Refuse ``response`` when its headers say its bytes are not the UTF-8 text a client
        will read: coded (``compressed_response``) or in another charset
        (``unsupported_charset``). Nothing here decodes a body, so a coded message would be
        inspected in its coded form while the client decodes it; decided before anything of
        the answer is sent."""
        reason = unreadable_reason(response.headers)
        if reason is not None:
            await self._unprotected(request, reason)

    async def _unprotected(self, request: GatewayRequest, reason: str) -> NoReturn:
        gateway = self._gateway
        request.decision = "response_unprotected_blocked"
        gateway.metrics.increment("haechi_response_unprotected_total")
        gateway.metrics.increment("haechi_blocks_total")
        await gateway.audit_decision(request, "response_unprotected_blocked", reason)
        raise GatewayError("haechi_response_unprotected", extra={"reason": reason})

    async def _stream(
        self, request: GatewayRequest, response: UpstreamResponse, send: Send, relay: _Relay
    ) -> None:
        headers = [
            (name, value)
            for name, value in await self._response_headers(request, response)
            if name not in _STREAM_DROPPED
        ]
        headers.append((b"cache-control", b"no-store"))
        request.started = True
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        parser = SseParser(self._cap)
        # Once the posted request is answered, a stream ending early owes it nothing more;
        # one that ends before, with no event id the client could resume from, owes an error
        # (the client would wait for the answer for ever), which :meth:`_end` sends.
        try:
            async for chunk in response.aiter_raw():
                # Event by event as the chunk is read: the events before one that cannot be
                # read (the answer, often) go out however the upstream's bytes were chunked.
                for frame in parser.frames(chunk):
                    await self._event(request, frame, send, relay)
            for frame in parser.finish():
                await self._event(request, frame, send, relay)
        except (HaechiError, UnicodeDecodeError, _StreamEnded) as exc:
            # Fail closed on whatever stopped the inspection of an event (a field line the
            # detector failed on, an id the key could not bind...): the event stays
            # withheld, the refusal is recorded and the request gets its error.
            if isinstance(exc, _StreamEnded):
                reason = exc.reason
            elif isinstance(exc, LimitError):
                reason = "mcp_sse_event_too_large"
            elif isinstance(exc, UnicodeDecodeError):
                reason = "mcp_sse_event_not_utf8"
            else:
                reason = "mcp_protection_failed"
            if reason is not None:
                # The stream ends whether or not this record can be written.
                with contextlib.suppress(AuditError):
                    await self._audit_stream(request, reason)
            relay.unanswered = "an upstream event could not be inspected"
        except UpstreamError as failure:
            # The stream ends whether or not this record can be written.
            with contextlib.suppress(AuditError):
                await self._gateway.record_upstream_failure(request, failure, answered=True)
            if not relay.resumable:
                relay.unanswered = "the upstream event stream broke off before the answer"
        else:
            if not relay.resumable:
                relay.unanswered = "the upstream event stream ended before the answer"

    async def _end(self, send: Send, relay: _Relay) -> None:
        """End the stream of ``relay``, with the error its posted request is owed (see
        :meth:`_Relay.owed`): the stream ended before the answer, or the caller lost access
        (a client that went away gets nothing)."""
        refusal = relay.owed()
        if refusal is not None:
            await self._send_event(send, (), dumps(refusal))
        await send({"type": "http.response.body", "body": b""})

    async def _audit_stream(
        self, request: GatewayRequest, reason: str, findings: tuple[Finding, ...] = ()
    ) -> None:
        await self._filter.audit_refusal(
            reason,
            side="server",
            operation="event-stream",
            findings=findings,
            **self._audit_context(request),
        )

    async def _event(
        self, request: GatewayRequest, frame: Frame, send: Send, relay: _Relay
    ) -> None:
        """Relay one event of ``relay``, noting what went out; its caller is checked first
        when that is due."""
        if relay.auth is not None and relay.auth.due():
            await relay.auth.confirm()
        meta = await self._fields(request, frame.meta, relay.session)
        if not frame.data:
            if meta or frame.data is not None:
                await self._send_event(send, meta, frame.data)
                relay.sent(meta)
            return
        try:
            message = parse_message(frame.data.encode("utf-8"))
        except MessageError:
            raise _StreamEnded("mcp_sse_event_unparseable") from None
        fallback_id = relay.fallback_id
        outcome = await self._decide(request, message, side="server", fallback_id=fallback_id)
        if outcome.action == "forward":
            assert outcome.message is not None
            await self._send_event(send, meta, dumps(outcome.message))
            relay.sent(meta)
            sent_id = outcome.message.get("id")
            is_response = "method" not in outcome.message and fallback_id is not None
            if is_response and (type(sent_id), sent_id) == (type(fallback_id), fallback_id):
                relay.answered = True
            return
        if outcome.action == "answer" and "method" in message and message.get("id") is not None:
            assert outcome.message is not None
            await self._answer_upstream(request, outcome.message)

    async def _fields(
        self, request: GatewayRequest, meta: tuple[str, ...], session: bytes | None
    ) -> tuple[str, ...]:
        """The field lines of an event that go on to the client.

        Only the fields a client reads (:data:`_RELAYED_FIELDS`) are kept, and only when the
        detector finds nothing in them: they are not part of the message, so a value there
        would pass uninspected, and an id or a name is not worth refusing the event for. An
        ``id`` goes out bound to the caller and ``session`` (see :meth:`_own_event`); an
        empty one, which tells the client to forget the last id, as it is. An ``id`` the
        client could not resume from is dropped: one holding NUL (a client ignores it),
        one a header field cannot carry back as it is (a control, a character past ASCII,
        a space around it, see :data:`_CARRIED_ID`), and one longer than
        :func:`~haechi.mcp._sessions.event_id_limit` allows under ``limits.maxHeaderBytes``
        (the client's request to resume would be refused 431). Bound, such an id would go
        out as one to resume from, so the request would not get the error it is owed (see
        :meth:`_Relay.owed`) and the client would resume to no avail. A line holding a
        character some clients' line readers end a line at (U+2028, NEL, a form feed...)
        ends the stream: such a client would read what follows it as lines of its own,
        which nobody inspected.

        Each dropped field line is audited (``mcp_sse_field_dropped`` for a field no client
        reads, ``mcp_sse_field_refused`` for one with a finding); when that record cannot be
        written the stream ends. Comment lines (``: keep-alive``) carry no field and are
        dropped without a record: servers send them to keep idle connections open.
        """
        kept: list[str] = []
        for line in meta:
            if reader_breaks(line):
                raise _StreamEnded("mcp_sse_field_line_break")
            name, _colon, value = line.partition(":")
            if not name:
                continue
            findings: tuple[Finding, ...] = ()
            if name in _RELAYED_FIELDS and (name != "id" or self._carried(_event_id(value))):
                findings = tuple(self._gateway.runtime.scan(value, direction="response"))
                if not findings:
                    kept.append(self._bound_id(request, line, session) if name == "id" else line)
                    continue
            reason = "mcp_sse_field_refused" if findings else "mcp_sse_field_dropped"
            try:
                await self._audit_stream(request, reason, findings)
            except AuditError:
                raise _StreamEnded(None) from None
        return tuple(kept)

    def _carried_session(self, session: bytes) -> bool:
        """Whether the server's session id is one a client can send back bound and the
        server get back as it is (as :meth:`_carried` for event ids, never empty)."""
        text = session.decode("latin-1")
        return len(session) <= self._longest_session and _CARRIED_ID.fullmatch(text) is not None

    def _carried(self, event: str) -> bool:
        """Whether the server's event id ``event`` is one a client can send back bound, and
        the server get back as it is (see :meth:`_fields`); an empty one sets no id."""
        if not event:
            return True
        return len(event) <= self._longest_id and _CARRIED_ID.fullmatch(event) is not None

    def _bound_id(self, request: GatewayRequest, line: str, session: bytes | None) -> str:
        """The ``id`` field ``line`` with the server's id bound (see :meth:`_fields`)."""
        event = _event_id(line.partition(":")[2])
        if not event:
            return line
        crypto = self._gateway.runtime.crypto
        bound = bind_event(crypto, request.identity, session, event.encode("utf-8"))
        return "id: " + bound.decode("ascii")

    @staticmethod
    async def _send_event(send: Send, meta: tuple[str, ...], data: str | None) -> None:
        chunk = encode_sse(meta, data).encode("utf-8")
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
