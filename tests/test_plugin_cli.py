# SPDX-License-Identifier: Apache-2.0
"""``haechi plugin-keygen/-sign/-verify/-validate`` run as real subprocesses."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from haechi.plugins.signing import entry_sha256, load_public_key, verify_signature
from tests.cli import plugin_sign_args, run_haechi
from tests.plugins.auth.kit import (
    FIXTURES,
    REFUSAL_CASES,
    UNKNOWN_ALGORITHM_PRIVATE_PEM,
    RefusalCase,
    plugin_config_document,
)


def ok_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    assert document["ok"] is True
    return document


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """keygen + sign through the CLI, once per module (the tests below only read the files);
    returns the directory and both JSON outputs."""
    tmp_path = tmp_path_factory.mktemp("signed")
    (tmp_path / "auth.py").write_bytes((FIXTURES / "good_auth.py").read_bytes())
    keygen = ok_json(
        run_haechi("plugin-keygen", "--key-id", "acme", "--out-dir", "keys", cwd=tmp_path)
    )
    sign = ok_json(
        run_haechi(
            *plugin_sign_args("keys/acme.key", '{"readsCredentials": true}', "--not-before", "-5"),
            cwd=tmp_path,
        )
    )
    return {"dir": tmp_path, "keygen": keygen, "sign": sign}


def test_keygen_writes_a_private_key_0600_and_never_prints_it(signed: dict[str, Any]) -> None:
    keygen, directory = signed["keygen"], signed["dir"]
    private, public = directory / keygen["privateKeyPath"], directory / keygen["publicKeyPath"]
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert keygen["publicKeyPem"] == public.read_text()
    assert "PRIVATE" not in json.dumps(keygen)
    load_public_key(keygen["publicKeyPem"])


def test_keygen_refuses_to_overwrite_a_signing_key(signed: dict[str, Any]) -> None:
    result = run_haechi("plugin-keygen", "--key-id", "acme", "--out-dir", "keys", cwd=signed["dir"])
    assert result.returncode == 1
    assert "already exists" in result.stderr


def test_sign_binds_the_exact_entry_bytes(signed: dict[str, Any]) -> None:
    directory, sign = signed["dir"], signed["sign"]
    envelope = json.loads((directory / sign["outPath"]).read_text())
    payload = envelope["payload"]
    assert sign["outPath"] == "acme-auth.signed.json"
    assert payload["entrySha256"] == entry_sha256((directory / "auth.py").read_bytes())
    assert payload["entrySha256"] == sign["entrySha256"]
    assert payload["notBefore"] == -5
    assert payload["notAfter"] is None
    assert envelope["alg"] == "ed25519"
    assert envelope["entrypoint"] == "auth.py"
    anchor = load_public_key((directory / "keys" / "acme.pub").read_text())
    assert verify_signature(payload, envelope["signature"], anchor)


def test_sign_requires_reads_credentials_for_an_auth_provider(signed: dict[str, Any]) -> None:
    result = run_haechi(
        "plugin-sign",
        "auth.py",
        "--key",
        "keys/acme.key",
        "--signer-key-id",
        "acme",
        "--plugin-id",
        "x",
        "--kind",
        "authProvider",
        "--plugin-version",
        "1",
        "--core-range",
        ">=0.0.0 <1.0.0",
        cwd=signed["dir"],
    )
    assert result.returncode == 1
    assert "readsCredentials" in result.stderr


def test_sign_refuses_a_key_of_an_unknown_algorithm(signed: dict[str, Any]) -> None:
    directory = signed["dir"]
    (directory / "keys" / "odd.key").write_text(UNKNOWN_ALGORITHM_PRIVATE_PEM)
    capabilities = '{"readsCredentials": true}'
    result = run_haechi(*plugin_sign_args("keys/odd.key", capabilities), cwd=directory)
    assert result.returncode == 1
    assert result.stderr.startswith("haechi: --key keys/odd.key: ")
    assert "Traceback" not in result.stderr


def test_sign_without_required_flags_fails(signed: dict[str, Any]) -> None:
    result = run_haechi("plugin-sign", "auth.py", "--key", "keys/acme.key", cwd=signed["dir"])
    assert result.returncode == 1
    assert result.stderr.startswith("haechi: Missing option '--signer-key-id'")


def test_verify_accepts_a_good_envelope(signed: dict[str, Any]) -> None:
    document = ok_json(
        run_haechi(
            "plugin-verify",
            "acme-auth.signed.json",
            "--entry",
            "auth.py",
            "--anchor",
            "keys/acme.pub",
            "--allow-capability",
            "readsCredentials",
            "--core-version",
            "1.0.0",
            "--pin",
            signed["sign"]["entrySha256"],
            cwd=signed["dir"],
        )
    )
    assert document["command"] == "plugin-verify"
    assert document["valid"] is True
    assert document["pluginId"] == "acme-auth"
    assert document["signerKeyId"] == "acme"
    assert document["entrySha256"] == signed["sign"]["entrySha256"]


def test_verify_needs_the_reads_credentials_allowlist(signed: dict[str, Any]) -> None:
    result = run_haechi(
        "plugin-verify",
        "acme-auth.signed.json",
        "--entry",
        "auth.py",
        "--anchor",
        "keys/acme.pub",
        cwd=signed["dir"],
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("haechi: plugin-verify refused: capability-not-allowlisted (")


def test_verify_with_a_wrong_anchor_key_id_is_unknown_signer(signed: dict[str, Any]) -> None:
    result = run_haechi(
        "plugin-verify",
        "acme-auth.signed.json",
        "--entry",
        "auth.py",
        "--anchor",
        "keys/acme.pub",
        "--anchor-key-id",
        "other",
        "--allow-capability",
        "readsCredentials",
        cwd=signed["dir"],
    )
    assert result.returncode == 1
    assert "refused: unknown-signer (" in result.stderr


def test_verify_needs_exactly_one_anchor_source(signed: dict[str, Any]) -> None:
    directory = signed["dir"]
    result = run_haechi(
        "plugin-verify", "acme-auth.signed.json", "--entry", "auth.py", cwd=directory
    )
    assert result.returncode == 1
    assert "exactly one of --anchor or --config" in result.stderr


@pytest.mark.parametrize(
    "case", REFUSAL_CASES, ids=[f"{i}-{c.reason}" for i, c in enumerate(REFUSAL_CASES)]
)
def test_verify_refuses_each_crafted_envelope(tmp_path: Path, case: RefusalCase) -> None:
    plugin = case.build(tmp_path)
    config = tmp_path / "haechi.config.json"
    config.write_text(json.dumps(plugin_config_document(plugin, **case.settings)))
    result = run_haechi(
        "plugin-verify",
        plugin.envelope_path,
        "--entry",
        plugin.entry_path,
        "--config",
        config,
        *case.cli_flags,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"haechi: plugin-verify refused: {case.reason} (")
    assert '"valid"' not in result.stderr


def test_verify_with_config_accepts_what_the_runtime_would(tmp_path: Path) -> None:
    plugin = REFUSAL_CASES[3].build(tmp_path)  # a clean envelope; only its settings revoke
    config = tmp_path / "haechi.config.json"
    config.write_text(json.dumps(plugin_config_document(plugin)))
    document = ok_json(
        run_haechi(
            "plugin-verify",
            plugin.envelope_path,
            "--entry",
            plugin.entry_path,
            "--config",
            config,
            cwd=tmp_path,
        )
    )
    assert document["capabilitiesGranted"] == ["readsCredentials"]


def test_validate_reports_manifest_problems_with_exit_2(tmp_path: Path) -> None:
    manifest = tmp_path / "plugin.json"
    manifest.write_text(
        json.dumps(
            {
                "haechiPlugin": {
                    "id": "x",
                    "version": "1",
                    "kind": "authProvider",
                    "runtime": "process-isolated",
                    "entrypoint": "x.py",
                    "signature": "not base64!",
                    "entrySha256": "ABC",
                    "capabilities": {"readsCredentials": 1},
                }
            }
        )
    )
    result = run_haechi("plugin-validate", manifest, cwd=tmp_path)
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["command"] == "plugin-validate"
    errors = document["result"]["errors"]
    assert any("signature" in error for error in errors)
    assert any("entrySha256" in error for error in errors)
    assert any("notBefore" in error for error in errors)
    assert any("readsCredentials" in error for error in errors)


def test_validate_accepts_a_manifest_only_plugin(tmp_path: Path) -> None:
    manifest = tmp_path / "plugin.json"
    capabilities = dict.fromkeys(
        (
            "readsPlaintext",
            "writesPlaintext",
            "networkEgress",
            "fileWrite",
            "auditWrite",
            "externalSecrets",
        ),
        False,
    )
    manifest.write_text(
        json.dumps(
            {
                "haechiPlugin": {
                    "id": "custom-filter",
                    "version": "0.1.0",
                    "kind": "filter-engine",
                    "runtime": "manifest-only",
                    "entrypoint": "filter.js",
                    "compatibility": {"haechiCore": ">=0.1.0 <1.0.0"},
                    "capabilities": capabilities,
                }
            }
        )
    )
    document = ok_json(run_haechi("plugin-validate", manifest, cwd=tmp_path))
    assert document["result"] == {"valid": True, "errors": []}
