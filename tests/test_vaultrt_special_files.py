# SPDX-License-Identifier: Apache-2.0
"""The key file and the vault file replaced by something that is not a regular file, or
by JSON nested past the interpreter's recursion limit.

A named pipe in place of either file blocked the read until something wrote to it: the key
file is read again under the crypto provider's lock when it changes, so every encryption
(on the gateway's event loop) waited, and a vault write held the store lock meanwhile. Such
files are now refused at once with the error of an unreadable file. The cases that could
hang run in a child process with a timeout, so that the suite cannot.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from haechi.crypto import LocalCryptoProvider, init_key_file, read_nonce_budget
from haechi.errors import CryptoError, VaultError
from haechi.vault import FileTokenStore
from tests.cli import run_haechi

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")

#: Seconds a child may take before it counts as hung (it needs well under one).
HUNG = 60


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=HUNG,
        check=False,
    )


def test_a_key_file_replaced_by_a_pipe_while_running_leaves_the_loaded_keys_in_use(
    tmp_path: Path,
) -> None:
    code = """
        import os
        from haechi.crypto import LocalCryptoProvider, init_key_file

        init_key_file("keys.json")
        provider = LocalCryptoProvider("keys.json", recheck_seconds=0)
        envelope = provider.encrypt("ann.a@example.com", {"a": 1})
        os.unlink("keys.json")
        os.mkfifo("keys.json")
        again = provider.encrypt("bob.b@example.org", {"a": 1})
        assert provider.decrypt(envelope, {"a": 1}) == "ann.a@example.com"
        assert provider.decrypt(again, {"a": 1}) == "bob.b@example.org"
        print("ok")
    """
    done = _python(code, tmp_path)
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr


def test_a_key_file_that_is_a_pipe_is_refused(tmp_path: Path) -> None:
    code = """
        import os
        from haechi.crypto import LocalCryptoProvider
        from haechi.errors import CryptoError

        os.mkfifo("keys.json")
        try:
            LocalCryptoProvider("keys.json").encrypt("x", {"a": 1})
        except CryptoError as exc:
            print(exc)
    """
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "key file keys.json is not a regular file\n"


def test_a_vault_file_that_is_a_pipe_is_an_error_not_a_hang(tmp_path: Path) -> None:
    init_key_file(tmp_path / ".haechi" / "dev.keys.json")
    os.mkfifo(tmp_path / ".haechi" / "token-vault.json")
    done = run_haechi("token-export", cwd=tmp_path, timeout=HUNG)
    assert done.returncode == 1
    assert done.stderr == "haechi: token vault file is not a regular file\n"
    assert not (tmp_path / ".haechi" / "token-vault.json").is_file()


def test_a_key_file_nested_too_deep_is_invalid(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    key_file.write_text("[" * 100_000)
    with pytest.raises(CryptoError, match="is not valid JSON"):
        read_nonce_budget(key_file)
    with pytest.raises(CryptoError, match="is not valid JSON"):
        LocalCryptoProvider(key_file).encrypt("x", {"a": 1})


@pytest.mark.anyio
async def test_a_vault_file_nested_too_deep_is_a_store_error(tmp_path: Path) -> None:
    vault_file = tmp_path / "token-vault.json"
    vault_file.write_text('{"tokens": ' + "[" * 100_000)
    store = FileTokenStore(vault_file)
    with pytest.raises(VaultError) as caught:
        await store.get("tok_email_0123456789abcdef")
    assert caught.value.reason == "store_error"
