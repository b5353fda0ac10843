# SPDX-License-Identifier: Apache-2.0
"""Minimal ASGI response helpers and the JSON body encoder shared by the gateway modules."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Final

__all__ = ["BODY_FOLLOWS", "Receive", "Send", "compact_json", "send_json", "send_response"]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

# One encoder for every rewritten body: ``json.dumps`` with non-default options builds a
# new encoder (and its C scanner) on each call, which a gateway does twice per request.
_COMPACT: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


#: Key of an ``http.response.start`` message whose whole body is sent next, at once: a
#: server may hold the head and write it with the body (one write, one wake-up of the
#: client); servers that do not know the key ignore it.
BODY_FOLLOWS: Final = "haechi.body_follows"

#: Statuses whose answers carry no body and no ``content-length``.
_NO_LENGTH: Final = frozenset({204, 304})


def compact_json(document: Any) -> bytes:
    """``document`` as compact UTF-8 JSON (non-ASCII text kept as is), as a rewritten body.

    Raises ``ValueError`` for a NaN or an infinity (an answer's ``1e400`` reads as one):
    ``NaN`` and ``Infinity`` are no JSON to JavaScript's and Go's parsers.
    """
    return _COMPACT.encode(document).encode()


async def send_response(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """Send a complete response with ``content-length`` set for ``body`` (none on a 204,
    which HTTP forbids to have one, nor on a 304, whose length would describe the cached
    representation rather than this empty answer)."""
    if status not in _NO_LENGTH:
        headers.append((b"content-length", str(len(body)).encode()))
    await send(
        {"type": "http.response.start", "status": status, "headers": headers, BODY_FOLLOWS: True}
    )
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send,
    status: int,
    document: Any,
    *,
    correlation_id: bytes,
    content_type: bytes = b"application/json",
) -> None:
    """Send ``document`` as pretty JSON with the correlation id header."""
    body = (json.dumps(document, indent=2) + "\n").encode()
    headers = [
        (b"content-type", content_type),
        (b"cache-control", b"no-store"),
        (b"x-haechi-correlation-id", correlation_id),
    ]
    await send_response(send, status, headers, body)
