# SPDX-License-Identifier: Apache-2.0
"""The gateway's own endpoints under the reserved ``/__haechi/`` prefix.

``GET /__haechi/live``, ``/ready``, ``/health`` and ``/metrics`` answer without
authentication (probes and scrapers carry no credential) and are never counted against the
in-flight ceiling. Every other path under the prefix is answered here too — 404 for an
unknown sub-path, 405 for a method other than GET — and is never proxied upstream, so the
prefix cannot be used to reach the upstream around the gateway's checks. Paths are matched
exactly, without their query string.

Readiness fails closed: 503 whenever the audit store or the token vault cannot be written,
and when their checks do not answer within :data:`READY_TIMEOUT_S` (a store on a server that
stopped answering): a probe is always answered, and holds nothing past that bound.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

import haechi
from haechi.protocols import normalized_path
from haechi.proxy._asgi import Send, send_json, send_response
from haechi.proxy.errors import GatewayError
from haechi.proxy.logs import log_event

__all__ = ["READY_TIMEOUT_S", "RESERVED_PREFIX", "Operations", "is_reserved", "reserved_path"]

RESERVED_PREFIX: Final = "/__haechi"
_ENDPOINTS: Final = frozenset({"live", "ready", "health", "metrics"})
#: Seconds the readiness checks get before the gateway reports itself not ready.
READY_TIMEOUT_S: Final = 5.0


def is_reserved(path: str) -> bool:
    """Whether ``path`` belongs to the gateway itself."""
    return path == RESERVED_PREFIX or path.startswith(RESERVED_PREFIX + "/")


def reserved_path(path: str) -> str | None:
    """The gateway's own path that the decoded ``path`` names, or ``None``.

    Read as a lenient upstream routes it (:func:`~haechi.protocols.normalized_path`), so
    that no spelling of ``/__haechi/…`` (``/%2f__haechi/…``, ``/v1/..%2f__haechi/…``) is
    proxied to an upstream that would serve it as that path.
    """
    if RESERVED_PREFIX not in path:
        return None
    normal = normalized_path(path)
    return normal if is_reserved(normal) else None


class Operations:
    """Answers the reserved endpoints for one runtime."""

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime
        self._metrics_enabled = bool(runtime.config.metrics.enabled)
        self._version = haechi.__version__

    async def readiness(self) -> dict[str, bool]:
        """Whether the audit store and the token vault can be written right now, and the
        keys can be had."""
        try:
            state = await asyncio.wait_for(self._runtime.ready(), READY_TIMEOUT_S)
        except Exception:  # a probe that raises or does not answer means "not writable"
            return {"auditWritable": False, "vaultWritable": False, "keysReadable": False}
        return {
            "auditWritable": state.get("audit") is True,
            "vaultWritable": state.get("tokenVault", True) is True,
            "keysReadable": state.get("keys", True) is True,
        }

    def _exposition(self, correlation_id: bytes) -> tuple[bytes, str]:
        """The metrics text and its content type; a sink that cannot make it (a
        multi-worker gateway whose counter files were removed, a plugin sink that raises)
        is an internal error, logged and counted as any."""
        metrics = self._runtime.metrics
        try:
            exposition: tuple[bytes, str] = metrics.render()
        except Exception as exc:
            log_event(
                logging.ERROR,
                "proxy_internal_error",
                correlationId=correlation_id.decode(),
                errorName=type(exc).__name__,
                statusCode=500,
            )
            metrics.increment("haechi_internal_error_total")
            raise GatewayError("haechi_proxy_error") from None
        return exposition

    async def handle(self, method: str, path: str, send: Send, correlation_id: bytes) -> None:
        """Answer a request for a reserved ``path``."""
        endpoint = path[len(RESERVED_PREFIX) + 1 :] if is_reserved(path) else ""
        if endpoint not in _ENDPOINTS:
            raise GatewayError("haechi_not_found")
        if method != "GET":
            raise GatewayError("haechi_method_not_allowed", headers={"allow": "GET"})
        if endpoint == "live":
            document = {"ok": True, "version": self._version}
            await send_json(send, 200, document, correlation_id=correlation_id)
        elif endpoint == "health":
            mode = self._runtime.config.effective_mode
            document = {"ok": True, "mode": mode, "version": self._version}
            await send_json(send, 200, document, correlation_id=correlation_id)
        elif endpoint == "ready":
            checks = await self.readiness()
            ready = all(checks.values())
            document = {"ready": ready, "version": self._version, "checks": checks}
            await send_json(send, 200 if ready else 503, document, correlation_id=correlation_id)
        else:
            if not self._metrics_enabled:
                raise GatewayError("haechi_metrics_disabled")
            body, content_type = self._exposition(correlation_id)
            headers = [
                (b"content-type", content_type.encode()),
                (b"cache-control", b"no-store"),
                (b"x-haechi-correlation-id", correlation_id),
            ]
            await send_response(send, 200, headers, body)
