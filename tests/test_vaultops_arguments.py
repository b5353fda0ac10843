# SPDX-License-Identifier: Apache-2.0
"""What ``haechi token-purge`` and ``haechi token-reveal`` print about their argument and the
key file, run as an operator runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from haechi.crypto import init_key_file
from tests.cli import json_output, run_haechi

#: Token-shaped, but its type segment is a card number: no minted id holds such a run.
CARD_TOKEN = "tok_4111111111111111_0a1b2c3d4e5f6a7b"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    init_key_file(tmp_path / ".haechi" / "dev.keys.json")
    return tmp_path


def test_purge_prints_a_token_shaped_number_no_more_than_it_audits(project: Path) -> None:
    result = run_haechi("token-purge", CARD_TOKEN, cwd=project)
    assert json_output(result)["result"]["token"] == "[REDACTED:non-token]"
    assert "4111111111111111" not in result.stdout + result.stderr
    audited = (project / ".haechi" / "audit.jsonl").read_text()
    assert "4111111111111111" not in audited
