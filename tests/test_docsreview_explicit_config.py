# SPDX-License-Identifier: Apache-2.0
"""A ``--config`` given on the command line must exist, whatever its name: only a command
given none falls back to the built-in defaults when ``haechi.config.json`` is missing.

``--config haechi.config.json`` (or ``./haechi.config.json``) run from the wrong directory
used to start the gateway on the defaults, in ``dry-run``, instead of being refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import json_output, run_haechi


@pytest.mark.parametrize("name", ["haechi.config.json", "./haechi.config.json"])
@pytest.mark.parametrize(
    "command",
    [["status"], ["protect"], ["proxy", "--port", "0"]],
    ids=["status", "protect", "proxy"],
)
def test_a_missing_config_given_by_name_is_refused(
    tmp_path: Path, command: list[str], name: str
) -> None:
    result = run_haechi(*command, "--config", name, cwd=tmp_path, stdin="{}", timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"haechi: config file not found: {Path(name)}\n"
    assert list(tmp_path.iterdir()) == []


def test_without_config_the_defaults_still_apply(tmp_path: Path) -> None:
    status = json_output(run_haechi("status", cwd=tmp_path))
    assert status["protection"]["policyMode"] == "dry-run"


def test_init_creates_the_config_it_is_given(tmp_path: Path) -> None:
    result = json_output(run_haechi("init", "--config", "haechi.config.json", cwd=tmp_path))
    assert result["created"] is True
    assert (tmp_path / "haechi.config.json").is_file()
