# SPDX-License-Identifier: Apache-2.0
"""Crypto providers for the tests: one that keeps the contract and some that break it.

Every one is real AES-256-GCM or HMAC-SHA256 work, not a stand-in: the broken ones fail
the way a careless implementation does, and pass the checks that do not look for their
defect. The module is also a plugin (its hook registers them all), installed by the tests
through an entry point as any third-party provider is.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from haechi import hookimpl
from haechi.crypto import canonical_aad
from haechi.crypto._codec import b64url_decode, b64url_encode
from haechi.errors import CryptoError
from haechi.providers import ProviderContext

__all__ = [
    "AnyAadCrypto",
    "FixedNonceCrypto",
    "GoodCrypto",
    "LeakyErrorCrypto",
    "UnencryptedCrypto",
    "haechi_register_crypto_providers",
    "install_as_plugin",
]


def _aad_hash(aad: Mapping[str, Any]) -> str:
    return b64url_encode(hashlib.sha256(canonical_aad(aad)).digest())


class GoodCrypto:
    """AES-256-GCM under a fresh random nonce, bound to the canonical AAD."""

    name: ClassVar[str] = "test-aes-gcm"

    def __init__(self) -> None:
        self.secret = AESGCM.generate_key(bit_length=256)
        self._aead = AESGCM(self.secret)
        self._hmac_key = os.urandom(32)

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        """A provider with keys of its own (the tests keep nothing across processes)."""
        return cls()

    def _nonce(self) -> bytes:
        return os.urandom(12)

    def encrypt(self, plaintext: str, aad: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        nonce = self._nonce()
        sealed = self._aead.encrypt(nonce, plaintext.encode(), canonical_aad(aad))
        return {
            "kid": "test",
            "aadHash": _aad_hash(aad),
            "iv": b64url_encode(nonce),
            "ct": b64url_encode(sealed),
        }

    def decrypt(self, envelope: Mapping[str, Any], aad: Mapping[str, Any]) -> str:
        try:
            nonce, sealed = b64url_decode(envelope["iv"]), b64url_decode(envelope["ct"])
            return self._aead.decrypt(nonce, sealed, canonical_aad(aad)).decode()
        except (KeyError, TypeError, ValueError, InvalidTag):
            raise CryptoError("Crypto envelope authentication failed") from None

    def hmac(self, data: str, domain: str) -> str:
        if not isinstance(domain, str) or not domain:
            raise CryptoError("hmac domain must be a non-empty string")
        key = hmac.digest(self._hmac_key, domain.encode(), "sha256")
        return hmac.new(key, data.encode(), hashlib.sha256).hexdigest()


class FixedNonceCrypto(GoodCrypto):
    """One nonce for ever: two ciphertexts XOR to their plaintexts' XOR, and GCM's
    authentication key can be recovered from them (forgeries follow)."""

    name: ClassVar[str] = "fixed-nonce"

    def _nonce(self) -> bytes:
        return b"\0" * 12


class AnyAadCrypto(GoodCrypto):
    """Authenticates no AAD: an envelope decrypts under any other record's AAD."""

    name: ClassVar[str] = "any-aad"

    def encrypt(self, plaintext: str, aad: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        return super().encrypt(plaintext, {})

    def decrypt(self, envelope: Mapping[str, Any], aad: Mapping[str, Any]) -> str:
        return super().decrypt(envelope, {})


class UnencryptedCrypto(GoodCrypto):
    """Authenticates plaintext and AAD under an HMAC, with a fresh nonce, but encrypts
    nothing: the value sits in the envelope in base64url."""

    name: ClassVar[str] = "unencrypted"

    def _tag(self, nonce: str, ct: str, aad: Mapping[str, Any]) -> str:
        message = nonce.encode() + ct.encode() + canonical_aad(aad)
        return hmac.new(self._hmac_key, message, hashlib.sha256).hexdigest()

    def encrypt(self, plaintext: str, aad: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        nonce, ct = b64url_encode(os.urandom(12)), b64url_encode(os.urandom(3) + plaintext.encode())
        return {
            "kid": "k",
            "aadHash": _aad_hash(aad),
            "iv": nonce,
            "ct": ct,
            "tag": self._tag(nonce, ct, aad),
        }

    def decrypt(self, envelope: Mapping[str, Any], aad: Mapping[str, Any]) -> str:
        expected = self._tag(envelope["iv"], envelope["ct"], aad)
        if not hmac.compare_digest(expected, envelope["tag"]):
            raise CryptoError("Crypto envelope authentication failed")
        return b64url_decode(envelope["ct"])[3:].decode()


class LeakyErrorCrypto(GoodCrypto):
    """Refuses every encryption with an error that quotes the plaintext and the key."""

    name: ClassVar[str] = "leaky-error"

    def encrypt(self, plaintext: str, aad: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        raise CryptoError(f"cannot seal {plaintext!r} under key {self.secret.hex()}")


@hookimpl
def haechi_register_crypto_providers() -> list[type[Any]]:
    """Every provider of this module, selected by ``keys.provider``."""
    return [GoodCrypto, FixedNonceCrypto, AnyAadCrypto, UnencryptedCrypto, LeakyErrorCrypto]


def install_as_plugin(directory: Path) -> Path:
    """Write into ``directory`` the metadata that makes this module an installed plugin
    (an entry point of the ``haechi`` group) once ``directory`` and the repository root are
    on the import path; return ``directory``."""
    info = directory / "haechi_test_crypto-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    metadata = "Metadata-Version: 2.1\nName: haechi-test-crypto\nVersion: 1.0\n"
    (info / "METADATA").write_text(metadata)
    (info / "entry_points.txt").write_text(f"[haechi]\ntest-crypto = {__name__}\n")
    return directory
