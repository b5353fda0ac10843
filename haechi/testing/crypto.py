# SPDX-License-Identifier: Apache-2.0
"""Contract suite for :class:`haechi.providers.CryptoProvider` implementations.

Subclass it in a test module and provide one fixture, ``crypto_provider``, returning a
ready provider::

    from haechi.testing.crypto import CryptoProviderContract

    class TestKmsCrypto(CryptoProviderContract):
        @pytest.fixture
        def crypto_provider(self, kms_key):
            return KmsCryptoProvider(kms_key)

What it pins: a declared ``name``; :func:`haechi.crypto.assert_crypto_conformance` passes;
any text (empty, non-ASCII, astral) round-trips; envelopes are JSON dicts carrying ``kid``
and ``aadHash`` and differ for equal plaintexts (fresh IVs); AAD member order does not matter
and AADs compare after NFKC (``canonical_aad``); a changed AAD, any tampered envelope field,
a past ``expiresAt`` and a naive expiry are refused with ``CryptoError``; HMAC is hex,
deterministic, data-dependent and domain-separated and refuses empty domains.
"""

from __future__ import annotations

import copy
import json
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from haechi.crypto import assert_crypto_conformance
from haechi.errors import CryptoError
from haechi.providers import CryptoProvider

__all__ = ["CryptoProviderContract"]

_AAD: dict[str, Any] = {
    "purpose": "token-vault",
    "token": "tok_email_0123456789abcdef",
    "type": "email",
    "context": {"protocol": "openai", "direction": "request", "correlationId": "c-1"},
}


def _flip(text: str) -> str:
    """Change one base64url character of ``text`` (the middle one) to another."""
    index = len(text) // 2
    alphabet = string.ascii_letters + string.digits + "-_"
    replacement = alphabet[(alphabet.index(text[index]) + 1) % len(alphabet)]
    return text[:index] + replacement + text[index + 1 :]


def _fullwidth(text: str) -> str:
    """The full-width compatibility spelling of printable ASCII ``text`` (NFKC folds it back)."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


class CryptoProviderContract:
    """Inherit, and define the ``crypto_provider`` fixture."""

    def test_declares_a_name(self, crypto_provider: CryptoProvider) -> None:
        assert isinstance(type(crypto_provider).name, str)
        assert type(crypto_provider).name

    def test_passes_the_conformance_check(self, crypto_provider: CryptoProvider) -> None:
        assert_crypto_conformance(crypto_provider)

    @pytest.mark.parametrize(
        "plaintext", ["", "minji.kim@example.com", "비밀 ✓ ü", "😀" * 3, "x" * 10_000]
    )
    def test_round_trip(self, crypto_provider: CryptoProvider, plaintext: str) -> None:
        envelope = crypto_provider.encrypt(plaintext, _AAD)
        assert crypto_provider.decrypt(envelope, _AAD) == plaintext

    def test_envelope_is_json_with_kid_and_aad_hash(self, crypto_provider: CryptoProvider) -> None:
        envelope = crypto_provider.encrypt("value", _AAD)
        assert isinstance(envelope, dict)
        assert envelope["kid"]
        assert envelope["aadHash"]
        assert json.loads(json.dumps(envelope, allow_nan=False)) == envelope
        restored = json.loads(json.dumps(envelope))
        assert crypto_provider.decrypt(restored, _AAD) == "value"

    def test_envelope_does_not_contain_the_plaintext(self, crypto_provider: CryptoProvider) -> None:
        plaintext = "contract-plaintext-4242@example.com"
        envelope = crypto_provider.encrypt(plaintext, _AAD)
        assert plaintext not in json.dumps(envelope)

    def test_equal_plaintexts_give_different_envelopes(
        self, crypto_provider: CryptoProvider
    ) -> None:
        first = crypto_provider.encrypt("same", _AAD)
        second = crypto_provider.encrypt("same", _AAD)
        assert first != second

    def test_aad_member_order_does_not_matter(self, crypto_provider: CryptoProvider) -> None:
        envelope = crypto_provider.encrypt("value", _AAD)
        reordered = dict(reversed(list(_AAD.items())))
        assert crypto_provider.decrypt(envelope, reordered) == "value"

    def test_aad_compares_after_nfkc(self, crypto_provider: CryptoProvider) -> None:
        ascii_aad = {**_AAD, "context": {"user": "ABC123", "tenant": "acme"}}
        fullwidth = {
            **_AAD,
            "context": {_fullwidth("user"): _fullwidth("ABC123"), "tenant": _fullwidth("acme")},
        }
        envelope = crypto_provider.encrypt("value", fullwidth)
        assert crypto_provider.decrypt(envelope, ascii_aad) == "value"

    @pytest.mark.parametrize(
        "change",
        [
            {"type": "phone"},
            {"token": "tok_email_fedcba9876543210"},
            {"context": {}},
            {"extra": True},
        ],
        ids=["type", "token", "context", "extra-member"],
    )
    def test_changed_aad_is_refused(
        self, crypto_provider: CryptoProvider, change: dict[str, Any]
    ) -> None:
        envelope = crypto_provider.encrypt("value", _AAD)
        with pytest.raises(CryptoError):
            crypto_provider.decrypt(envelope, {**_AAD, **change})

    def test_tampered_fields_are_refused(self, crypto_provider: CryptoProvider) -> None:
        envelope = crypto_provider.encrypt("a value long enough to tamper with", _AAD)
        tampered_any = False
        for name in ("ct", "iv", "tag", "kid", "aadHash"):
            value = envelope.get(name)
            if not isinstance(value, str) or not value:
                continue
            tampered_any = True
            forged = copy.deepcopy(envelope)
            forged[name] = _flip(value)
            with pytest.raises(CryptoError):
                crypto_provider.decrypt(forged, _AAD)
        assert tampered_any

    def test_garbage_envelopes_are_refused(self, crypto_provider: CryptoProvider) -> None:
        for garbage in ({}, {"ct": 1, "iv": None}, {"v": 2, "kid": "nope", "ct": "%%%"}):
            with pytest.raises(CryptoError):
                crypto_provider.decrypt(garbage, _AAD)

    def test_expired_envelope_is_refused(self, crypto_provider: CryptoProvider) -> None:
        past = datetime.now(UTC) - timedelta(seconds=1)
        envelope = crypto_provider.encrypt("value", _AAD, expires_at=past)
        with pytest.raises(CryptoError):
            crypto_provider.decrypt(envelope, _AAD)

    def test_future_expiry_decrypts(self, crypto_provider: CryptoProvider) -> None:
        future = datetime.now(UTC) + timedelta(days=1)
        envelope = crypto_provider.encrypt("value", _AAD, expires_at=future)
        assert envelope.get("expiresAt")
        assert crypto_provider.decrypt(envelope, _AAD) == "value"

    def test_naive_expiry_is_refused(self, crypto_provider: CryptoProvider) -> None:
        with pytest.raises(CryptoError):
            crypto_provider.encrypt("value", _AAD, expires_at=datetime(2030, 1, 1))

    def test_hmac_properties(self, crypto_provider: CryptoProvider) -> None:
        first = crypto_provider.hmac("data", "haechi:contract:a:v1")
        assert first == crypto_provider.hmac("data", "haechi:contract:a:v1")
        assert int(first, 16) >= 0
        assert first == first.lower()
        assert first != crypto_provider.hmac("datb", "haechi:contract:a:v1")
        assert first != crypto_provider.hmac("data", "haechi:contract:b:v1")

    def test_hmac_refuses_an_empty_domain(self, crypto_provider: CryptoProvider) -> None:
        with pytest.raises(CryptoError):
            crypto_provider.hmac("data", "")
