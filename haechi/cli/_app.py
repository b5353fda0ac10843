# SPDX-License-Identifier: Apache-2.0
"""The typer application object and the helpers every command module shares."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO, Annotated, Any, Final, Literal, TextIO

import typer

from haechi.config import HaechiConfig
from haechi.errors import ConfigError

__all__ = [
    "ConfigOption",
    "app",
    "emit_json",
    "exit_with",
    "read_at_most",
    "refuse_stdout_anchor",
    "standard_stream",
    "write_utf8",
]

app = typer.Typer(
    name="haechi",
    help="haechi: redact, mask, tokenize, encrypt or block PII and secrets before they reach "
    "models, tools or logs.",
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _given_config_exists(ctx: typer.Context, param: typer.CallbackParam, value: Path) -> Path:
    """Refuse a ``--config`` typed on the command line that names no file.

    The option's default is the default file's name, and a missing default file means the
    built-in defaults; a file the operator named must exist whatever its name, or
    ``--config haechi.config.json`` run from the wrong directory would start the gateway on
    the defaults (``dry-run``) instead of the configuration meant.
    """
    source = ctx.get_parameter_source(param.name or "")
    if source is not None and source.name == "COMMANDLINE":
        try:
            os.stat(value)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {value}") from None
        except OSError:
            pass  # reading it reports this, naming the file
    return value


#: The ``--config`` option every config-reading command takes.
ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        help="Path to haechi.config.json.",
        show_default=True,
        callback=_given_config_exists,
    ),
]


#: Bytes asked of an input at a time by :func:`read_at_most`.
_READ_CHUNK: Final = 1 << 16


def read_at_most(handle: IO[bytes], limit: int) -> bytes:
    """The bytes of ``handle`` up to its end, but never more than ``limit + 1`` of them:
    a result longer than ``limit`` means the input is over it, whatever follows.

    An input without end (``yes |``, ``/dev/zero``) or of many gigabytes is never held
    whole. It is read in chunks: ``read(limit + 1)`` would allocate the whole bound up
    front, however little the input holds.
    """
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = handle.read(min(_READ_CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def refuse_stdout_anchor(settings: HaechiConfig, command: str, carries: str) -> None:
    """Refuse ``audit.anchor.mode: "stdout"`` for a command whose standard output carries
    ``carries``: each audit event would put an anchor line in front of it there."""
    if settings.audit.anchor.mode == "stdout":
        raise ConfigError(
            f'audit.anchor.mode "stdout" cannot be used with {command}: standard output '
            f'carries {carries} (use "file")'
        )


def standard_stream(name: Literal["stdin", "stdout"]) -> TextIO:
    """``sys.stdin`` or ``sys.stdout``, refused with a :class:`ConfigError` when that
    descriptor was closed as haechi started (Python then leaves the stream ``None``)."""
    stream: TextIO | None = getattr(sys, name)
    if stream is None:
        kind = "input" if name == "stdin" else "output"
        raise ConfigError(f"standard {kind} is closed")
    return stream


def write_utf8(out: IO[str], text: str) -> None:
    """Write ``text`` to ``out`` as UTF-8, whatever the encoding of the locale.

    JSON is exchanged as UTF-8, and a locale that cannot encode a character of the input
    (an ASCII or Latin-1 one, and Korean text) must not fail a command once its work, and
    its audit event, are done. A lone surrogate (a ``"\\ud800"`` read from a damaged key
    file, vault or log; the bytes of a file name that is not UTF-8) has no UTF-8 form: in
    JSON text it can only stand inside a string, where its backslash escape is JSON's own.
    """
    buffer = getattr(out, "buffer", None)
    if buffer is None:  # a stream without bytes underneath: it takes text as it is
        out.write(text)
        out.flush()
        return
    out.flush()
    buffer.write(text.encode("utf-8", "backslashreplace"))
    buffer.flush()


def emit_json(document: Any) -> None:
    """Print one machine-readable JSON document (2-space indent, trailing newline)."""
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    write_utf8(standard_stream("stdout"), text)


def exit_with(code: int) -> None:
    """Leave the command with ``code`` after its JSON was printed."""
    raise typer.Exit(code)
