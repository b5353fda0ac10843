# SPDX-License-Identifier: Apache-2.0
"""A running process follows a key rotation made by another one.

Before, the local provider read the key file once: after ``haechi init --force`` a running
gateway went on encrypting under the retired key and refused every bearer token issued
since (hashed under the new key) until it was restarted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from pathlib import Path

import pytest

from haechi.auth import BearerAuthProvider
from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.errors import CryptoError
from tests.cli import json_output, run_haechi

AAD = {"purpose": "reload"}
DOMAIN = "haechi:test:v1"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    init_key_file(path)
    return path


def test_a_rotation_is_followed_at_the_next_look(key_file: Path) -> None:
    running = LocalCryptoProvider(key_file, recheck_seconds=0)
    before = running.encrypt("before", AAD)
    hashed_before = running.hmac("x", DOMAIN)

    status = init_key_file(key_file, force=True)

    after = running.encrypt("after", AAD)
    assert after["kid"] == status.kid != before["kid"]
    assert running.hmac("x", DOMAIN) == LocalCryptoProvider(key_file).hmac("x", DOMAIN)
    assert running.hmac("x", DOMAIN) != hashed_before
    assert running.retired_hmacs("x", DOMAIN) == (hashed_before,)
    assert running.decrypt(before, AAD) == "before"
    assert LocalCryptoProvider(key_file).decrypt(after, AAD) == "after"


def test_between_looks_the_keys_in_memory_are_used(key_file: Path) -> None:
    running = LocalCryptoProvider(key_file, recheck_seconds=3600)
    first = running.encrypt("a", AAD)["kid"]

    init_key_file(key_file, force=True)

    assert running.encrypt("b", AAD)["kid"] == first


def test_an_envelope_under_a_key_not_yet_known_makes_it_look_at_once(key_file: Path) -> None:
    running = LocalCryptoProvider(key_file, recheck_seconds=3600)
    running.encrypt("warm", AAD)
    init_key_file(key_file, force=True)
    made_elsewhere = LocalCryptoProvider(key_file).encrypt("from another worker", AAD)

    assert running.decrypt(made_elsewhere, AAD) == "from another worker"
    with pytest.raises(CryptoError, match="Unknown key id"):
        running.decrypt({**made_elsewhere, "kid": "k_never_made"}, AAD)


def test_a_file_broken_after_start_leaves_the_loaded_keys_in_use(key_file: Path) -> None:
    running = LocalCryptoProvider(key_file, recheck_seconds=0)
    envelope = running.encrypt("kept", AAD)
    good = key_file.read_bytes()

    key_file.write_text("{not json")
    assert running.decrypt(running.encrypt("still", AAD), AAD) == "still"
    assert running.decrypt(envelope, AAD) == "kept"

    key_file.write_bytes(good)
    status = init_key_file(key_file, force=True)
    assert running.encrypt("rotated", AAD)["kid"] == status.kid


def _give_another_secret(key_file: Path, kid: str) -> str:
    """Edit the key file as by hand: ``kid`` gets a new secret, returned in the file's form."""
    document = json.loads(key_file.read_text())
    entry = next(entry for entry in document["keys"] if entry["kid"] == kid)
    entry["k"] = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    key_file.write_text(json.dumps(document))
    return str(entry["k"])


def test_a_file_giving_a_key_id_another_secret_is_refused(
    key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, a key not yet used took the edited secret (and one used kept the first, its
    cipher being cached by id): an envelope made under it no longer decrypted."""
    old = LocalCryptoProvider(key_file).encrypt("under the first key", AAD)
    init_key_file(key_file, force=True)
    running = LocalCryptoProvider(key_file, recheck_seconds=0)
    hashed = running.hmac("x", DOMAIN)
    first_secret = json.loads(key_file.read_text())["keys"][0]["k"]
    original = key_file.read_bytes()

    with caplog.at_level(logging.WARNING, logger="haechi.crypto"):
        new_secret = _give_another_secret(key_file, old["kid"])
        for _ in range(3):
            assert running.decrypt(old, AAD) == "under the first key"
            assert running.hmac("x", DOMAIN) == hashed
    (warning,) = [r for r in caplog.records if "HAECHI_KEY_SECRET_CHANGED" in r.getMessage()]
    assert old["kid"] in warning.getMessage()
    for secret in (first_secret, new_secret):
        assert secret not in caplog.text

    # Put back, the file is read again, and a rotation made in it is followed.
    key_file.write_bytes(original)
    status = init_key_file(key_file, force=True)
    assert running.encrypt("rotated", AAD)["kid"] == status.kid
    assert running.decrypt(old, AAD) == "under the first key"


def test_a_missing_file_at_start_is_still_an_error(tmp_path: Path) -> None:
    with pytest.raises(CryptoError, match="not found"):
        LocalCryptoProvider(tmp_path / "missing.json").encrypt("x", AAD)


@pytest.mark.anyio
async def test_a_bearer_token_issued_after_a_rotation_works_without_a_restart(
    tmp_path: Path,
) -> None:
    json_output(run_haechi("init", cwd=tmp_path))
    haechi_dir = tmp_path / ".haechi"
    running = BearerAuthProvider(
        haechi_dir / "auth.json", LocalCryptoProvider(haechi_dir / "dev.keys.json")
    )
    before = json_output(run_haechi("token-add", "--type", "user", cwd=tmp_path))["token"]
    assert await running.authenticate({"authorization": f"Bearer {before}"}) is not None

    json_output(run_haechi("init", "--force", cwd=tmp_path))
    after = json_output(run_haechi("token-add", "--type", "user", cwd=tmp_path))["token"]

    identity = None
    for _ in range(100):  # the provider looks at the key file again within a second
        identity = await running.authenticate({"authorization": f"Bearer {after}"})
        if identity is not None:
            break
        await asyncio.sleep(0.1)
    assert identity is not None
    assert await running.authenticate({"authorization": f"Bearer {before}"}) is not None
