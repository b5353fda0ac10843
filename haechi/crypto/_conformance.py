# SPDX-License-Identifier: Apache-2.0
"""A runtime conformance check for any crypto provider.

The runtime runs it before trusting an injected or plugin provider: it encrypts and
decrypts real data and collects every broken property instead of stopping at the first, so
a provider author sees the whole list at once. A failure names the check, and the type of an
exception the provider raised, never its message: a provider's own error text may quote
the plaintext or key material.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

from haechi.crypto._codec import b64url_decode, b64url_encode
from haechi.errors import CryptoError

__all__ = ["assert_crypto_conformance"]

_DOMAIN_A = "haechi:conformance:a:v1"
_DOMAIN_B = "haechi:conformance:b:v1"
_TIMESTAMPS = frozenset({"createdAt", "expiresAt"})


def _rejects(call: Callable[[], object], accepted: tuple[type[BaseException], ...]) -> str | None:
    """Return ``None`` if ``call`` raised one of ``accepted``, else what happened instead."""
    try:
        call()
    except accepted:
        return None
    except Exception as exc:
        return f"raised {type(exc).__name__} instead of CryptoError"
    return "accepted it"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _b64_decode(text: str) -> bytes:
    stripped = text.rstrip("=")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc


def _holds_plaintext(envelope: dict[str, Any], plaintext: str) -> bool:
    """Whether ``plaintext`` can be read off ``envelope``: as text, or within the bytes of a
    field written in base64url, base64 or hex."""
    data = plaintext.encode("utf-8")
    for text in _strings(envelope):
        if plaintext in text:
            return True
        for decode in (b64url_decode, _b64_decode, bytes.fromhex):
            try:
                if data in decode(text):
                    return True
            except ValueError:
                continue
    return False


def _round_trip(provider: Any, aad: dict[str, Any], failures: list[str]) -> dict[str, Any] | None:
    plaintexts = (f"conformance-{secrets.token_hex(8)}@example.com", "conformance ✓ 두 번째")
    first: dict[str, Any] | None = None
    for plaintext in plaintexts:
        try:
            envelope = provider.encrypt(plaintext, aad)
            if provider.decrypt(envelope, aad) != plaintext:
                failures.append("decrypt did not return the encrypted plaintext")
        except Exception as exc:
            failures.append(f"round trip raised {type(exc).__name__}")
            return None
        if not isinstance(envelope, dict) or "kid" not in envelope or "aadHash" not in envelope:
            failures.append("envelope must be a dict carrying kid and aadHash")
            return None
        try:
            json.dumps(envelope, allow_nan=False)
        except (TypeError, ValueError):
            failures.append("envelope must contain only JSON values")
        if _holds_plaintext(envelope, plaintext):
            failures.append("the envelope holds the plaintext")
        first = first or envelope
    return first


def _sealed(envelope: Any) -> Any:
    """What must differ between two encryptions of one plaintext: the ciphertext when the
    envelope has one, else the envelope without its timestamps."""
    if isinstance(envelope, dict):
        ct = envelope.get("ct")
        if isinstance(ct, str) and ct:
            return ct
        return {key: value for key, value in envelope.items() if key not in _TIMESTAMPS}
    return envelope


def _fresh_nonce_check(provider: Any, aad: dict[str, Any], failures: list[str]) -> None:
    # Under GCM a nonce used twice gives away the XOR of the two plaintexts and the
    # authentication key (so forgeries), yet every other check here still passes.
    plaintext = f"conformance-{secrets.token_hex(8)}"
    try:
        first = provider.encrypt(plaintext, aad)
        second = provider.encrypt(plaintext, aad)
    except Exception as exc:
        failures.append(f"encrypting one plaintext twice raised {type(exc).__name__}")
        return
    if _sealed(first) == _sealed(second):
        failures.append(
            "encrypting the same plaintext twice gave the same ciphertext (a reused nonce)"
        )


def _tamper_checks(
    provider: Any, envelope: dict[str, Any], aad: dict[str, Any], failures: list[str]
) -> None:
    other_aad = {**aad, "type": "phone"}
    problem = _rejects(lambda: provider.decrypt(envelope, other_aad), (CryptoError,))
    if problem:
        failures.append(f"decrypt with a changed AAD type {problem}")
    ct = envelope.get("ct")
    if isinstance(ct, str) and ct:
        try:
            raw = bytearray(b64url_decode(ct))
        except ValueError:
            return
        if raw:
            raw[0] ^= 0x01
            flipped = {**envelope, "ct": b64url_encode(bytes(raw))}
            problem = _rejects(lambda: provider.decrypt(flipped, aad), (CryptoError,))
            if problem:
                failures.append(f"decrypt of a ciphertext with a flipped byte {problem}")


def _hmac_checks(provider: Any, failures: list[str]) -> None:
    hmac = getattr(provider, "hmac", None)
    if not callable(hmac):
        failures.append("hmac is missing")
        return
    try:
        first = hmac("conformance", _DOMAIN_A)
        if not isinstance(first, str) or not first:
            failures.append("hmac must return a non-empty string")
        if hmac("conformance", _DOMAIN_A) != first:
            failures.append("hmac is not deterministic")
        if hmac("conformance-other", _DOMAIN_A) == first:
            failures.append("hmac does not depend on the data")
        if hmac("conformance", _DOMAIN_B) == first:
            failures.append("hmac is not domain-separated")
    except Exception as exc:
        failures.append(f"hmac raised {type(exc).__name__}")
        return
    bad_domains: tuple[tuple[str, str | None], ...] = (("an empty", ""), ("a None", None))
    for label, domain in bad_domains:
        problem = _rejects(
            functools.partial(hmac, "conformance", domain), (CryptoError, TypeError, ValueError)
        )
        if problem:
            failures.append(f"hmac with {label} domain {problem}")


def assert_crypto_conformance(provider: Any, *, require_hmac: bool = True) -> None:
    """Check that ``provider`` behaves as a crypto provider must.

    Checks: two different plaintexts round-trip; envelopes are JSON dicts carrying ``kid``
    and ``aadHash`` and do not hold the plaintext (as text, base64url, base64 or hex); one
    plaintext encrypted twice gives two ciphertexts (no reused nonce);
    a changed AAD and a flipped ciphertext byte are refused with
    ``CryptoError``; and (when ``require_hmac`` or the provider has ``hmac``) HMAC is
    deterministic, data-dependent, domain-separated and refuses empty or ``None`` domains.

    Raises:
        CryptoError: ``encrypt``/``decrypt`` are missing, or any check failed; the message
            lists every failure, one per line.
    """
    for method in ("encrypt", "decrypt"):
        if not callable(getattr(provider, method, None)):
            raise CryptoError(f"cryptoProvider conformance failed: {method} is missing")
    failures: list[str] = []
    aad = {"purpose": "conformance", "type": "email", "context": {"check": secrets.token_hex(4)}}
    envelope = _round_trip(provider, aad, failures)
    if envelope is not None:
        _fresh_nonce_check(provider, aad, failures)
        _tamper_checks(provider, envelope, aad, failures)
    if require_hmac or hasattr(provider, "hmac"):
        _hmac_checks(provider, failures)
    if failures:
        raise CryptoError(
            "cryptoProvider conformance failed:\n"
            + "\n".join(f"- {item}" for item in dict.fromkeys(failures))
        )
