# SPDX-License-Identifier: Apache-2.0
"""The built-in token stores pass the public token store contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from haechi.testing.token_store import TokenStoreContract
from haechi.vault import FileTokenStore, MemoryTokenStore


class TestFileTokenStore(TokenStoreContract):
    @pytest.fixture
    def token_store(self, tmp_path: Path) -> FileTokenStore:
        return FileTokenStore(tmp_path / ".haechi" / "token-vault.json")


class TestMemoryTokenStore(TokenStoreContract):
    @pytest.fixture
    def token_store(self) -> MemoryTokenStore:
        return MemoryTokenStore()
