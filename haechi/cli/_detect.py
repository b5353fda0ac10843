# SPDX-License-Identifier: Apache-2.0
"""``haechi protect`` and ``haechi scan``.

``protect`` runs one JSON document through the full pipeline (and writes one audit event);
``scan`` reports findings line by line for JSON Lines input of any size, without auditing
or changing anything. Both read a file or standard input (``-``). A configuration file that
does not exist at the default path means the built-in defaults, so both work in an empty
directory (``protect`` then writes its audit log to ``.haechi/audit.jsonl``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any, Final

import typer

from haechi._documents import LoneSurrogate, decode_document
from haechi.cli._app import (
    ConfigOption,
    app,
    emit_json,
    exit_with,
    read_at_most,
    refuse_stdout_anchor,
    standard_stream,
    write_utf8,
)
from haechi.config import DEFAULT_CONFIG_PATH, HaechiConfig, load_config
from haechi.errors import LimitError
from haechi.models import Finding

__all__: list[str] = []

_EXIT_BLOCKED: Final = 3
_EXIT_MALFORMED: Final = 1
_PROGRESS_EVERY: Final = 1 << 20


class _Direction(StrEnum):
    request = "request"
    response = "response"


class _Mode(StrEnum):
    dry_run = "dry-run"
    report_only = "report-only"
    enforce = "enforce"


InputArgument = Annotated[
    str, typer.Argument(help="Input file, or - for standard input.", show_default=True)
]
DirectionOption = Annotated[
    _Direction, typer.Option("--direction", help="Inspect as a request or as a response.")
]


@contextlib.contextmanager
def _open_input(name: str) -> Iterator[IO[bytes]]:
    """Standard input for ``-``, else the file ``name``.

    A name that cannot be opened is not quoted back: it is often the data itself, a JSON
    document or a credential given in the file's place, which would otherwise land on the
    terminal or in a CI log.
    """
    if name == "-":
        yield standard_stream("stdin").buffer
        return
    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(Path(name).open("rb"))
        except OSError as exc:
            raise OSError(
                f"the input file cannot be opened: {exc.strerror or type(exc).__name__} (its "
                "name is not shown, as it may be the data itself: give a file name, or - for "
                "standard input)"
            ) from None
        yield handle


def _too_large(what: str, limit: int) -> LimitError:
    """The refusal of ``what`` past ``limits.maxRequestBytes``, the bound the gateway puts
    on a request body (never quoting any of it)."""
    return LimitError(
        f"{what} exceeds limits.maxRequestBytes ({limit} bytes)",
        status_code=413,
        error_code="haechi_request_body_too_large",
    )


def _read_document(handle: IO[bytes], limit: int) -> bytes:
    """All of ``handle``, refused once it holds more than ``limit`` bytes."""
    data = read_at_most(handle, limit)
    if len(data) > limit:
        raise _too_large("the input", limit)
    return data


def _numbered_lines(handle: IO[bytes], limit: int) -> Iterator[tuple[int, bytes]]:
    """``(number, line)`` for every line of ``handle``, its line end kept.

    At most ``limit + 2`` bytes of a line are read (room for a ``\\r\\n`` end), and one
    holding more than ``limit`` bytes besides its line end ends the scan: a line without
    end (``yes | tr -d '\\n'``) would otherwise be held whole.
    """
    number = 0
    while line := handle.readline(limit + 2):
        number += 1
        if len(line.removesuffix(b"\n").removesuffix(b"\r")) > limit:
            raise _too_large(f"line {number} of the input", limit)
        yield number, line


def _parse(data: bytes) -> Any:
    """``data`` as a JSON document, read as strictly as the gateway reads a body: UTF-8,
    no ``NaN``/``Infinity`` nor a number too large for a double (it would be written back
    as one), no lone UTF-16 surrogate (``LoneSurrogate``: not text, and not writable as
    UTF-8 to the output or the audit log)."""
    try:
        return decode_document(data.decode("utf-8"))[0]
    except RecursionError:
        raise LimitError(
            "the JSON input nests too deeply to parse",
            status_code=413,
            error_code="haechi_request_too_deeply_nested",
        ) from None


@app.command("protect")
def protect_command(
    file: InputArgument = "-",
    direction: DirectionOption = _Direction.request,
    mode: Annotated[
        _Mode | None,
        typer.Option("--mode", help="Override the configured mode.", show_default=False),
    ] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """Protect one JSON document and print the result (exit 3 when it is blocked)."""
    standard_stream("stdout")  # a result nobody can read is refused before it is audited
    settings = load_config(config)
    refuse_stdout_anchor(settings, "protect", "its JSON result")
    with _open_input(file) as handle:
        data = _read_document(handle, settings.limits.max_request_bytes)
    try:
        payload = _parse(data)
    except LoneSurrogate:
        # Refused before anything is protected or audited.
        raise typer.BadParameter(
            "the input is not valid JSON text: a string holds a lone UTF-16 surrogate",
            param_hint="FILE",
        ) from None
    except ValueError as exc:
        where = (
            f" (line {exc.lineno} column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise typer.BadParameter(f"the input is not valid JSON{where}", param_hint="FILE") from None
    document = asyncio.run(_protect(settings, payload, direction.value, mode and mode.value))
    emit_json(document)
    if document["blocked"]:
        exit_with(_EXIT_BLOCKED)


async def _protect(
    settings: HaechiConfig, payload: Any, direction: Any, mode: Any
) -> dict[str, Any]:
    from haechi.runtime import create_runtime

    runtime = create_runtime(settings)
    try:
        result = await runtime.protect(
            payload,
            direction=direction,
            protocol=settings.target.type,
            operation="cli protect",
            mode=mode,
        )
    finally:
        await runtime.aclose()
    warnings = list(runtime.warnings)
    if not result.enforced:
        warnings.insert(
            0,
            f"mode is {result.mode}: findings are audited but the payload is neither "
            "modified nor blocked",
        )
    from haechi.crypto._exposure import exposed_key_file

    exposed = exposed_key_file(settings)
    if exposed is not None:
        warnings.append(exposed)
    return {
        "ok": not result.blocked,
        "mode": result.mode,
        "enforced": result.enforced,
        "blocked": result.blocked,
        "auditId": result.audit_id,
        "summary": result.summary,
        "payload": result.payload,
        "warnings": warnings,
    }


@app.command("scan")
def scan_command(
    file: InputArgument = "-",
    direction: DirectionOption = _Direction.request,
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """Print the findings of every line of a JSON Lines input, one output line each.

    Nothing is audited or changed. A line that is not JSON is reported as
    {"line": N, "error": "invalid JSON"} and scanning goes on; the exit code is then 1.
    A line longer than limits.maxRequestBytes ends the scan (exit 1).
    """
    from haechi.runtime import create_runtime

    out = standard_stream("stdout")
    settings = load_config(config)
    runtime = create_runtime(settings)
    malformed = False
    try:
        with _open_input(file) as handle:
            limit = settings.limits.max_request_bytes
            malformed = _scan_lines(runtime, handle, out, direction.value, limit)
    finally:
        asyncio.run(runtime.aclose())
    if malformed:
        exit_with(_EXIT_MALFORMED)


def _scan_lines(runtime: Any, handle: IO[bytes], out: IO[str], direction: Any, limit: int) -> bool:
    progress = _Progress(handle) if sys.stderr.isatty() else None
    try:
        return _scan_each(runtime, _numbered_lines(handle, limit), out, direction, progress)
    finally:
        # Also before an error, which then starts a line of its own.
        if progress is not None:
            progress.finish()


def _scan_each(
    runtime: Any,
    lines: Iterator[tuple[int, bytes]],
    out: IO[str],
    direction: Any,
    progress: _Progress | None,
) -> bool:
    malformed = False
    for number, raw in lines:
        document: dict[str, Any] = {"line": number}
        if not raw.strip():
            document["findings"] = []
        else:
            try:
                value = _parse(raw)
            except ValueError:
                document["error"] = "invalid JSON"
                malformed = True
            except LimitError:
                document["error"] = "nested too deeply"
                malformed = True
            else:
                try:
                    findings = runtime.scan(value, direction=direction)
                except LimitError:
                    document["error"] = "nested too deeply"
                    malformed = True
                else:
                    document["findings"] = _findings_json(findings)
        write_utf8(out, json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")
        if progress is not None:
            progress.advance(len(raw))
    return malformed


def _findings_json(findings: list[Finding]) -> list[dict[str, Any]]:
    """The findings of one line as printed: a key found to be a value (``{"jane@...": 1}``)
    is shown as ``[REDACTED:<type>]`` in every path through it, as the value itself would
    be printed there otherwise."""
    hidden: dict[tuple[Any, ...], str] = {}
    for finding in findings:
        if finding.kind == "key":
            hidden.setdefault(finding.path, finding.type)
    shown = []
    for finding in findings:
        document = finding.to_json()
        document["path"] = [
            f"[REDACTED:{hidden[finding.path[: index + 1]]}]"
            if finding.path[: index + 1] in hidden
            else segment
            for index, segment in enumerate(finding.path)
        ]
        shown.append(document)
    return shown


class _Progress:
    """Bytes read so far (and of how many) on a terminal's stderr, redrawn in place."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._total: int | None = None
        with contextlib.suppress(OSError, ValueError):
            info = os.fstat(handle.fileno())
            if info.st_size > 0:
                self._total = info.st_size
        self._read = 0
        self._shown = 0

    def advance(self, count: int) -> None:
        self._read += count
        if self._read - self._shown >= _PROGRESS_EVERY:
            self._shown = self._read
            self._draw()

    def finish(self) -> None:
        self._draw()
        sys.stderr.write("\n")
        sys.stderr.flush()

    def _draw(self) -> None:
        read = self._read / (1 << 20)
        text = f"\rhaechi scan: {read:.1f} MiB"
        if self._total is not None:
            text += f" of {self._total / (1 << 20):.1f} MiB"
        sys.stderr.write(text)
        sys.stderr.flush()
