# SPDX-License-Identifier: Apache-2.0
"""The plugin commands refuse unreadable files as the operator's mistake, in one line.

Bytes that are not UTF-8, JSON nested past the parser's recursion limit or a number past
``int()``'s digit limit, handed to ``plugin-validate``, ``plugin-sign --capabilities`` or
``plugin-verify``, are refused with a message naming the file (a refusal, for
``plugin-verify``), never as an internal error. So is a file past what the runtime's gate
reads (a manifest, an entry) or past any PEM key file's size, as soon as that much of it is
read: a path may name a pipe that never ends. Real ``haechi`` subprocesses.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from haechi.plugins.manifest import MAX_ENTRY_BYTES
from tests.cli import (
    endless_writer,
    json_output,
    plugin_sign_args,
    run_haechi,
    run_haechi_capped,
)

UNREADABLE = {
    "latin-1": b'{"haechiPlugin": {"name": "caf\xe9"}}',
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "digits": b'{"n": ' + b"9" * 5000 + b"}",
}


#: Repeated without end into a file argument; never to be shown back.
_ENDLESS = "-----BEGIN PRIVATE KEY-----hae_0123456789abcdef"
_SIGNED = '{"readsCredentials": true}'
#: ``(arguments reading /dev/stdin, the refusal)`` for each file a plugin command reads.
_STDIN_FILES = {
    "validate": (["plugin-validate", "/dev/stdin"], "/dev/stdin is larger than 1048576 bytes"),
    "capabilities": (
        plugin_sign_args("acme.key", "@/dev/stdin", "--out", "never.json"),
        "/dev/stdin is larger than 1048576 bytes",
    ),
    "key": (
        plugin_sign_args("/dev/stdin", _SIGNED, "--out", "never.json"),
        "--key /dev/stdin is larger than 65536 bytes",
    ),
    "entry": (
        plugin_sign_args("acme.key", _SIGNED, "--out", "never.json", entry="/dev/stdin"),
        "/dev/stdin is larger than 4194304 bytes",
    ),
    "anchor": (
        ["plugin-verify", "acme-auth.signed.json", "--entry", "auth.py", "--anchor", "/dev/stdin"],
        "--anchor /dev/stdin is larger than 65536 bytes",
    ),
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


@pytest.mark.parametrize(("args", "refusal"), _STDIN_FILES.values(), ids=_STDIN_FILES.keys())
def test_a_file_without_end_is_refused_past_its_bound(
    keys: Path, args: list[str], refusal: str
) -> None:
    json_output(run_haechi(*plugin_sign_args("acme.key", _SIGNED), cwd=keys))
    with endless_writer(_ENDLESS) as pipe:
        done = run_haechi_capped(*args, cwd=keys, stdin=pipe)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", f"haechi: {refusal}\n")
    assert not (keys / "never.json").exists()


def test_sign_refuses_an_entry_the_gate_would_not_read(keys: Path) -> None:
    with (keys / "big.py").open("wb") as handle:
        handle.truncate(MAX_ENTRY_BYTES + 1)
    result = run_haechi(
        *plugin_sign_args("acme.key", _SIGNED, "--out", "never.json", entry="big.py"), cwd=keys
    )
    _one_line(result, f"haechi: big.py is larger than {MAX_ENTRY_BYTES} bytes")
    assert not (keys / "never.json").exists()


#: Written in front of a signed envelope's payload members: a reader keeping the first value
#: of a key reads a plugin granted the network; the signature covers the last.
_FIRST_READ = '"payload": {\n    "capabilities": {"network": true, "readsCredentials": true},'


def test_verify_refuses_an_envelope_giving_a_key_twice(keys: Path) -> None:
    json_output(run_haechi(*plugin_sign_args("acme.key", _SIGNED), cwd=keys))
    envelope = keys / "acme-auth.signed.json"
    edited = keys / "edited.signed.json"
    edited.write_text(envelope.read_text().replace('"payload": {', _FIRST_READ, 1))
    verify = [
        "--entry",
        "auth.py",
        "--anchor",
        "acme.pub",
        "--allow-capability",
        "readsCredentials",
    ]
    json_output(run_haechi("plugin-verify", envelope.name, *verify, cwd=keys))
    result = run_haechi("plugin-verify", edited.name, *verify, cwd=keys)
    _one_line(result, "haechi: plugin-verify refused: manifest-invalid (edited.signed.json gives")
    assert "network" not in result.stderr


def test_validate_refuses_a_manifest_giving_a_key_twice(tmp_path: Path) -> None:
    (tmp_path / "plugin.json").write_text('{"haechiPlugin": {}, "haechiPlugin": {}}')
    result = run_haechi("plugin-validate", "plugin.json", cwd=tmp_path)
    _one_line(result, "haechi: plugin.json gives a key twice in one object")


@pytest.mark.parametrize("given", ["inline", "file"])
def test_sign_refuses_capabilities_giving_a_key_twice(keys: Path, given: str) -> None:
    twice = '{"readsCredentials": false, "readsCredentials": true}'
    (keys / "twice.json").write_text(twice)
    capabilities, name = (
        (twice, "--capabilities") if given == "inline" else ("@twice.json", "twice.json")
    )
    result = run_haechi(
        *plugin_sign_args("acme.key", capabilities, "--out", "never.json"), cwd=keys
    )
    _one_line(result, f"haechi: {name} gives a key twice in one object")
    assert "readsCredentials" not in result.stderr
    assert not (keys / "never.json").exists()
