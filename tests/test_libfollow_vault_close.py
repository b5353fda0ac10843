# SPDX-License-Identifier: Apache-2.0
"""Closing a runtime releases the file of its ``local`` token store.

The store keeps a descriptor of the vault file it last read open (it proves its cache
current). Closing the runtime that built the store closes it, as it closes the audit log; a
store used after that reads the file again. A store passed in ``providers`` is left to its
owner.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from haechi.crypto import init_key_file
from haechi.runtime import Runtime, create_runtime
from haechi.vault import FileTokenStore

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="lists the open files in /proc/self/fd"
)

EMAIL = "jane.doe@example.com"


def _held(path: Path) -> int:
    """How many descriptors of this process are open on ``path``."""
    held = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the descriptor listing the directory is gone already
            continue
        held += target == str(path)
    return held


def _runtime(home: Path, store: FileTokenStore | None = None) -> Runtime:
    init_key_file(home / "keys.json")
    config = {
        "policy": {"mode": "enforce", "actions": {"email": "tokenize"}},
        "audit": {"sink": "memory"},
        "keys": {"keyFile": str(home / "keys.json")},
        "tokenVault": {"path": str(home / "token-vault.json")},
    }
    return create_runtime(config, {"token_store": store})


def test_close_releases_the_vault_file_and_a_later_call_reads_it_again(tmp_path: Path) -> None:
    vault = tmp_path / "token-vault.json"
    runtime = _runtime(tmp_path)
    token = runtime.protect_sync({"mail": EMAIL}).issued_tokens[0]
    assert _held(vault) == 1
    runtime.close()
    assert _held(vault) == 0
    # Used after close, the store reads the file again.
    assert runtime.protect_sync({"mail": EMAIL}).payload != {"mail": EMAIL}
    restored = asyncio.run(runtime.detokenize({"mail": f"[TOKEN:{token}]"}, [token]))
    assert restored == {"mail": EMAIL}
    runtime.close()
    assert _held(vault) == 0


@pytest.mark.anyio
async def test_aclose_releases_the_vault_file(tmp_path: Path) -> None:
    vault = tmp_path / "token-vault.json"
    runtime = _runtime(tmp_path)
    await runtime.protect({"mail": EMAIL})
    assert _held(vault) == 1
    await runtime.aclose()
    assert _held(vault) == 0


def test_a_store_passed_in_is_left_open_to_its_owner(tmp_path: Path) -> None:
    vault = tmp_path / "token-vault.json"
    store = FileTokenStore(vault)
    runtime = _runtime(tmp_path, store)
    runtime.protect_sync({"mail": EMAIL})
    runtime.close()
    assert _held(vault) == 1
    asyncio.run(store.aclose())
    assert _held(vault) == 0
