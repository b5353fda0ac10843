# SPDX-License-Identifier: Apache-2.0
"""The file token store on disk: format, permissions, many processes, no plaintext at rest."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haechi.crypto import NONCE_WINDOW, LocalCryptoProvider, init_key_file, read_nonce_budget
from haechi.errors import VaultError
from haechi.testing.token_store import sample_record
from haechi.vault import FileTokenStore, TokenVault
from tests.durability import Fsyncs

pytestmark = pytest.mark.anyio

CONTEXT = {"protocol": "openai", "direction": "request"}

_WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import anyio
    from haechi.crypto import LocalCryptoProvider
    from haechi.vault import FileTokenStore, TokenVault

    key_file, vault_file, go, index, count = sys.argv[1:6]

    async def main():
        vault = TokenVault(
            FileTokenStore(vault_file), LocalCryptoProvider(key_file),
            deterministic=True, deterministic_types=["shared"],
        )
        print("ready", flush=True)
        while not Path(go).exists():
            time.sleep(0.005)
        issued = {}
        for n in range(int(count)):
            value = f"user{index}-{n}@example.com"
            issued[(await vault.tokenize(value, "email", context={"n": n})).token] = value
        shared = await vault.tokenize("shared-value@example.com", "shared", context={})
        issued[shared.token] = "shared-value@example.com"
        print(json.dumps(issued), flush=True)

    anyio.run(main)
    """
)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / ".haechi" / "dev.keys.json"
    init_key_file(path)
    return path


@pytest.fixture
def vault_file(tmp_path: Path) -> Path:
    return tmp_path / ".haechi" / "token-vault.json"


async def test_file_format(vault_file: Path) -> None:
    store = FileTokenStore(vault_file)
    record = sample_record("tok_email_0123456789abcdef")
    await store.put("tok_email_0123456789abcdef", record)
    text = vault_file.read_text()
    assert text.endswith("}\n")
    document = json.loads(text)
    assert set(document) == {"version", "createdAt", "tokens"}
    assert document["version"] == 1
    assert document["createdAt"].endswith("Z")
    assert document["tokens"] == {"tok_email_0123456789abcdef": record}
    assert text == json.dumps(document, indent=2) + "\n"
    assert stat.S_IMODE(vault_file.stat().st_mode) == 0o600
    created = document["createdAt"]
    await store.put("tok_email_fedcba9876543210", sample_record("tok_email_fedcba9876543210"))
    assert json.loads(vault_file.read_text())["createdAt"] == created


async def test_a_write_is_durable_in_its_directory_once_the_file_is_in_place(
    vault_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The replacement is a rename, which lives in the directory: without an fsync of the
    # directory after it, a power loss can bring the old vault file back. Each fsync is
    # the real one, noted with what the vault file held when it ran.
    real_fsync = os.fsync
    vault_file.parent.mkdir(parents=True)
    directory = os.stat(vault_file.parent)
    synced: list[str] = []

    def noting_fsync(fd: int) -> None:
        real_fsync(fd)
        found = os.fstat(fd)
        if (found.st_dev, found.st_ino) == (directory.st_dev, directory.st_ino):
            synced.append(vault_file.read_text() if vault_file.exists() else "")

    monkeypatch.setattr(os, "fsync", noting_fsync)
    store = FileTokenStore(vault_file)
    for token in ("tok_email_0123456789abcdef", "tok_email_fedcba9876543210"):
        await store.put(token, sample_record(token))
        assert token in synced[-1]
    assert len(synced) == 2
    before = len(synced)
    await store.delete("tok_email_0123456789abcdef")
    assert len(synced) == before + 1
    assert "tok_email_0123456789abcdef" not in synced[-1]


async def test_missing_file_is_an_empty_vault(vault_file: Path) -> None:
    store = FileTokenStore(vault_file)
    assert await store.get("tok_email_0123456789abcdef") is None
    assert [item async for item in store.items()] == []
    assert await store.delete_expired(datetime.now(UTC)) == 0
    assert not vault_file.exists()
    assert (await store.ready()).ok


@pytest.mark.parametrize("content", ["{broken", "[]", '{"version": 1, "tokens": []}'])
async def test_corrupted_file_is_an_error_not_an_empty_vault(
    vault_file: Path, content: str
) -> None:
    vault_file.parent.mkdir(parents=True)
    vault_file.write_text(content)
    store = FileTokenStore(vault_file)
    with pytest.raises(VaultError) as caught:
        await store.get("tok_email_0123456789abcdef")
    assert caught.value.reason == "store_error"
    with pytest.raises(VaultError):
        await store.put("tok_email_0123456789abcdef", sample_record("tok_email_0123456789abcdef"))
    assert vault_file.read_text() == content


async def test_other_writers_are_seen(vault_file: Path) -> None:
    reader, writer = FileTokenStore(vault_file), FileTokenStore(vault_file)
    records = {f"tok_email_{n:016x}": sample_record(f"tok_email_{n:016x}") for n in range(5)}
    for token, record in records.items():
        assert await reader.get(token) is None
        await writer.put(token, record)
        assert await reader.get(token) == record
    first = next(iter(records))
    await writer.delete(first)
    assert await reader.get(first) is None
    assert {token async for token, _ in reader.items()} == set(records) - {first}


def test_built_in_stores_are_registered_by_name(tmp_path: Path) -> None:
    from haechi.config import parse_config
    from haechi.plugins.manager import build_plugin_manager
    from haechi.providers import ProviderContext

    config = parse_config({"tokenVault": {"path": str(tmp_path / "v.json")}})
    hook = build_plugin_manager(load_entrypoints=False).hook
    classes = {cls.name: cls for batch in hook.haechi_register_token_stores() for cls in batch}
    store = classes["local"].create(ProviderContext(config))
    assert isinstance(store, FileTokenStore)
    assert store.path == tmp_path / "v.json"
    assert classes["memory"].create(ProviderContext(config)).__class__.__name__ == (
        "MemoryTokenStore"
    )


async def test_twenty_processes_lose_no_record(
    tmp_path: Path, key_file: Path, vault_file: Path
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    go = tmp_path / "go"
    per_process = 4
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(key_file), str(vault_file), str(go), str(i),
             str(per_process)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(20)
    ]  # fmt: skip
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        go.touch()
        issued: dict[str, str] = {}
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            issued.update(json.loads(out))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert len(issued) == 20 * per_process + 1
    store = FileTokenStore(vault_file)
    stored = {token async for token, _ in store.items()}
    assert stored == set(issued)
    vault = TokenVault(store, LocalCryptoProvider(key_file))
    assert await vault.detokenize(issued) == issued
    # Every process reserved exactly one nonce window; none was lost to a racing writer.
    assert read_nonce_budget(key_file).used == 20 * NONCE_WINDOW
    assert stat.S_IMODE(vault_file.stat().st_mode) == 0o600


async def test_no_plaintext_in_the_vault_file(key_file: Path, vault_file: Path) -> None:
    crypto = LocalCryptoProvider(key_file)
    plaintexts = [
        "minji.kim@example.com",
        "010-1234-5678",
        "900101-1234567",
        "4111 1111 1111 1111",
        "sk-ant-api03-" + "Q" * 40,
        "김민지의 비밀 메모",
        "ｆｕｌｌｗｉｄｔｈ＠ｅｘａｍｐｌｅ．ｃｏｍ",  # noqa: RUF001 - deliberately full-width
        "emoji 😀 secret",
        'quote " and backslash \\ secret',
    ]
    vault = TokenVault(
        FileTokenStore(vault_file),
        crypto,
        deterministic=True,
        deterministic_types=["email"],
        reveal_policy="local-dev",
    )
    tokens = {}
    for value in plaintexts:
        for kind in ("email", "secret"):
            issued = await vault.tokenize(
                value, kind, context=CONTEXT, metadata={"path": "$.x", "value": value}
            )
            tokens[issued.token] = value
    for value in plaintexts:  # deterministic reuse re-encrypts in place
        await vault.tokenize(value, "email", context=CONTEXT)
    await vault.reveal(next(iter(tokens)))
    raw = vault_file.read_bytes()
    for value in plaintexts:
        assert value.encode("utf-8") not in raw
        assert json.dumps(value).encode("ascii") not in raw
        assert json.dumps(value, ensure_ascii=False)[1:-1].encode("utf-8") not in raw
    assert await vault.detokenize(tokens) == tokens


_TOKENS = [f"tok_email_{n:016x}" for n in range(4)]
_EXPIRIES = [datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)]
_OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("put"),
            st.integers(0, 1),
            st.sampled_from(_TOKENS),
            st.text(max_size=12),
            st.sampled_from(_EXPIRIES),
            st.booleans(),
        ),
        st.tuples(st.just("delete"), st.integers(0, 1), st.sampled_from(_TOKENS)),
        st.tuples(st.just("expire"), st.integers(0, 1), st.sampled_from(_EXPIRIES)),
    ),
    max_size=25,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=_OPERATIONS)
def test_every_change_writes_exactly_the_indented_document(
    tmp_path_factory: pytest.TempPathFactory, operations: list[tuple[Any, ...]]
) -> None:
    """Two stores on one file (as two processes would be) change it in any order: the file
    always holds the expected records, in insertion order, written exactly as
    ``json.dumps(document, indent=2)`` (only the changed records are encoded again)."""
    path = tmp_path_factory.mktemp("vault") / "vault.json"
    stores = [FileTokenStore(path), FileTokenStore(path)]
    expected: dict[str, Any] = {}
    expiry: dict[str, datetime] = {}

    async def run() -> None:
        for operation in operations:
            kind, store = operation[0], stores[operation[1]]
            if kind == "put":
                _kind, _index, token, note, expires, only_if_absent = operation
                record = sample_record(token, expires_at=expires)
                record["metadata"]["note"] = note  # quotes, newlines, non-ASCII
                stored = await store.put(token, record, only_if_absent=only_if_absent)
                assert stored == (not only_if_absent or token not in expected)
                if stored:
                    expected[token], expiry[token] = record, expires
            elif kind == "delete":
                assert await store.delete(operation[2]) == (
                    expected.pop(operation[2], None) is not None
                )
            else:
                cutoff = operation[2]
                gone = [token for token in expected if expiry[token] <= cutoff]
                assert await store.delete_expired(cutoff) == len(gone)
                for token in gone:
                    del expected[token]
            if path.exists():
                text = path.read_text()
                document = json.loads(text)
                assert text == json.dumps(document, indent=2) + "\n"
                assert list(document["tokens"].items()) == list(expected.items())

    anyio.run(run)


async def test_the_directories_a_first_write_makes_are_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vault's directories are made by its first write: each is synced into its parent,
    or a power loss could take the vault away with the directory that names it."""
    vault_file = tmp_path / "state" / "haechi" / "vault.json"
    fsyncs = Fsyncs(monkeypatch)
    await FileTokenStore(vault_file).put("tok_email_0123456789abcdef", sample_record("x"))
    made = [tmp_path / "state", tmp_path / "state" / "haechi", vault_file]
    assert [path for path in made if not fsyncs.durable(path)] == []
