# SPDX-License-Identifier: Apache-2.0
"""The local AES-256-GCM provider: envelopes, AAD canonicalisation, decrypt refusals, HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from haechi._canonical import canonical_json
from haechi.crypto import (
    LocalCryptoProvider,
    assert_crypto_conformance,
    canonical_aad,
    init_key_file,
)
from haechi.errors import CryptoError
from haechi.testing.crypto import CryptoProviderContract
from tests.plugins.crypto_providers import FixedNonceCrypto, UnencryptedCrypto

AAD: dict[str, Any] = {
    "purpose": "token-vault",
    "token": "tok_email_0123456789abcdef",
    "type": "email",
    "context": {"protocol": "openai", "direction": "request"},
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


def _active_secret(key_file: Path) -> tuple[str, bytes]:
    document = json.loads(key_file.read_text())
    entry = next(key for key in document["keys"] if key["status"] == "active")
    return entry["kid"], _unb64(entry["k"])


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "dev.keys.json"
    init_key_file(path)
    return path


@pytest.fixture
def provider(key_file: Path) -> LocalCryptoProvider:
    return LocalCryptoProvider(key_file)


class TestLocalCryptoContract(CryptoProviderContract):
    @pytest.fixture
    def crypto_provider(self, key_file: Path) -> LocalCryptoProvider:
        return LocalCryptoProvider(key_file)


# --- envelope format ---------------------------------------------------------------------


def test_envelope_v2_fields(provider: LocalCryptoProvider, key_file: Path) -> None:
    expires = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    envelope = provider.encrypt("minji@example.com", AAD, expires_at=expires)
    kid, _ = _active_secret(key_file)
    assert set(envelope) == {
        "v", "alg", "kid", "iv", "ct", "tag", "aadHash", "aadEncoding", "createdAt", "expiresAt"
    }  # fmt: skip
    assert envelope["v"] == 2
    assert envelope["alg"] == "AES-256-GCM"
    assert envelope["kid"] == kid
    assert envelope["aadEncoding"] == "nfkc-json-v2"
    assert len(_unb64(envelope["iv"])) == 12
    assert len(_unb64(envelope["tag"])) == 16
    assert envelope["aadHash"] == _b64(hashlib.sha256(canonical_aad(AAD)).digest())
    assert envelope["expiresAt"] == "2031-05-06T07:08:09.123Z"
    assert datetime.fromisoformat(envelope["createdAt"]).tzinfo is not None
    assert "=" not in envelope["iv"] + envelope["ct"] + envelope["tag"] + envelope["aadHash"]


def test_envelope_is_standard_aes_gcm(provider: LocalCryptoProvider, key_file: Path) -> None:
    """Any AES-GCM implementation holding the key can open it (what the reference does)."""
    envelope = provider.encrypt("interop ✓", AAD)
    _, secret = _active_secret(key_file)
    data = AESGCM(secret).decrypt(
        _unb64(envelope["iv"]),
        _unb64(envelope["ct"]) + _unb64(envelope["tag"]),
        canonical_aad(AAD),
    )
    assert data.decode() == "interop ✓"


def test_no_expiry_field_unless_given(provider: LocalCryptoProvider) -> None:
    assert "expiresAt" not in provider.encrypt("x", AAD)


# --- canonical AAD -----------------------------------------------------------------------


def test_canonical_aad_sorts_member_texts_not_keys() -> None:
    assert canonical_aad({"a": 1, "a!": 2}) == b'{"a!":2,"a":1}'


def test_canonical_aad_folds_keys_and_values() -> None:
    aad = {_fullwidth("user"): _fullwidth("ABC"), "n": [_fullwidth("x1"), 2.5, None, True]}
    assert canonical_aad(aad) == b'{"n":["x1",2.5,null,true],"user":"ABC"}'


def test_canonical_aad_keeps_utf8_and_orders_by_utf16() -> None:
    # U+E000 sorts after U+1F600 in UTF-16 (surrogates are 0xD8xx) but before it by code point.
    aad = {"\ue000": 1, "\U0001f600": 2}
    assert canonical_aad(aad) == '{"😀":2,"\ue000":1}'.encode()


def test_angstrom_collision_is_refused() -> None:
    with pytest.raises(CryptoError, match="NFKC key collision"):
        canonical_aad({"\u212b": 1, "\u00c5": 2})
    with pytest.raises(CryptoError, match="NFKC key collision"):
        canonical_aad({"context": {"\u212b": 1, "\u00c5": 2}})


def test_angstrom_collision_is_refused_on_encrypt(provider: LocalCryptoProvider) -> None:
    with pytest.raises(CryptoError, match="NFKC key collision"):
        provider.encrypt("x", {"\u212b": 1, "\u00c5": 2})


def test_non_json_aad_is_refused(provider: LocalCryptoProvider) -> None:
    bad_aads: list[Any] = [{"when": datetime.now(UTC)}, {"n": float("nan")}, {1: "x"}, ["x"]]
    for bad in bad_aads:
        with pytest.raises(CryptoError):
            provider.encrypt("x", bad)


def test_fullwidth_aad_decrypts_with_ascii_aad(provider: LocalCryptoProvider) -> None:
    fullwidth = {**AAD, "context": {_fullwidth("tenant"): _fullwidth("ACME-01")}}
    ascii_aad = {**AAD, "context": {"tenant": "ACME-01"}}
    envelope = provider.encrypt("secret", fullwidth)
    assert provider.decrypt(envelope, ascii_aad) == "secret"
    assert envelope["aadHash"] == provider.encrypt("secret", ascii_aad)["aadHash"]


# --- decrypt refusals, in order ----------------------------------------------------------


def test_changed_aad_is_an_aad_hash_mismatch(provider: LocalCryptoProvider) -> None:
    envelope = provider.encrypt("x", AAD)
    with pytest.raises(CryptoError, match=r"^AAD hash mismatch$"):
        provider.decrypt(envelope, {**AAD, "type": "phone"})


def test_changed_aad_without_hash_fails_authentication(provider: LocalCryptoProvider) -> None:
    envelope = provider.encrypt("x", AAD)
    del envelope["aadHash"]
    with pytest.raises(CryptoError, match="authentication failed"):
        provider.decrypt(envelope, {**AAD, "type": "phone"})


@pytest.mark.parametrize("field", ["ct", "tag", "iv"])
def test_tampered_field_fails_authentication(provider: LocalCryptoProvider, field: str) -> None:
    envelope = provider.encrypt("some plaintext", AAD)
    raw = bytearray(_unb64(envelope[field]))
    raw[0] ^= 0x80
    envelope[field] = _b64(bytes(raw))
    with pytest.raises(CryptoError, match="authentication failed"):
        provider.decrypt(envelope, AAD)


def test_expired_envelope(provider: LocalCryptoProvider) -> None:
    envelope = provider.encrypt("x", AAD, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(CryptoError, match=r"^Crypto envelope expired$"):
        provider.decrypt(envelope, AAD)


def test_expiry_is_checked_before_the_key(provider: LocalCryptoProvider) -> None:
    envelope = provider.encrypt("x", AAD, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    envelope["kid"] = "local-0-000000"
    with pytest.raises(CryptoError, match="expired"):
        provider.decrypt(envelope, AAD)


def test_invalid_expiry(provider: LocalCryptoProvider) -> None:
    envelope = provider.encrypt("x", AAD)
    envelope["expiresAt"] = "tomorrow-ish"
    with pytest.raises(CryptoError, match="expiresAt"):
        provider.decrypt(envelope, AAD)


def test_unknown_kid(provider: LocalCryptoProvider) -> None:
    envelope = provider.encrypt("x", AAD)
    envelope["kid"] = "local-0-000000"
    with pytest.raises(CryptoError, match=r"^Unknown key id$"):
        provider.decrypt(envelope, AAD)


def test_unknown_kid_is_checked_before_the_encoding(provider: LocalCryptoProvider) -> None:
    envelope = provider.encrypt("x", AAD)
    envelope["kid"] = "local-0-000000"
    envelope["aadEncoding"] = "nfkc-json-v9"
    with pytest.raises(CryptoError, match="Unknown key id"):
        provider.decrypt(envelope, AAD)


def test_unsupported_aad_encoding(provider: LocalCryptoProvider) -> None:
    envelope = provider.encrypt("x", AAD)
    envelope["aadEncoding"] = "nfkc-json-v9"
    with pytest.raises(CryptoError, match=r"^Unsupported crypto AAD encoding$"):
        provider.decrypt(envelope, AAD)


def test_unsupported_algorithm_comes_first(provider: LocalCryptoProvider) -> None:
    envelope = provider.encrypt("x", AAD, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    envelope["alg"] = "AES-128-CBC"
    with pytest.raises(CryptoError, match="Unsupported crypto algorithm"):
        provider.decrypt(envelope, AAD)


def test_missing_kid_uses_the_active_key(provider: LocalCryptoProvider) -> None:
    envelope = provider.encrypt("x", AAD)
    del envelope["kid"]
    assert provider.decrypt(envelope, AAD) == "x"


@pytest.mark.parametrize(
    "change",
    [{"iv": "***"}, {"ct": 7}, {"tag": "AAAA"}, {"iv": None}],
    ids=["iv-alphabet", "ct-type", "tag-length", "iv-missing"],
)
def test_malformed_envelope(provider: LocalCryptoProvider, change: dict[str, Any]) -> None:
    envelope = {**provider.encrypt("x", AAD), **change}
    with pytest.raises(CryptoError, match="Malformed"):
        provider.decrypt(envelope, AAD)


def test_errors_never_carry_the_plaintext(provider: LocalCryptoProvider) -> None:
    plaintext = "minji.kim@example.com"
    envelope = provider.encrypt(plaintext, AAD)
    with pytest.raises(CryptoError) as caught:
        provider.decrypt(envelope, {**AAD, "type": plaintext})
    assert plaintext not in str(caught.value)
    assert plaintext not in repr(caught.value)


# --- legacy v1 ---------------------------------------------------------------------------


def _v1_envelope(secret: bytes, kid: str, plaintext: str, aad: dict[str, Any]) -> dict[str, Any]:
    """A v1 envelope built by hand: json-stable-v1 AAD bytes, no NFKC, no aadEncoding."""
    aad_bytes = canonical_json(aad).encode()
    iv = os.urandom(12)
    sealed = AESGCM(secret).encrypt(iv, plaintext.encode(), aad_bytes)
    return {
        "v": 1,
        "alg": "AES-256-GCM",
        "kid": kid,
        "iv": _b64(iv),
        "ct": _b64(sealed[:-16]),
        "tag": _b64(sealed[-16:]),
        "aadHash": _b64(hashlib.sha256(aad_bytes).digest()),
        "createdAt": "2024-01-01T00:00:00.000Z",
    }


def test_legacy_v1_envelope_decrypts(provider: LocalCryptoProvider, key_file: Path) -> None:
    kid, secret = _active_secret(key_file)
    aad = {"z": _fullwidth("AB"), "a": [1, "x"]}
    envelope = _v1_envelope(secret, kid, "legacy value", aad)
    assert provider.decrypt(envelope, aad) == "legacy value"
    # v1 does not fold: the ASCII spelling is a different AAD.
    with pytest.raises(CryptoError, match="AAD hash mismatch"):
        provider.decrypt(envelope, {"z": "AB", "a": [1, "x"]})


def test_legacy_v1_without_hash_still_authenticates(
    provider: LocalCryptoProvider, key_file: Path
) -> None:
    kid, secret = _active_secret(key_file)
    envelope = _v1_envelope(secret, kid, "legacy value", AAD)
    del envelope["aadHash"]
    assert provider.decrypt(envelope, AAD) == "legacy value"
    with pytest.raises(CryptoError, match="authentication failed"):
        provider.decrypt(envelope, {**AAD, "type": "phone"})


# --- HMAC --------------------------------------------------------------------------------


def test_hmac_is_the_documented_construction(provider: LocalCryptoProvider, key_file: Path) -> None:
    _, secret = _active_secret(key_file)
    domain = "haechi:token-vault:deterministic:v1"
    derived = hmac.new(secret, domain.encode(), hashlib.sha256).digest()
    expected = hmac.new(derived, b"email:a@b.c", hashlib.sha256).hexdigest()
    assert provider.hmac("email:a@b.c", domain) == expected


@pytest.mark.parametrize("domain", ["", None, 3])
def test_hmac_refuses_bad_domains(provider: LocalCryptoProvider, domain: Any) -> None:
    with pytest.raises(CryptoError, match="domain"):
        provider.hmac("data", domain)


# --- conformance checker -----------------------------------------------------------------


class _Broken:
    """A provider with every defect the checker must report."""

    name = "broken"

    def encrypt(self, plaintext: str, aad: Any, *, expires_at: Any = None) -> dict[str, Any]:
        return {"ct": _b64(plaintext.encode())}

    def decrypt(self, envelope: Any, aad: Any) -> str:
        return _unb64(envelope["ct"]).decode()

    def hmac(self, data: str, domain: Any) -> str:
        return "00"


class _Identity(_Broken):
    """Round-trips and carries the fields, but authenticates nothing."""

    def encrypt(self, plaintext: str, aad: Any, *, expires_at: Any = None) -> dict[str, Any]:
        return {"kid": "k", "aadHash": "h", "ct": _b64(plaintext.encode())}

    def hmac(self, data: str, domain: Any) -> str:
        return hashlib.sha256(data.encode()).hexdigest()


def test_conformance_refuses_a_reused_nonce() -> None:
    with pytest.raises(CryptoError) as caught:
        assert_crypto_conformance(FixedNonceCrypto())
    assert "same plaintext twice gave the same ciphertext" in str(caught.value)


def test_conformance_refuses_an_envelope_holding_the_plaintext() -> None:
    with pytest.raises(CryptoError) as caught:
        assert_crypto_conformance(UnencryptedCrypto())
    assert str(caught.value).splitlines()[1:] == ["- the envelope holds the plaintext"]


def test_conformance_passes_for_the_local_provider(provider: LocalCryptoProvider) -> None:
    assert_crypto_conformance(provider)


def test_conformance_lists_every_failure() -> None:
    with pytest.raises(CryptoError) as caught:
        assert_crypto_conformance(_Identity())
    message = str(caught.value)
    assert message.startswith("cryptoProvider conformance failed:\n- ")
    for expected in (
        "changed AAD type accepted it",
        "flipped byte accepted it",
        "not domain-separated",
        "empty domain accepted it",
        "None domain accepted it",
    ):
        assert expected in message
    assert "did not return" not in message


def test_conformance_requires_kid_and_aad_hash() -> None:
    with pytest.raises(CryptoError, match="kid and aadHash"):
        assert_crypto_conformance(_Broken())


def test_conformance_without_hmac_when_not_required(provider: LocalCryptoProvider) -> None:
    class NoHmac:
        name = "no-hmac"
        encrypt = provider.encrypt
        decrypt = provider.decrypt

    assert_crypto_conformance(NoHmac(), require_hmac=False)
    with pytest.raises(CryptoError, match="hmac is missing"):
        assert_crypto_conformance(NoHmac())


def test_conformance_refuses_a_provider_without_decrypt() -> None:
    class EncryptOnly:
        def encrypt(self, plaintext: str, aad: Any) -> dict[str, Any]:
            return {}

    with pytest.raises(CryptoError, match="decrypt is missing"):
        assert_crypto_conformance(EncryptOnly())


def test_created_from_config(tmp_path: Path) -> None:
    from haechi.config import parse_config
    from haechi.plugins.manager import build_plugin_manager
    from haechi.providers import ProviderContext

    key_file = tmp_path / "k.json"
    init_key_file(key_file)
    config = parse_config({"keys": {"keyFile": str(key_file)}})
    hook = build_plugin_manager(load_entrypoints=False).hook
    classes = {cls.name: cls for batch in hook.haechi_register_crypto_providers() for cls in batch}
    provider = classes["local"].create(ProviderContext(config))
    assert isinstance(provider, LocalCryptoProvider)
    assert provider.decrypt(provider.encrypt("x", AAD), AAD) == "x"


def test_repr_names_the_file_only(provider: LocalCryptoProvider, key_file: Path) -> None:
    provider.encrypt("x", AAD)
    _, secret = _active_secret(key_file)
    text = repr(provider)
    assert str(key_file) in text
    assert _b64(secret) not in text
