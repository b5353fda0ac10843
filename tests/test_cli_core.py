# SPDX-License-Identifier: Apache-2.0
"""``haechi init``, ``status`` and ``config`` as a user runs them: real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from haechi.config import config_reference
from haechi.crypto import LocalCryptoProvider
from tests.cli import json_output, run_haechi


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_init_then_status_in_an_empty_directory(tmp_path: Path) -> None:
    first = json_output(run_haechi("init", cwd=tmp_path))
    assert first["created"]
    assert first["keyCreated"]
    assert not first["rotated"]
    key_file = tmp_path / ".haechi" / "dev.keys.json"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / ".haechi").is_dir()
    status = json_output(run_haechi("status", cwd=tmp_path))
    assert status["protection"]["policyMode"] == "dry-run"
    assert status["keys"]["exists"]
    assert status["keys"]["permissions"] == "0600"
    assert status["keys"]["nonceBudget"]["limit"] == 2**32
    key_material = json.loads(key_file.read_text())["keys"][0]["k"]
    assert key_material not in json.dumps(status)


def test_init_twice_changes_nothing(tmp_path: Path) -> None:
    json_output(run_haechi("init", cwd=tmp_path))
    before = snapshot(tmp_path)
    second = json_output(run_haechi("init", cwd=tmp_path))
    assert not second["created"]
    assert not second["keyCreated"]
    assert snapshot(tmp_path) == before


def test_init_force_rotates_and_old_envelopes_still_decrypt(tmp_path: Path) -> None:
    first = json_output(run_haechi("init", cwd=tmp_path))
    key_file = tmp_path / ".haechi" / "dev.keys.json"
    aad = {"purpose": "test", "path": "key_abc"}
    envelope = LocalCryptoProvider(key_file).encrypt("minji.kim@example.com", aad)
    rotated = json_output(run_haechi("init", "--force", cwd=tmp_path))
    assert rotated["rotated"]
    assert rotated["activeKid"] != first["activeKid"]
    keys = json.loads(key_file.read_text())["keys"]
    assert {k["status"] for k in keys} == {"active", "retired"}
    fresh = LocalCryptoProvider(key_file)
    assert fresh.decrypt(envelope, aad) == "minji.kim@example.com"
    assert fresh.encrypt("x", aad)["kid"] == rotated["activeKid"]


async def _authenticates(tmp_path: Path, token: str) -> bool:
    from haechi.auth import BearerAuthProvider

    key_file = tmp_path / ".haechi" / "dev.keys.json"
    auth = BearerAuthProvider(tmp_path / ".haechi" / "auth.json", LocalCryptoProvider(key_file))
    return await auth.authenticate({"authorization": f"Bearer {token}"}) is not None


@pytest.mark.anyio
async def test_gateway_tokens_survive_a_key_rotation(tmp_path: Path) -> None:
    json_output(run_haechi("init", cwd=tmp_path))
    before = json_output(run_haechi("token-add", "--type", "user", cwd=tmp_path))["token"]
    json_output(run_haechi("init", "--force", cwd=tmp_path))
    after = json_output(run_haechi("token-add", "--type", "user", cwd=tmp_path))["token"]
    assert await _authenticates(tmp_path, before)
    assert await _authenticates(tmp_path, after)
    assert not await _authenticates(tmp_path, before[:-1] + ("A" if before[-1] != "A" else "B"))
    json_output(run_haechi("init", "--force", cwd=tmp_path))  # a second rotation
    assert await _authenticates(tmp_path, before)


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ({"proxy": {"bogus": True}}, "proxy.bogus: unknown key"),
        ({"limits": {"maxRequestBytes": "big"}}, "limits.maxRequestBytes"),
        ({"configVersion": 2}, "configVersion: unsupported configVersion 2"),
    ],
)
def test_bad_config_exits_1_naming_the_key(
    tmp_path: Path, document: dict[str, Any], needle: str
) -> None:
    (tmp_path / "haechi.config.json").write_text(json.dumps(document))
    result = run_haechi("status", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("haechi: ")
    assert needle in lines[0]


def test_env_mode_shows_in_status(tmp_path: Path) -> None:
    json_output(run_haechi("init", cwd=tmp_path))
    status = json_output(run_haechi("status", env={"HAECHI_MODE": "enforce"}, cwd=tmp_path))
    assert status["protection"]["policyMode"] == "enforce"
    assert status["protection"]["enforced"] is True
    bad = run_haechi("status", env={"HAECHI_MODE": "loud"}, cwd=tmp_path)
    assert bad.returncode == 1
    assert "HAECHI_MODE" in bad.stderr


def test_status_never_prints_tls_key_material(tmp_path: Path) -> None:
    key_pem = (
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAA\n"
        "-----END PRIVATE KEY-----\n"
    )
    (tmp_path / "key.pem").write_text(key_pem)
    (tmp_path / "cert.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"
    )
    config = {"proxy": {"tls": {"keyFile": "key.pem", "certFile": "cert.pem"}}}
    (tmp_path / "haechi.config.json").write_text(json.dumps(config))
    status = json_output(run_haechi("status", cwd=tmp_path))
    assert status["proxy"]["tls"]["keyFile"] == "key.pem"
    assert "PRIVATE KEY" not in json.dumps(status)
    assert "MC4CAQAw" not in json.dumps(status)


def test_status_reports_a_broken_audit_chain(tmp_path: Path) -> None:
    json_output(run_haechi("init", cwd=tmp_path))
    audit = tmp_path / ".haechi" / "audit.jsonl"
    audit.write_text('{"no": "integrity"}\n')
    status = json_output(run_haechi("status", cwd=tmp_path))
    assert status["audit"]["chain"]["valid"] is False
    assert any("audit chain is broken" in w for w in status["warnings"])


def test_config_prints_every_key(tmp_path: Path) -> None:
    text = run_haechi("config", cwd=tmp_path)
    assert text.returncode == 0
    for key in config_reference():
        assert key.key in text.stdout
    document = json_output(run_haechi("config", "--format", "json", cwd=tmp_path))
    assert {entry["key"] for entry in document} == {k.key for k in config_reference()}


def test_unknown_command_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run_haechi("frobnicate", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("haechi: ")
