# SPDX-License-Identifier: Apache-2.0
"""``haechi mcp-wrap`` when what it writes to goes away in the middle of a session.

A client that stops reading (it crashed, or closed the pipe) cannot be written to any more,
nor can a standard error whose reader went away, but the server behind the wrapper goes on
writing. The wrapper must not stop reading the server then: a server blocked writing to a
full pipe never reads that its input ended, never exits, and the wrapper waiting for it
never exits either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.mcp_servers.harness import SCRIPTED, TIMEOUT_S, haechi_argv, write_config

#: More than the wrapper may hold unread from the server (twice the 64 MiB line limit), in
#: lines it can read.
LARGE_LINES = 3
LARGE_LINE_BYTES = 50_000_000
NOTE = '{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"@PAD"}}'


def test_the_wrapper_ends_when_the_client_went_away_while_the_server_writes(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    argv = haechi_argv("mcp-wrap", "--config", config, "--", sys.executable, SCRIPTED)
    env = {**os.environ, "HAECHI_TEST_RECORD": str(tmp_path / "received.jsonl")}
    wrapper = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert wrapper.stdin is not None
    assert wrapper.stdout is not None
    # One request the server answers with a short line and then large ones. The client is
    # gone before the first: writing it to the client fails, and the server still has the
    # large lines to write.
    raw = "\n".join([NOTE.replace("@PAD", "first")] + [NOTE] * LARGE_LINES)
    arguments: dict[str, Any] = {"raw": raw, "pad": LARGE_LINE_BYTES}
    params = {"name": "echo", "arguments": arguments}
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    wrapper.stdout.close()
    wrapper.stdin.write(json.dumps(request).encode() + b"\n")
    assert _exit_code(wrapper) == 0


#: A child writing a lot to its standard error, then serving until its input ends.
NOISY_CHILD = (
    "import sys\n"
    "for _ in range(200):\n"
    "    sys.stderr.write('progress ' * 100_000 + '\\n')\n"
    "sys.stderr.flush()\n"
    "sys.stdin.read()\n"
)


def test_the_wrapper_ends_when_its_standard_error_went_away(tmp_path: Path) -> None:
    """The filtered standard error of the child is read to its end even when haechi's own
    can no longer be written."""
    config = write_config(tmp_path)
    argv = haechi_argv("mcp-wrap", "--config", config, "--", sys.executable, "-c", NOISY_CHILD)
    wrapper = subprocess.Popen(
        argv, cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert wrapper.stdin is not None
    assert wrapper.stderr is not None
    wrapper.stderr.close()
    assert _exit_code(wrapper) == 0


def _exit_code(wrapper: subprocess.Popen[bytes]) -> int:
    """Close the wrapper's input and wait for it to end (killed if it does not)."""
    assert wrapper.stdin is not None
    try:
        wrapper.stdin.close()
        return wrapper.wait(timeout=TIMEOUT_S)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait()
