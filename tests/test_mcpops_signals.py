# SPDX-License-Identifier: Apache-2.0
"""Signals sent to ``haechi mcp-wrap`` reach its child, whatever the child does with its
input."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.mcp_servers.harness import TIMEOUT_S, LineClient, haechi_argv, write_config

CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "pid"}}

#: A server that answers one request with its process id, then sleeps without reading:
#: one that does not stop at the end of its input.
SLEEPER = (
    "import json, os, sys, time\n"
    "request = json.loads(sys.stdin.readline())\n"
    "answer = {'jsonrpc': '2.0', 'id': request['id'], 'result': {'pid': os.getpid()}}\n"
    "print(json.dumps(answer), flush=True)\n"
    f"time.sleep({TIMEOUT_S})\n"
)


def test_a_hangup_of_the_wrapper_ends_the_child(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    argv = haechi_argv("mcp-wrap", "--config", config, "--", sys.executable, "-c", SLEEPER)
    client = LineClient(argv, cwd=tmp_path, env={})
    pid = None
    try:
        client.send(CALL)
        pid = client.receive()["result"]["pid"]
        client.proc.send_signal(signal.SIGHUP)
        assert client.proc.wait(timeout=TIMEOUT_S) == 1  # the child was killed by it
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        client.kill()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
