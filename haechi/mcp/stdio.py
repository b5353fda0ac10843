# SPDX-License-Identifier: Apache-2.0
"""Newline-delimited JSON-RPC relaying: one direction of an MCP stdio connection.

:func:`relay` moves the messages of one stream through the shared decision
(:class:`~haechi.mcp.jsonrpc.McpFilter`), one at a time and in order, writing each outcome
where it belongs. :func:`run_stdio_filter` is ``haechi mcp-stdio``: standard input to
standard output, with the client method allowlist applied to every message and refusals
written in place of the refused message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from haechi.mcp._io import MAX_LINE_BYTES, LineReader, LineTooLong, open_input, open_output
from haechi.mcp.jsonrpc import STDIO_ERROR, McpFilter, Side, encode_message, error_message

__all__ = ["Writer", "relay", "run_stdio_filter"]

#: Where :func:`relay` writes one encoded message (without its newline).
Writer = Callable[[bytes], Awaitable[None]]

_TOO_LONG: bytes = encode_message(
    error_message(STDIO_ERROR, {"reason": f"MCP message exceeds {MAX_LINE_BYTES} bytes"})
)


async def relay(
    lines: LineReader,
    decisions: McpFilter,
    *,
    side: Side,
    allowlist: bool,
    forward: Writer,
    answer: Writer,
) -> None:
    """Decide every message of ``lines`` until the stream ends.

    Args:
        lines: the incoming stream.
        decisions: the shared per-message decision.
        side: who writes ``lines`` (``client`` or ``server``).
        allowlist: apply ``mcp.allowedMethods`` to messages with a method.
        forward: where forwarded messages go (the other peer).
        answer: where answers to the sender go.

    Blank lines are skipped. An oversized line is answered with ``-32000`` and skipped.
    Errors of the writers (a peer that went away) propagate.
    """
    while True:
        try:
            line = await lines.readline()
        except LineTooLong:
            await answer(_TOO_LONG)
            continue
        if line is None:
            return
        if not line.strip():
            continue
        outcome = await decisions.decide_line(line, side=side, allowlist=allowlist)
        if outcome.message is None:
            continue
        target = forward if outcome.action == "forward" else answer
        await target(encode_message(outcome.message))


async def run_stdio_filter(runtime: Any) -> None:
    """Filter standard input to standard output until the input ends (``mcp-stdio``)."""
    source = await open_input(0)
    sink = await open_output(1)
    decisions = McpFilter(runtime, protocol="mcp-stdio")
    try:
        await relay(
            source, decisions, side="client", allowlist=True, forward=sink.send, answer=sink.send
        )
    finally:
        source.close()
        await sink.close()
