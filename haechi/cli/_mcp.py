# SPDX-License-Identifier: Apache-2.0
"""``haechi mcp-stdio`` and ``haechi mcp-wrap``: MCP protection on standard streams.

Both speak newline-delimited JSON-RPC on stdin/stdout, never a JSON report. ``mcp-wrap``
exits with its child's exit code. Refusals to start and warnings go to stderr only: an
MCP client reads stdout as the protocol. See ``docs/mcp.md``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from haechi.cli._app import ConfigOption, app, exit_with, refuse_stdout_anchor, standard_stream
from haechi.config import DEFAULT_CONFIG_PATH, HaechiConfig, load_config
from haechi.errors import AuditError, ConfigError

if TYPE_CHECKING:
    from haechi.runtime import Runtime

__all__: list[str] = []


class _Stderr(StrEnum):
    filter = "filter"
    drop = "drop"
    inherit = "inherit"


@app.command("mcp-stdio")
def mcp_stdio_command(config: ConfigOption = Path(DEFAULT_CONFIG_PATH)) -> None:
    """Filter MCP JSON-RPC lines from stdin to stdout (refusals replace refused messages)."""
    from haechi.mcp.stdio import run_stdio_filter

    settings = _settings(config, "mcp-stdio")
    asyncio.run(_with_runtime(settings, run_stdio_filter))


@app.command(
    "mcp-wrap",
    context_settings={"allow_interspersed_args": False},
)
def mcp_wrap_command(
    command: Annotated[
        list[str] | None,
        typer.Argument(
            help="The MCP server command and its arguments, after --.",
            show_default=False,
        ),
    ] = None,
    stderr: Annotated[
        _Stderr,
        typer.Option(
            "--stderr",
            help="Child stderr: filter (redact per line), drop, or inherit (raw).",
        ),
    ] = _Stderr.filter,
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """Run an MCP server as a child and filter both directions of its stdio."""
    if not command:
        raise typer.BadParameter(
            "mcp-wrap requires a child command after --, e.g. haechi mcp-wrap -- node server.js",
            param_hint="COMMAND",
        )
    from haechi.mcp.wrap import run_wrap

    settings = _settings(config, "mcp-wrap")

    async def wrap(runtime: Any) -> int:
        return await run_wrap(runtime, command, stderr=stderr.value)

    exit_with(asyncio.run(_with_runtime(settings, wrap)))


def _settings(path: Path, command: str) -> HaechiConfig:
    """The configuration, refusing settings that would write to the JSON-RPC channel.

    A closed standard input or output is refused first: the descriptor would be taken by
    the first file or event loop poller opened, and the messages read from or written to
    that instead. A closed standard error is given the null device (see
    :func:`_standard_error_held`).
    """
    standard_stream("stdin")
    standard_stream("stdout")
    _standard_error_held()
    settings = load_config(path)
    refuse_stdout_anchor(settings, command, "the JSON-RPC messages")
    _refuse_stdout_audit(settings, command)
    return settings


def _standard_error_held() -> None:
    """Open the null device as descriptor 2 when standard error was closed (``2>&-``).

    The event loop's poller took that descriptor otherwise: ``mcp-wrap`` wrote the child's
    filtered standard error to it, failed on the first line, and exited 1 instead of with
    the child's exit code; any file opened first would have received those lines instead.
    It is inherited, as a standard descriptor is: a child started with ``--stderr inherit``
    would otherwise start with descriptor 2 closed, and its first file opened would take it.
    """
    try:
        os.fstat(2)
    except OSError:
        # The lowest free descriptor: 2, as 0 and 1 are open.
        os.set_inheritable(os.open(os.devnull, os.O_WRONLY), True)


def _refuse_stdout_audit(settings: HaechiConfig, command: str) -> None:
    """Refuse a jsonl audit log that is standard output (``/dev/stdout``, or the file it
    was redirected to): its records would land among the JSON-RPC messages, each write over
    the other, and the audit chain would not verify."""
    if settings.audit.sink != "jsonl":
        return
    try:
        audit = os.stat(settings.audit.path)
        output = os.fstat(1)
    except OSError:
        return  # not there yet: the store creates a new file, which is not standard output
    if (audit.st_dev, audit.st_ino) == (output.st_dev, output.st_ino):
        raise ConfigError(
            f"audit.path cannot be standard output with {command}: standard output carries "
            "the JSON-RPC messages"
        )


async def _with_runtime(settings: Any, body: Any) -> Any:
    from haechi.runtime import create_runtime

    runtime = create_runtime(settings)
    try:
        await _refuse_unusable(runtime)
        _warn_at_start(runtime)
        return await body(runtime)
    finally:
        await runtime.aclose()


async def _refuse_unusable(runtime: Runtime) -> None:
    """Refuse to start, saying why, with a local key file that is missing or invalid
    or an audit log that cannot be written now; before ``mcp-wrap`` starts its child.

    Started anyway, the command answered every message needing a key (tokenize, encrypt),
    or every message at all for the audit log, with a ``-32001`` ``protection_failed`` that
    MCP clients show as an opaque tool failure, and said nothing about why. The keys are read
    as ``haechi proxy`` reads them before it listens (when a message can need one, see
    :meth:`Runtime.needs_keys`); the audit log has no readiness probe here to report it.
    """
    runtime.require_keys()
    state = await runtime.audit.ready()
    if not state.ok:
        audit = runtime.config.audit
        where = f"audit log {audit.path}" if audit.sink == "jsonl" else f"audit sink {audit.sink}"
        raise AuditError(
            f"{where} cannot be written ({state.reason}); every message would be refused"
        )


def _warn_at_start(runtime: Runtime) -> None:
    """Write the warnings the gateway prints at start that apply to MCP on stdio, one line
    each, to standard error: standard output carries the JSON-RPC messages.

    Disabled response protection is not among them: server messages are always inspected.
    """
    settings = runtime.config
    warnings = list(runtime.warnings)
    if settings.effective_mode != "enforce":
        warnings.insert(
            0, f"mode is {settings.effective_mode}: findings are audited, messages pass unchanged"
        )
    from haechi.crypto._exposure import exposed_key_file

    exposed = exposed_key_file(settings)
    if exposed is not None:
        warnings.append(exposed)
    if sys.stderr is None:  # closed as haechi started: there is nowhere to say it
        return
    for warning in warnings:
        sys.stderr.write(f"haechi: warning: {warning}\n")
    sys.stderr.flush()
