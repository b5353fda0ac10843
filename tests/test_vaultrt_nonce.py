# SPDX-License-Identifier: Apache-2.0
"""The nonce budget when the key file cannot be read at the moment a window is reserved.

The ledger switched to counting in the process before it had read the persisted usage; when
that read failed (the file missing for a moment), the next encryption counted from zero with
the whole 2^32 budget, so a key that had spent its budget encrypted again, without a
warning, and kept doing so after the file came back.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from haechi.crypto import NONCE_LIMIT, LocalCryptoProvider, NonceBudgetWarning, init_key_file
from haechi.errors import CryptoError


def _with_usage(key_file: Path, usage: int) -> None:
    document = json.loads(key_file.read_text())
    document["keys"][0]["usage"] = usage
    key_file.write_text(json.dumps(document, indent=2) + "\n")


def test_a_spent_key_stays_spent_when_its_file_was_missing_for_a_moment(tmp_path: Path) -> None:
    key_file = tmp_path / "dev.keys.json"
    init_key_file(key_file)
    _with_usage(key_file, NONCE_LIMIT)
    provider = LocalCryptoProvider(key_file)
    with pytest.raises(CryptoError, match="safe encryption limit"):
        provider.encrypt("ann.a@example.com", {"a": 1})
    saved = key_file.read_bytes()
    key_file.unlink()
    for _ in range(2):
        with pytest.raises(CryptoError, match="not found"):
            provider.encrypt("ann.a@example.com", {"a": 1})
    key_file.write_bytes(saved)
    with pytest.raises(CryptoError, match="safe encryption limit"):
        provider.encrypt("ann.a@example.com", {"a": 1})


def test_counting_resumes_from_the_persisted_usage_after_a_missing_moment(
    tmp_path: Path,
) -> None:
    """A file that comes back read-only is counted in the process from its usage on."""
    key_file = tmp_path / "dev.keys.json"
    init_key_file(key_file)
    _with_usage(key_file, NONCE_LIMIT - 1)
    provider = LocalCryptoProvider(key_file)
    provider.hmac("load the keys", "haechi:test:v1")
    saved = key_file.read_bytes()
    key_file.unlink()
    with pytest.raises(CryptoError, match="not found"):
        provider.encrypt("ann.a@example.com", {"a": 1})
    key_file.write_bytes(saved)
    key_file.chmod(0o400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonceBudgetWarning)
        provider.encrypt("ann.a@example.com", {"a": 1})
        with pytest.raises(CryptoError, match="safe encryption limit"):
            provider.encrypt("bob.b@example.org", {"a": 1})


def test_a_key_file_put_back_from_an_older_copy_does_not_hand_out_slots_again(
    tmp_path: Path,
) -> None:
    """Slots this process reserved stay counted when the file is replaced by a copy made
    before the reservation (a restore, a redeploy of the key file)."""
    key_file = tmp_path / "dev.keys.json"
    init_key_file(key_file)
    _with_usage(key_file, NONCE_LIMIT - 2)
    older = key_file.read_bytes()
    provider = LocalCryptoProvider(key_file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonceBudgetWarning)
        provider.encrypt("ann.a@example.com", {"a": 1})
        provider.encrypt("bob.b@example.org", {"a": 1})
        key_file.write_bytes(older)
        with pytest.raises(CryptoError, match="safe encryption limit"):
            provider.encrypt("carl.c@example.net", {"a": 1})
