# SPDX-License-Identifier: Apache-2.0
"""Helpers of the MCP process tests: a configuration on disk and a raw line client."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from haechi.crypto import init_key_file
from haechi.testing import merge_config

SERVERS = Path(__file__).resolve().parent
TOOL_SERVER = SERVERS / "tool_server.py"
SCRIPTED = SERVERS / "scripted.py"
#: What the SDK's client sends in a session.
SDK_METHODS = ["initialize", "notifications/initialized", "tools/list", "tools/call"]
TIMEOUT_S = 60.0


def write_config(workdir: Path, overrides: Mapping[str, Any] | None = None) -> Path:
    """An enforce-mode configuration whose state lives in ``workdir``; returns its path."""
    state = workdir / ".haechi"
    document = {
        "mode": "enforce",
        "policy": {"mode": "enforce"},
        "keys": {"keyFile": str(state / "dev.keys.json")},
        "audit": {"path": str(state / "audit.jsonl")},
        "tokenVault": {"path": str(state / "token-vault.json")},
        "mcp": {"allowedMethods": SDK_METHODS},
    }
    init_key_file(state / "dev.keys.json")
    path = workdir / "haechi.config.json"
    path.write_text(json.dumps(merge_config(document, overrides or {})))
    return path


def haechi_argv(*args: str | os.PathLike[str]) -> list[str]:
    """``python -m haechi <args>`` with this interpreter."""
    return [sys.executable, "-m", "haechi", *map(str, args)]


def run_mcp_stdio(config: Path, data: bytes, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """``haechi mcp-stdio --config config`` given ``data`` on stdin, run to its end."""
    return subprocess.run(
        haechi_argv("mcp-stdio", "--config", config),
        input=data,
        capture_output=True,
        cwd=cwd,
        timeout=TIMEOUT_S,
        check=False,
    )


def recorded(path: Path) -> str:
    """What a test server recorded (empty when it recorded nothing)."""
    return path.read_text(encoding="utf-8") if path.exists() else ""


class LineClient:
    """Drives a process over newline-delimited JSON on its stdin/stdout.

    Output lines are collected by a thread, so the process never stalls on a full pipe
    unless a test deliberately stops reading (``read=False``).
    """

    def __init__(
        self, argv: list[str], *, cwd: Path, env: Mapping[str, str], read: bool = True
    ) -> None:
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._stderr: list[bytes] = []
        self._readers = [threading.Thread(target=self._drain_stderr, daemon=True)]
        if read:
            self.start_reading()
        self._readers[0].start()

    def start_reading(self) -> None:
        reader = threading.Thread(target=self._read, daemon=True)
        self._readers.append(reader)
        reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def send(self, message: Mapping[str, Any] | bytes) -> None:
        """Write one message (or raw bytes, a newline added) to the process."""
        data = message if isinstance(message, bytes) else json.dumps(message).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """The next output message."""
        message: dict[str, Any] = json.loads(self._lines.get(timeout=timeout))
        return message

    def receive_until(
        self, done: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT_S
    ) -> list[dict[str, Any]]:
        """Output messages up to and including the first one ``done`` accepts."""
        messages: list[dict[str, Any]] = []
        while not messages or not done(messages[-1]):
            messages.append(self.receive(timeout))
        return messages

    def close(self, timeout: float = TIMEOUT_S) -> int:
        """End the input and wait for the process; returns its exit code."""
        assert self.proc.stdin is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=timeout)
        return code

    @property
    def stderr(self) -> str:
        """Standard error so far (complete after :meth:`close`)."""
        return b"".join(self._stderr).decode("utf-8", errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
