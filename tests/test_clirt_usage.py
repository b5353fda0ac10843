# SPDX-License-Identifier: Apache-2.0
"""Usage errors and help, as a user meets them: a real ``haechi`` subprocess.

A value pasted without quotes arrives as several arguments; the words left over must not be
printed back. Help is reached the ways the reference command line offers, with exit 0.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli import json_output, run_haechi

GATEWAY_TOKEN = "hae_" + "Q" * 43
SSN = "078-05-1120"
CARD = "4111111111111111"


def _printed(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "secret"),
    [
        (["token-revoke", "Bearer", GATEWAY_TOKEN], GATEWAY_TOKEN),
        (["token-purge", "Jane", SSN], SSN),
        (["token-reveal", "card", CARD], CARD),
        (["protect", "-", CARD], CARD),
        (["token-add", "--type", "user", GATEWAY_TOKEN], GATEWAY_TOKEN),
    ],
)
def test_extra_arguments_are_refused_without_being_printed(
    tmp_path: Path, args: list[str], secret: str
) -> None:
    json_output(run_haechi("init", cwd=tmp_path))
    result = run_haechi(*args, cwd=tmp_path, stdin="{}")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("haechi: unexpected extra arguments")
    assert len(result.stderr.splitlines()) == 1
    assert secret not in _printed(result)


@pytest.mark.parametrize("args", [[], ["help"], ["-h"], ["--help"]])
def test_help_is_printed_with_exit_0(tmp_path: Path, args: list[str]) -> None:
    result = run_haechi(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    assert "audit-verify" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("args", [["help", "proxy"], ["proxy", "-h"], ["proxy", "--help"]])
def test_help_of_one_command(tmp_path: Path, args: list[str]) -> None:
    result = run_haechi(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "haechi proxy" in result.stdout
    assert "--allow-remote-bind" in result.stdout


@pytest.mark.parametrize("command", ["proxy", "demo", "mcp-wrap", "token-add"])
def test_help_is_printed_where_the_output_is_ascii_only(tmp_path: Path, command: str) -> None:
    # A C locale or PYTHONIOENCODING=ascii: no box-drawing characters, no ellipsis.
    result = run_haechi(command, "--help", cwd=tmp_path, env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    assert f"Usage: haechi {command}" in result.stdout
    assert result.stdout.isascii()


@pytest.mark.parametrize("args", [["frobnicate"], ["help", "frobnicate"]])
def test_an_unknown_command_points_to_help(tmp_path: Path, args: list[str]) -> None:
    result = run_haechi(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "haechi: Unknown command: frobnicate. Run 'haechi help' for usage.\n"


def test_a_stray_argument_of_audit_verify_is_not_printed(tmp_path: Path) -> None:
    # audit-verify takes one positional, the PATH of a bare --anchor; without --anchor it is
    # refused like any extra argument, without being quoted.
    result = run_haechi("audit-verify", GATEWAY_TOKEN, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("haechi: unexpected argument")
    assert "--anchor PATH" in result.stderr
    assert GATEWAY_TOKEN not in _printed(result)


def test_rules_refuses_a_configuration_that_does_not_exist(tmp_path: Path) -> None:
    # A mistyped --config used to list the catalogue without the custom rules, silently.
    result = run_haechi("rules", "--json", "--config", "haechi.confg.json", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "haechi: config file not found: haechi.confg.json\n"
    assert json_output(run_haechi("rules", "--json", cwd=tmp_path))["count"] > 0
