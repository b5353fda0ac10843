# SPDX-License-Identifier: Apache-2.0
"""The plugin commands refuse unreadable files as the operator's mistake, in one line.

Bytes that are not UTF-8, JSON nested past the parser's recursion limit or a number past
``int()``'s digit limit, handed to ``plugin-validate``, ``plugin-sign --capabilities`` or
``plugin-verify``, are refused with a message naming the file (a refusal, for
``plugin-verify``), never as an internal error. Real ``haechi`` subprocesses.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli import json_output, plugin_sign_args, run_haechi

UNREADABLE = {
    "latin-1": b'{"haechiPlugin": {"name": "caf\xe9"}}',
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "digits": b'{"n": ' + b"9" * 5000 + b"}",
}


def _one_line(result: subprocess.CompletedProcess[str], start: str) -> None:
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(start), result.stderr
    assert "internal error" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    json_output(run_haechi("plugin-keygen", "--key-id", "acme", cwd=directory))
    (directory / "auth.py").write_text("VALUE = 1\n")
    return directory


@pytest.mark.parametrize("content", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_validate_refuses_an_unreadable_manifest(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "plugin.json").write_bytes(content)
    _one_line(run_haechi("plugin-validate", "plugin.json", cwd=tmp_path), "haechi: plugin.json ")


@pytest.mark.parametrize("content", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_sign_refuses_an_unreadable_capabilities_file(keys: Path, content: bytes) -> None:
    (keys / "caps.json").write_bytes(content)
    result = run_haechi(
        *plugin_sign_args("acme.key", "@caps.json", "--out", "never.json"), cwd=keys
    )
    _one_line(result, "haechi: caps.json ")
    assert not (keys / "never.json").exists()


@pytest.mark.parametrize("content", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_verify_refuses_an_unreadable_envelope_given_an_anchor(keys: Path, content: bytes) -> None:
    # The signer named by the envelope is the anchor's default key id: the envelope used to
    # be parsed for it before the gate read it, outside the refusal path.
    (keys / "envelope.json").write_bytes(content)
    result = run_haechi(
        "plugin-verify", "envelope.json", "--entry", "auth.py", "--anchor", "acme.pub", cwd=keys
    )
    _one_line(result, "haechi: plugin-verify refused: manifest-invalid (")


def test_verify_refuses_an_anchor_that_is_not_text(keys: Path) -> None:
    json_output(run_haechi(*plugin_sign_args("acme.key", '{"readsCredentials": true}'), cwd=keys))
    (keys / "binary.pub").write_bytes(b"\xff\xfe not a key")
    result = run_haechi(
        "plugin-verify",
        "acme-auth.signed.json",
        "--entry",
        "auth.py",
        "--anchor",
        "binary.pub",
        "--allow-capability",
        "readsCredentials",
        cwd=keys,
    )
    _one_line(result, "haechi: plugin-verify refused: unknown-signer (")
