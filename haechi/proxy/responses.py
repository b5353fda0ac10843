# SPDX-License-Identifier: Apache-2.0
"""What the gateway does with a (non-streamed) upstream response.

Unprotected (``responseProtection.enabled`` off): the body is read under
``responseProtection.maxBytes`` and relayed byte for byte (502 ``haechi_response_too_large``
past the cap, audited).

Protected: a body over the cap is always refused (even under ``failureMode: allow``). A
body that cannot be inspected — compressed (unless ``allowCompressed``), not JSON, in a
declared charset other than UTF-8, invalid JSON, nested too deeply — is refused with 502
``haechi_response_unprotected`` under ``failureMode: fail-closed`` or relayed and audited
under ``allow`` (``allowNonJson`` allows non-JSON bodies alone, and only those no client
reads as JSON or as a stream: see :func:`_reads_as_json`). A JSON body is protected
in the response direction: a block is 502 ``haechi_response_policy_block``; otherwise the
body is relayed *unchanged* when nothing was found, and re-serialised (validators dropped,
``cache-control: no-store``) when it was changed. With ``tokenVault.detokenizeResponses``,
tokens issued for this same request are restored in the answer; no other token ever is.

A streamed answer is decided on its headers before anything of it is sent
(:meth:`ResponseHandler.admit_stream`): compressed or in another charset, it is
uninspectable in the same way.

The header fields of a protected answer are inspected too, and a field holding a value is
dropped (:meth:`ResponseHandler.client_headers`).

Error texts never quote upstream bytes (a parser message would).
"""

from __future__ import annotations

import email.message
import json
import re
import zlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final, NoReturn
from urllib.parse import parse_qsl

from haechi._documents import decode_document
from haechi.errors import LimitError
from haechi.pieces import drop_piece_runs
from haechi.proxy._asgi import Send, compact_json, send_response
from haechi.proxy.errors import GatewayError
from haechi.proxy.headers import HeaderList, response_headers
from haechi.proxy.upstream import (
    ResponseHeaders,
    ResponseTooLarge,
    UpstreamResponse,
    read_capped,
)
from haechi.streaming import NdjsonParser, SseParser, encode_ndjson, encode_sse

if TYPE_CHECKING:
    from haechi.protocols.types import Route, StreamDescriptor
    from haechi.proxy.app import GatewayApp, GatewayRequest

__all__ = [
    "ResponseHandler",
    "declares_other_charset",
    "decompress",
    "is_json_media_type",
    "unreadable_reason",
]

_WBITS: Final = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": 0}
#: Compressed bytes handed to the inflater at a time (see :func:`decompress`).
_INFLATE_SLICE: Final = 16384
#: Members of one gzip body decoded at most: a server writes one, or a few.
_MAX_GZIP_MEMBERS: Final = 64
_UTF8: Final = frozenset({"utf-8", "utf8"})
_PARAMETERS: Final = re.compile(r"[;,]")
#: The encodings (as :func:`json.detect_encoding` names them) whose bytes read as the same
#: text when decoded as UTF-8.
_READS_AS_TEXT: Final = frozenset({"utf-8", "utf-8-sig"})
#: Reads any JSON text: integers are kept as their digits, so one longer than Python's
#: int conversion allows is read too.
_ANY_JSON: Final = json.JSONDecoder(parse_int=str)
#: The gateway's own header, added after the upstream's fields (never the upstream's).
_CORRELATION_HEADER: Final = b"x-haechi-correlation-id"
#: The reason of an answer nested deeper than ``limits.maxNestingDepth`` (or the parser).
_TOO_DEEP: Final = "response_too_deeply_nested"
#: The limits of a protect call that leave an answer uninspected, and the reason audited.
_UNINSPECTABLE_LIMITS: Final = {
    "haechi_request_too_deeply_nested": _TOO_DEEP,
    "haechi_inspection_budget_exceeded": "response_inspection_budget_exceeded",
}


def is_json_media_type(content_type: str) -> bool:
    """``application/json`` or a ``+json`` structured type (parameters ignored)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


#: Media types (or their endings) of answers read as a stream of JSON messages: SSE,
#: NDJSON, JSON Lines, JSON text sequences, AWS event streams.
_STREAM_MEDIA: Final = ("text/event-stream", "ndjson", "jsonl", "json-seq", "eventstream")
#: The values of a ``stream`` query parameter that ask for no stream: pydantic's false ones,
#: and none.
_NOT_A_STREAM: Final = frozenset({"", "0", "false", "f", "n", "no", "off"})


def _declares_stream(content_type: str) -> bool:
    """Whether ``content_type`` is a streaming format, whose client reads it as data."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media.endswith(_STREAM_MEDIA)


def _query_asks_for_stream(query: bytes) -> bool:
    """Whether the query string ``query`` asks for the answer as a stream (a ``stream``
    parameter that is not false, as pydantic reads a boolean).

    The openai SDK asks so for a stored response (``GET /v1/responses/{id}?stream=true``)
    and reads the answer as an event stream whatever its media type. Such a request has no
    body to say ``stream``, so it is no streaming request to the gateway.
    """
    return any(
        name == "stream" and value.strip().lower() not in _NOT_A_STREAM
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    )


def _reads_as_json(body: bytes, content_type: str) -> bool:
    """Whether a client reads ``body`` as JSON whatever media type (``content_type``) it is
    declared with.

    The openai SDK parses the answer to any call that returns a model object (a chat
    completion, an error) with httpx's ``Response.json()``, and the Ollama client parses
    every answer so: ``json.loads`` of the bytes, which also reads a body with a UTF-8 byte
    order mark, or in UTF-16 or UTF-32 (told by its zero bytes). Such a body is not
    "non-JSON" to them. Nor is one holding an integer longer than Python converts (4300
    digits): ``JSON.parse`` reads it (the openai SDK for JavaScript parses any type ending
    in ``json``, ``text/json`` included), and so does Go. Nor is one that is JSON once
    decoded as UTF-8 with U+FFFD in place of every byte that is not (a byte order mark
    dropped): the Fetch standard's ``Response.json()`` reads it so (Node, browsers, the
    openai SDK for JavaScript, which parses every error body), where ``json.loads`` refuses
    the bytes. Nor is one that is JSON in the charset ``content_type`` declares (see
    :func:`_declared_reading`). A body nested too deeply to tell counts as JSON.
    """
    try:
        text = body.decode(json.detect_encoding(body))
    except UnicodeDecodeError:
        # As Response.json() reads them (UTF-8 bytes that decode read the same there).
        text = body.decode("utf-8-sig", "replace")
    declared = _declared_reading(body, content_type)
    return _is_json(text) or (declared is not None and _is_json(declared))


def _declared_reading(body: bytes, content_type: str) -> str | None:
    """``body`` as httpx's ``Response.text`` reads it when ``content_type`` declares a
    charset other than UTF-8 (``None`` for none, or one Python cannot decode text with).

    The openai SDK parses an error body from that text (``json.loads(response.text)``):
    in EBCDIC (``charset=cp037``) a JSON body is bytes no UTF-8 reading takes for JSON,
    and JSON to it. The charset is found as httpx finds it (``email.message``, which also
    joins RFC 2231 continuations), and the body decoded as httpx decodes it, with U+FFFD for
    what the charset cannot read.
    """
    message = email.message.Message()
    message["content-type"] = content_type
    charset = message.get_content_charset()
    if charset is None or charset in _UTF8:
        return None
    try:
        return body.decode(charset, "replace")
    except (LookupError, ValueError):  # no text encoding, or one that cannot replace
        return None


def _is_json(text: str) -> bool:
    """Whether ``text`` is one JSON value (of any nesting or integer length) once the white
    space at its ends is taken away as ``str.strip`` takes it.

    The openai SDK parses an error body as ``json.loads(response.text.strip())``, and
    ``strip`` takes away more than JSON's white space: a form feed, U+00A0 or U+3000 before
    the document leaves it JSON to the SDK.
    """
    try:
        _ANY_JSON.decode(text.strip())
    except RecursionError:
        return True
    except ValueError:
        return False
    return True


def declares_other_charset(content_type: str) -> bool:
    """Whether ``content_type`` declares a charset other than UTF-8 (``utf-8`` or ``utf8``,
    in any case, quoted or not).

    Bodies are inspected as JSON parsers read them, but a client decodes them with the
    declared charset (httpx ``Response.text``, which the SDKs build error messages from): in
    UTF-7, ``+AEA-`` is read as ``@``, so the client would read text the gateway never saw.
    Every ``charset`` parameter counts, in every value of a repeated header. A charset cut
    into RFC 2231 continuations (``charset*0=utf; charset*1=-7``), which ``email.message``
    (httpx's reader) joins again, is another charset whatever its pieces say.
    """
    for parameter in _PARAMETERS.split(content_type):
        name, equals, value = parameter.partition("=")
        name = name.strip().lower()
        if not equals or not name.startswith("charset"):
            continue
        if name not in ("charset", "charset*"):
            if name.startswith("charset*"):
                return True  # a continuation: only the pieces joined name the charset
            continue
        if value.strip().strip('"').strip().lower() not in _UTF8:
            return True
    return False


def _encoding(headers: ResponseHeaders) -> str:
    """The body's ``content-encoding``, lowercased (``identity`` when none is declared)."""
    return headers.get("content-encoding", "").strip().lower() or "identity"


def unreadable_reason(headers: ResponseHeaders) -> str | None:
    """Why an answer with ``headers`` cannot be inspected as the bytes arrive, if it cannot:
    compressed (``compressed_response``; it would be read in its encoded form and relayed
    for the client to decode) or in another charset (``unsupported_charset``, see
    :func:`declares_other_charset`). Streamed LLM answers and MCP answers are judged by it
    before anything of them is sent."""
    if _encoding(headers) != "identity":
        return "compressed_response"
    if declares_other_charset(headers.get("content-type", "")):
        return "unsupported_charset"
    return None


def decompress(body: bytes, encoding: str, cap: int) -> bytes | None:
    """Decode a gzip/deflate body without ever inflating past ``cap`` bytes.

    A gzip body may be several members one after the other (RFC 1952): ``gzip.decompress``,
    ``zcat`` and urllib3 read them all, so every member is decoded, and ``cap`` counts them
    together. Returns ``None`` for an encoding that cannot be decoded here and for a body
    that is corrupt, cut short, followed by bytes that are no member (zero padding, which
    ``gzip`` skips, included: decoders differ on what they do with such bytes), or made of
    more than :data:`_MAX_GZIP_MEMBERS` members; raises :class:`ResponseTooLarge` when the
    decoded body would exceed ``cap``.

    The body is handed to the inflater :data:`_INFLATE_SLICE` bytes at a time: what the
    inflater keeps after a member's end is a copy of the rest of its input, and a body of
    tens of thousands of empty members, each given the whole rest, took a second of CPU per
    MiB.
    """
    wbits = _WBITS.get(encoding)
    if wbits is None:
        return None
    if encoding == "deflate":
        # zlib-wrapped deflate is the common case; raw deflate the other one.
        wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
    view = memoryview(body)
    decoded: list[bytes] = []
    size = offset = members = 0
    while True:
        members += 1
        if members > _MAX_GZIP_MEMBERS:
            return None
        inflater = zlib.decompressobj(wbits)
        while not inflater.eof:
            piece = view[offset : offset + _INFLATE_SLICE]
            if not piece:
                return None  # cut short
            offset += len(piece)
            try:
                # Never 0 (which would mean no limit): size is at most cap here.
                output = inflater.decompress(piece, cap - size + 1)
            except zlib.error:
                return None
            size += len(output)
            if size > cap or inflater.unconsumed_tail:
                raise ResponseTooLarge
            decoded.append(output)
        offset -= len(inflater.unused_data)
        if offset == len(body):
            return b"".join(decoded)
        if encoding == "deflate":  # one stream, never several
            return None


class ResponseHandler:
    """Relays, inspects or refuses upstream responses for one gateway."""

    def __init__(self, gateway: GatewayApp) -> None:
        self._gateway = gateway
        config = gateway.config.response_protection
        self._enabled: bool = config.enabled
        self._mode = config.mode
        self._fail_closed = config.failure_mode == "fail-closed"
        self._allow_non_json: bool = config.allow_non_json
        self._allow_compressed: bool = config.allow_compressed
        self._cap: int = config.max_bytes
        self._detokenize: bool = gateway.config.token_vault.detokenize_responses

    async def respond(
        self,
        request: GatewayRequest,
        response: UpstreamResponse,
        send: Send,
        tokens: tuple[str, ...],
        *,
        instead_of_stream: bool = False,
    ) -> None:
        """Answer the client with ``response``: inspected when configured, and always when
        ``instead_of_stream`` (a streaming request answered with one body)."""
        route = request.route
        protect = instead_of_stream or (
            self._enabled and route is not None and route.protect_response
        )
        cid = request.correlation_id.encode()
        if request.scope["method"] == "HEAD":
            await self._answer_head(request, response, send, protect)
            return
        if not protect:
            await self._relay(request, response, send, cid)
            return
        gateway = self._gateway
        try:
            raw = await read_capped(response, self._cap)
        except ResponseTooLarge:
            await self._refuse(request, "response_body_too_large")
        body: bytes | None = raw
        decoded = False
        encoding = _encoding(response.headers)
        if encoding != "identity":
            if not self._allow_compressed:
                await self._uninspectable(request, response, raw, send, "compressed_response")
                return
            try:
                body = decompress(raw, encoding, self._cap)
            except ResponseTooLarge:
                await self._refuse(request, "response_body_too_large")
            if body is None:
                await self._uninspectable(request, response, raw, send, "compressed_response")
                return
            decoded = True
        if not body:
            headers = response_headers(response.headers.raw, correlation_id=cid, decoded=decoded)
            await send_response(
                send, response.status_code, await self.client_headers(request, headers), b""
            )
            return
        content_type = response.headers.get("content-type", "")
        if not is_json_media_type(content_type):
            # allowNonJson is for bodies no client reads as data: the client of a streaming
            # request reads a success's body as its stream (SSE, NDJSON) whatever its type,
            # so does one that asked for a stream in the query, and a success declared as a
            # stream is one, whatever the request looked like.
            streamed = 200 <= response.status_code < 300 and (
                instead_of_stream
                or _declares_stream(content_type)
                or _query_asks_for_stream(request.scope.get("query_string", b""))
            )
            allow = self._allow_non_json and not streamed and not _reads_as_json(body, content_type)
            await self._uninspectable(request, response, raw, send, "non_json_response", allow)
            return
        if declares_other_charset(content_type):
            await self._uninspectable(request, response, raw, send, "unsupported_charset")
            return
        # Read as the clients parse it (see _reads_as_json): UTF-8 with or without a byte
        # order mark, UTF-16 or UTF-32.
        charset = json.detect_encoding(body)
        try:
            text = body.decode(charset)
            document, whole = decode_document(text, constants=True)
        except ValueError:
            await self._uninspectable(request, response, raw, send, "invalid_json_response")
            return
        except RecursionError:
            await self._uninspectable(request, response, raw, send, _TOO_DEEP)
            return
        # Whether the body may go on as it came. Read as text (httpx's Response.text, from
        # which the SDKs build error messages, decodes UTF-8 when no charset is declared),
        # the bytes of UTF-16 or UTF-32 characters are other characters, never inspected: such
        # a body is always sent again, in UTF-8.
        verbatim = whole and charset in _READS_AS_TEXT
        if instead_of_stream and route is not None and isinstance(document, list):
            chunks = await self._chunks(request, route, document, tokens, text)
            changed = not verbatim or chunks is not None
            out = (
                await self._written(request, document if chunks is None else chunks)
                if changed
                else body
            )
            headers = response_headers(
                response.headers.raw, correlation_id=cid, rewritten=changed, decoded=decoded
            )
            await send_response(
                send,
                response.status_code,
                await self.client_headers(request, headers, stream=True),
                out,
            )
            return
        try:
            result = await gateway.protect(request, document, direction="response", mode=self._mode)
        except GatewayError as exc:
            if exc.code == "haechi_too_many_tokens":
                # Inspected, but more of its values than tokenVault.maxTokensPerPayload are
                # to be tokenized: refused whatever failureMode says (raises).
                await self._refuse(request, "response_too_many_tokens")
            reason = _UNINSPECTABLE_LIMITS.get(exc.code)
            if reason is None:
                raise
            # A limit that refuses such a request: here the answer cannot be inspected.
            await self._uninspectable(request, response, raw, send, reason)
            return
        if result.blocked:
            request.decision = "response_blocked"
            gateway.metrics.increment("haechi_blocks_total")
            raise GatewayError(
                "haechi_response_policy_block",
                extra={"summary": result.summary, "auditId": result.audit_id},
            )
        changed = not verbatim or (
            result.mode == "enforce" and bool(result.summary.get("detectionCount"))
        )
        payload = result.payload if changed else document
        if route is not None and route.token_ids and result.mode == "enforce":
            changed = route.token_ids.scrub(payload, text) or changed
        if self._detokenize and tokens:
            try:
                restored = await gateway.runtime.detokenize(payload, tokens)
            except LimitError:
                # The answer repeats this request's markers past responseProtection.maxBytes
                # of restored values: refused whatever failureMode says (raises).
                await self._refuse(request, "response_restored_too_large")
            if restored != payload:
                payload, changed = restored, True
        out = await self._written(request, payload) if changed else body
        headers = response_headers(
            response.headers.raw, correlation_id=cid, rewritten=changed, decoded=decoded
        )
        await send_response(
            send, response.status_code, await self.client_headers(request, headers), out
        )

    async def _chunks(
        self,
        request: GatewayRequest,
        route: Route,
        chunks: list[Any],
        tokens: tuple[str, ...],
        text: str,
    ) -> list[Any] | None:
        """A stream sent as one JSON array of its chunks (Gemini's ``streamGenerateContent``
        without ``?alt=sse``): each chunk is read as one frame of the stream, so that text
        cut between chunks is joined in the stream's windows like in any stream. Returns the
        protected chunks (copies carrying held text included), or ``None`` when the stream
        was left as it came (nothing found or enforced, no token to restore); a block or a
        failed inspection refuses the whole answer, nothing of which has been sent yet."""
        gateway = self._gateway
        descriptor = route.streaming
        assert descriptor is not None  # a streaming request's route
        enforce = gateway.config.streaming.response_mode == "enforce"
        dropped = enforce and route.token_ids.scrub(chunks, text)
        # An enforced stream carries no token pieces (the inspector empties them without
        # counting a finding), so chunks that hold any are never relayed as they came.
        dropped = dropped or (
            enforce and any(drop_piece_runs(chunk) is not chunk for chunk in chunks)
        )
        frames = "".join(_frame(descriptor, chunk) for chunk in chunks).encode()
        inspector = gateway.stream_inspector(request, tokens)
        request.decision = ""  # the inspector writes the audit event and counts the request
        protected = b"".join([part async for part in inspector.run(_once(frames))])
        if inspector.blocked:
            if inspector.reason == "stream_policy_block":
                raise GatewayError(
                    "haechi_response_policy_block", extra={"summary": inspector.summary()}
                )
            raise GatewayError("haechi_response_unprotected", extra={"reason": inspector.reason})
        changed = dropped or (enforce and bool(inspector.summary()["detectionCount"]))
        if not changed and not (self._detokenize and tokens):
            return None
        parser: SseParser | NdjsonParser = (
            SseParser(len(protected) + 1)
            if descriptor.format == "sse"
            else NdjsonParser(len(protected) + 1)
        )
        parsed = parser.feed(protected) + parser.finish()
        try:
            return [json.loads(frame.data) for frame in parsed if frame.data is not None]
        except ValueError:
            # The inspector wrote a frame that is no JSON (it writes text in place of a
            # chunk that is no object): nothing has been sent, so the answer is refused.
            await self._refuse(request, "stream_inspection_error")

    async def client_headers(
        self, request: GatewayRequest, headers: HeaderList, *, stream: bool = False
    ) -> HeaderList:
        """``headers`` (as :func:`response_headers` made them for a protected answer) without
        every field in which the detector finds a value, under ``responseProtection.mode:
        enforce`` (``streaming.responseMode`` for a ``stream``: the fields go with the body,
        whose mode that is).

        The client reads the upstream's header fields as well as its body: the SDKs keep
        ``x-request-id`` and show it in errors, a browser stores ``set-cookie``, follows a
        ``Location`` path and shows ``www-authenticate``. A value written there (or in a
        field's name: ``sk-...`` is a valid one) would cross uninspected, so each field is
        read as its line (``name: value``). Such a field is dropped, not the answer: header
        values are ids, dates and cookies a detector can mistake (Cloudflare's ``__cf_bm``
        cookie holds ``1.0.1.1``, an IPv4 address to it), and the answer is no less
        protected without them. Each answer that loses fields is audited once as
        ``response_header_dropped`` (reason ``header_value_finding``), naming neither field
        nor value.
        """
        mode = self._gateway.config.streaming.response_mode if stream else self._mode
        if mode != "enforce":
            return headers
        lines: list[str] = []
        owners: list[int] = []  # the index in headers of each line
        for index, (name, value) in enumerate(headers):
            if name == _CORRELATION_HEADER:
                continue
            for reading in _header_readings(name + b": " + value):
                lines.append(reading)
                owners.append(index)
        findings = self._gateway.runtime.scan(lines, direction="response")
        if not findings:
            return headers
        # A finding not placed in one line (none is expected) drops every upstream field.
        flagged = {owners[f.path[0]] if f.path else None for f in findings}
        kept = [
            (name, value)
            for index, (name, value) in enumerate(headers)
            if name == _CORRELATION_HEADER or (None not in flagged and index not in flagged)
        ]
        await self._gateway.audit_decision(
            request,
            "response_header_dropped",
            "header_value_finding",
            enforced=True,
            blocked=False,
        )
        return kept

    async def admit_stream(self, request: GatewayRequest, response: UpstreamResponse) -> bool:
        """Whether the streamed ``response`` can be inspected as it arrives; decided on its
        headers, before anything of it is sent.

        A stream that cannot (:func:`unreadable_reason`) is uninspectable like a whole
        answer: refused under ``failureMode: fail-closed`` (raises, audited
        ``response_unprotected_blocked``), or let through under ``allow`` (audited
        ``response_unprotected_allowed``; the caller relays it as it came and ``False`` is
        returned). ``allowCompressed`` does not apply: a stream is never decoded here.
        """
        reason = unreadable_reason(response.headers)
        if reason is None:
            return True
        await self._unprotected(request, reason)
        return False

    async def _relay(
        self, request: GatewayRequest, response: UpstreamResponse, send: Send, cid: bytes
    ) -> None:
        try:
            raw = await read_capped(response, self._cap)
        except ResponseTooLarge:
            request.decision = "response_blocked"
            await self._gateway.audit_decision(
                request, "response_unprotected_blocked", "response_body_too_large"
            )
            raise GatewayError(
                "haechi_response_too_large", extra={"reason": "response_body_too_large"}
            ) from None
        headers = response_headers(response.headers.raw, correlation_id=cid)
        await send_response(send, response.status_code, headers, raw)

    async def _answer_head(
        self, request: GatewayRequest, response: UpstreamResponse, send: Send, protect: bool
    ) -> None:
        """The upstream's answer to HEAD: its status and allowed headers (inspected when
        ``protect``: they are all it carries), no body, and no ``content-length``. The
        upstream's length is that of a body the gateway would inspect and might rewrite,
        and ``0`` would be false: HTTP lets a HEAD answer omit what is only known once the
        body is made. Nor is the cap applied to it: it declares the body a GET would get,
        and there is none to read."""
        while await response.read_chunk() is not None:  # none: a HEAD answer has no body
            pass
        cid = request.correlation_id.encode()
        headers = response_headers(response.headers.raw, correlation_id=cid)
        if protect:
            headers = await self.client_headers(request, headers)
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        await send({"type": "http.response.body", "body": b""})

    async def _written(self, request: GatewayRequest, document: Any) -> bytes:
        """``document`` as the body that replaces the answer; refused (raises) when it holds
        a number JSON cannot write, whatever failureMode says: the answer was changed, and
        what came cannot go on instead."""
        try:
            return compact_json(document) + b"\n"
        except ValueError:
            await self._refuse(request, "invalid_json_response")

    async def _refuse(self, request: GatewayRequest, reason: str) -> NoReturn:
        gateway = self._gateway
        request.decision = "response_unprotected_blocked"
        gateway.metrics.increment("haechi_response_unprotected_total")
        gateway.metrics.increment("haechi_blocks_total")
        await gateway.audit_decision(request, "response_unprotected_blocked", reason)
        raise GatewayError("haechi_response_unprotected", extra={"reason": reason})

    async def _unprotected(self, request: GatewayRequest, reason: str, allow: bool = False) -> None:
        """The one decision on an answer that cannot be inspected, for ``reason``: refused
        (raises) under ``failureMode: fail-closed`` unless ``allow``, otherwise audited as let
        through, for the caller to relay as it came."""
        if self._fail_closed and not allow:
            await self._refuse(request, reason)
        gateway = self._gateway
        request.decision = "response_unprotected_allowed"
        gateway.metrics.increment("haechi_response_unprotected_total")
        await gateway.audit_decision(request, "response_unprotected_allowed", reason)

    async def _uninspectable(
        self,
        request: GatewayRequest,
        response: UpstreamResponse,
        raw: bytes,
        send: Send,
        reason: str,
        allow: bool = False,
    ) -> None:
        """Refuse ``raw``, which cannot be inspected, or relay it as it came (see
        :meth:`_unprotected`)."""
        await self._unprotected(request, reason, allow)
        cid = request.correlation_id.encode()
        headers = response_headers(response.headers.raw, correlation_id=cid)
        await send_response(
            send, response.status_code, await self.client_headers(request, headers), raw
        )


def _header_readings(line: bytes) -> tuple[str, ...]:
    """The texts clients read a header field's bytes ``line`` as: Latin-1 (fetch's
    ``Headers``, HTTP's own reading), and UTF-8 when the bytes are valid UTF-8 beyond ASCII
    (httpx, and so the openai and anthropic SDKs, decode every field so then): the
    fullwidth at sign U+FF20 is three other characters in Latin-1, and an address written
    with it is an address to the detector only in the second reading."""
    latin = line.decode("latin-1")
    if line.isascii():
        return (latin,)
    try:
        return (latin, line.decode("utf-8"))
    except UnicodeDecodeError:
        return (latin,)


def _frame(descriptor: StreamDescriptor, chunk: Any) -> str:
    """``chunk`` as one frame of ``descriptor``'s framing (ASCII JSON: never a line break)."""
    data = json.dumps(chunk, separators=(",", ":"))
    return encode_sse((), data) if descriptor.format == "sse" else encode_ndjson(data)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
