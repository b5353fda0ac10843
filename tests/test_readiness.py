# SPDX-License-Identifier: Apache-2.0
"""Readiness of the file token store and of the audit anchor: ready exactly when a write
could succeed, and found out without writing anything or taking a lock."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

import haechi
from haechi.audit import AuditSink, FileAuditStore, MemoryAuditStore
from haechi.crypto import init_key_file
from haechi.testing.token_store import sample_record
from haechi.vault import FileTokenStore

pytestmark = pytest.mark.anyio

TOKEN = "tok_email_0123456789abcdef"


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """Make the existing regular file ``path`` impossible to open for writing.

    Mode 0400 does it for an ordinary user; root ignores modes, so for root the file is
    made immutable instead (skipped where ``chattr`` is missing or the file system has no
    such flag).
    """
    if os.geteuid() != 0:
        path.chmod(0o400)
        try:
            yield
        finally:
            path.chmod(0o600)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], check=False).returncode:
        pytest.skip("running as root without a usable chattr +i")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def _written_vault(tmp_path: Path) -> tuple[FileTokenStore, Path]:
    path = tmp_path / "state" / "token-vault.json"
    return FileTokenStore(path), path


async def test_vault_ready_after_writes_and_before_anything_exists(tmp_path: Path) -> None:
    store, path = _written_vault(tmp_path)
    assert (await store.ready()).ok
    assert not path.parent.exists()  # readiness created nothing
    await store.put(TOKEN, sample_record(TOKEN))
    assert path.is_file()
    assert Path(f"{path}.lock").is_file()
    assert (await store.ready()).ok


#: The files a vault write opens, and the reason readiness gives for each.
VAULT_FILES = [
    ("token-vault.json", "token_vault_file_not_writable"),
    ("token-vault.json.lock", "token_vault_lock_not_writable"),
]


@pytest.mark.parametrize(("in_the_way", "reason"), VAULT_FILES)
async def test_vault_not_ready_when_a_directory_is_in_the_way(
    tmp_path: Path, in_the_way: str, reason: str
) -> None:
    store, path = _written_vault(tmp_path)
    (path.parent / in_the_way).mkdir(parents=True)
    state = await store.ready()
    assert (state.ok, state.reason) == (False, reason)
    with pytest.raises(IsADirectoryError):  # what the check predicted
        await store.put(TOKEN, sample_record(TOKEN))


@pytest.mark.parametrize(("name", "reason"), VAULT_FILES)
async def test_vault_not_ready_when_its_file_or_lock_cannot_be_written(
    tmp_path: Path, name: str, reason: str
) -> None:
    store, path = _written_vault(tmp_path)
    await store.put(TOKEN, sample_record(TOKEN))
    with unwritable(path.parent / name):
        state = await store.ready()
        assert (state.ok, state.reason) == (False, reason)
    assert (await store.ready()).ok


async def test_vault_not_ready_under_a_file_where_its_directory_belongs(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("", encoding="utf-8")
    store, _path = _written_vault(tmp_path)
    state = await store.ready()
    assert (state.ok, state.reason) == (False, "token_vault_dir_not_writable")


def _anchored(tmp_path: Path) -> tuple[AuditSink, Path]:
    anchor = tmp_path / "anchors" / "audit.anchor.jsonl"
    store = FileAuditStore(tmp_path / "audit.jsonl")
    return AuditSink(store, anchor_mode="file", anchor_path=anchor), anchor


async def test_anchor_ready_before_and_after_the_first_anchor(tmp_path: Path) -> None:
    sink, anchor = _anchored(tmp_path)
    assert (await sink.ready()).ok
    assert not anchor.exists()  # readiness created no anchor file
    await sink.record({"n": 1})
    assert anchor.is_file()
    assert (await sink.ready()).ok


async def test_anchor_not_ready_when_a_directory_is_in_the_way(tmp_path: Path) -> None:
    sink, anchor = _anchored(tmp_path)
    anchor.mkdir(parents=True)
    state = await sink.ready()
    assert (state.ok, state.reason) == (False, "audit_anchor_not_writable")


async def test_anchor_not_ready_when_its_file_cannot_be_written(tmp_path: Path) -> None:
    sink, anchor = _anchored(tmp_path)
    await sink.record({"n": 1})
    with unwritable(anchor):
        state = await sink.ready()
        assert (state.ok, state.reason) == (False, "audit_anchor_not_writable")
    assert (await sink.ready()).ok


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"version": 1, "tokens": 7}'])
async def test_vault_not_ready_when_its_file_does_not_parse(tmp_path: Path, content: bytes) -> None:
    """Every write reads the file first: one that is not a vault fails every tokenization,
    so the gateway must not say it is ready."""
    store, path = _written_vault(tmp_path)
    await store.put(TOKEN, sample_record(TOKEN))
    path.write_bytes(content)
    state = await store.ready()
    assert (state.ok, state.reason) == (False, "token_vault_file_unreadable")
    with pytest.raises(Exception, match="vault"):
        await store.put(TOKEN, sample_record(TOKEN))


@pytest.mark.parametrize("last", [b"garbage{\n", b"[1, 2]\n", b'{"auditIntegrity": 5}\n'])
async def test_audit_not_ready_when_its_last_line_cannot_be_chained_onto(
    tmp_path: Path, last: bytes
) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(FileAuditStore(path))
    await sink.record({"operation": "first"})
    assert (await sink.store.ready()).ok
    with path.open("ab") as handle:
        handle.write(last)
    state = await sink.store.ready()
    assert (state.ok, state.reason) == (False, "audit_file_unreadable")
    with pytest.raises(Exception, match="audit"):
        await sink.record({"operation": "second"})
    await sink.store.aclose()


class _SayingStore(MemoryAuditStore):
    """An audit store whose readiness answer is ``answer``."""

    def __init__(self, answer: object) -> None:
        super().__init__()
        self._answer = answer

    async def ready(self) -> object:  # type: ignore[override]
        return self._answer


@pytest.mark.parametrize(
    ("answer", "ready"),
    [(True, True), ("false", False), (1, False), (None, False)],
)
async def test_only_a_true_answer_makes_a_store_ready(
    tmp_path: Path, answer: object, ready: bool
) -> None:
    init_key_file(tmp_path / "keys.json")
    runtime = haechi.create_runtime(
        {"keys": {"keyFile": str(tmp_path / "keys.json")}, "tokenVault": {"provider": "memory"}},
        providers={"audit_store": _SayingStore(SimpleNamespace(ok=answer, reason=None))},
    )
    assert (await runtime.ready())["audit"] is ready
    await runtime.aclose()
