# SPDX-License-Identifier: Apache-2.0
"""Commands started with standard input or output closed say so, in one line.

A shell's ``<&-`` or ``>&-`` (or a supervisor that starts haechi without them) leaves
Python's stream ``None``; reading or printing through it used to fail as an internal error,
and ``protect`` audited a result it could not print. Real ``haechi`` subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import json_output, run_haechi


def _run_closed(descriptor: int, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m haechi ARGS`` with ``descriptor`` (0 or 1) closed, stderr captured."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HAECHI_")}
    return subprocess.run(
        [sys.executable, "-m", "haechi", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL if descriptor != 0 else None,
        stdout=subprocess.DEVNULL if descriptor != 1 else None,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: os.close(descriptor),
    )


@pytest.mark.parametrize("command", ["protect", "scan"])
def test_reading_a_closed_standard_input_is_refused(tmp_path: Path, command: str) -> None:
    result = _run_closed(0, command, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "haechi: standard input is closed\n"
    assert not (tmp_path / ".haechi" / "audit.jsonl").exists()


@pytest.mark.parametrize("args", [["status"], ["scan", "input.jsonl"], ["report"]])
def test_printing_to_a_closed_standard_output_is_refused(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "input.jsonl").write_text('{"to": "jane.doe@example.com"}\n')
    result = _run_closed(1, *args, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "haechi: standard output is closed\n"


def test_protect_with_a_closed_standard_output_audits_nothing(tmp_path: Path) -> None:
    json_output(run_haechi("init", cwd=tmp_path))
    (tmp_path / "input.json").write_text(json.dumps({"to": "jane.doe@example.com"}))
    result = _run_closed(1, "protect", "input.json", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "haechi: standard output is closed\n"
    assert not (tmp_path / ".haechi" / "audit.jsonl").exists()


@pytest.mark.parametrize("descriptor", [0, 1])
@pytest.mark.parametrize("args", [["mcp-stdio"], ["mcp-wrap", "--", sys.executable, "-c", ""]])
def test_the_mcp_commands_refuse_a_closed_channel(
    tmp_path: Path, descriptor: int, args: list[str]
) -> None:
    result = _run_closed(descriptor, *args, cwd=tmp_path)
    assert result.returncode == 1
    kind = "input" if descriptor == 0 else "output"
    assert result.stderr == f"haechi: standard {kind} is closed\n"


def test_token_add_with_a_closed_standard_output_stores_no_token(tmp_path: Path) -> None:
    # The token is shown once: one that cannot be shown must not be stored, valid, either.
    json_output(run_haechi("init", cwd=tmp_path))
    result = _run_closed(1, "token-add", "--type", "service", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "haechi: standard output is closed\n"
    assert json_output(run_haechi("token-list", cwd=tmp_path))["tokens"] == []


def test_token_add_that_cannot_print_its_token_disables_it(tmp_path: Path) -> None:
    # Standard output is a pipe whose reader is gone (`haechi token-add ... | false`).
    json_output(run_haechi("init", cwd=tmp_path))
    env = {key: value for key, value in os.environ.items() if not key.startswith("HAECHI_")}
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "haechi", "token-add", "--type", "service"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode != 0
    tokens = json_output(run_haechi("token-list", cwd=tmp_path))["tokens"]
    assert [token["disabled"] for token in tokens] == [True]
    audit = (tmp_path / ".haechi" / "audit.jsonl").read_text().splitlines()
    records = [(r["decision"], r["reason"]) for r in map(json.loads, audit)]
    assert records == [("auth_token_added", None), ("auth_token_revoked", "token_not_shown")]
