# SPDX-License-Identifier: Apache-2.0
"""MCP protection: the shared JSON-RPC decision, the stdio filter, the wrapper and the
streamable-HTTP handler of the gateway (``target.type: "mcp-http"``). See ``docs/mcp.md``."""

from __future__ import annotations

from haechi.mcp.jsonrpc import (
    INVALID_JSONRPC,
    METHOD_NOT_ALLOWED,
    POLICY_BLOCK,
    STDIO_ERROR,
    McpFilter,
    MessageError,
    Outcome,
    Side,
    encode_message,
    error_message,
    parse_message,
)
from haechi.mcp.stdio import relay, run_stdio_filter
from haechi.mcp.wrap import STDERR_MODES, StderrMode, run_wrap

__all__ = [
    "INVALID_JSONRPC",
    "METHOD_NOT_ALLOWED",
    "POLICY_BLOCK",
    "STDERR_MODES",
    "STDIO_ERROR",
    "McpFilter",
    "MessageError",
    "Outcome",
    "Side",
    "StderrMode",
    "encode_message",
    "error_message",
    "parse_message",
    "relay",
    "run_stdio_filter",
    "run_wrap",
]
