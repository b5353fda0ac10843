# SPDX-License-Identifier: Apache-2.0
"""Expiries at the edge of the calendar.

An offset that moves an instant out of years 1 to 9999 once it is turned to UTC made the
timestamp parser raise ``OverflowError``, which neither the vault (an unreadable expiry
counts as expired) nor the crypto provider (an unreadable expiry is refused) expected:
pruning, restoring and purging raised on such a record, and a decryption raised something
other than ``CryptoError``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from haechi.audit import AuditSink, MemoryAuditStore
from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.errors import CryptoError
from haechi.vault import FileTokenStore, TokenVault

EDGES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
CONTEXT = {"protocol": "openai", "direction": "request", "operation": "chat"}


@pytest.fixture
def provider(tmp_path: Path) -> LocalCryptoProvider:
    init_key_file(tmp_path / "dev.keys.json")
    return LocalCryptoProvider(tmp_path / "dev.keys.json")


@pytest.mark.parametrize("edge", EDGES)
def test_an_envelope_expiring_off_the_calendar_is_refused_as_invalid(
    provider: LocalCryptoProvider, edge: str
) -> None:
    envelope = {**provider.encrypt("ann.a@example.com", {"a": 1}), "expiresAt": edge}
    with pytest.raises(CryptoError, match="Invalid crypto envelope expiresAt"):
        provider.decrypt(envelope, {"a": 1})


@pytest.mark.anyio
@pytest.mark.parametrize("edge", EDGES)
async def test_a_record_expiring_off_the_calendar_is_expired_not_an_error(
    tmp_path: Path, provider: LocalCryptoProvider, edge: str
) -> None:
    path = tmp_path / "token-vault.json"
    audit = AuditSink(MemoryAuditStore())
    vault = TokenVault(FileTokenStore(path), provider, audit=audit)
    token = (await vault.tokenize("ann.a@example.com", "email", context=CONTEXT)).token
    document = json.loads(path.read_text())
    document["tokens"][token]["expiresAt"] = edge
    path.write_text(json.dumps(document, indent=2) + "\n")
    assert await vault.detokenize([token]) == {}
    assert (await vault.purge_expired())["purged"] == 1
    assert await vault.store.get(token) is None
