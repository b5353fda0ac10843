# SPDX-License-Identifier: Apache-2.0
"""Newline-delimited JSON-RPC relaying: one direction of an MCP stdio connection.

:func:`relay` moves the messages of one stream through the shared decision
(:class:`~haechi.mcp.jsonrpc.McpFilter`), one at a time and in order, writing each outcome
where it belongs. :func:`run_stdio_filter` is ``haechi mcp-stdio``: standard input to
standard output, with the client method allowlist applied to every message and refusals
written in place of the refused message.

:class:`AwaitedIds` lets the two directions of one session share the ids of each peer's
requests still waiting for an answer: an answer refused because of its id, or one that
cannot be read, then still answers the request when its id is exactly one the waiting peer
sent.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final

from haechi.mcp._io import MAX_LINE_BYTES, LineReader, LineTooLong, open_input, open_output
from haechi.mcp.jsonrpc import McpFilter, Side, encode_message

__all__ = ["AwaitedIds", "Writer", "relay", "run_stdio_filter"]

#: Where :func:`relay` writes one encoded message (without its newline).
Writer = Callable[[bytes], Awaitable[None]]

_TOO_LONG: Final = {"reason": f"MCP message exceeds {MAX_LINE_BYTES} bytes"}
#: How many unanswered request ids :class:`AwaitedIds` keeps (the oldest are forgotten).
MAX_AWAITED_IDS: Final = 65536
#: How many characters of string ids it keeps in all (the oldest ids are forgotten).
MAX_AWAITED_CHARS: Final = 4 * 1024 * 1024


class AwaitedIds:
    """The ids of requests sent one way and not answered yet, oldest first (bounded).

    Ids are told apart by type as well as value (``1`` is not ``"1"``). At most ``limit``
    ids are kept, and string ids of at most ``max_chars`` characters in all: a client
    choosing its ids (up to the line limit each) must not make the session hold gigabytes.
    A forgotten id only loses the matching of :meth:`McpFilter.decide`: a refused answer to
    it goes with ``id: null``.
    """

    def __init__(self, limit: int = MAX_AWAITED_IDS, max_chars: int = MAX_AWAITED_CHARS) -> None:
        self._ids: OrderedDict[tuple[type, Any], None] = OrderedDict()
        self._limit = limit
        self._max_chars = max_chars
        self._chars = 0

    def add(self, message_id: Any) -> None:
        if _chars(message_id) > self._max_chars:
            return  # kept, it would push out every other id
        key = (type(message_id), message_id)
        if key not in self._ids:
            self._chars += _chars(message_id)
        self._ids[key] = None
        self._ids.move_to_end(key)
        while len(self._ids) > self._limit or self._chars > self._max_chars:
            (_kind, oldest), _ = self._ids.popitem(last=False)
            self._chars -= _chars(oldest)

    def discard(self, message_id: Any) -> None:
        if self._ids.pop((type(message_id), message_id), False) is None:
            self._chars -= _chars(message_id)

    def __contains__(self, message_id: object) -> bool:
        try:
            return (type(message_id), message_id) in self._ids
        except TypeError:  # an id that is not hashable was never sent as one
            return False

    def __iter__(self) -> Iterator[Any]:
        return (message_id for _kind, message_id in self._ids)

    def __len__(self) -> int:
        return len(self._ids)


def _chars(message_id: Any) -> int:
    return len(message_id) if isinstance(message_id, str) else 0


async def relay(
    lines: LineReader,
    decisions: McpFilter,
    *,
    side: Side,
    allowlist: bool,
    forward: Writer,
    answer: Writer,
    awaited: AwaitedIds | None = None,
    pending: AwaitedIds | None = None,
) -> None:
    """Decide every message of ``lines`` until the stream ends.

    Args:
        lines: the incoming stream.
        decisions: the shared per-message decision.
        side: who writes ``lines`` (``client`` or ``server``).
        allowlist: apply ``mcp.allowedMethods`` to messages with a method.
        forward: where forwarded messages go (the other peer).
        answer: where answers to the sender go.
        awaited: the requests of the other peer waiting for an answer from this sender;
            messages are decided with them (see :meth:`McpFilter.decide`), and each is
            taken out as its answer is passed on.
        pending: where the ids of this sender's requests are put as they are passed on
            (the ``awaited`` of the other direction of the session).

    Blank lines are skipped. An oversized line is skipped and refused with ``-32000``
    (audited; see :meth:`McpFilter.refuse_oversized`). A refused batch holding requests is
    answered with the array of their errors, on one line, and each of its answers the other
    peer waits for gets that peer the error with its id, on a line of its own (see
    :meth:`McpFilter.refuse_line`).
    Errors of the writers (a peer that went away) propagate.
    """
    while True:
        try:
            line = await lines.readline()
        except LineTooLong as exc:
            outcome = await decisions.refuse_oversized(
                exc.head, exc.tail, _TOO_LONG, side=side, awaited=awaited
            )
        else:
            if line is None:
                return
            if not line.strip():
                continue
            outcome = await decisions.decide_line(
                line, side=side, allowlist=allowlist, awaited=awaited
            )
        message = outcome.message
        if message is None:
            continue
        if outcome.action == "forward" and message.get("id") is not None:
            if "method" not in message:
                if awaited is not None:
                    awaited.discard(message["id"])
            elif pending is not None:
                pending.add(message["id"])
        target = forward if outcome.action == "forward" else answer
        await target(encode_message(outcome.batch or message))
        for error in outcome.receiver_errors:
            if awaited is not None:
                awaited.discard(error["id"])
            await forward(encode_message(error))


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
