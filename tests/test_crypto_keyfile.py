# SPDX-License-Identifier: Apache-2.0
"""The local key file: init, rotation, validation, and the persisted nonce budget."""

from __future__ import annotations

import base64
import json
import os
import stat
import warnings
from pathlib import Path
from typing import Any

import pytest

from haechi.crypto import (
    NONCE_LIMIT,
    NONCE_WINDOW,
    LocalCryptoProvider,
    NonceBudgetWarning,
    init_key_file,
    read_nonce_budget,
)
from haechi.errors import CryptoError

AAD = {"purpose": "test", "type": "email"}


def _document(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def _set_usage(path: Path, usage: int) -> None:
    document = _document(path)
    for key in document["keys"]:
        if key["status"] == "active":
            key["usage"] = usage
    path.write_text(json.dumps(document, indent=2) + "\n")


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / ".haechi" / "dev.keys.json"
    init_key_file(path)
    return path


# --- init --------------------------------------------------------------------------------


def test_init_creates_a_valid_0600_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dev.keys.json"
    status = init_key_file(path)
    assert status.created
    assert not status.rotated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = _document(path)
    assert document["version"] == 1
    assert document["createdAt"].endswith("Z")
    (key,) = document["keys"]
    assert key["kid"] == status.kid
    assert key["kid"].startswith("local-")
    _, millis, suffix = key["kid"].split("-")
    assert millis.isdigit()
    assert len(suffix) == 6
    assert int(suffix, 16) >= 0
    assert (key["kty"], key["alg"], key["status"]) == ("oct", "AES-256-GCM", "active")
    assert len(base64.urlsafe_b64decode(key["k"] + "=")) == 32


def test_init_leaves_a_valid_file_untouched(key_file: Path) -> None:
    before = key_file.read_bytes()
    os.utime(key_file, ns=(1_000_000_000, 1_000_000_000))
    status = init_key_file(key_file)
    assert not status.created
    assert not status.rotated
    assert status.kid == _document(key_file)["keys"][0]["kid"]
    assert key_file.read_bytes() == before
    assert key_file.stat().st_mtime_ns == 1_000_000_000


def test_force_rotates_and_old_envelopes_still_decrypt(key_file: Path) -> None:
    old_kid = _document(key_file)["keys"][0]["kid"]
    old = LocalCryptoProvider(key_file).encrypt("before rotation", AAD)
    status = init_key_file(key_file, force=True)
    assert status.created
    assert status.rotated
    assert status.kid != old_kid
    statuses = {key["kid"]: key["status"] for key in _document(key_file)["keys"]}
    assert statuses == {old_kid: "retired", status.kid: "active"}
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    rotated = LocalCryptoProvider(key_file)
    assert rotated.decrypt(old, AAD) == "before rotation"
    new = rotated.encrypt("after rotation", AAD)
    assert new["kid"] == status.kid
    assert rotated.decrypt(new, AAD) == "after rotation"


def test_rotation_changes_hmac(key_file: Path) -> None:
    before = LocalCryptoProvider(key_file).hmac("x", "haechi:test:v1")
    init_key_file(key_file, force=True)
    assert LocalCryptoProvider(key_file).hmac("x", "haechi:test:v1") != before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"version": 1, "keys": []}', "no keys"),
        (
            '{"keys": [{"kid": "a", "kty": "oct", "alg": "AES-256-GCM", "status": "retired",'
            ' "k": "' + base64.urlsafe_b64encode(bytes(32)).decode().rstrip("=") + '"}]}',
            "no active key",
        ),
        (
            '{"keys": [{"kid": "a", "kty": "oct", "alg": "AES-256-GCM", "status": "active",'
            ' "k": "' + base64.urlsafe_b64encode(bytes(16)).decode().rstrip("=") + '"}]}',
            "must be 32 bytes",
        ),
        (
            '{"keys": [{"kid": "a", "status": "active", "k": "not base64 !"}]}',
            "must be 32 bytes",
        ),
    ],
    ids=["corrupted", "array", "empty", "inactive", "16-byte", "bad-base64"],
)
@pytest.mark.parametrize("force", [False, True])
def test_init_rejects_invalid_files(
    tmp_path: Path, content: str, message: str, force: bool
) -> None:
    path = tmp_path / "dev.keys.json"
    path.write_text(content)
    with pytest.raises(CryptoError, match=message):
        init_key_file(path, force=force)
    assert path.read_text() == content


def test_a_status_written_above_a_key_s_own_is_not_lost(key_file: Path) -> None:
    """Retiring a key by hand, an operator writes ``"status": "retired"`` at the top of its
    entry, above the ``"status": "active"`` already there: read keeping the last value, the
    key went on encrypting. The file is refused now, and left as it is."""
    first = init_key_file(key_file, force=True).kid  # a second key, retired in its turn
    active = init_key_file(key_file, force=True).kid
    text = key_file.read_text()
    text = text.replace(f'"kid": "{active}"', f'"status": "retired", "kid": "{active}"')
    text = text.replace(f'"kid": "{first}"', f'"status": "active", "kid": "{first}"')
    key_file.write_text(text)
    with pytest.raises(CryptoError, match="gives a key twice in one object"):
        LocalCryptoProvider(key_file).encrypt("x", AAD)
    with pytest.raises(CryptoError, match="gives a key twice in one object"):
        init_key_file(key_file, force=True)
    assert key_file.read_text() == text


def test_provider_reports_a_missing_file(tmp_path: Path) -> None:
    provider = LocalCryptoProvider(tmp_path / "missing.json")
    with pytest.raises(CryptoError, match="haechi init"):
        provider.encrypt("x", AAD)


def test_errors_never_show_key_material(tmp_path: Path) -> None:
    secret = base64.urlsafe_b64encode(bytes(range(16))).decode().rstrip("=")
    path = tmp_path / "dev.keys.json"
    path.write_text(json.dumps({"keys": [{"kid": "a", "status": "active", "k": secret}]}))
    with pytest.raises(CryptoError) as caught:
        init_key_file(path)
    assert secret not in str(caught.value)


# --- nonce budget ------------------------------------------------------------------------


def test_fresh_budget(key_file: Path) -> None:
    budget = read_nonce_budget(key_file)
    assert budget.kid == _document(key_file)["keys"][0]["kid"]
    assert (budget.used, budget.limit, budget.remaining) == (0, 2**32, 2**32)
    assert budget.used_fraction == 0
    assert budget.warn_threshold == 0.5
    assert not budget.exhausted


def test_window_is_reserved_and_persisted_on_first_encrypt_only(key_file: Path) -> None:
    provider = LocalCryptoProvider(key_file)
    untouched = key_file.read_bytes()
    provider.hmac("no encryption", "haechi:test:v1")
    assert key_file.read_bytes() == untouched
    provider.encrypt("one", AAD)
    assert read_nonce_budget(key_file).used == NONCE_WINDOW
    after_first = key_file.read_bytes()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for _ in range(20):
        provider.encrypt("more", AAD)
    assert key_file.read_bytes() == after_first


def test_two_providers_reserve_separate_windows(key_file: Path) -> None:
    LocalCryptoProvider(key_file).encrypt("a", AAD)
    LocalCryptoProvider(key_file).encrypt("b", AAD)
    assert read_nonce_budget(key_file).used == 2 * NONCE_WINDOW


def test_exhausted_key_refuses(key_file: Path) -> None:
    _set_usage(key_file, NONCE_LIMIT)
    budget = read_nonce_budget(key_file)
    assert budget.exhausted
    assert budget.remaining == 0
    with pytest.raises(CryptoError, match="init --force"):
        LocalCryptoProvider(key_file).encrypt("x", AAD)


def test_one_below_the_limit_allows_exactly_one(key_file: Path) -> None:
    _set_usage(key_file, NONCE_LIMIT - 1)
    provider = LocalCryptoProvider(key_file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonceBudgetWarning)
        envelope = provider.encrypt("last", AAD)
        assert provider.decrypt(envelope, AAD) == "last"
        assert read_nonce_budget(key_file).used == NONCE_LIMIT
        with pytest.raises(CryptoError, match="safe encryption limit"):
            provider.encrypt("one too many", AAD)
    with pytest.raises(CryptoError):
        LocalCryptoProvider(key_file).encrypt("other process", AAD)


def test_rotation_resets_the_budget(key_file: Path) -> None:
    _set_usage(key_file, NONCE_LIMIT)
    status = init_key_file(key_file, force=True)
    budget = read_nonce_budget(key_file)
    assert (budget.kid, budget.used, budget.exhausted) == (status.kid, 0, False)
    LocalCryptoProvider(key_file).encrypt("fresh key", AAD)


def test_warning_at_half_the_budget(key_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    _set_usage(key_file, NONCE_LIMIT // 2 - 1)
    provider = LocalCryptoProvider(key_file)
    with pytest.warns(NonceBudgetWarning, match="HAECHI_NONCE_BUDGET:") as record:
        provider.encrypt("crosses half", AAD)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonceBudgetWarning)
        provider.encrypt("warned already", AAD)
    assert len(record) == 1
    assert record[0].filename == __file__
    assert "HAECHI_NONCE_BUDGET" in caplog.text
    assert "crosses half" not in caplog.text
    assert "crosses half" not in str(record[0].message)


def test_read_only_key_file_counts_per_process(key_file: Path) -> None:
    _set_usage(key_file, NONCE_LIMIT - 2)
    key_file.chmod(0o400)
    before = key_file.read_bytes()
    provider = LocalCryptoProvider(key_file)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "HAECHI_NONCE_BUDGET:", NonceBudgetWarning)
        with pytest.warns(NonceBudgetWarning, match="NOPERSIST") as record:
            provider.encrypt("one", AAD)
        assert record[0].filename == __file__
        warnings.simplefilter("error", NonceBudgetWarning)
        provider.encrypt("two", AAD)
        with pytest.raises(CryptoError, match="safe encryption limit"):
            provider.encrypt("three", AAD)
    assert key_file.read_bytes() == before
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o400
