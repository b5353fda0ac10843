# SPDX-License-Identifier: Apache-2.0
"""A vault record belongs to the token it is stored under.

The AAD of a record is stored in clear beside its envelope. Decrypting with that stored AAD
proves only that the envelope and the AAD go together, not that they belong to the token
looked up: a record copied whole under another token id (a hand-edited or restored vault
file, a shared store written by something else) must not restore or reveal, or the marker
of one client's token comes back as another client's value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.audit import AuditSink, MemoryAuditStore
from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.errors import VaultError
from haechi.vault import FileTokenStore, TokenVault
from tests.upstream_server import Reply, gateway_in_front

MINE = "ann.a@example.com"
THEIRS = "bob.b@example.org"
CONTEXT = {"protocol": "openai", "direction": "request", "operation": "chat"}


def _vault(tmp_path: Path, audit: AuditSink | None = None) -> TokenVault:
    key_file = tmp_path / "dev.keys.json"
    init_key_file(key_file)
    return TokenVault(
        FileTokenStore(tmp_path / "token-vault.json"),
        LocalCryptoProvider(key_file),
        reveal_policy="local-dev",
        audit=audit,
    )


def _edit(path: Path, change: Any) -> None:
    document = json.loads(path.read_text())
    change(document["tokens"])
    path.write_text(json.dumps(document, indent=2) + "\n")


@pytest.mark.anyio
async def test_a_record_copied_under_another_token_neither_restores_nor_reveals(
    tmp_path: Path,
) -> None:
    audit = AuditSink(MemoryAuditStore())
    vault = _vault(tmp_path, audit)
    theirs = (await vault.tokenize(THEIRS, "email", context=CONTEXT)).token
    mine = (await vault.tokenize(MINE, "email", context=CONTEXT)).token

    def copy(tokens: dict[str, Any]) -> None:
        tokens[mine] = tokens[theirs]

    _edit(tmp_path / "token-vault.json", copy)
    assert await vault.detokenize([mine]) == {}
    with pytest.raises(VaultError) as caught:
        await vault.reveal(mine)
    assert caught.value.reason == "decrypt_failed"
    events = [record async for record in audit.store.records()]
    assert [(e["decision"], e["reason"]) for e in events] == [
        ("detokenize", "1 tokens not restored"),
        ("reveal_failed", "decrypt_failed"),
    ]
    # The record under its own id still restores.
    assert await vault.detokenize([theirs]) == {theirs: THEIRS}


@pytest.mark.anyio
async def test_an_envelope_made_for_another_purpose_does_not_restore(tmp_path: Path) -> None:
    """An envelope of the encrypt action (the upstream sees it in a ``[HAECHI_ENC:...]``
    marker) planted with its AAD as a record is not this vault's: it is not restored."""
    vault = _vault(tmp_path)
    crypto = LocalCryptoProvider(tmp_path / "dev.keys.json")
    mine = (await vault.tokenize(MINE, "email", context=CONTEXT)).token
    aad = {"context": CONTEXT, "path": "$.messages[0].content", "type": "email", "ruleId": "email"}
    envelope = crypto.encrypt(THEIRS, aad)

    def plant(tokens: dict[str, Any]) -> None:
        tokens[mine] = {**tokens[mine], "envelope": envelope, "aad": aad}

    _edit(tmp_path / "token-vault.json", plant)
    assert await vault.detokenize([mine]) == {}


@pytest.mark.anyio
async def test_a_record_whose_type_differs_from_its_aad_is_not_revealed(tmp_path: Path) -> None:
    """The type a reveal reports is the one the envelope is bound to, not a clear-text
    field changed beside it."""
    vault = _vault(tmp_path)
    mine = (await vault.tokenize(MINE, "email", context=CONTEXT)).token

    def retype(tokens: dict[str, Any]) -> None:
        tokens[mine]["type"] = "phone"

    _edit(tmp_path / "token-vault.json", retype)
    with pytest.raises(VaultError) as caught:
        await vault.reveal(mine)
    assert caught.value.reason == "decrypt_failed"
    assert await vault.detokenize([mine]) == {}


class _CopiesARecord(Reply):
    """Answers (echoing) after copying one record of the vault file over another, as a
    restore from a backup or someone with access to the file could."""

    def __init__(self, vault: Path, source: str) -> None:
        super().__init__()
        self._vault = vault
        self._source = source

    @property  # type: ignore[override]
    def delay(self) -> float:
        def copy(tokens: dict[str, Any]) -> None:
            for token in tokens:
                if token != self._source:
                    tokens[token] = tokens[self._source]

        _edit(self._vault, copy)
        return 0.0

    @delay.setter
    def delay(self, value: float) -> None:
        pass


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_never_restores_another_clients_value_from_a_moved_record(
    tmp_path: Path, stream: bool
) -> None:
    config = {
        "policy": {"actions": {"email": "tokenize"}},
        "responseProtection": {"enabled": True},
        "tokenVault": {"detokenizeResponses": True},
        "streaming": {"requestMode": "inspect"},
    }
    with gateway_in_front(tmp_path, config) as gateway:
        url = f"{gateway.url}/v1/chat/completions"
        first = httpx.post(
            url, json={"model": "m", "messages": [{"role": "user", "content": MINE}]}, timeout=30
        )
        assert first.status_code == 200
        vault = Path(gateway.runtime.config.token_vault.path)
        (mine,) = json.loads(vault.read_text())["tokens"]
        gateway.upstream.queue(_CopiesARecord(vault, mine))
        body = {
            "model": "m",
            "messages": [{"role": "user", "content": f"I am {THEIRS}"}],
            "stream": stream,
        }
        answer = httpx.post(url, json=body, timeout=30)
        assert answer.status_code == 200
        assert MINE not in answer.text
        assert "[TOKEN:tok_email_" in answer.text
        assert MINE not in gateway.audit_text()
