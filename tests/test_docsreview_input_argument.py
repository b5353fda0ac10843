# SPDX-License-Identifier: Apache-2.0
"""``protect`` and ``scan`` take a file name; the data given in its place (a JSON document,
a credential) is refused without being printed back."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import run_haechi

SECRET = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"


@pytest.mark.parametrize("command", ["protect", "scan"])
@pytest.mark.parametrize(
    "argument", [f'{{"password": "{SECRET}"}}', SECRET, "."], ids=["document", "secret", "dir"]
)
def test_an_input_that_cannot_be_opened_is_not_quoted(
    tmp_path: Path, command: str, argument: str
) -> None:
    result = run_haechi(command, argument, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("haechi: the input file cannot be opened: ")
    assert result.stderr.count("\n") == 1
    assert SECRET not in result.stderr
    assert not (tmp_path / ".haechi" / "audit.jsonl").exists()
