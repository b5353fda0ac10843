# SPDX-License-Identifier: Apache-2.0
"""Every command that prints to standard output, started with it closed (``>&-``), exits 1
with ``haechi: standard output is closed`` before doing anything: no file written, no token
purged or revoked, no reveal attempted and audited, no gateway started.

These commands used to do their work and fail only when printing it (``init``,
``token-purge``, ``token-revoke``, ``token-reveal``, ``plugin-keygen``), fail as an internal
error (``config``, ``demo``) or exit 0 having printed nothing (``rules``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import json_output, run_haechi


def _run_without_stdout(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m haechi ARGS`` with descriptor 1 closed, stderr captured."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HAECHI_")}
    return subprocess.run(
        [sys.executable, "-m", "haechi", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: os.close(1),
    )


def _assert_refused(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1
    assert result.stderr == "haechi: standard output is closed\n"


@pytest.mark.parametrize(
    "args",
    [["rules"], ["config"], ["config", "--format", "markdown"], ["demo"]],
    ids=["rules", "config", "config-markdown", "demo"],
)
def test_a_command_printing_text_is_refused(tmp_path: Path, args: list[str]) -> None:
    _assert_refused(_run_without_stdout(*args, cwd=tmp_path))


def test_init_writes_nothing(tmp_path: Path) -> None:
    _assert_refused(_run_without_stdout("init", cwd=tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_plugin_keygen_writes_no_key(tmp_path: Path) -> None:
    _assert_refused(_run_without_stdout("plugin-keygen", "--out-dir", "keys", cwd=tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_the_vault_and_the_token_store_are_left_as_they_were(tmp_path: Path) -> None:
    (tmp_path / "haechi.config.json").write_text(
        '{"mode": "enforce", "policy": {"actions": {"email": "tokenize"}}}'
    )
    json_output(run_haechi("init", cwd=tmp_path))
    protected = json_output(run_haechi("protect", cwd=tmp_path, stdin='{"to": "jane@example.com"}'))
    token = protected["payload"]["to"].removeprefix("[TOKEN:").removesuffix("]")
    bearer = json_output(run_haechi("token-add", "--type", "service", cwd=tmp_path))["id"]
    audit = tmp_path / ".haechi" / "audit.jsonl"
    records = audit.read_text()

    _assert_refused(_run_without_stdout("token-purge", token, cwd=tmp_path))
    _assert_refused(_run_without_stdout("token-reveal", token, "--allow-dev-reveal", cwd=tmp_path))
    _assert_refused(_run_without_stdout("token-revoke", bearer, cwd=tmp_path))

    assert audit.read_text() == records
    exported = json_output(run_haechi("token-export", cwd=tmp_path))["tokens"]
    assert [entry["token"] for entry in exported] == [token]
    listed = json_output(run_haechi("token-list", cwd=tmp_path))["tokens"]
    assert [entry["disabled"] for entry in listed] == [False]
