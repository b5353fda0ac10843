# SPDX-License-Identifier: Apache-2.0
"""``haechi mcp-wrap`` started with its standard error closed (``2>&-``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.mcp_servers.harness import TIMEOUT_S, haechi_argv, write_config

#: A server that writes to its standard error, then exits with code 5 (9 when it has no
#: standard error).
WRITES_TO_STDERR = (
    "import os, sys\n"
    "try:\n"
    "    os.fstat(2)\n"
    "except OSError:\n"
    "    sys.exit(9)\n"
    "print('starting', file=sys.stderr)\n"
    "sys.exit(5)\n"
)


@pytest.mark.parametrize("mode", ["filter", "inherit"])
def test_a_closed_standard_error_still_passes_the_childs_exit_code(
    tmp_path: Path, mode: str
) -> None:
    config = write_config(tmp_path)
    argv = haechi_argv(
        "mcp-wrap",
        "--config",
        config,
        "--stderr",
        mode,
        "--",
        sys.executable,
        "-c",
        WRITES_TO_STDERR,
    )
    result = subprocess.run(
        ["sh", "-c", 'exec "$@" 2>&-', "sh", *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=tmp_path,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 5
    assert result.stdout == b""
