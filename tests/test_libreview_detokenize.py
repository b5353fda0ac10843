# SPDX-License-Identifier: Apache-2.0
"""Runtime.detokenize takes an iterable of token ids: one id given as a string is refused
rather than read as its characters, which would restore nothing without a word."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from haechi.crypto import init_key_file
from haechi.runtime import create_runtime


def test_one_token_id_as_a_string_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    init_key_file(key_file)
    config = {
        "policy": {"mode": "enforce", "actions": {"email": "tokenize"}},
        "keys": {"keyFile": str(key_file)},
        "audit": {"sink": "memory"},
        "tokenVault": {"provider": "memory"},
    }
    runtime = create_runtime(config)
    try:
        result = runtime.protect_sync({"to": "mail user@example.com"})
        (token,) = result.issued_tokens
        for wrong in (token, token.encode()):
            with pytest.raises(TypeError, match="not one string"):
                asyncio.run(runtime.detokenize(result.payload, wrong))  # type: ignore[arg-type]
        restored = asyncio.run(runtime.detokenize(result.payload, [token]))
        assert restored == {"to": "mail user@example.com"}
    finally:
        runtime.close()
