# SPDX-License-Identifier: Apache-2.0
"""The ``haechi`` command line.

Machine-readable commands print one JSON document on stdout. Errors are one line
``haechi: <message>`` on stderr. Exit codes: 0 ok, 1 error, 2 invalid input to a validate
command, 3 blocked, 4 broken audit chain; ``mcp-wrap`` passes its child's code through.
``haechi``, ``haechi help``, ``-h`` and ``--help`` print the usage (exit 0); ``haechi help
COMMAND`` prints that command's.
"""

from __future__ import annotations

import sys

import typer
from typer.main import get_command

from haechi.cli import (  # noqa: F401 - importing registers the commands
    _audit,
    _auth,
    _core,
    _detect,
    _mcp,
    _plugins,
    _proxy,
    _rules,
    _tokens,
)
from haechi.cli._app import app
from haechi.errors import HaechiError

__all__ = ["app", "main"]


_HELP_WORDS = ("help", "-h", "--help")


def _arguments(argv: list[str] | None) -> list[str]:
    """``argv`` with every spelling of a request for help turned into ``--help``, which is
    the one the parser knows: no argument at all, ``help``, ``-h``, and ``help COMMAND``."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in _HELP_WORDS:
        return [*args[1:2], "--help"]
    return args


def _unknown_command(args: list[str]) -> str | None:
    """The message for a first argument that names no command (``None`` when it names one)."""
    name = args[0]
    if name.startswith("-") or name in get_command(app).commands:  # type: ignore[attr-defined]
        return None
    return f"Unknown command: {name}. Run 'haechi help' for usage."


#: Commands that need no standard output: the gateway opens the null device in place of a
#: closed standard descriptor, and its start-up lines only inform.
_WITHOUT_OUTPUT = frozenset({"proxy"})


def _closed_output(args: list[str]) -> str | None:
    """The refusal of a command that prints to a standard output closed as haechi started
    (``>&-``), before the command does anything (``None`` when there is none).

    Checked once here rather than when the result is printed: by then ``init`` or
    ``plugin-keygen`` had written their files, ``token-purge`` and ``token-revoke`` had
    changed their stores and a reveal had been audited, all reported as a failure, and a
    command printing text failed as an internal error or printed nothing with exit 0.
    """
    if sys.stdout is not None or args[0] in _WITHOUT_OUTPUT or "--help" in args:
        return None
    return "standard output is closed"


def _usage_message(exc: Exception) -> str:
    """A usage error's text, without the extra arguments it would quote.

    Words typed after a command's arguments are most often the rest of a value pasted
    without quotes (``token-revoke Bearer hae_...``, a name and a national id), and stderr
    ends up in terminals, CI logs and tickets.
    """
    message: str = exc.format_message()  # type: ignore[attr-defined]
    if message.startswith("Got unexpected extra argument"):
        return "unexpected extra arguments (not shown); quote a value that holds spaces"
    return message


def _plain_help_unless_unicode() -> None:
    """Print help without Rich's panels when standard output cannot encode their box and
    ellipsis characters (an ASCII locale, ``PYTHONIOENCODING=ascii``): Rich would fail
    half-way through the help text."""
    try:
        "\u2502\u2026".encode(getattr(sys.stdout, "encoding", None) or "ascii")
    except (LookupError, UnicodeEncodeError):
        app.rich_markup_mode = None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script calls this)."""
    _plain_help_unless_unicode()
    args = _arguments(argv)
    refusal = _unknown_command(args) or _closed_output(args)
    if refusal is not None:
        sys.stderr.write(f"haechi: {refusal}\n")
        return 1
    try:
        result = app(args=args, prog_name="haechi", standalone_mode=False)
    except HaechiError as exc:
        sys.stderr.write(f"haechi: {exc.diagnostics()}\n")
        return 1
    except typer.Abort:
        sys.stderr.write("haechi: aborted\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"haechi: {exc}\n")
        return 1
    except Exception as exc:
        # Usage errors (unknown command, bad option). typer raises click's classes or its own
        # vendored copies depending on the version, so recognise them by shape.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            sys.stderr.write(f"haechi: {_usage_message(exc)}\n")
            return 1
        # An unexpected failure: name its class only, since its text could quote input.
        sys.stderr.write(f"haechi: internal error ({type(exc).__name__})\n")
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    raise SystemExit(main())
