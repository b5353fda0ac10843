# SPDX-License-Identifier: Apache-2.0
"""Minimal ASGI response helpers shared by the gateway modules."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Receive", "Send", "send_json", "send_response"]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


async def send_response(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """Send a complete response with ``content-length`` set for ``body``."""
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
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
