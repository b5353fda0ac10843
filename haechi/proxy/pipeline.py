# SPDX-License-Identifier: Apache-2.0
"""The request-side steps of the gateway that need no runtime: target, path, body, JSON.

Each step either returns what the next one needs or raises
:class:`~haechi.proxy.errors.GatewayError`. They run before anything reaches the upstream;
the order they are called in lives in :mod:`haechi.proxy.app`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final
from urllib.parse import unquote

from haechi._documents import LoneSurrogate, decode_document
from haechi._uuids import uuid4_text as new_correlation_id
from haechi.protocols import normalized_path
from haechi.proxy.errors import GatewayError

__all__ = [
    "RAW_TARGET_KEY",
    "ClientGone",
    "ambiguous_path",
    "forwarded_proto_is_https",
    "model_allowed",
    "new_correlation_id",
    "parse_json_body",
    "read_body",
    "request_path",
]

#: Scope key where the gateway's HTTP protocol keeps the request target exactly as sent.
RAW_TARGET_KEY: Final = "haechi.raw_target"

_Receive = Callable[[], Awaitable[dict[str, Any]]]
#: What servers read in a path in different ways: a ``;`` (a path parameter, which Java
#: servlet containers and Spring cut from its segment and other servers keep), a backslash
#: (a slash to IIS and to some other servers), and the percent-encodings of ``/``, ``\``,
#: ``;`` and ``%`` itself (decoded before routing by some servers, after it by others, twice
#: by a chain of them). An encoded dot is not: :func:`request_path` resolves dot segments,
#: encoded or not, before the path is read, and a dot inside a segment splits nothing.
_READ_SEVERAL_WAYS: Final = re.compile(rb"[;\\]|%(?:2[5EeFf]|3[Bb]|5[Cc])")


class ClientGone(Exception):
    """The client disconnected before its request was complete."""


def _remove_dot_segments(raw: bytes) -> bytes:
    # RFC 3986 section 5.2.4, also treating percent-encoded dots as dots (as browsers and
    # WHATWG URL parsers do), so "/v1/%2e%2e/__haechi/x" cannot slip past the prefix check.
    segments = raw.split(b"/")[1:]
    out: list[bytes] = []
    for segment in segments:
        plain = segment.lower().replace(b"%2e", b".")
        if plain == b".":
            continue
        if plain == b"..":
            if out:
                out.pop()
            continue
        out.append(segment)
    normalized = b"/" + b"/".join(out)
    last = segments[-1].lower().replace(b"%2e", b".") if segments else b""
    if last in (b".", b"..") and out:  # a trailing dot segment leaves a slash: "/a/." is "/a/"
        normalized += b"/"
    return normalized


def request_path(scope: dict[str, Any]) -> tuple[bytes, str]:
    """The request's path, normalized: ``(raw bytes to forward, decoded text to route on)``.

    Only origin-form targets (``/path?query``) are accepted. An absolute-form target
    (``http://host/...``), a protocol-relative one (``//host/...``) or ``*`` is refused with
    400 ``haechi_invalid_proxy_target``: the gateway is not a forward proxy.
    """
    target: bytes = scope.get(RAW_TARGET_KEY) or scope.get("raw_path") or b""
    if not target.startswith(b"/") or target.startswith(b"//"):
        raise GatewayError("haechi_invalid_proxy_target")
    raw: bytes = scope.get("raw_path") or target.partition(b"?")[0]
    if not _may_hold_dot_segment(raw):
        return raw, scope["path"] if b"%" not in raw else unquote(raw.decode("latin-1"))
    raw = _remove_dot_segments(raw)
    return raw, unquote(raw.decode("latin-1"))


def _may_hold_dot_segment(raw: bytes) -> bool:
    """Whether ``raw`` holds a dot, literal or percent-encoded (``%2e``, ``%2E``).

    Only such a path can hold a dot segment, so only such a path pays for resolving them.
    Encoded dots count: the path routed on is the decoded one, and upstreams resolve
    ``%2e%2e`` as ``..`` too, so an unresolved ``/v1/%2e%2e/__haechi/metrics`` would pass
    the reserved-prefix check and reach the upstream as ``/__haechi/metrics``.
    """
    return b"." in raw or b"%2e" in raw or b"%2E" in raw


def forwarded_proto_is_https(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether ``X-Forwarded-Proto`` is present and every hop it lists, in every copy of the
    header, is ``https``.

    A proxy in front may append its hop to what the client sent rather than replace it, so
    no single position can be trusted: the client's own claim comes first, and the hop the
    gateway actually sits behind may be any one of the values.
    """
    seen = False
    for name, value in headers:
        if name == b"x-forwarded-proto":
            for hop in value.split(b","):
                if hop.strip().lower() != b"https":
                    return False
                seen = True
    return seen


async def read_body(receive: _Receive, limit: int, declared_length: int | None) -> bytes:
    """Read the request body, refusing it as soon as it exceeds ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before reading anything. The
    413 asks the server to close the connection, so the unread rest is never consumed.
    """
    if declared_length is not None and declared_length > limit:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large() -> GatewayError:
    # Built only when refusing: an exception object per request costs more than the check.
    return GatewayError("haechi_request_body_too_large", headers={"connection": "close"})


def parse_json_body(body: bytes) -> tuple[Any, bool]:
    """Decode ``body`` as strict UTF-8 JSON (an empty body is ``{}``), and whether the
    document holds all of it (see :func:`decode_document`: with a key named twice in an
    object, forward the document encoded again rather than ``body``).

    Invalid UTF-8 is refused rather than decoded lossily (a replacement character could
    hide a value from detection); so is a lone surrogate escape (see
    :func:`decode_document`), as invalid JSON with ``reason: lone_surrogate``.
    ``NaN``/``Infinity`` are not JSON and are refused, and so is a number too large for a
    double (``1e400``), which would be written again as ``Infinity``. Nesting deep enough to
    exhaust the parser is answered with 413, like the configured depth limit.
    """
    if not body:
        return {}, True
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise GatewayError("haechi_request_body_not_utf8") from None
    try:
        return decode_document(text)
    except RecursionError:
        raise GatewayError("haechi_request_too_deeply_nested") from None
    except LoneSurrogate:
        raise GatewayError(
            "haechi_invalid_json_request",
            "Request body is not valid JSON text: a string holds a lone UTF-16 surrogate",
            extra={"reason": "lone_surrogate"},
        ) from None
    except ValueError:
        raise GatewayError("haechi_invalid_json_request") from None


def model_allowed(
    allowlist: Sequence[str] | None, model: str | None, *, resource_names: bool = False
) -> bool:
    """Whether ``model`` passes ``allowlist``.

    No allowlist, or an empty one, allows every model. With entries, a request that names
    no model is refused too (it could not be checked). With ``resource_names`` (Gemini's
    API, where ``models/<name>`` is the resource name of ``<name>``) an entry matches in
    either form; elsewhere ``models/<name>`` is a name of its own (to Ollama, ``<name>`` in
    the ``models`` namespace).
    """
    if not allowlist:
        return True
    if model is None:
        return False
    if not resource_names:
        return model in allowlist
    wanted = model.removeprefix("models/")
    return any(entry.removeprefix("models/") == wanted for entry in allowlist)


def ambiguous_path(raw: bytes) -> bool:
    """Whether servers may read ``raw`` (a path as forwarded, percent-encoding kept) as other
    segments than the gateway does, so that a model the path names could be checked as one
    and served as another: it holds an empty or dot segment (which servers merge and
    resolve, or not, before or after routing; see
    :func:`~haechi.protocols.normalized_path`) or a character of ``_READ_SEVERAL_WAYS``.

    Any other path has one reading: its segments are the same whether a server decodes it
    before routing or not, and decoding leaves each one a single segment.
    """
    text = raw.decode("latin-1")
    return normalized_path(text) != text or _READ_SEVERAL_WAYS.search(raw) is not None
