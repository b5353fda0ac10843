# SPDX-License-Identifier: Apache-2.0
"""One damaged record in a vault file that still parses.

A record that is not a JSON object, or lacks the fields a record has, can never be restored.
It must not make the vault raise on anything else: issuing tokens (which prunes expired
records first), restoring an answer (the marker stays and the vault audits it as not
restored), a reveal (refused and audited), purging and listing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from haechi.audit import AuditSink, MemoryAuditStore
from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.errors import VaultError
from haechi.vault import FileTokenStore, TokenVault
from tests.cli import json_output, run_haechi
from tests.upstream_server import Reply, gateway_in_front

MINE = "ann.a@example.com"
CONTEXT = {"protocol": "openai", "direction": "request", "operation": "chat"}
#: What a damaged record may hold instead of a record.
DAMAGE: list[Any] = ["x", 7, None, [], {"type": "email"}]


def _damage(path: Path, token: str, record: Any) -> None:
    document = json.loads(path.read_text())
    document["tokens"][token] = record
    path.write_text(json.dumps(document, indent=2) + "\n")


def _vault(tmp_path: Path, audit: AuditSink | None = None) -> TokenVault:
    key_file = tmp_path / ".haechi" / "dev.keys.json"
    init_key_file(key_file)
    return TokenVault(
        FileTokenStore(tmp_path / ".haechi" / "token-vault.json"),
        LocalCryptoProvider(key_file),
        reveal_policy="local-dev",
        audit=audit,
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ("x", "decrypt_failed"),
        (7, "decrypt_failed"),
        (None, "unknown_token"),
        ([], "decrypt_failed"),
        ({"type": "email"}, "token_expired"),
    ],
)
async def test_a_damaged_record_is_not_restored_and_its_reveal_refused(
    tmp_path: Path, record: Any, reason: str
) -> None:
    audit = AuditSink(MemoryAuditStore())
    vault = _vault(tmp_path, audit)
    token = (await vault.tokenize(MINE, "email", context=CONTEXT)).token
    _damage(tmp_path / ".haechi" / "token-vault.json", token, record)
    assert await vault.detokenize([token]) == {}
    with pytest.raises(VaultError) as caught:
        await vault.reveal(token)
    assert caught.value.reason == reason
    events = [event async for event in audit.store.records()]
    assert [(e["decision"], e["reason"]) for e in events] == [
        ("detokenize", "1 tokens not restored"),
        ("reveal_failed", reason),
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("record", DAMAGE)
async def test_a_damaged_record_does_not_stop_issuing_and_is_pruned(
    tmp_path: Path, record: Any
) -> None:
    vault = _vault(tmp_path)
    token = (await vault.tokenize(MINE, "email", context=CONTEXT)).token
    _damage(tmp_path / ".haechi" / "token-vault.json", token, record)
    fresh = _vault(tmp_path)  # prunes on its first issue
    issued = await fresh.tokenize("bob.b@example.org", "email", context=CONTEXT)
    assert await fresh.detokenize([issued.token]) == {issued.token: "bob.b@example.org"}
    assert await fresh.store.get(token) is None
    assert [item["token"] for item in await fresh.export_metadata()] == [issued.token]


@pytest.mark.anyio
async def test_a_deterministic_token_over_a_damaged_record_is_issued_afresh(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / ".haechi" / "dev.keys.json"
    init_key_file(key_file)
    store = FileTokenStore(tmp_path / ".haechi" / "token-vault.json")
    vault = TokenVault(store, LocalCryptoProvider(key_file), deterministic=True)
    token = (await vault.tokenize(MINE, "email", context=CONTEXT)).token
    _damage(store.path, token, "x")
    again = await vault.tokenize(MINE, "email", context=CONTEXT)
    assert (again.token, again.reused) == (token, False)
    assert await vault.detokenize([token]) == {token: MINE}


@pytest.mark.parametrize("record", DAMAGE)
def test_purge_and_export_from_the_command_line_survive_a_damaged_record(
    tmp_path: Path, record: Any
) -> None:
    vault = _vault(tmp_path)

    async def issue() -> list[str]:
        return [
            (await vault.tokenize(value, "email", context=CONTEXT)).token
            for value in (MINE, "bob.b@example.org")
        ]

    damaged, kept = anyio.run(issue)
    _damage(tmp_path / ".haechi" / "token-vault.json", damaged, record)
    exported = json_output(run_haechi("token-export", cwd=tmp_path))
    assert [item["token"] for item in exported["tokens"]] == [kept]
    purged = json_output(run_haechi("token-purge", "--expired", cwd=tmp_path))
    assert purged["result"]["purged"] == 1


class _DamagesTheRecords(Reply):
    """Answers (echoing) after replacing every record of the vault file by a string."""

    def __init__(self, vault: Path) -> None:
        super().__init__()
        self._vault = vault

    @property  # type: ignore[override]
    def delay(self) -> float:
        for token in json.loads(self._vault.read_text())["tokens"]:
            _damage(self._vault, token, "x")
        return 0.0

    @delay.setter
    def delay(self, value: float) -> None:
        pass


def test_an_answer_whose_record_was_damaged_keeps_the_marker_and_is_audited(
    tmp_path: Path,
) -> None:
    config = {
        "policy": {"actions": {"email": "tokenize"}},
        "responseProtection": {"enabled": True},
        "tokenVault": {"detokenizeResponses": True},
    }
    with gateway_in_front(tmp_path, config) as gateway:
        vault = Path(gateway.runtime.config.token_vault.path)
        gateway.upstream.queue(_DamagesTheRecords(vault))
        body = {"model": "m", "messages": [{"role": "user", "content": f"I am {MINE}"}]}
        answer = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)
        assert answer.status_code == 200
        content = answer.json()["choices"][0]["message"]["content"]
        assert content.startswith("echo: I am [TOKEN:tok_email_")
        assert MINE not in answer.text
        events = [
            (record["decision"], record["reason"])
            for record in gateway.audit()
            if record["operation"] == "token-vault:detokenize"
        ]
        assert events == [("detokenize", "1 tokens not restored")]
