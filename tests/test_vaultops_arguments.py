# SPDX-License-Identifier: Apache-2.0
"""What ``haechi token-purge`` and ``haechi token-reveal`` print about their argument and the
key file, run as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from haechi.crypto import init_key_file
from haechi.vault import TOKEN_PATTERN
from tests.cli import json_output, run_haechi

#: Token-shaped, but its type segment is a card number: no minted id holds such a run.
CARD_TOKEN = "tok_4111111111111111_0a1b2c3d4e5f6a7b"
EMAIL = "minji.kim@example.com"


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


def _tokenizing_project(root: Path) -> Path:
    """``haechi init`` in ``root`` and a configuration that tokenizes e-mail addresses and
    lets ``token-reveal`` reveal them."""
    assert run_haechi("init", cwd=root).returncode == 0
    config_path = root / "haechi.config.json"
    config = json.loads(config_path.read_text())
    config["mode"] = "enforce"
    config["policy"]["actions"]["email"] = "tokenize"
    config["tokenVault"]["revealPolicy"] = "local-dev"
    config_path.write_text(json.dumps(config))
    return root


def _tokenize(root: Path, value: str) -> str:
    """Tokenize ``value`` with ``haechi protect`` and return its token id."""
    document = json.dumps({"messages": [{"role": "user", "content": f"mail {value} now"}]})
    protected = json_output(run_haechi("protect", cwd=root, stdin=document))
    content = protected["payload"]["messages"][0]["content"]
    match = TOKEN_PATTERN.search(content)
    assert match is not None, content
    return match.group()


def test_reveal_names_a_missing_or_invalid_key_file(tmp_path: Path) -> None:
    project = _tokenizing_project(tmp_path)
    token = _tokenize(project, EMAIL)
    key_file = project / ".haechi" / "dev.keys.json"
    key_file.rename(project / "keys.moved")
    missing = run_haechi("token-reveal", token, cwd=project)
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr == "haechi: key file .haechi/dev.keys.json not found; run 'haechi init'\n"
    key_file.write_text("not a key file")
    invalid = run_haechi("token-reveal", token, cwd=project)
    assert invalid.returncode == 1
    assert invalid.stderr.startswith("haechi: key file .haechi/dev.keys.json ")
    # Both attempts are still audited, as reveals that failed, without the value.
    audited = (project / ".haechi" / "audit.jsonl").read_text()
    events = [json.loads(line) for line in audited.splitlines()]
    reveals = [(e["decision"], e["reason"]) for e in events if e["protocol"] == "token-vault"]
    assert reveals == [("reveal_failed", "decrypt_failed")] * 2
    assert EMAIL not in audited
