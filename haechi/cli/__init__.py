# SPDX-License-Identifier: Apache-2.0
"""The ``haechi`` command line.

Machine-readable commands print one JSON document on stdout. Errors are one line
``haechi: <message>`` on stderr. Exit codes: 0 ok, 1 error, 2 invalid input to a validate
command, 3 blocked, 4 broken audit chain; ``mcp-wrap`` passes its child's code through.
"""

from __future__ import annotations

import sys

import click

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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script calls this)."""
    try:
        result = app(args=argv, prog_name="haechi", standalone_mode=False)
    except HaechiError as exc:
        sys.stderr.write(f"haechi: {exc.diagnostics()}\n")
        return 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        sys.stderr.write("haechi: aborted\n")
        return 1
    except click.ClickException as exc:
        sys.stderr.write(f"haechi: {exc.format_message()}\n")
        return 1
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"haechi: {exc}\n")
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    raise SystemExit(main())
