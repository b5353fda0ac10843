# SPDX-License-Identifier: Apache-2.0
"""``haechi init`` under a permissive umask: a real subprocess.

The configuration decides what is protected, so ``init`` never leaves it (nor a directory
it made for it) writable by others, whatever umask the shell has; the key file and the
audit directories stay private to the owner.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from haechi.cli import main
from tests.cli import json_output, run_haechi
from tests.durability import Fsyncs


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Umask 000 for the subprocesses this test starts (they inherit it)."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_init_under_umask_000_writes_nothing_others_can_change(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "haechi" / "haechi.config.json"
    done = json_output(run_haechi("init", "--config", config, cwd=tmp_path))
    assert done["created"] is True
    assert _mode(config) == 0o644
    assert _mode(tmp_path / "etc") == 0o755
    assert _mode(tmp_path / "etc" / "haechi") == 0o755
    assert _mode(tmp_path / ".haechi") == 0o700
    assert _mode(tmp_path / ".haechi" / "dev.keys.json") == 0o600


@pytest.mark.usefixtures("open_umask")
def test_init_makes_every_audit_directory_private(tmp_path: Path) -> None:
    config = tmp_path / "haechi.config.json"
    config.write_text(json.dumps({"audit": {"path": "logs/haechi/audit.jsonl"}}))
    done = json_output(run_haechi("init", cwd=tmp_path))
    assert done["created"] is False
    assert _mode(tmp_path / "logs") == 0o700
    assert _mode(tmp_path / "logs" / "haechi") == 0o700
    assert _mode(config) == 0o666  # written by the operator, left as it is


def test_an_existing_configuration_is_never_replaced(tmp_path: Path) -> None:
    config = tmp_path / "haechi.config.json"
    config.write_text('{"policy": {"mode": "enforce"}}\n')
    done = json_output(run_haechi("init", cwd=tmp_path))
    assert done["created"] is False
    assert done["mode"] == "enforce"
    assert config.read_text() == '{"policy": {"mode": "enforce"}}\n'


@pytest.mark.usefixtures("open_umask")
def test_plugin_keygen_makes_no_directory_others_can_write(tmp_path: Path) -> None:
    # Whoever can write there can replace both key files before the public one is handed
    # out as a trust anchor.
    json_output(run_haechi("plugin-keygen", "--out-dir", "signing/keys", cwd=tmp_path))
    assert _mode(tmp_path / "signing") == 0o755
    assert _mode(tmp_path / "signing" / "keys") == 0o755
    assert _mode(tmp_path / "signing" / "keys" / "haechi-plugin-signer.key") == 0o600


def test_init_leaves_the_configuration_and_the_directories_it_made_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Until the file system writes a directory back, a power loss can leave a file created
    # in it under no name; until it writes a file back, empty.
    monkeypatch.chdir(tmp_path)
    fsyncs = Fsyncs(monkeypatch)
    config = tmp_path / "etc" / "haechi" / "haechi.config.json"
    assert main(["init", "--config", str(config)]) == 0
    made = [config.parent.parent, config.parent, config, tmp_path / ".haechi"]
    assert [path for path in made if not fsyncs.durable(path)] == []
    assert fsyncs.durable(tmp_path / ".haechi" / "dev.keys.json")


def test_init_leaves_the_audit_directories_it_made_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "haechi.config.json").write_text(
        json.dumps({"audit": {"path": "logs/haechi/audit.jsonl"}})
    )
    fsyncs = Fsyncs(monkeypatch)
    assert main(["init"]) == 0
    made = [tmp_path / "logs", tmp_path / "logs" / "haechi"]
    assert [path for path in made if not fsyncs.durable(path)] == []


def test_a_configuration_that_cannot_be_written_whole_is_not_left_behind(tmp_path: Path) -> None:
    """With files limited to 1 KiB (as a full disk would cut it), init fails naming the file
    and leaves no part of it, so the next init writes it whole."""
    config = tmp_path / "etc" / "haechi.config.json"
    limited = subprocess.run(
        [
            "bash",
            "-c",
            'ulimit -f 1 && exec "$0" -m haechi init --config "$1"',
            sys.executable,
            config,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert limited.returncode == 1
    assert f"cannot write the configuration {config}" in limited.stderr
    assert not config.exists()
    done = json_output(run_haechi("init", "--config", config, cwd=tmp_path))
    assert done["created"] is True
    assert json.loads(config.read_text())["policy"]
