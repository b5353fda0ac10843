# SPDX-License-Identifier: Apache-2.0
"""The gateway as an ASGI application.

Order of one request (security-relevant; nothing is read or forwarded before the checks
that come earlier):

1. correlation id; the request target must be origin-form (400 otherwise); the path is
   normalized (dot segments) before anything looks at it;
2. ``/__haechi/*`` is answered locally (:mod:`haechi.proxy.ops`), never proxied;
3. in-flight ceiling (503 + ``Retry-After``), then the ``X-Forwarded-Proto`` gate;
4. route classification (of the decoded path with empty and dot segments resolved, as a
   lenient upstream reads it; the path forwarded stays as sent), authentication, policy
   profile, rate limit — all before the body;
5. ``mcp-http`` targets are handed to the MCP handler here;
6. body with an incremental byte cap (413), strict UTF-8 and JSON without a lone
   surrogate (400), nesting the parser can read (413);
7. model allowlist (body ``model`` or the model in a Gemini path; 403);
8. streaming decision (``streaming.requestMode``);
9. request protection (403 on a policy block, 413 on nesting, 500 when inspection failed);
10. forward through the pooled upstream client (502 unreachable, 504 timeout; given up at
    once when the client leaves);
11. response handling (:mod:`haechi.proxy.responses`) or streaming.

A body in which protection found nothing is forwarded as the exact bytes the client sent;
it is only re-serialised when protection changed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, NoReturn, Protocol, TypeVar
from urllib.parse import parse_qsl

from haechi.audit import keyed_path_hash, proxy_decision_event
from haechi.errors import HaechiError, IdentityError, LimitError
from haechi.models import Identity, ProtectResult
from haechi.protocols import (
    ProtocolAdapter,
    Route,
    adapter_for,
    asks_several_choices,
    is_streaming_request,
    manages_models,
    plain_stream_flag,
    request_models,
)
from haechi.protocols.token_ids import holds_embeddings, holds_token_ids
from haechi.providers import RetryAfterHint
from haechi.proxy._asgi import Receive, Send, compact_json, send_response
from haechi.proxy._reauth import AccessLost, Rechecks, StreamAuth, relay_until_cut
from haechi.proxy.denials import DenialRecords
from haechi.proxy.errors import GatewayError
from haechi.proxy.headers import (
    RequestHeaderPolicy,
    inspected_stream_headers,
    response_headers,
)
from haechi.proxy.logs import log_event
from haechi.proxy.ops import Operations, reserved_path
from haechi.proxy.pipeline import (
    ClientGone,
    ambiguous_path,
    forwarded_proto_is_https,
    model_allowed,
    new_correlation_id,
    parse_json_body,
    read_body,
    request_path,
)
from haechi.proxy.responses import ResponseHandler
from haechi.proxy.upstream import (
    ResponseTooLarge,
    Upstream,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
    iter_capped,
)
from haechi.ratelimit import WINDOW_SECONDS
from haechi.streaming import StreamInspector

__all__ = ["GatewayApp", "GatewayRequest", "McpHttpHandler"]

_T = TypeVar("_T")
#: The request to the upstream, made when called (its answer's head).
_Ask = Callable[[], Awaitable[UpstreamResponse]]

_BODYLESS: Final = frozenset({"GET", "HEAD"})
#: How long a request waits for its upstream before the gateway watches whether its client
#: left (see GatewayApp.unless_client_leaves).
_WATCH_CLIENT_AFTER_S: Final = 0.2
_STREAM_TYPES: Final = {"sse": "text/event-stream", "ndjson": "ndjson"}
_ERROR_DECISIONS: Final = {
    "haechi_invalid_json_request": "invalid_request",
    "haechi_request_body_not_utf8": "invalid_request",
    "haechi_request_body_too_large": "invalid_request",
    "haechi_request_headers_too_large": "invalid_request",
    "haechi_invalid_http_request": "invalid_request",
    "haechi_request_too_deeply_nested": "invalid_request",
    "haechi_forwarded_proto_required": "forwarded_proto_required",
    "haechi_upstream_unreachable": "upstream_error",
    "haechi_upstream_timeout": "upstream_timeout",
    "haechi_protection_failed": "protection_failed",
    "haechi_proxy_error": "error",
}


@dataclass(slots=True)
class GatewayRequest:
    """What the gateway knows about a request once it passed authentication and rate limits.

    Attributes:
        scope: the ASGI scope.
        correlation_id: the id shared by this request's audit events and log lines.
        raw_path: the normalized path as sent (percent-encoding kept), to forward.
        path: the normalized, decoded path, to route on (the adapter also resolves the
            empty and dot segments that decoding left, such as ``%2f``'s).
        route: the classification; ``None`` until classified.
        identity: the authenticated caller, or ``None``.
        profile: the policy profile name in effect, or ``None``.
        decision: the metrics decision label of the outcome so far.
        started: whether the response status line was already sent.
        several_choices: the streaming request asked for several answers (its stream is
            inspected per answer; see ``haechi.protocols.asks_several_choices``).
        body_read: the whole body was received (an answer given before that closes the
            connection, so that the rest is never drained).
    """

    scope: dict[str, Any]
    correlation_id: str
    raw_path: bytes
    path: str
    route: Route | None = None
    identity: Identity | None = None
    profile: str | None = None
    decision: str = "forwarded"
    started: bool = False
    several_choices: bool = False
    body_read: bool = False


class McpHttpHandler(Protocol):
    """Serves requests of an ``mcp-http`` target after authentication and rate limiting.

    Built by ``haechi.mcp.http.create_handler(gateway)``; the handler reads the body itself
    (with :meth:`GatewayApp.read_body`) and talks upstream through ``gateway.upstream``.
    """

    async def __call__(self, request: GatewayRequest, receive: Receive, send: Send) -> None:
        """Answer the request."""
        ...

    async def aclose(self) -> None:
        """Write what is pending (the gateway is stopping)."""
        ...


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _may_carry_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request with ``headers`` has body bytes still to come."""
    length = _header(headers, b"content-length")
    return (length is not None and length != b"0") or any(
        name == b"transfer-encoding" for name, _value in headers
    )


def _closing(send: Send) -> Send:
    """``send`` adding ``Connection: close`` to the answer: an answer given before the
    request's body was read closes the connection, or the server would drain the body for
    as long as the client keeps sending it."""

    async def closing(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message["headers"], (b"connection", b"close")]}
        await send(message)

    return closing


def _unchanged(result: ProtectResult) -> bool:
    """Whether protection left the payload exactly as it was."""
    return result.mode != "enforce" or not result.summary.get("detectionCount")


class GatewayApp:
    """The haechi gateway: ``await app(scope, receive, send)``."""

    def __init__(
        self,
        runtime: Any,
        *,
        forwarded_proto_gate: bool = False,
        upstream: Upstream | None = None,
    ) -> None:
        config = runtime.config
        self.runtime = runtime
        self.config = config
        self.mode = config.effective_mode
        self.metrics = runtime.metrics
        self._auth = runtime.auth
        # Built now, like the others: a limiter that cannot be built (an unknown
        # rateLimit.provider, a plugin whose constructor fails) stops the gateway before it
        # serves, instead of failing every request a budget applies to.
        self._rate_limiter = runtime.rate_limiter
        self._forwarded_proto_gate = forwarded_proto_gate
        self._mcp: McpHttpHandler | None = None
        self.adapter = (
            None if config.target.type == "mcp-http" else adapter_for(config.target.adapter_id)
        )
        limits = config.limits
        self.upstream = upstream or Upstream(
            config.target.upstream, timeout_s=limits.upstream_timeout_ms / 1000
        )
        self._upstream_prefix = self.upstream.path_prefix
        self.header_policy = RequestHeaderPolicy(
            config.target.forward_headers, auth_enabled=self._auth is not None
        )
        self.ops = Operations(runtime)
        self.responses = ResponseHandler(self)
        self.max_request_bytes: int = limits.max_request_bytes
        self._max_in_flight: int = limits.max_in_flight
        self._retry_after = str(max(1, math.ceil(limits.shutdown_grace_ms / 1000)))
        self._request_timeout_s = (limits.request_timeout_ms or 0) / 1000
        self._streaming = config.streaming
        recheck_s = config.auth.stream_recheck_ms / 1000
        plugin = config.auth.plugin if config.auth.provider == "plugin" else None
        plugin_timeout_s = plugin.timeout_ms / 1000 if plugin is not None else 0.0
        self._rechecks = (
            Rechecks(self._auth, recheck_s, plugin_timeout_s)
            if self._auth is not None and recheck_s
            else None
        )
        # Token ids here are model vocabulary indices, not credentials.
        self._refuse_token_ids = config.target.token_id_input == "refuse"  # noqa: S105
        self.in_flight = 0
        self._denials = DenialRecords(
            config.auth.denied_records_per_second,
            functools.partial(self._denial_summary, "auth_denied"),
        )
        self._rate_limited = DenialRecords(
            config.rate_limit.denied_records_per_second,
            functools.partial(self._denial_summary, "rate_limited"),
            unrecorded="rate_limited_unrecorded",
        )
        self._limiter_failures = DenialRecords(
            config.rate_limit.denied_records_per_second,
            functools.partial(self._denial_summary, "rate_limit_unavailable"),
            unrecorded="rate_limit_unavailable_unrecorded",
        )
        # None: no bound (asyncio.timeout's own "never").
        self._limiter_timeout_s = config.rate_limit.timeout_ms / 1000 or None
        if config.target.type == "mcp-http":
            from haechi.mcp.http import create_handler

            self._mcp = create_handler(self)

    # -- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def count_refused(self, code: str) -> None:
        """Count a request refused before it was routed: a target that is not a path, or a
        request the HTTP server's parser could not read (the server calls this itself); one
        refused for load is counted as the in-flight ceiling counts its refusals."""
        if code == "haechi_overloaded":
            self.metrics.increment("haechi_overloaded_total")
            return
        self.metrics.increment(
            "haechi_requests_total",
            {
                "route": "unknown",
                "mode": self.mode,
                "decision": _ERROR_DECISIONS.get(code, "blocked"),
            },
        )

    async def aclose(self) -> None:
        """Write the pending refusal summaries; release the upstream connection pool."""
        await self._denials.aclose()
        await self._rate_limited.aclose()
        await self._limiter_failures.aclose()
        if self._mcp is not None:
            await self._mcp.aclose()
        await self.upstream.aclose()

    # -- one request ---------------------------------------------------------------------

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        correlation_id = new_correlation_id()
        cid = correlation_id.encode()
        try:
            raw_path, path = request_path(scope)
        except GatewayError as error:
            self.count_refused(error.code)
            await self._send_error(send, error, cid, scope)
            return
        reserved = reserved_path(path)
        if reserved is not None:  # operability routes are not counted as requests
            unread = _may_carry_body(scope["headers"])
            try:
                await self.ops.handle(
                    scope["method"], reserved, _closing(send) if unread else send, cid
                )
            except GatewayError as error:
                await self._send_error(send, error, cid, scope)
            return
        if self._max_in_flight and self.in_flight >= self._max_in_flight:
            self.metrics.increment("haechi_overloaded_total")
            overloaded = GatewayError(
                "haechi_overloaded", headers={"retry-after": self._retry_after}
            )
            await self._send_error(send, overloaded, cid, scope)
            return
        self.in_flight += 1
        request = GatewayRequest(scope, correlation_id, raw_path, path)
        try:
            await self._proxy(request, receive, send)
        except GatewayError as error:
            if request.decision == "forwarded":
                request.decision = _ERROR_DECISIONS.get(error.code, "blocked")
            if not request.started:
                await self._send_error(send, error, cid, scope, request)
        except ClientGone:
            request.decision = "client_gone"
        except asyncio.CancelledError:
            # Cut by the server (the shutdown grace ran out): not forwarded, whatever it was.
            request.decision = "cancelled"
            raise
        except Exception as exc:
            request.decision = "error"
            self.metrics.increment("haechi_internal_error_total")
            log_event(
                40,
                "proxy_internal_error",
                correlationId=correlation_id,
                errorName=type(exc).__name__,
                statusCode=500,
            )
            if not request.started:
                failed = GatewayError("haechi_proxy_error")
                await self._send_error(send, failed, cid, scope, request)
        finally:
            self.in_flight -= 1
            route_id = request.route.route_id if request.route else "unknown"
            if request.decision:  # "" = counted already (inspected streams count themselves)
                self.metrics.increment(
                    "haechi_requests_total",
                    {"route": route_id, "mode": self.mode, "decision": request.decision},
                )
            self.metrics.observe(
                "haechi_request_duration_seconds",
                time.perf_counter() - started,
                {"route": route_id},
            )

    async def _send_error(
        self,
        send: Send,
        error: GatewayError,
        cid: bytes,
        scope: dict[str, Any],
        request: GatewayRequest | None = None,
    ) -> None:
        """Answer ``error``. When the body of the request (``scope``) is not all in yet, the
        connection is closed after the answer: draining an unread body would let a client
        hold the connection, with no deadline, for as long as it keeps sending."""
        headers = [
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
            (b"x-haechi-correlation-id", cid),
        ]
        unread = (request is None or not request.body_read) and _may_carry_body(scope["headers"])
        if unread and "connection" not in error.headers:
            headers.append((b"connection", b"close"))
        headers.extend((k.encode(), v.encode()) for k, v in error.headers.items())
        await send_response(send, error.status, headers, error.body())

    async def _proxy(self, request: GatewayRequest, receive: Receive, send: Send) -> None:
        scope = request.scope
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        method: str = scope["method"]
        if self._forwarded_proto_gate and not forwarded_proto_is_https(headers):
            raise GatewayError("haechi_forwarded_proto_required")
        adapter = self.adapter
        if adapter is not None:
            request.route = self._classify(adapter, method, request.path)
        if self._auth is not None:
            request.identity = await self._authenticate(request, headers)
        policy = self.runtime.resolve_policy(request.identity)
        request.profile = policy.profile
        if policy.rate is not None:
            await self._rate_limit(request, policy.rate)
        if self._mcp is not None:
            await self._mcp(request, receive, send)
            return
        assert adapter is not None
        assert request.route is not None
        route = request.route
        body = await self.read_body(request, receive)
        payload, whole = parse_json_body(body)
        if policy.model_allowlist:
            await self._check_models(request, route, policy.model_allowlist, adapter, payload)
        if not plain_stream_flag(payload):
            raise GatewayError("haechi_invalid_stream_flag")
        if self._refuse_token_ids:
            if holds_token_ids(payload, route.token_id_inputs):
                await self._deny_token_ids(request, "token_id_input")
            if holds_embeddings(payload, route.embedding_inputs):
                await self._deny_token_ids(request, "embedding_input")
        streaming = is_streaming_request(route, payload)
        if streaming:
            self._check_streaming(request, route)
            request.several_choices = asks_several_choices(route, payload)
        forward: bytes | None = body
        tokens: tuple[str, ...] = ()
        if route.protect_request and (body or method not in _BODYLESS):
            result = await self.protect(request, payload, direction="request")
            if result.blocked:
                request.decision = "blocked"
                self.metrics.increment("haechi_blocks_total")
                raise GatewayError(
                    "haechi_policy_block",
                    extra={"summary": result.summary, "auditId": result.audit_id},
                )
            tokens = result.issued_tokens
            if not (_unchanged(result) and whole):
                forward = compact_json(result.payload)
            elif not body and method not in _BODYLESS:
                forward = b"{}"
        if not forward and method in _BODYLESS:
            forward = None
        url = self.upstream.url(request.raw_path, scope.get("query_string", b""))
        upstream_headers = self.header_policy.upstream_headers(headers)
        ask = functools.partial(self.upstream.open, method, url, upstream_headers, forward)
        if streaming:
            await self._stream(request, ask, receive, send, tokens)
            return
        exchange = self._exchange(request, ask, send, tokens)
        await self.unless_client_leaves(request, exchange, receive)

    async def _exchange(
        self, request: GatewayRequest, ask: _Ask, send: Send, tokens: tuple[str, ...]
    ) -> None:
        """Ask the upstream (``ask()``), and answer the client with what it says.

        The upstream has ``limits.upstreamTimeoutMs`` to answer whole, head and body. The
        gateway's own work on the answer (its inspection, the audit records, writing it to
        the client) is not counted in it: an answer that came whole in time is never a
        timeout, whatever that work takes.
        """
        try:
            response = await ask()
        except UpstreamError as failure:
            await self.upstream_failed(request, failure)
        response.read_as_whole()
        try:
            await self.responses.respond(request, response, send, tokens)
        except UpstreamError as failure:
            await self.upstream_failed(request, failure, answered=True)
        finally:
            await response.aclose()

    async def unless_client_leaves(
        self, request: GatewayRequest, work: Awaitable[_T], receive: Receive
    ) -> _T:
        """The result of ``work`` (a wait for the upstream), unless the client of
        ``request`` leaves first: ``work`` is then cancelled, which closes its upstream
        connection, the request is audited as ``client_gone`` and :class:`ClientGone`
        raised. An answer can take minutes, for which the request would otherwise hold its
        ``limits.maxInFlight`` slot and the upstream work for nobody.

        The client is watched only once the wait has lasted :data:`_WATCH_CLIENT_AFTER_S`:
        watching takes a task of its own, which most answers, there sooner, need not pay
        for. ``work`` runs in the request's own task, which the watch cancels.
        """
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        left = False
        watch: asyncio.Task[None] | None = None

        async def until_gone() -> None:
            nonlocal left
            while (await receive())["type"] != "http.disconnect":
                pass
            left = True
            task.cancel()

        def start_watching() -> None:
            nonlocal watch
            watch = loop.create_task(until_gone())

        timer = loop.call_later(_WATCH_CLIENT_AFTER_S, start_watching)
        try:
            return await work
        except asyncio.CancelledError:
            # Another cancellation (the server's, at the end of a drain) goes on.
            if not left or task.uncancel() > 0:
                raise
        finally:
            timer.cancel()
            if watch is not None:
                watch.cancel()
        await self.audit_decision(
            request, "client_gone", "client_disconnected", enforced=False, blocked=False
        )
        raise ClientGone

    # -- steps ---------------------------------------------------------------------------

    async def read_body(self, request: GatewayRequest, receive: Receive) -> bytes:
        """Read the body of ``request`` under ``limits.maxRequestBytes``."""
        declared = _header(request.scope["headers"], b"content-length")
        length = int(declared) if declared is not None and declared.isdigit() else None
        if not self._request_timeout_s:
            body = await read_body(receive, self.max_request_bytes, length)
        else:
            try:
                async with asyncio.timeout(self._request_timeout_s):
                    body = await read_body(receive, self.max_request_bytes, length)
            except TimeoutError:
                raise GatewayError(
                    "haechi_request_timeout", headers={"connection": "close"}
                ) from None
        request.body_read = True
        return body

    async def audit_decision(
        self,
        request: GatewayRequest,
        decision: str,
        reason: str,
        *,
        with_identity: bool = True,
        enforced: bool | None = None,
        blocked: bool | None = None,
    ) -> None:
        """Write one gateway decision event for ``request`` (``enforced`` and ``blocked`` as
        :func:`proxy_decision_event` takes them: needed for a decision it does not know)."""
        route = request.route
        event = proxy_decision_event(
            protocol=route.protocol if route else self.config.target.type,
            route_id=route.route_id if route else "unknown",
            decision=decision,
            reason=reason,
            mode=self.mode,
            correlation_id=request.correlation_id,
            identity=request.identity if with_identity else None,
            profile=request.profile if with_identity else None,
            path_hash=keyed_path_hash(self.runtime.crypto, request.path),
            enforced=enforced,
            blocked=blocked,
        )
        await self.runtime.audit.record(event)

    async def _denial_summary(self, decision: str, counts: Mapping[str, int]) -> None:
        """Write the record of the ``decision`` refusals past their ``deniedRecordsPerSecond``
        (of any route and caller: none is named)."""
        protocol = self.config.target.type
        event = proxy_decision_event(
            protocol=protocol,
            route_id=None,
            decision=decision,
            reason="aggregated",
            mode=self.mode,
            correlation_id=None,
        )
        event["operation"] = f"proxy:{protocol}"
        event["summary"]["byAction"] = {decision: sum(counts.values())}
        event["summary"]["byReason"] = dict(counts)
        await self.runtime.audit.record(event)

    async def protect(
        self, request: GatewayRequest, payload: Any, *, direction: str, mode: str | None = None
    ) -> ProtectResult:
        """Run the runtime's protect step, turning its failures into gateway errors.

        A nesting-limit refusal keeps its own status (413); any other failure to inspect
        (a provider, the vault, the audit log) is a 500 and nothing is forwarded.
        """
        route = request.route
        assert route is not None
        response = direction == "response"
        try:
            result: ProtectResult = await self.runtime.protect(
                payload,
                direction=direction,
                protocol=route.protocol,
                operation=f"{direction}:{route.operation}",
                mode=mode or self.mode,
                identity=request.identity,
                profile=request.profile,
                correlation_id=request.correlation_id,
                scan_numbers=response and self.config.response_protection.scan_numbers,
            )
        except LimitError as exc:
            raise GatewayError(exc.error_code, status=exc.status_code) from None
        except HaechiError as exc:
            request.decision = "protection_failed"
            self.metrics.increment("haechi_internal_error_total")
            log_event(
                40,
                "proxy_protection_error",
                correlationId=request.correlation_id,
                errorName=type(exc).__name__,
                direction=direction,
            )
            code = "haechi_protection_failed" if not response else "haechi_response_unprotected"
            raise GatewayError(code) from None
        return result

    async def _authenticate(
        self, request: GatewayRequest, headers: list[tuple[bytes, bytes]]
    ) -> Identity:
        given = [value for name, value in headers if name == b"authorization"]
        authorization = given[0] if given else None
        credentials: Mapping[str, str] = (
            {"authorization": authorization.decode("latin-1")} if authorization else {}
        )
        reason = "no_token"
        message = "Authentication required"
        identity: Identity | None = None
        if len(given) > 1:
            # Not a list header: which of them counts is up to each reader, and a proxy in
            # front that reads another one than the gateway would see another caller.
            reason = "invalid_token"
        else:
            try:
                identity = await self._auth.authenticate(credentials)
            except IdentityError:  # it answered, with an identity the rules refuse
                reason, message = "invalid_identity", "Authentication failed"
            except Exception:  # a provider that raises denies; its text never leaves
                reason, message = "provider_error", "Authentication failed"
            else:
                if authorization and authorization.strip().lower().startswith(b"bearer"):
                    reason = "invalid_token"
        if identity is not None:
            return identity
        request.decision = "auth_denied"
        self.metrics.increment("haechi_auth_denied_total")
        if self._denials.admit(reason):
            await self.audit_decision(request, "auth_denied", reason, with_identity=False)
        raise GatewayError(
            "haechi_auth_denied", message, headers={"www-authenticate": 'Bearer realm="haechi"'}
        )

    async def _rate_limit(self, request: GatewayRequest, rate: Any) -> None:
        per_minute = float(getattr(rate, "requests_per_minute", rate))
        key = request.identity.id if request.identity is not None else "anonymous"
        limiter = self._rate_limiter
        bound = asyncio.timeout(self._limiter_timeout_s)
        try:
            async with bound:
                allowed = await limiter.allow(key, per_minute)
        except Exception as exc:  # a limiter that fails refuses; its text never leaves
            reason = "limiter_timeout" if bound.expired() else "limiter_error"
            await self._limiter_failed(request, reason, exc)
        if allowed is True:
            return
        request.decision = "rate_limited"
        self.metrics.increment("haechi_rate_limited_total")
        reason = f"rate:{_number(per_minute)}"
        if self._rate_limited.admit(reason):
            await self.audit_decision(request, "rate_limited", reason)
        wait = await self._limiter_retry_after(limiter, key, per_minute, request.correlation_id)
        raise GatewayError("haechi_rate_limited", headers={"retry-after": wait})

    async def _limiter_failed(
        self, request: GatewayRequest, reason: str, exc: Exception
    ) -> NoReturn:
        """Refuse a request whose budget could not be checked (``reason``: the limiter
        raised, or did not answer within ``rateLimit.timeoutMs``). Fail closed: letting it
        through would lift every budget whenever the limiter's store is down, and waiting
        would hold the request's in-flight slot for as long as the store does not answer.
        Records are bounded as the 429s' are: a broken limiter refuses every request."""
        request.decision = "rate_limit_unavailable"
        log_event(
            40,
            "rate_limit_failed",
            correlationId=request.correlation_id,
            errorName=type(exc).__name__,
            reason=reason,
        )
        if self._limiter_failures.admit(reason):
            await self.audit_decision(request, "rate_limit_unavailable", reason)
        raise GatewayError("haechi_rate_limit_unavailable") from None

    async def _limiter_retry_after(
        self, limiter: object, key: str, per_minute: float, correlation_id: str
    ) -> str:
        """``Retry-After`` of a refused ``key``: what the limiter says a slot takes to free
        (asked only now, so allowed requests pay nothing). A limiter that cannot say, or
        fails to within ``rateLimit.timeoutMs``, gets the whole window: a per-minute budget
        is back within it."""
        if not isinstance(limiter, RetryAfterHint):
            return _whole_seconds(WINDOW_SECONDS)
        try:
            async with asyncio.timeout(self._limiter_timeout_s):
                return _whole_seconds(await limiter.retry_after(key, per_minute))
        except Exception as exc:  # the refusal stands; only the hint falls back
            log_event(
                30,
                "rate_limit_retry_after_failed",
                correlationId=correlation_id,
                errorName=type(exc).__name__,
            )
            return _whole_seconds(WINDOW_SECONDS)

    async def _deny_token_ids(self, request: GatewayRequest, reason: str) -> None:
        request.decision = "blocked"
        self.metrics.increment("haechi_blocks_total")
        await self.audit_decision(request, "token_ids_refused", reason)
        raise GatewayError("haechi_token_ids_refused")

    async def _check_models(
        self,
        request: GatewayRequest,
        route: Route,
        allowlist: Sequence[str],
        adapter: ProtocolAdapter,
        payload: Any,
    ) -> None:
        """Refuse a request that may have the upstream serve a model ``allowlist`` does not
        allow, or whose path servers read in more than one way (a model it names could be
        checked as one and served as another)."""
        if ambiguous_path(request.raw_path):
            await self._deny_model(request, "ambiguous_path")
        if not self._models_allowed(allowlist, adapter, route, payload, self._upstream_prefix):
            await self._deny_model(request, "model_not_in_allowlist")

    @staticmethod
    def _models_allowed(
        allowlist: Sequence[str],
        adapter: ProtocolAdapter,
        route: Route,
        payload: Any,
        upstream_prefix: str,
    ) -> bool:
        """Whether every model the request may have served passes ``allowlist``: at least
        one is named, and neither the route nor the path the upstream serves (its URL's path
        followed by the client's) changes what a model name serves."""
        if route.manages_models or manages_models(upstream_prefix + route.path):
            return False
        models = request_models(adapter, route, payload, upstream_prefix=upstream_prefix)
        return bool(models) and all(
            model_allowed(allowlist, model, resource_names=adapter.model_in_path)
            for model in models
        )

    async def _deny_model(self, request: GatewayRequest, reason: str) -> NoReturn:
        # The model name is caller-controlled text: it is never written to the audit log.
        request.decision = "model_not_allowed"
        await self.audit_decision(request, "model_not_allowed", reason)
        raise GatewayError("haechi_model_not_allowed")

    def _classify(self, adapter: ProtocolAdapter, method: str, path: str) -> Route:
        """The route of what the upstream serves: its URL's path followed by the client's
        (behind ``…/v1``, the client's ``/chat/completions`` is ``/v1/chat/completions``),
        or, when those name no route, the client's path alone. The route keeps the client's
        path, which the model checks put behind the upstream's path themselves."""
        prefix = self._upstream_prefix
        if prefix:
            served = adapter.classify(method, prefix + path)
            if served.route_id != "unknown":
                return replace(served, path=path)
        return adapter.classify(method, path)

    def _check_streaming(self, request: GatewayRequest, route: Route) -> None:
        mode = self._streaming.request_mode
        if mode == "block":
            request.decision = "streaming_blocked"
            raise GatewayError("haechi_streaming_unsupported")
        if mode == "inspect" and route.streaming is None:
            request.decision = "streaming_blocked"
            raise GatewayError("haechi_streaming_uninspectable_route")

    async def upstream_failed(
        self, request: GatewayRequest, failure: Exception, *, answered: bool = False
    ) -> NoReturn:
        """Refuse ``request``, to which the upstream gave no answer, or one cut short after
        its head came (``answered``): 504 when ``failure`` is a timeout, 502 otherwise
        (recorded as :meth:`record_upstream_failure` says)."""
        raise await self.record_upstream_failure(request, failure, answered=answered)

    async def record_upstream_failure(
        self, request: GatewayRequest, failure: Exception, *, answered: bool
    ) -> GatewayError:
        """Count, log and audit that the upstream gave ``request`` no answer (``failure``),
        or cut it short (``answered``); the error its client gets, if it gets one yet.

        The request's own record is in the chain already, and this one tells that no
        answer reached its client (reason ``upstream_no_response``, or
        ``upstream_response_incomplete``)."""
        if isinstance(failure, TimeoutError | UpstreamTimeout):
            error = GatewayError("haechi_upstream_timeout")
            self.metrics.increment("haechi_upstream_timeout_total")
        else:
            error = GatewayError("haechi_upstream_unreachable")
            self.metrics.increment("haechi_upstream_error_total")
        reason = "upstream_response_incomplete" if answered else "upstream_no_response"
        log_event(
            40,
            "proxy_upstream_error",
            correlationId=request.correlation_id,
            reason=reason,
            statusCode=error.status,
        )
        request.decision = _ERROR_DECISIONS[error.code]
        await self.audit_decision(request, request.decision, reason, enforced=True, blocked=True)
        return error

    # -- streaming -----------------------------------------------------------------------

    async def _stream(
        self,
        request: GatewayRequest,
        ask: _Ask,
        receive: Receive,
        send: Send,
        tokens: tuple[str, ...],
    ) -> None:
        inspect = self._streaming.request_mode == "inspect"
        if not inspect:
            request.decision = "streaming_pass_through"
            await self.audit_decision(
                request, "streaming_request_pass_through", "streaming_request_pass_through"
            )
        # Made before the upstream is asked: the interval runs while its head is awaited, so
        # a caller revoked meanwhile is checked before the head goes out (and gets the 401).
        auth = self.stream_auth(request)
        try:  # the answer head is awaited under limits.upstreamTimeoutMs by the client itself
            response = await self.unless_client_leaves(request, ask(), receive)
        except UpstreamError as failure:
            await self.upstream_failed(request, failure)
        try:
            route = request.route
            assert route is not None
            assert route.streaming is not None or not inspect
            if inspect and not self._is_stream(response, route, request.scope):
                # An error answer (or a server that ignored "stream") is a plain body:
                # inspect it like any response, whatever responseProtection says.
                try:
                    await self.responses.respond(
                        request, response, send, tokens, instead_of_stream=True
                    )
                except UpstreamError as failure:
                    await self.upstream_failed(request, failure, answered=True)
                return
            # An uninspectable stream is let through under failureMode: allow (audited); its
            # header fields are still inspected, as those of such a whole answer are.
            checked = inspect
            if inspect and not await self.responses.admit_stream(request, response):
                inspect = False
            pump = self._pump(request, response, send, inspect, tokens, auth, checked)
            try:
                await relay_until_cut(pump, receive, auth)
            except AccessLost as lost:
                await self.stream_access_lost(request, lost.reason)
                if inspect:
                    # Ended as a block ends it: no end frame, the response simply ends.
                    await send({"type": "http.response.body", "body": b""})
                # Otherwise left incomplete, as at the size cap: the server drops the
                # connection, and the client reads a cut stream, not a finished one.
        finally:
            await response.aclose()

    def stream_auth(self, request: GatewayRequest) -> StreamAuth | None:
        """The re-check of the caller of ``request`` while its stream is relayed (see
        :mod:`haechi.proxy._reauth`); ``None`` without authentication, or with
        ``auth.streamRecheckMs`` 0."""
        if self._rechecks is None or request.identity is None:
            return None
        return self._rechecks.stream(request.scope["headers"], request.identity.id)

    async def stream_access_lost(self, request: GatewayRequest, reason: str) -> None:
        """Count and audit the stream of ``request`` cut because its caller lost access
        (``reason``: ``revoked`` or ``provider_error``); the relay then ends the stream, whose
        status went out already (the caller's next request gets the 401). When nothing of
        the answer was sent yet, the 401 is raised instead (:class:`GatewayError`)."""
        self.metrics.increment("haechi_auth_denied_total")
        if request.decision:  # "": an inspected stream, which counts itself (as blocked)
            request.decision = "stream_auth_revoked"
        await self.audit_decision(request, "stream_auth_revoked", reason)
        if not request.started:
            raise GatewayError(
                "haechi_auth_denied", headers={"www-authenticate": 'Bearer realm="haechi"'}
            )

    @staticmethod
    def _is_stream(response: UpstreamResponse, route: Route, scope: dict[str, Any]) -> bool:
        """Whether the answer is read as the route's stream: it says it is one, and the
        client reads it as one (Gemini's client reads one JSON array unless it asked with
        ``alt=sse``: an array sent as an event stream would be read as one by the gateway
        and as the other by the client, so it is read, and refused, as a body)."""
        assert route.streaming is not None
        content_type = response.headers.get("content-type", "").lower()
        if _STREAM_TYPES[route.streaming.format] not in content_type:
            return False
        return route.protocol != "gemini" or _asks_for_sse(scope.get("query_string", b""))

    async def _pump(
        self,
        request: GatewayRequest,
        response: UpstreamResponse,
        send: Send,
        inspect: bool,
        tokens: tuple[str, ...],
        auth: StreamAuth | None,
        check_headers: bool,
    ) -> None:
        """Relay the streamed ``response``: its body inspected when ``inspect``, its header
        fields when ``check_headers`` (a stream to be inspected, whether or not it could
        be)."""
        cid = request.correlation_id.encode()
        headers = response_headers(response.headers.raw, correlation_id=cid, rewritten=False)
        if inspect:
            headers = inspected_stream_headers(headers)
        if check_headers:
            headers = await self.responses.client_headers(request, headers, stream=True)
        if auth is not None and auth.due():
            await auth.confirm()
        request.started = True
        start = {"type": "http.response.start", "status": response.status_code}
        await send({**start, "headers": headers})
        if inspect:
            # The inspector writes the stream's audit event and counts the request itself.
            request.decision = ""
            inspector = self.stream_inspector(request, tokens)
            chunks = inspector.run(response.aiter_raw())
            if auth is not None:
                auth.on_lost = functools.partial(inspector.stop, "stream_auth_revoked")
        else:
            chunks = iter_capped(response, self.config.response_protection.max_bytes)
        try:
            # Closed here however the relay ends (cut while a chunk is being sent included),
            # so an inspected stream's record is written at once.
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    if auth is not None and auth.due():
                        await auth.confirm()
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except ResponseTooLarge:
            self.metrics.increment("haechi_response_stream_truncated_total")
            log_event(
                40,
                "proxy_stream_pass_through_too_large",
                correlationId=request.correlation_id,
                maxBytes=self.config.response_protection.max_bytes,
            )
            request.decision = "stream_truncated"
            return  # the response stays incomplete: the server drops the connection
        except UpstreamError as failure:
            if not inspect:  # an inspected stream's own record tells (stream_upstream_error)
                await self.upstream_failed(request, failure, answered=True)
            return
        await send({"type": "http.response.body", "body": b""})

    def stream_inspector(self, request: GatewayRequest, tokens: tuple[str, ...]) -> StreamInspector:
        """The inspector of the streamed answer to ``request``."""
        route = request.route
        assert route is not None
        return StreamInspector(
            self.runtime,
            route,
            mode=self._streaming.response_mode,
            identity=request.identity,
            profile=request.profile,
            correlation_id=request.correlation_id,
            issued_tokens=tokens,
            detokenize=self.config.token_vault.detokenize_responses,
            several_choices=request.several_choices,
        )


def _asks_for_sse(query: bytes) -> bool:
    """Whether a Gemini request's query asks for its stream as server-sent events: some
    ``alt`` and every ``alt`` is ``sse`` (anything else may be read as the JSON array)."""
    alts = [value for name, value in parse_qsl(query.decode("latin-1")) if name == "alt"]
    return bool(alts) and all(value == "sse" for value in alts)


def _whole_seconds(seconds: object) -> str:
    """``seconds`` as a ``Retry-After`` value: whole seconds rounded up, at least 1 (an
    earlier retry would be refused again) and at most the window, within which a per-minute
    budget is back whatever a limiter says (a client told to wait a day would give up);
    anything but a finite number is the window."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        seconds = WINDOW_SECONDS
    if isinstance(seconds, float) and not math.isfinite(seconds):
        seconds = WINDOW_SECONDS
    # Compared, never converted: an int too large for a float is the window too.
    return str(math.ceil(max(1, min(seconds, WINDOW_SECONDS))))


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)
