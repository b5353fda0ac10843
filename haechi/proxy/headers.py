# SPDX-License-Identifier: Apache-2.0
"""The header boundary between the client, the gateway and the upstream.

Requests are *default-drop*: only provider headers on a fixed allowlist (plus the operator's
``target.forwardHeaders``) reach the upstream. ``Authorization`` is the gateway credential
whenever gateway authentication is on, so it is forwarded only when it is off (then it carries
the caller's upstream API key). Hop-by-hop headers never cross in either direction, and the
gateway always asks the upstream for an uncompressed (``identity``) body, because a body it
cannot read is a body it cannot inspect. An upstream's ``Location`` reaches the client only
when it is a path on the gateway: a client following a redirect elsewhere would send its
request there unprotected.

Header lists are ASGI style: lists of ``(name, value)`` byte pairs with lowercase names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

from haechi.config import ALWAYS_DROPPED_HEADERS

__all__ = [
    "BASE_FORWARD_ALLOWLIST",
    "HeaderList",
    "RequestHeaderPolicy",
    "connection_named",
    "inspected_stream_headers",
    "response_headers",
]

HeaderList = list[tuple[bytes, bytes]]

#: Provider headers forwarded by default.
BASE_FORWARD_ALLOWLIST: Final = frozenset(
    {
        "x-api-key",
        "anthropic-version",
        "anthropic-beta",
        "x-goog-api-key",
        "openai-organization",
        "openai-project",
        "openai-beta",
        "accept",
        "user-agent",
        "accept-language",
    }
)

_HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
#: Never forwarded upstream, whatever the allowlist says (the names the configuration
#: refuses in ``target.forwardHeaders``; ``authorization`` is decided by ``auth.provider``).
_NEVER_FORWARD: Final = frozenset(
    name.encode("latin-1") for name in ALWAYS_DROPPED_HEADERS - {"authorization"}
)
#: Validators that describe the upstream's bytes; wrong once the body was rewritten.
_BODY_COUPLED: Final = frozenset(
    {b"etag", b"last-modified", b"content-md5", b"digest", b"content-digest", b"repr-digest"}
)
_STREAM_DROPPED: Final = _BODY_COUPLED | {b"cache-control"}
_FIXED_REQUEST_HEADERS: Final = (
    (b"content-type", b"application/json"),
    (b"accept-encoding", b"identity"),
)
#: ``x-haechi-correlation-id`` is the gateway's own: an upstream's copy would let it name
#: the request in the client's logs (a client reading the first value would take it).
_ALWAYS_DROPPED: Final = _HOP_BY_HOP | {b"content-length", b"x-haechi-correlation-id"}
#: Response headers never relayed, by (body rewritten, body decoded). Every set holds
#: ``connection``, which the loops below rely on.
_RESPONSE_DROPPED: Final = {
    (rewritten, decoded): _ALWAYS_DROPPED
    | (_BODY_COUPLED | {b"cache-control", b"content-type"} if rewritten else frozenset())
    | ({b"content-encoding"} | _BODY_COUPLED if decoded else frozenset())
    for rewritten in (False, True)
    for decoded in (False, True)
}


#: What a ``Location`` value must not hold to stay a path on the gateway: white space and
#: control characters (a browser drops tabs and line breaks from a URL, so ``/\t/host`` is
#: ``//host``) and backslashes (``/\host`` is ``//host`` to a browser too).
_OFF_PATH: Final = re.compile(rb"[\x00-\x20\x7f\\]")


def _on_gateway(location: bytes) -> bool:
    """Whether the ``Location`` value ``location`` is a path on the server that answered.

    The client follows a redirect (the openai and anthropic SDKs do, and so does
    ``fetch``): after a 307 or 308 it sends the request again, body and headers as it wrote
    them, to the URL named. A path (``/...``) brings it back to the gateway, which protects
    it again; an absolute or scheme-relative URL (``//host``) would take the unprotected
    request past the gateway to wherever the upstream chose.
    """
    return location[:1] == b"/" and location[1:2] != b"/" and not _OFF_PATH.search(location)


def _connection_tokens(values: Iterable[bytes]) -> set[bytes]:
    """Header names the ``Connection`` header ``values`` declare hop-by-hop."""
    tokens: set[bytes] = set()
    for value in values:
        tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return tokens


def connection_named(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    """The header names the ``Connection`` fields of ``headers`` declare hop-by-hop: meant
    for the gateway alone, never passed on."""
    return _connection_tokens(value for name, value in headers if name == b"connection")


def _without(headers: HeaderList, connection: list[bytes]) -> HeaderList:
    """``headers`` minus the ones the ``Connection`` header values ``connection`` name."""
    if not connection:
        return headers
    dropped = _connection_tokens(connection)
    return [(name, value) for name, value in headers if name not in dropped]


class RequestHeaderPolicy:
    """Which client request headers reach the upstream (computed once per gateway)."""

    def __init__(self, forward_headers: Sequence[str] | None, *, auth_enabled: bool) -> None:
        allowed = set(BASE_FORWARD_ALLOWLIST) | set(forward_headers or ())
        if not auth_enabled:
            allowed.add("authorization")
        self._allowed = frozenset(name.encode("latin-1") for name in allowed) - _NEVER_FORWARD

    def upstream_headers(self, client_headers: Iterable[tuple[bytes, bytes]]) -> HeaderList:
        """The headers to send upstream for a request with ``client_headers``."""
        allowed = self._allowed  # never holds "connection" (it is hop-by-hop)
        kept: HeaderList = []
        connection: list[bytes] = []
        for name, value in client_headers:
            if name in allowed:
                if value:
                    kept.append((name, value))
            elif name == b"connection":
                connection.append(value)
        out = _without(kept, connection)
        out.extend(_FIXED_REQUEST_HEADERS)
        return out


def response_headers(
    upstream: Iterable[tuple[bytes, bytes]],
    *,
    correlation_id: bytes,
    rewritten: bool = False,
    decoded: bool = False,
) -> HeaderList:
    """The headers to send the client for an upstream response.

    Args:
        upstream: the upstream response headers (lowercase names).
        correlation_id: added as ``x-haechi-correlation-id``.
        rewritten: the body differs from the upstream's: drop validators, add ``no-store``.
        decoded: the body was decompressed: drop ``content-encoding``, and the validators
            and digests, which described the compressed bytes.

    ``content-length`` is always dropped (the caller sets it for the body it actually sends),
    and so is an upstream ``x-haechi-correlation-id``, and a ``location`` that is not a path
    on the gateway (see :func:`_on_gateway`).
    """
    dropped = _RESPONSE_DROPPED[rewritten, decoded]
    kept: HeaderList = []
    connection: list[bytes] = []
    for name, value in upstream:
        if name not in dropped:
            if name != b"location" or _on_gateway(value):
                kept.append((name, value))
        elif name == b"connection":
            connection.append(value)
    out = _without(kept, connection)
    if rewritten:
        out.append((b"content-type", b"application/json"))
        out.append((b"cache-control", b"no-store"))
    out.append((b"x-haechi-correlation-id", correlation_id))
    return out


def inspected_stream_headers(headers: HeaderList) -> HeaderList:
    """``headers`` (as :func:`response_headers` made them) for a stream the gateway inspects:
    its bytes may differ from the upstream's, so validators and digests go and it is not
    stored."""
    out = [(name, value) for name, value in headers if name not in _STREAM_DROPPED]
    out.append((b"cache-control", b"no-store"))
    return out
