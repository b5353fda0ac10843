# SPDX-License-Identifier: Apache-2.0
"""``haechi mcp-stdio`` and ``haechi mcp-wrap`` as an MCP client starts them: what they
refuse at start and what they warn about.

Standard output carries the protocol, so every refusal and warning must be on standard
error only, and a refusal must come before ``mcp-wrap`` starts its child.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mcp_servers.harness import (
    TIMEOUT_S,
    haechi_argv,
    run_mcp_stdio,
    write_config,
)

CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "echo", "arguments": {"text": "write to jane.doe@example.com"}},
}
LINE = json.dumps(CALL).encode() + b"\n"
TOKENIZING = {"policy": {"actions": {"email": "tokenize"}}}


def start(command: str, config: Path, marker: Path) -> subprocess.CompletedProcess[bytes]:
    """``command`` given one message; ``mcp-wrap``'s child creates ``marker`` if started."""
    child = ["--", sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    extra = child if command == "mcp-wrap" else []
    return subprocess.run(
        haechi_argv(command, "--config", config, *extra),
        input=LINE,
        capture_output=True,
        cwd=config.parent,
        timeout=TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize(("command", "damage"), [("mcp-stdio", "missing"), ("mcp-wrap", "invalid")])
def test_an_unusable_key_file_is_refused_at_start(
    tmp_path: Path, command: str, damage: str
) -> None:
    config = write_config(tmp_path, TOKENIZING)
    key_file = tmp_path / ".haechi" / "dev.keys.json"
    if damage == "missing":
        key_file.unlink()
    else:
        key_file.write_text("not a key file")
    result = start(command, config, tmp_path / "child-started")
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode().startswith(f"haechi: key file {key_file} ")
    assert not (tmp_path / "child-started").exists()


def test_a_policy_that_needs_no_key_runs_without_a_key_file(tmp_path: Path) -> None:
    """Redacting needs no key: without a key file the message is still protected."""
    config = write_config(tmp_path, {"policy": {"actions": {"email": "redact"}}})
    (tmp_path / ".haechi" / "dev.keys.json").unlink()
    result = start("mcp-stdio", config, tmp_path / "unused")
    assert result.returncode == 0, result.stderr
    assert b"[REDACTED:email]" in result.stdout
    assert b"jane.doe@example.com" not in result.stdout


def test_an_audit_log_that_cannot_be_written_is_refused_at_start(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    audit = blocker / "audit.jsonl"
    config = write_config(tmp_path, {"audit": {"path": str(audit)}})
    result = start("mcp-wrap", config, tmp_path / "child-started")
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode() == (
        f"haechi: audit log {audit} cannot be written (audit_dir_not_writable); "
        "every message would be refused\n"
    )
    assert not (tmp_path / "child-started").exists()


def test_warnings_at_start_go_to_standard_error_only(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"mode": "report-only", "policy": {"mode": "report-only"}})
    key_file = tmp_path / ".haechi" / "dev.keys.json"
    key_file.chmod(0o644)
    result = run_mcp_stdio(config, LINE, tmp_path)
    assert result.returncode == 0
    assert [json.loads(line) for line in result.stdout.splitlines()] == [CALL]
    assert result.stderr.decode().splitlines() == [
        "haechi: warning: mode is report-only: findings are audited, messages pass unchanged",
        f"haechi: warning: key file {key_file} is readable by others (0644); expected 0600",
    ]
