# SPDX-License-Identifier: Apache-2.0
"""``haechi mcp-wrap``: run an MCP server as a child process and filter both directions.

::

    client stdin  --> decide (client, allowlist) --> child stdin
                       `-- refusals ------------------> client stdout
    child stdout  --> decide (server)            --> client stdout
                       `-- refusals of its requests --> child stdin
    child stderr  --> per line: protect as text  --> our stderr   (or dropped, or inherited)

The three streams are independent tasks, each handling its messages one at a time and in
order, so a peer that stops reading only ever stalls the direction that writes to it.
Forwarded messages wait for the destination (backpressure reaches the sender); refusals sent
back to the child are queued without waiting, because the child may be blocked writing to
us at that moment and waiting for it would deadlock both directions.

The child inherits the environment and the working directory. SIGINT, SIGTERM and SIGHUP
are forwarded to it (each would otherwise end the wrapper alone, and a child that does not
stop at the end of its input would be left running); when the client's input ends, or the
client stops reading, the child's input is closed (and in the latter case its output is read
and dropped, so that it never blocks on a full pipe); the wrapper ends when the child does
and returns its exit code (``1`` when a signal killed it).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import Sequence
from typing import Any, Final, Literal

from haechi.mcp._io import (
    MAX_LINE_BYTES,
    LineReader,
    LineSink,
    LineTooLong,
    open_input,
    open_output,
)
from haechi.mcp.jsonrpc import McpFilter
from haechi.mcp.stdio import AwaitedIds, relay

__all__ = ["STDERR_MODES", "StderrMode", "filter_stderr", "run_wrap"]

#: How the child's standard error is handled.
StderrMode = Literal["filter", "drop", "inherit"]
STDERR_MODES: Final[tuple[StderrMode, ...]] = ("filter", "drop", "inherit")

_CHILD_STDERR: Final = {"filter": subprocess.PIPE, "drop": subprocess.DEVNULL, "inherit": None}
#: How long the child's output streams may stay open after it exited (held by a grandchild).
_EXIT_GRACE_S: Final = 5.0


async def filter_stderr(lines: LineReader, runtime: Any, sink: LineSink) -> None:
    """Protect each line of ``lines`` as text and write what may be shown to ``sink``.

    A line is decoded as UTF-8 (invalid bytes become U+FFFD, so what is shown is exactly what
    was inspected), protected in the response direction without an audit event, and written
    redacted or masked; a line with a blocking finding, a line that could not be inspected
    and a line over the length limit are dropped whole. A secret deliberately split across
    two lines is not recognised: use ``--stderr drop`` for children that cannot be trusted.
    Once ``sink`` is gone, the rest of ``lines`` is read and dropped: a child blocked on a
    full pipe would never exit.
    """
    mode = runtime.config.effective_mode
    while True:
        try:
            line = await lines.readline()
        except LineTooLong:
            continue
        if line is None:
            return
        if not line.strip():
            continue
        shown = await _shown_text(runtime, line.decode("utf-8", errors="replace"), mode)
        if shown is None:
            continue
        try:
            await sink.send(shown.encode("utf-8", errors="replace"))
        except ConnectionError:
            # Nothing can be shown any more; the child must still be able to write.
            await _discard(lines)
            return


async def _shown_text(runtime: Any, text: str, mode: str) -> str | None:
    """``text`` as it may be shown, or ``None`` when it must not be (fail closed)."""
    try:
        result = await runtime.protect_text(
            text, direction="response", protocol="mcp-stdio", operation="stderr", mode=mode
        )
    except Exception:
        return None
    return None if result.blocked else result.text


async def run_wrap(runtime: Any, command: Sequence[str], *, stderr: StderrMode = "filter") -> int:
    """Run ``command`` behind the filter on this process's standard streams.

    Returns the child's exit code (``1`` when it was killed by a signal). Raises
    :class:`OSError` when the child cannot be started.
    """
    if stderr not in _CHILD_STDERR:
        raise ValueError(f"unknown stderr mode {stderr!r}")
    child = await asyncio.create_subprocess_exec(
        *command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=_CHILD_STDERR[stderr],
        limit=MAX_LINE_BYTES,
    )
    loop = asyncio.get_running_loop()
    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for signum in forwarded:
        loop.add_signal_handler(signum, _forward_signal, child, signum)
    try:
        return await _session(runtime, child, stderr)
    finally:
        for signum in forwarded:
            loop.remove_signal_handler(signum)
        if child.returncode is None:
            child.kill()
            await child.wait()


async def _discard(lines: LineReader) -> None:
    """Read ``lines`` to their end, keeping nothing."""
    while True:
        try:
            if await lines.readline() is None:
                return
        except LineTooLong:
            continue


def _forward_signal(child: asyncio.subprocess.Process, signum: int) -> None:
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)


async def _session(runtime: Any, child: asyncio.subprocess.Process, stderr: StderrMode) -> int:
    assert child.stdin is not None
    assert child.stdout is not None
    decisions = McpFilter(runtime, protocol="mcp-stdio")
    client_in = await open_input(0)
    client_out = await open_output(1)
    child_in = LineSink(child.stdin)
    child_out = LineReader.from_stream(child.stdout)
    # The requests of each peer passed on and not answered yet (see relay).
    client_requests = AwaitedIds()
    server_requests = AwaitedIds()

    async def answer_child(data: bytes) -> None:
        with contextlib.suppress(ConnectionError):
            child_in.post(data)

    async def client_to_child() -> None:
        try:
            await relay(
                client_in,
                decisions,
                side="client",
                allowlist=True,
                forward=child_in.send,
                answer=client_out.send,
                awaited=server_requests,
                pending=client_requests,
            )
        except ConnectionError:
            pass  # the child or the client went away; the child learns it from its input
        finally:
            await child_in.close()

    async def child_to_client() -> None:
        try:
            await relay(
                child_out,
                decisions,
                side="server",
                allowlist=False,
                forward=client_out.send,
                answer=answer_child,
                awaited=client_requests,
                pending=server_requests,
            )
        except ConnectionError:
            # The client stopped reading for good: end its half so the child sees EOF, and
            # keep taking the child's output, which nobody can be given any more. A child
            # blocked writing to a full pipe would never read that end, never exit, and
            # the wrapper waiting for it would never exit either.
            upward.cancel()
            await _discard(child_out)

    upward = asyncio.create_task(client_to_child())
    readers = [asyncio.create_task(child_to_client())]
    err_sink: LineSink | None = None
    if stderr == "filter":
        assert child.stderr is not None
        err_sink = await open_output(2)
        readers.append(
            asyncio.create_task(
                filter_stderr(LineReader.from_stream(child.stderr), runtime, err_sink)
            )
        )
    try:
        code = await child.wait()
        await asyncio.wait(readers, timeout=_EXIT_GRACE_S)
    finally:
        for task in (upward, *readers):
            task.cancel()
        for task in (upward, *readers):
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
        client_in.close()
        await client_out.close()
        if err_sink is not None:
            await err_sink.close()
    return code if code >= 0 else 1
