# SPDX-License-Identifier: Apache-2.0
"""``haechi token-reveal``, ``token-purge`` and ``token-export`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.vault import FileTokenStore, TokenVault
from tests.cli import json_output, run_haechi

EMAIL = "minji.kim@example.com"
PHONE = "010-1234-5678"
SECRET = "sk-ant-api03-" + "Z" * 40


def _tokenize(root: Path, items: list[tuple[str, str]], retention_days: float = 30) -> list[str]:
    vault = TokenVault(
        FileTokenStore(root / ".haechi" / "token-vault.json"),
        LocalCryptoProvider(root / ".haechi" / "dev.keys.json"),
        retention_days=retention_days,
    )

    async def issue() -> list[str]:
        return [
            (
                await vault.tokenize(
                    value, kind, context={"cli": True}, metadata={"path": "$.x", "ruleId": kind}
                )
            ).token
            for value, kind in items
        ]

    return anyio.run(issue)


def _audit(root: Path) -> list[dict[str, Any]]:
    path = root / ".haechi" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    init_key_file(tmp_path / ".haechi" / "dev.keys.json")
    return tmp_path


def test_reveal_is_denied_by_default_and_allowed_with_the_dev_flag(project: Path) -> None:
    (token,) = _tokenize(project, [(EMAIL, "email")])
    denied = run_haechi("token-reveal", token, cwd=project)
    assert denied.returncode == 1
    assert denied.stdout == ""
    assert denied.stderr == "haechi: Token reveal is disabled by tokenVault.revealPolicy\n"
    allowed = json_output(run_haechi("token-reveal", token, "--allow-dev-reveal", cwd=project))
    assert allowed == {"ok": True, "token": token, "type": "email", "plaintext": EMAIL}
    unknown = run_haechi("token-reveal", SECRET, "--allow-dev-reveal", cwd=project)
    assert unknown.returncode == 1
    assert unknown.stderr == "haechi: Unknown token\n"
    events = _audit(project)
    assert [e["decision"] for e in events] == ["reveal_denied", "reveal_allowed", "reveal_failed"]
    assert events[2]["token"].startswith("nontoken_")
    # The one-off override is told apart from a configured local-dev policy.
    assert [(e["revealPolicy"], e["revealOverride"]) for e in events] == [
        ("disabled", None),
        ("local-dev", True),
        ("local-dev", True),
    ]
    raw = (project / ".haechi" / "audit.jsonl").read_text()
    assert SECRET not in raw
    assert EMAIL not in raw
    verified = json_output(run_haechi("audit-verify", cwd=project))
    assert verified["result"]["valid"]
    assert verified["result"]["records"] == 3


def test_reveal_with_a_config_file(project: Path) -> None:
    (token,) = _tokenize(project, [(PHONE, "phone")])
    config = project / "custom.json"
    config.write_text(json.dumps({"tokenVault": {"revealPolicy": "local-dev"}}))
    revealed = json_output(run_haechi("token-reveal", token, "--config", str(config), cwd=project))
    assert revealed["plaintext"] == PHONE
    flagged = ["token-reveal", token, "--allow-dev-reveal", "--config", str(config)]
    assert json_output(run_haechi(*flagged, cwd=project))["plaintext"] == PHONE
    # The configured policy already allows it: the flag overrides nothing.
    assert [(e["revealPolicy"], e["revealOverride"]) for e in _audit(project)] == [
        ("local-dev", None),
        ("local-dev", None),
    ]
    expired = _tokenize(project, [(EMAIL, "email")], retention_days=-1)[0]
    failed = run_haechi("token-reveal", expired, "--config", str(config), cwd=project)
    assert (failed.returncode, failed.stderr) == (1, "haechi: Token expired\n")


def test_export_lists_metadata_only(project: Path) -> None:
    email, phone = _tokenize(project, [(EMAIL, "email"), (PHONE, "phone")])
    exported = json_output(run_haechi("token-export", cwd=project))
    assert exported["ok"] is True
    assert exported["command"] == "token-export"
    assert {item["token"] for item in exported["tokens"]} == {email, phone}
    for item in exported["tokens"]:
        assert set(item) == {"token", "type", "createdAt", "expiresAt", "metadata"}
        assert item["metadata"] == {"path": "$.x", "ruleId": item["type"]}
    only = json_output(run_haechi("token-export", "--type", "phone", cwd=project))
    assert [item["token"] for item in only["tokens"]] == [phone]
    assert EMAIL not in json.dumps(exported)
    assert PHONE not in json.dumps(exported)


def test_purge_one_and_expired(project: Path) -> None:
    keep, drop = _tokenize(project, [(EMAIL, "email"), (PHONE, "phone")])
    _tokenize(project, [("old@example.com", "email"), ("older@example.com", "email")], -1)
    purged = json_output(run_haechi("token-purge", drop, cwd=project))
    assert purged["command"] == "token-purge"
    assert purged["result"]["token"] == drop
    assert purged["result"]["purged"] is True
    assert "purgedAt" in purged["result"]
    expired = json_output(run_haechi("token-purge", "--expired", cwd=project))
    assert expired["result"]["purged"] == 2
    remaining = json_output(run_haechi("token-export", cwd=project))
    assert [item["token"] for item in remaining["tokens"]] == [keep]
    assert [e["decision"] for e in _audit(project)] == ["purge", "purge_expired"]


@pytest.mark.parametrize("args", [[], ["tok_email_0123456789abcdef", "--expired"]])
def test_purge_needs_exactly_one_target(project: Path, args: list[str]) -> None:
    result = run_haechi("token-purge", *args, cwd=project)
    assert result.returncode == 1
    assert result.stderr.startswith("haechi: token-purge needs a TOKEN or --expired")


def test_a_vault_file_giving_a_key_twice_is_refused(project: Path) -> None:
    """An ``expiresAt`` in the past written by hand above a record's own would be read as
    the one below it: the token meant to be ended would still be revealed. The file is
    refused as a corrupt vault, left as it is, and the message names no key."""
    token = _tokenize(project, [(EMAIL, "email")])[0]
    vault_file = project / ".haechi" / "token-vault.json"
    edited = vault_file.read_text().replace(
        '"type": "email",', '"type": "email",\n      "expiresAt": "2000-01-01T00:00:00.000Z",', 1
    )
    vault_file.write_text(edited)
    refusals = [
        (("token-reveal", token, "--allow-dev-reveal"), "Token reveal failed"),
        (("token-purge", "--expired"), "token vault file gives a key twice in one object"),
    ]
    for command, message in refusals:
        refused = run_haechi(*command, cwd=project)
        assert (refused.returncode, refused.stderr) == (1, f"haechi: {message}\n"), refused.stdout
        assert EMAIL not in refused.stdout
    assert vault_file.read_text() == edited
    ready = anyio.run(FileTokenStore(vault_file).ready)
    assert ready.reason == "token_vault_file_unreadable"
