# SPDX-License-Identifier: Apache-2.0
"""The built-in ``local`` crypto provider: AES-256-GCM over a local key file.

Envelope (v2, the reference system's format)::

    {"v": 2, "alg": "AES-256-GCM", "kid": ..., "iv": b64url(12 bytes), "ct": b64url,
     "tag": b64url(16 bytes), "aadHash": b64url(sha256(canonical AAD)),
     "aadEncoding": "nfkc-json-v2", "createdAt": ISO, "expiresAt": ISO (optional)}

``expiresAt`` is enforced on decrypt but is not authenticated (it is not part of the AAD),
exactly as in the reference; whoever needs it bound puts it in the AAD as well.

Decryption refuses, in this order: an unsupported ``alg``; an unsupported ``v``; a malformed or
past ``expiresAt``; an unknown ``kid``; an unsupported ``aadEncoding``; an ``aadHash`` that does
not match the given AAD; a malformed envelope; a failed GCM tag check. Envelopes without
``aadEncoding`` and with ``v`` other than 2 are legacy v1 and use the v1 AAD bytes.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from haechi.crypto._aad import AAD_ENCODING, aad_hash, canonical_aad, legacy_aad
from haechi.crypto._codec import (
    b64url_decode,
    b64url_encode,
    format_timestamp,
    parse_timestamp,
    utc_now,
)
from haechi.crypto._keyfile import ALG, LoadedKeys, LocalKey, load_key_file
from haechi.crypto._nonce import NonceLedger
from haechi.errors import CryptoError

if TYPE_CHECKING:
    from haechi.providers import ProviderContext

__all__ = ["LocalCryptoProvider"]

_IV_BYTES: Final = 12
_TAG_BYTES: Final = 16
_MAX_DERIVED: Final = 64
_TEXT_ERRORS: Final = "surrogatepass"
_log = logging.getLogger("haechi.crypto")


def _check_expiry(envelope: Mapping[str, Any]) -> None:
    raw = envelope.get("expiresAt")
    if raw is None:
        return
    try:
        if not isinstance(raw, str):
            raise ValueError("not a string")
        expires = parse_timestamp(raw)
    except ValueError:
        raise CryptoError("Invalid crypto envelope expiresAt") from None
    if utc_now() >= expires:
        raise CryptoError("Crypto envelope expired")


def _field_bytes(envelope: Mapping[str, Any], name: str) -> bytes:
    raw = envelope.get(name)
    if not isinstance(raw, str):
        raise CryptoError("Malformed crypto envelope")
    try:
        return b64url_decode(raw)
    except ValueError:
        raise CryptoError("Malformed crypto envelope") from None


class LocalCryptoProvider:
    """AES-256-GCM envelopes and domain-separated HMAC under a local key file.

    Keys are read on first use and cached; the active key encrypts, every key in the file
    decrypts (by ``kid``). Safe to share between threads.

    A running process follows rotations (``haechi init --force`` from another process): at
    most every ``recheck_seconds`` the file is looked at again and read back if it was
    replaced, and an envelope under a key id the cache does not know (made by a process that
    saw the rotation first) makes it look at once. A file that has become unreadable or
    invalid since it was read leaves the keys in memory in use (they are still valid) until
    it can be read again.

    A key id names one secret for the life of the process: a file that gives an id it has
    read another secret (edited by hand, or copied over from another deployment) is refused
    the same way, with a warning on the ``haechi.crypto`` logger naming the id. Taking it
    would leave every envelope and token made under that id undecryptable and split the
    process between two secrets under one name (ciphers and HMAC keys are cached by id).
    """

    name: ClassVar[str] = "local"

    def __init__(self, key_file: str | os.PathLike[str], *, recheck_seconds: float = 1.0) -> None:
        self._key_file = Path(key_file)
        self._recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._loaded: LoadedKeys | None = None
        self._loaded_from: tuple[int, int, int, int] | None = None
        self._next_check = 0.0
        self._ledger: NonceLedger | None = None
        self._ciphers: dict[str, AESGCM] = {}
        self._derived: dict[tuple[str, str], bytes] = {}
        #: SHA-256 of the secret of every key id read so far, and the file last refused
        #: for giving one of them another secret (so it is reported once, not every look).
        self._digests: dict[str, bytes] = {}
        self._refused_from: tuple[int, int, int, int] | None = None

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        """Build the provider over ``keys.keyFile``."""
        return cls(context.config.keys.key_file)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key_file={str(self._key_file)!r})"

    # --- keys ---------------------------------------------------------------------------

    def _keys(self, *, recheck: bool = False) -> LoadedKeys:
        """The keys, read again first if the file was replaced since (looked at no more
        often than every ``recheck_seconds`` unless ``recheck``)."""
        loaded = self._loaded
        now = time.monotonic()
        if loaded is None or recheck or now >= self._next_check:
            with self._lock:
                if self._loaded is None or recheck or now >= self._next_check:
                    self._next_check = now + self._recheck_seconds
                    self._reload()
                loaded = self._loaded
            assert loaded is not None  # _reload sets it or raises
        return loaded

    def _reload(self) -> None:
        """Read the file if it is not the one the keys came from (under the lock)."""
        try:
            st = os.stat(self._key_file)
            identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            identity = None
        if self._loaded is not None and (
            identity is None or identity in (self._loaded_from, self._refused_from)
        ):
            return
        try:
            keys = load_key_file(self._key_file)
        except CryptoError:
            if self._loaded is None:
                raise
            return
        changed = self._changed_secrets(keys)
        if changed:
            self._refused_from = identity
            _log.warning(
                "HAECHI_KEY_SECRET_CHANGED: key file %s gives key id(s) %s another secret "
                "than the one in use; the file is refused and the keys read before stay in "
                "use (what was encrypted under an id needs its first secret: put it back, "
                "or rotate with 'haechi init --force')",
                self._key_file,
                ", ".join(changed),
            )
            return
        for key in keys.keys.values():
            self._digests[key.kid] = hashlib.sha256(key.secret).digest()
        if self._loaded is None or keys.active.kid != self._loaded.active.kid:
            self._ledger = NonceLedger(self._key_file, keys.active.kid)
        self._loaded, self._loaded_from = keys, identity

    def _changed_secrets(self, keys: LoadedKeys) -> list[str]:
        """Ids of ``keys`` that this process read before with another secret."""
        return [
            key.kid
            for key in keys.keys.values()
            if key.kid in self._digests
            and not _hmac.compare_digest(
                self._digests[key.kid], hashlib.sha256(key.secret).digest()
            )
        ]

    def _cipher(self, key: LocalKey) -> AESGCM:
        cipher = self._ciphers.get(key.kid)
        if cipher is None:
            cipher = self._ciphers[key.kid] = AESGCM(key.secret)
        return cipher

    def _claim_nonce(self) -> LocalKey:
        """Count one encryption against the active key's budget and return that key (read
        under the lock with its ledger, so a rotation in between cannot split them)."""
        self._keys()
        with self._lock:
            assert self._ledger is not None  # set together with _loaded
            assert self._loaded is not None
            self._ledger.take()
            return self._loaded.active

    # --- CryptoProvider -----------------------------------------------------------------

    def encrypt(
        self, plaintext: str, aad: Mapping[str, Any], *, expires_at: datetime | None = None
    ) -> dict[str, Any]:
        """Encrypt ``plaintext`` bound to ``aad`` under the active key.

        Raises:
            CryptoError: the AAD is invalid, ``expires_at`` is naive, the key file is unusable,
                or the key's encryption budget is spent.
        """
        if not isinstance(plaintext, str):
            raise TypeError("plaintext must be a str")
        aad_bytes = canonical_aad(aad)
        expires = None
        if expires_at is not None:
            try:
                expires = format_timestamp(expires_at)
            except ValueError:
                raise CryptoError("expiresAt must be a timezone-aware datetime") from None
        key = self._claim_nonce()
        iv = secrets.token_bytes(_IV_BYTES)
        sealed = self._cipher(key).encrypt(iv, plaintext.encode("utf-8", _TEXT_ERRORS), aad_bytes)
        envelope: dict[str, Any] = {
            "v": 2,
            "alg": ALG,
            "kid": key.kid,
            "iv": b64url_encode(iv),
            "ct": b64url_encode(sealed[:-_TAG_BYTES]),
            "tag": b64url_encode(sealed[-_TAG_BYTES:]),
            "aadHash": aad_hash(aad_bytes),
            "aadEncoding": AAD_ENCODING,
            "createdAt": format_timestamp(utc_now()),
        }
        if expires is not None:
            envelope["expiresAt"] = expires
        return envelope

    def decrypt(self, envelope: Mapping[str, Any], aad: Mapping[str, Any]) -> str:
        """Return the plaintext of ``envelope`` if it is genuine, current and bound to ``aad``.

        Raises:
            CryptoError: with a fixed message naming the first check that failed.
        """
        if not isinstance(envelope, Mapping):
            raise CryptoError("Malformed crypto envelope")
        if envelope.get("alg", ALG) != ALG:
            raise CryptoError("Unsupported crypto algorithm")
        version = envelope.get("v")
        if version not in (None, 1, 2) or isinstance(version, bool):
            raise CryptoError("Unsupported crypto envelope version")
        _check_expiry(envelope)
        key = self._key_for(envelope.get("kid"))
        encoding = envelope.get("aadEncoding")
        if encoding is not None and encoding != AAD_ENCODING:
            raise CryptoError("Unsupported crypto AAD encoding")
        aad_bytes = (
            canonical_aad(aad) if encoding == AAD_ENCODING or version == 2 else (legacy_aad(aad))
        )
        expected = envelope.get("aadHash")
        if expected is not None and (
            not isinstance(expected, str)
            or not _hmac.compare_digest(expected.encode(), aad_hash(aad_bytes).encode())
        ):
            raise CryptoError("AAD hash mismatch")
        iv = _field_bytes(envelope, "iv")
        tag = _field_bytes(envelope, "tag")
        ct = _field_bytes(envelope, "ct")
        if len(tag) != _TAG_BYTES or not 8 <= len(iv) <= 128:
            raise CryptoError("Malformed crypto envelope")
        try:
            data = self._cipher(key).decrypt(iv, ct + tag, aad_bytes)
        except InvalidTag:
            raise CryptoError("Crypto envelope authentication failed") from None
        return data.decode("utf-8", _TEXT_ERRORS)

    def _key_for(self, kid: Any) -> LocalKey:
        loaded = self._keys()
        if kid is None:
            return loaded.active
        if not isinstance(kid, str):
            raise CryptoError("Unknown key id")
        key = loaded.keys.get(kid)
        if key is None:
            key = self._keys(recheck=True).keys.get(kid)
        if key is None:
            raise CryptoError("Unknown key id")
        return key

    def load(self) -> None:
        """Read the keys now rather than on first use.

        ``haechi proxy`` calls this before it listens: a key file that is missing or invalid
        is then an error at start, naming the file, instead of a failure of every request
        that needs a key (tokens, envelopes, bearer-token hashes).

        Raises:
            CryptoError: the key file cannot be read or is invalid.
        """
        self._keys()

    async def ready(self) -> bool:
        """Whether the keys can be had: read already, or readable now (the readiness probe's
        check). Keys read before stay in use while their file is unreadable, so a process
        that has them is ready."""
        try:
            self._keys()
        except CryptoError:
            return False
        return True

    def hmac(self, data: str, domain: str) -> str:
        """Hex HMAC-SHA256 of ``data`` under HMAC-SHA256(active key, ``domain``).

        Deriving a key per domain keeps token ids, audit ids and identity hashes unlinkable
        to each other even though one key backs them all.

        Raises:
            CryptoError: ``domain`` is not a non-empty string, or the key file is unusable.
        """
        if not isinstance(domain, str) or not domain:
            raise CryptoError("hmac domain must be a non-empty string")
        if not isinstance(data, str):
            raise TypeError("hmac data must be a str")
        active = self._keys().active
        derived = self._derived.get((active.kid, domain))
        if derived is None:
            derived = _derive(active, domain)
            if len(self._derived) >= _MAX_DERIVED:
                self._derived.clear()
            self._derived[active.kid, domain] = derived
        return _hmac.new(derived, data.encode("utf-8", _TEXT_ERRORS), hashlib.sha256).hexdigest()

    def retired_hmacs(self, data: str, domain: str) -> tuple[str, ...]:
        """:meth:`hmac` of ``data`` under each key of the file but the active one, so that a
        value hashed before a rotation (a gateway bearer token in its store) is recognised
        after it, as envelopes made before it still decrypt. Not cached: it is asked only
        when the active key's hash matched nothing."""
        if not isinstance(domain, str) or not domain:
            raise CryptoError("hmac domain must be a non-empty string")
        loaded = self._keys()
        payload = data.encode("utf-8", _TEXT_ERRORS)
        return tuple(
            _hmac.new(_derive(key, domain), payload, hashlib.sha256).hexdigest()
            for key in loaded.keys.values()
            if key.kid != loaded.active.kid
        )


def _derive(key: LocalKey, domain: str) -> bytes:
    """The HMAC key of ``domain`` under ``key``: HMAC-SHA256(key, domain)."""
    return _hmac.digest(key.secret, domain.encode("utf-8", _TEXT_ERRORS), hashlib.sha256)
