# SPDX-License-Identifier: Apache-2.0
"""The gateway's error answers: one status and one stable ``error`` code per refusal.

Every refusal the gateway makes is a :class:`GatewayError`. Its JSON body is
``{"error": <code>, "message": <text>, ...extra}``, pretty-printed with a trailing newline.
Messages are fixed texts chosen here: they never quote request or upstream bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["CATALOGUE", "GatewayError", "error_body"]

#: error code -> (HTTP status, default message).
CATALOGUE: Final[Mapping[str, tuple[int, str]]] = {
    "haechi_invalid_proxy_target": (400, "Request target must be a path (origin-form)"),
    "haechi_invalid_http_request": (400, "Request is not valid HTTP/1.1"),
    "haechi_invalid_json_request": (400, "Request body is not valid JSON"),
    "haechi_request_body_not_utf8": (400, "Request body is not valid UTF-8"),
    "haechi_invalid_stream_flag": (
        400,
        'Request field "stream" must be true, false or null, and spelled in lower case',
    ),
    "haechi_mcp_event_id_refused": (
        400,
        "Last-Event-ID is not an event id of this MCP session; resume from an id it sent",
    ),
    "haechi_auth_denied": (401, "Authentication required"),
    "haechi_forwarded_proto_required": (403, "X-Forwarded-Proto: https is required"),
    "haechi_model_not_allowed": (403, "Model not allowed by policy"),
    "haechi_policy_block": (403, "Request blocked by policy"),
    "haechi_token_ids_refused": (
        403,
        "Request carries token ids or prompt embeddings, which cannot be inspected "
        "(target.tokenIdInput: relay forwards them)",
    ),
    "haechi_not_found": (404, "Unknown gateway endpoint"),
    "haechi_metrics_disabled": (404, "Metrics are disabled"),
    "haechi_mcp_session_not_found": (404, "Unknown MCP session; start a new one"),
    "haechi_method_not_allowed": (405, "Method not allowed on this gateway endpoint"),
    "haechi_request_timeout": (408, "Request body not received within limits.requestTimeoutMs"),
    "haechi_request_body_too_large": (413, "Request body exceeds limits.maxRequestBytes"),
    "haechi_request_too_deeply_nested": (413, "Request JSON exceeds limits.maxNestingDepth"),
    "haechi_too_many_tokens": (
        413,
        "Request has more values to tokenize than tokenVault.maxTokensPerPayload",
    ),
    "haechi_rate_limited": (429, "Rate limit exceeded"),
    "haechi_request_headers_too_large": (
        431,
        "Request target and header fields exceed limits.maxHeaderBytes",
    ),
    "haechi_proxy_error": (500, "Internal proxy error"),
    "haechi_protection_failed": (500, "Request could not be inspected; it was not forwarded"),
    "haechi_streaming_unsupported": (501, "Streaming requests are disabled"),
    "haechi_streaming_uninspectable_route": (501, "This route has no inspectable stream format"),
    "haechi_upstream_unreachable": (502, "Upstream request failed"),
    "haechi_response_unprotected": (502, "Upstream response could not be inspected"),
    "haechi_response_too_large": (502, "Upstream response exceeds responseProtection.maxBytes"),
    "haechi_response_policy_block": (502, "Upstream response blocked by policy"),
    "haechi_overloaded": (503, "Too many requests in flight"),
    "haechi_rate_limit_unavailable": (
        503,
        "Rate limit could not be checked; the request was not forwarded",
    ),
    "haechi_upstream_timeout": (504, "Upstream request timed out"),
}


class GatewayError(Exception):
    """A refusal with its HTTP status, code, message, extra body fields and headers.

    ``status`` overrides the catalogue's status; it is only needed for codes raised by the
    engine (a :class:`~haechi.errors.LimitError` carries its own status and code).
    """

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        catalogued, default = CATALOGUE.get(code, (500, "Request refused"))
        self.status = status or catalogued
        self.code = code
        self.message = message or default
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})
        super().__init__(code)

    def body(self) -> bytes:
        """The JSON body of this error."""
        return error_body(self.code, self.message, self.extra)


def error_body(code: str, message: str, extra: Mapping[str, Any] | None = None) -> bytes:
    """``{"error": code, "message": message, ...extra}`` as pretty JSON bytes."""
    document: dict[str, Any] = {"error": code, "message": message}
    document.update(extra or {})
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
