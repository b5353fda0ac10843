# SPDX-License-Identifier: Apache-2.0
"""A crypto provider that is not haechi's own is probed before it is trusted.

Before, the runtime composed an injected or plugin crypto provider unchecked: one that
reused nonces, left the plaintext readable in its envelopes or decrypted under any AAD was
handed every value the vault and the ``encrypt`` action protect.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from haechi.errors import ProviderError
from haechi.runtime import create_runtime
from tests.cli import run_haechi
from tests.plugins.crypto_providers import (
    AnyAadCrypto,
    FixedNonceCrypto,
    GoodCrypto,
    LeakyErrorCrypto,
    UnencryptedCrypto,
    install_as_plugin,
)

ROOT = Path(__file__).resolve().parents[1]
BROKEN = [
    (FixedNonceCrypto, "the same ciphertext (a reused nonce)"),
    (UnencryptedCrypto, "the envelope holds the plaintext"),
    (AnyAadCrypto, "decrypt with a changed AAD type accepted it"),
]


def _settings(tmp_path: Path, **keys: Any) -> dict[str, Any]:
    return {
        "policy": {"mode": "enforce", "actions": {"email": "tokenize"}},
        "keys": {"keyFile": str(tmp_path / "keys.json"), **keys},
        "audit": {"path": str(tmp_path / "audit.jsonl")},
        "tokenVault": {"provider": "memory"},
    }


async def _works(runtime: Any) -> None:
    """Tokenize a value into the vault and restore it: the provider is used both ways."""
    try:
        result = await runtime.protect({"content": "mail minji.kim@example.com"})
        (token,) = result.issued_tokens
        restored = await runtime.detokenize(result.payload, [token])
        assert restored == {"content": "mail minji.kim@example.com"}
    finally:
        await runtime.aclose()


@pytest.mark.parametrize(("provider", "check"), BROKEN, ids=[cls.name for cls, _ in BROKEN])
def test_an_injected_provider_that_breaks_the_contract_is_refused(
    tmp_path: Path, provider: type[GoodCrypto], check: str
) -> None:
    with pytest.raises(ProviderError) as info:
        create_runtime(_settings(tmp_path), {"crypto": provider()})
    message = str(info.value)
    assert message.startswith("the injected crypto provider is refused: ")
    assert check in message
    assert not (tmp_path / "audit.jsonl").exists()


def test_the_refusal_names_the_check_never_the_key_or_the_plaintext(tmp_path: Path) -> None:
    provider = LeakyErrorCrypto()
    with pytest.raises(ProviderError) as info:
        create_runtime(_settings(tmp_path), {"crypto": provider})
    message = str(info.value)
    assert "- round trip raised CryptoError" in message
    assert provider.secret.hex() not in message
    assert "conformance-" not in message


@pytest.mark.anyio
async def test_an_injected_provider_that_keeps_the_contract_is_used(tmp_path: Path) -> None:
    await _works(create_runtime(_settings(tmp_path), {"crypto": GoodCrypto()}))


@pytest.mark.anyio
async def test_a_plugin_provider_is_probed_when_selected_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(install_as_plugin(tmp_path / "site")))
    runtime = create_runtime(_settings(tmp_path, provider="test-aes-gcm"))
    assert isinstance(runtime.crypto, GoodCrypto)
    await _works(runtime)
    with pytest.raises(
        ProviderError, match=r"(?s)keys\.provider 'fixed-nonce' is refused: .*reused nonce"
    ):
        create_runtime(_settings(tmp_path, provider="fixed-nonce"))


def test_the_gateway_does_not_start_on_a_refused_plugin_provider(tmp_path: Path) -> None:
    site = install_as_plugin(tmp_path / "site")
    config = tmp_path / "haechi.config.json"
    settings = _settings(tmp_path, provider="unencrypted")
    config.write_text(json.dumps(settings))
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    argv = ("proxy", "--config", str(config), "--port", "0")
    result = run_haechi(*argv, cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 1
    assert "haechi: keys.provider 'unencrypted' is refused" in result.stderr
    assert "- the envelope holds the plaintext" in result.stderr
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stdout
    assert not (tmp_path / "audit.jsonl").exists()
