# SPDX-License-Identifier: Apache-2.0
"""Ed25519 signing of auth-plugin envelopes.

An envelope is ``{payload, signerKeyId, alg, signature}``. The payload names the plugin, its
kind, version, capabilities, the core versions it supports, the SHA-256 of the exact entry
bytes and an optional validity window. The signature covers the UTF-8 bytes of the payload's
canonical JSON (json-stable-v1, shared with the audit chain), so an envelope signed by the
reference tooling verifies here and the other way round. There is no algorithm agility:
``alg`` is always ``"ed25519"`` and anything else is refused by the trust gate.

Private keys only ever come from files (PKCS#8 PEM); public keys (trust anchors) are SPKI PEM.
Nothing in this module prints or logs key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from haechi._canonical import canonical_json

__all__ = [
    "ALG",
    "KeyPair",
    "build_payload",
    "entry_sha256",
    "generate_keypair",
    "load_private_key",
    "load_public_key",
    "manifest_sha256",
    "sign_payload",
    "signed_bytes",
    "verify_signature",
]

#: The only signature algorithm an envelope may name.
ALG: Final = "ed25519"


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A fresh signing key: PKCS#8 PEM private key and SPKI PEM public key."""

    private_pem: bytes = field(repr=False)
    public_pem: str


def generate_keypair() -> KeyPair:
    """Create a new Ed25519 signing key."""
    private = Ed25519PrivateKey.generate()
    return KeyPair(
        private_pem=private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        public_pem=private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii"),
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """Parse an unencrypted PKCS#8 PEM Ed25519 private key.

    Raises ``ValueError`` (without echoing the input) when it is anything else.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except UnsupportedAlgorithm:
        raise ValueError("the signing key is not an Ed25519 key") from None
    except (ValueError, TypeError) as exc:
        raise ValueError("not an unencrypted PKCS#8 PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the signing key is not an Ed25519 key")
    return key


def load_public_key(anchor: object) -> Ed25519PublicKey:
    """Resolve a trust anchor to an Ed25519 public key.

    Accepts a key object, an SPKI PEM (``str`` or ``bytes``) or a ``{"publicKey": ...}``
    wrapper. Raises ``ValueError`` for anything that is not an Ed25519 public key.
    """
    if isinstance(anchor, Ed25519PublicKey):
        return anchor
    if isinstance(anchor, Mapping):
        return load_public_key(anchor.get("publicKey"))
    if isinstance(anchor, str):
        anchor = anchor.encode("utf-8")
    if not isinstance(anchor, bytes):
        raise ValueError("a trust anchor must be an SPKI PEM public key")
    try:
        key = serialization.load_pem_public_key(anchor)
    except UnsupportedAlgorithm:
        # A well-formed key of an algorithm the library does not know (not a ValueError).
        raise ValueError("the trust anchor is not an Ed25519 key") from None
    except (ValueError, TypeError) as exc:
        raise ValueError("the trust anchor is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the trust anchor is not an Ed25519 key")
    return key


def entry_sha256(entry: bytes) -> str:
    """Lowercase hex SHA-256 of the exact entry bytes."""
    return hashlib.sha256(entry).hexdigest()


def signed_bytes(payload: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: UTF-8 of the payload's canonical JSON."""
    return canonical_json(dict(payload)).encode("utf-8")


def manifest_sha256(payload: Mapping[str, Any]) -> str:
    """SHA-256 of the signed payload bytes: what ``pin.manifestSha256`` names."""
    return hashlib.sha256(signed_bytes(payload)).hexdigest()


def build_payload(
    *,
    plugin_id: str,
    kind: str,
    version: str,
    capabilities: Mapping[str, Any],
    core_range: str,
    entry: bytes,
    not_before: int | None = None,
    not_after: int | None = None,
) -> dict[str, Any]:
    """Assemble the payload that binds ``entry`` to its plugin metadata."""
    return {
        "pluginId": plugin_id,
        "kind": kind,
        "version": version,
        "capabilities": dict(capabilities),
        "coreVersionRange": core_range,
        "entrySha256": entry_sha256(entry),
        "notBefore": not_before,
        "notAfter": not_after,
    }


def sign_payload(
    payload: Mapping[str, Any], private_key: Ed25519PrivateKey, signer_key_id: str
) -> dict[str, Any]:
    """Return the envelope: ``payload`` signed by ``private_key`` under ``signer_key_id``."""
    signature = private_key.sign(signed_bytes(payload))
    return {
        "payload": dict(payload),
        "signerKeyId": signer_key_id,
        "alg": ALG,
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def verify_signature(
    payload: Mapping[str, Any], signature_b64: str, public_key: Ed25519PublicKey
) -> bool:
    """True when ``signature_b64`` (standard padded base64) signs ``payload`` under the key."""
    try:
        signature = base64.b64decode(signature_b64.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return False
    try:
        public_key.verify(signature, signed_bytes(payload))
    except InvalidSignature:
        return False
    return True
