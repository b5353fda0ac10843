# SPDX-License-Identifier: Apache-2.0
"""A retention period no expiry can be written for.

``tokenVault.retentionDays`` has a lower bound only: a period reaching past the year 9999
(three million days, or ``Infinity``, which a JSON configuration file may hold) let the
runtime start and then failed every tokenization with an ``OverflowError``. It is now a
configuration error when the vault is built.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

import haechi
from haechi.config import load_config
from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.errors import ConfigError
from haechi.vault import MemoryTokenStore, TokenVault


@pytest.mark.parametrize("days", [3_000_000, float("inf"), float("nan"), -3_000_000])
def test_a_retention_past_the_calendar_is_refused(tmp_path: Path, days: float) -> None:
    init_key_file(tmp_path / "keys.json")
    crypto = LocalCryptoProvider(tmp_path / "keys.json")
    with pytest.raises(ConfigError, match="retentionDays"):
        TokenVault(MemoryTokenStore(), crypto, retention_days=days)


def test_a_runtime_configured_past_the_calendar_does_not_start(tmp_path: Path) -> None:
    (tmp_path / "haechi.config.json").write_text(
        '{"keys": {"keyFile": "keys.json"}, "tokenVault": {"retentionDays": Infinity}}'
    )
    init_key_file(tmp_path / "keys.json")
    with pytest.raises(ConfigError, match="retentionDays"):
        haechi.create_runtime(load_config(tmp_path / "haechi.config.json"))


def test_a_long_retention_still_issues_tokens(tmp_path: Path) -> None:
    init_key_file(tmp_path / "keys.json")
    vault = TokenVault(
        MemoryTokenStore(), LocalCryptoProvider(tmp_path / "keys.json"), retention_days=365_000
    )

    async def issue() -> dict[str, str]:
        token = (await vault.tokenize("ann.a@example.com", "email", context={})).token
        return await vault.detokenize([token])

    assert list(anyio.run(issue).values()) == ["ann.a@example.com"]
