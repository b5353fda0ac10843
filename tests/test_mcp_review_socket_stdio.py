# SPDX-License-Identifier: Apache-2.0
"""``haechi mcp-wrap`` whose standard input and output are one socket.

``inetd``, systemd socket activation (``StandardInput=socket``, ``StandardOutput=socket``) and
``socat EXEC`` hand a program one connected socket as both standard input and standard
output. The client's messages then arrive on the very socket the wrapper writes its answers
to, and the wrapper must keep answering, also after the client ended its half.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.mcp_servers.harness import SCRIPTED, TIMEOUT_S, haechi_argv, write_config
from tests.test_mcp_wrap import tool_call


def test_the_wrapper_answers_over_one_socket_for_input_and_output(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    argv = haechi_argv("mcp-wrap", "--config", config, "--", sys.executable, SCRIPTED)
    env = {**os.environ, "HAECHI_TEST_RECORD": str(tmp_path / "received.jsonl")}
    ours, theirs = socket.socketpair()
    with ours:
        proc = subprocess.Popen(
            argv, stdin=theirs, stdout=theirs, stderr=subprocess.PIPE, cwd=tmp_path, env=env
        )
        theirs.close()
        try:
            for message_id in (1, 2, 3):
                call = tool_call(message_id, "echo", {"text": f"call {message_id}"})
                ours.sendall(json.dumps(call).encode() + b"\n")
            ours.shutdown(socket.SHUT_WR)
            ours.settimeout(TIMEOUT_S)
            received = b""
            while chunk := ours.recv(65536):
                received += chunk
            _out, err = proc.communicate(timeout=TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    answers = [json.loads(line) for line in received.splitlines()]
    texts = [(answer["id"], answer["result"]["content"][0]["text"]) for answer in answers]
    assert texts == [(1, "call 1"), (2, "call 2"), (3, "call 3")]
