# SPDX-License-Identifier: Apache-2.0
"""Every command the CLI registers has its own section in docs/cli.md, and no stale ones."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from haechi.cli import app

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def registered_commands() -> set[str]:
    group = get_command(app)
    return set(group.commands)  # type: ignore[attr-defined]


def test_every_command_is_documented() -> None:
    documented = set(re.findall(r"^### haechi (\S+)$", DOCS.read_text(), flags=re.MULTILINE))
    commands = registered_commands()
    assert commands - documented == set(), "document these commands in docs/cli.md"
    assert documented - commands == set(), "docs/cli.md documents commands that do not exist"
