# SPDX-License-Identifier: Apache-2.0
"""The stdio commands refuse an audit log that is their own standard output.

Standard output carries the JSON-RPC messages: audit records written to the same file
(``audit.path: "/dev/stdout"``, as a container logging to standard output is set up) would
land among them, each write over the other, and the audit chain would not verify either.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mcp_servers.harness import TIMEOUT_S, haechi_argv, write_config

REQUEST = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"a": "hello"}}


def _run_into(output: Path, argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` in ``output``'s directory with one request in and its standard output
    written to ``output``."""
    with output.open("wb") as stdout:
        return subprocess.run(
            argv,
            input=json.dumps(REQUEST).encode() + b"\n",
            stdout=stdout,
            stderr=subprocess.PIPE,
            cwd=output.parent,
            timeout=TIMEOUT_S,
            check=False,
        )


@pytest.mark.parametrize("path", ["/dev/stdout", "out.jsonl"])
@pytest.mark.parametrize("command", ["mcp-stdio", "mcp-wrap"])
def test_an_audit_log_on_standard_output_is_refused(
    tmp_path: Path, command: str, path: str
) -> None:
    config = write_config(tmp_path, {"audit": {"path": path}})
    marker = tmp_path / "started"
    child = ["--", sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    argv = haechi_argv(command, "--config", config, *(child if command == "mcp-wrap" else ()))
    output = tmp_path / "out.jsonl"
    done = _run_into(output, argv)
    assert done.returncode == 1
    assert b"audit.path" in done.stderr
    assert output.read_bytes() == b""
    assert not marker.exists(), "nothing was started"


def test_an_audit_log_elsewhere_is_used(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    output = tmp_path / "out.jsonl"
    done = _run_into(output, haechi_argv("mcp-stdio", "--config", config))
    assert done.returncode == 0, done.stderr
    assert json.loads(output.read_bytes()) == REQUEST
