# SPDX-License-Identifier: Apache-2.0
"""``haechi token-add`` and ``token-revoke`` record each change of the gateway's bearer tokens
in the audit log of the configuration, and change nothing when that record cannot be
written. The real command line, the audit log read back and verified."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tests.cli import json_output, run_haechi

#: A profile the scope ``team:eng`` selects: the one scope a record may name.
_CONFIG: dict[str, Any] = {
    "policy": {
        "profiles": {"eng": {"actions": {"email": "redact"}}},
        "profileBinding": {"default": "eng", "byScope": {"team:eng": "eng"}},
    },
}


def _init(workdir: Path, config: dict[str, Any] | None = None) -> None:
    json_output(run_haechi("init", cwd=workdir))
    if config is not None:
        path = workdir / "haechi.config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **config}))


def _audit(workdir: Path) -> list[dict[str, Any]]:
    text = (workdir / ".haechi" / "audit.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def _tokens(workdir: Path) -> list[dict[str, Any]]:
    tokens: list[dict[str, Any]] = json_output(run_haechi("token-list", cwd=workdir))["tokens"]
    return tokens


def test_token_add_and_revoke_each_append_one_record_to_a_valid_chain(tmp_path: Path) -> None:
    _init(tmp_path, _CONFIG)
    added = json_output(
        run_haechi(
            "token-add",
            "--type",
            "service",
            "--scope",
            "team:eng",
            "--scope",
            "jane.doe@example.com",
            "--label",
            "team=Jane Doe",
            cwd=tmp_path,
        )
    )
    revoked = json_output(run_haechi("token-revoke", added["id"], cwd=tmp_path))
    assert revoked["result"] == {"id": added["id"], "revoked": True}

    records = _audit(tmp_path)
    assert [r["decision"] for r in records] == ["auth_token_added", "auth_token_revoked"]
    assert [r["operation"] for r in records] == ["auth:token-add", "auth:token-revoke"]
    for record in records:
        assert record["tokenId"] == added["id"]
        assert record["tokenType"] == "service"
        assert record["identity"] is None
        assert record["reason"] is None
        # The scope the configuration maps is named; the one typed as free text is counted.
        assert (record["scopeNames"], record["scopesNotNamed"]) == (["team:eng"], 1)
        assert (record["labelKeys"], record["labelKeysNotNamed"]) == (["team"], 0)
    text = (tmp_path / ".haechi" / "audit.jsonl").read_text()
    stored_hash = json.loads((tmp_path / ".haechi" / "auth.json").read_text())["tokens"][0]
    for raw in (added["token"], stored_hash["tokenHash"], "jane.doe", "Jane Doe"):
        assert raw not in text
    verified = json_output(run_haechi("audit-verify", cwd=tmp_path))
    assert verified["result"]["valid"] is True
    assert verified["result"]["records"] == 2


def test_revoking_an_unknown_or_revoked_token_writes_no_record(tmp_path: Path) -> None:
    _init(tmp_path)
    added = json_output(run_haechi("token-add", "--type", "user", cwd=tmp_path))
    json_output(run_haechi("token-revoke", added["id"], cwd=tmp_path))
    again = json_output(run_haechi("token-revoke", added["id"], cwd=tmp_path))
    assert again["result"] == {"id": added["id"], "revoked": False}
    unknown = run_haechi("token-revoke", "tok_auth_0000", cwd=tmp_path)
    assert (unknown.returncode, unknown.stderr) == (1, "haechi: unknown token id: tok_auth_0000\n")
    decisions = [r["decision"] for r in _audit(tmp_path)]
    assert decisions == ["auth_token_added", "auth_token_revoked"]


def test_a_record_given_another_id_by_hand_is_revoked_under_a_keyed_hash(
    tmp_path: Path,
) -> None:
    _init(tmp_path)
    json_output(run_haechi("token-add", "--type", "user", cwd=tmp_path))
    store = tmp_path / ".haechi" / "auth.json"
    document = json.loads(store.read_text())
    document["tokens"][0]["id"] = "jane.doe@example.com"
    store.write_text(json.dumps(document))
    json_output(run_haechi("token-revoke", "jane.doe@example.com", cwd=tmp_path))
    revoked = _audit(tmp_path)[-1]
    assert revoked["decision"] == "auth_token_revoked"
    assert re.fullmatch(r"nontoken_[0-9a-f]{16}", revoked["tokenId"])
    assert "jane" not in (tmp_path / ".haechi" / "audit.jsonl").read_text()


def test_token_add_without_its_record_adds_no_token(tmp_path: Path) -> None:
    _init(tmp_path)
    os.mkfifo(tmp_path / ".haechi" / "audit.jsonl", 0o600)  # nothing can be kept there
    result = run_haechi("token-add", "--type", "user", "--label", "team=a", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        "haechi: no token was added: its audit record could not be written ("
    )
    assert _tokens(tmp_path) == []


def test_token_revoke_without_its_record_still_revokes(tmp_path: Path) -> None:
    """A token asked to be revoked does not work again for want of a record."""
    _init(tmp_path)
    added = json_output(run_haechi("token-add", "--type", "user", cwd=tmp_path))
    log = tmp_path / ".haechi" / "audit.jsonl"
    log.rename(tmp_path / "audit.kept.jsonl")
    os.mkfifo(log, 0o600)
    result = run_haechi("token-revoke", added["id"], cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "haechi: the token is revoked, but its audit record could not be written ("
    )
    assert [token["disabled"] for token in _tokens(tmp_path)] == [True]


def test_a_revocation_whose_record_is_written_but_not_anchored_stays(tmp_path: Path) -> None:
    """The record went into the log and only its anchor failed: the revocation was put back,
    and the log said the token was revoked while it worked."""
    _init(tmp_path)
    added = json_output(run_haechi("token-add", "--type", "user", cwd=tmp_path))
    (tmp_path / "anchors").mkdir()  # a directory: no anchor can be appended to it
    config = tmp_path / "haechi.config.json"
    settings = json.loads(config.read_text())
    settings["audit"]["anchor"] = {"mode": "file", "path": "anchors"}
    config.write_text(json.dumps(settings))
    result = run_haechi("token-revoke", added["id"], cwd=tmp_path)
    assert _audit(tmp_path)[-1]["decision"] == "auth_token_revoked"
    assert [token["disabled"] for token in _tokens(tmp_path)] == [True]
    assert result.returncode == 1
    assert "the token is revoked, but" in result.stderr


def test_token_commands_refuse_anchors_on_standard_output(tmp_path: Path) -> None:
    # The anchor line would be printed in front of the JSON holding the token.
    _init(tmp_path, {"audit": {"anchor": {"mode": "stdout"}}})
    for command in (("token-add", "--type", "user"), ("token-revoke", "tok_auth_0000")):
        result = run_haechi(*command, cwd=tmp_path)
        assert result.returncode == 1
        assert 'audit.anchor.mode "stdout" cannot be used with' in result.stderr
    assert _tokens(tmp_path) == []
    assert not (tmp_path / ".haechi" / "audit.jsonl").exists()
