# SPDX-License-Identifier: Apache-2.0
"""Commands that audit and print one JSON document refuse ``audit.anchor.mode: "stdout"``.

Each audit event would print its anchor line on standard output in front of the document,
so what a caller parses was no longer one JSON document. Real ``haechi`` subprocesses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import json_output, run_haechi


@pytest.fixture
def anchored(tmp_path: Path) -> Path:
    (tmp_path / "haechi.config.json").write_text(
        json.dumps({"audit": {"anchor": {"mode": "stdout"}}})
    )
    json_output(run_haechi("init", cwd=tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["protect"], "protect"),
        (["token-purge", "--expired"], "token-purge"),
        (["token-reveal", "tok_email_0123456789abcdef", "--allow-dev-reveal"], "token-reveal"),
    ],
)
def test_an_auditing_json_command_refuses_anchors_on_stdout(
    anchored: Path, args: list[str], command: str
) -> None:
    result = run_haechi(*args, stdin='{"to": "jane.doe@example.com"}', cwd=anchored)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        f'haechi: audit.anchor.mode "stdout" cannot be used with {command}'
    )
    assert not (anchored / ".haechi" / "audit.jsonl").exists()


def test_commands_that_audit_nothing_still_run(anchored: Path) -> None:
    assert json_output(run_haechi("token-export", cwd=anchored))["tokens"] == []
    assert json_output(run_haechi("status", cwd=anchored))["audit"]["anchor"]["mode"] == "stdout"
