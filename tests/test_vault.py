# SPDX-License-Identifier: Apache-2.0
"""The token vault: issuing, reveal governance, restore, retention, purge, export, audit."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from haechi.audit import AuditSink, FileAuditStore, MemoryAuditStore
from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.errors import AuditError, ConfigError, VaultError
from haechi.vault import (
    TOKEN_PATTERN,
    FileTokenStore,
    IssuedToken,
    MemoryTokenStore,
    RevealedToken,
    TokenVault,
)

pytestmark = pytest.mark.anyio

CONTEXT = {"protocol": "openai", "direction": "request", "operation": "chat"}
EMAIL = "minji.kim@example.com"
PHONE = "010-1234-5678"


def _provider(tmp_path: Path, name: str = "dev.keys.json") -> LocalCryptoProvider:
    path = tmp_path / name
    init_key_file(path)
    return LocalCryptoProvider(path)


@pytest.fixture
def crypto(tmp_path: Path) -> LocalCryptoProvider:
    return _provider(tmp_path)


@pytest.fixture
def audit() -> AuditSink:
    return AuditSink(MemoryAuditStore())


async def _events(audit: AuditSink) -> list[dict[str, Any]]:
    return [record async for record in audit.store.records()]


def _vault(
    crypto: LocalCryptoProvider, audit: AuditSink | None = None, **kwargs: Any
) -> TokenVault:
    return TokenVault(MemoryTokenStore(), crypto, audit=audit, **kwargs)


class _Clock:
    """A settable time source for retention tests."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# --- tokenize ----------------------------------------------------------------------------


async def test_tokenize_issues_a_random_token(crypto: LocalCryptoProvider) -> None:
    vault = _vault(crypto)
    issued = await vault.tokenize(EMAIL, "email", context=CONTEXT)
    assert issued == IssuedToken(issued.token, "email", reused=False)
    assert re.fullmatch(r"tok_email_[0-9a-f]{16}", issued.token)
    again = await vault.tokenize(EMAIL, "email", context=CONTEXT)
    assert again.token != issued.token


async def test_record_shape(crypto: LocalCryptoProvider) -> None:
    vault = _vault(crypto)
    metadata = {"path": "$.messages[0]", "ruleId": "email", "value": EMAIL, "plaintext": EMAIL}
    issued = await vault.tokenize(EMAIL, "email", context=CONTEXT, metadata=metadata)
    record = await vault.store.get(issued.token)
    assert record is not None
    assert record["type"] == "email"
    assert record["metadata"] == {"path": "$.messages[0]", "ruleId": "email"}
    assert record["aad"] == {
        "purpose": "token-vault",
        "token": issued.token,
        "type": "email",
        "context": CONTEXT,
    }
    assert record["envelope"]["expiresAt"] == record["expiresAt"]
    created = datetime.fromisoformat(record["createdAt"])
    expires = datetime.fromisoformat(record["expiresAt"])
    assert expires - created == timedelta(days=30)
    assert EMAIL not in json.dumps(record)


async def test_type_is_folded_into_the_token_shape(crypto: LocalCryptoProvider) -> None:
    issued = await _vault(crypto).tokenize("x", "My-Custom Type", context={})
    assert issued.type == "My-Custom Type"
    assert issued.token.startswith("tok_my_custom_type_")
    assert TOKEN_PATTERN.fullmatch(issued.token)


async def test_type_without_ascii_still_gives_a_token(crypto: LocalCryptoProvider) -> None:
    vault = _vault(crypto)
    first = await vault.tokenize("x", "주민번호", context={})
    second = await vault.tokenize("y", "주민번호", context={})
    assert TOKEN_PATTERN.fullmatch(first.token)
    assert first.token.split("_")[1] == second.token.split("_")[1]
    assert first.type == "주민번호"


async def test_non_json_context_or_metadata_is_refused(crypto: LocalCryptoProvider) -> None:
    vault = _vault(crypto)
    with pytest.raises(TypeError):
        await vault.tokenize("x", "email", context={}, metadata={"n": float("nan")})
    with pytest.raises(TypeError):
        await vault.tokenize("x", "email", context={"when": datetime.now(UTC)})
    assert [item async for item in vault.store.items()] == []


def test_token_pattern() -> None:
    assert TOKEN_PATTERN.fullmatch("tok_email_a6d37638b9b21964")
    assert TOKEN_PATTERN.fullmatch("tok_kr_rrn_" + "ab" * 16)
    assert not TOKEN_PATTERN.fullmatch("tok_email_a6d37638")
    assert not TOKEN_PATTERN.fullmatch("tok_Email_a6d376389bb21964")
    assert not TOKEN_PATTERN.fullmatch("card:0123456789ab")
    found = TOKEN_PATTERN.search("[TOKEN:tok_email_a6d37638b9b21964]")
    assert found is not None
    assert found.group() == "tok_email_a6d37638b9b21964"


# --- deterministic -----------------------------------------------------------------------


async def test_deterministic_tokens_are_stable(crypto: LocalCryptoProvider) -> None:
    vault = _vault(crypto, deterministic=True)
    first = await vault.tokenize(EMAIL, "email", context=CONTEXT)
    second = await vault.tokenize(EMAIL, "email", context={"other": "context"})
    assert re.fullmatch(r"tok_email_[0-9a-f]{32}", first.token)
    assert (first.reused, second.reused) == (False, True)
    assert second.token == first.token
    other = await vault.tokenize("someone@example.com", "email", context=CONTEXT)
    assert other.token != first.token
    as_phone = await vault.tokenize(EMAIL, "phone", context=CONTEXT)
    assert as_phone.token.removeprefix("tok_phone_") != first.token.removeprefix("tok_email_")
    assert len([item async for item in vault.store.items()]) == 3


async def test_deterministic_tokens_differ_across_keys(tmp_path: Path) -> None:
    one = _vault(_provider(tmp_path, "one.json"), deterministic=True)
    two = _vault(_provider(tmp_path, "two.json"), deterministic=True)
    first = await one.tokenize(EMAIL, "email", context=CONTEXT)
    second = await two.tokenize(EMAIL, "email", context=CONTEXT)
    assert first.token != second.token


def test_minted_ids_hold_no_digit_run_a_rule_could_find_inside_their_marker(
    crypto: LocalCryptoProvider,
) -> None:
    from haechi.detect import DetectionEngine, default_rules
    from haechi.vault._tokens import MAX_DIGIT_RUN, deterministic_token, random_token

    engine = DetectionEngine(default_rules())
    long_run = re.compile(f"[0-9]{{{MAX_DIGIT_RUN + 1}}}")
    ids = [random_token("email") for _ in range(3000)]
    ids += [deterministic_token(crypto, "email", f"user{n}@example.com") for n in range(1000)]
    for token in ids:
        assert long_run.search(token) is None, token
        for direction in ("request", "response"):
            text = f"Sure, I wrote to [TOKEN:{token}]."
            assert engine.scan_text(text, direction=direction) == [], token


def test_a_deterministic_id_is_derived_again_only_when_it_holds_a_long_run(
    crypto: LocalCryptoProvider,
) -> None:
    from haechi.vault._tokens import DETERMINISTIC_DOMAIN, MAX_DIGIT_RUN, deterministic_token

    long_run = re.compile(f"[0-9]{{{MAX_DIGIT_RUN + 1}}}")
    kept = rederived = 0
    for n in range(200):
        first = crypto.hmac(f"email:user{n}@example.com", DETERMINISTIC_DOMAIN)[:32]
        token = deterministic_token(crypto, "email", f"user{n}@example.com")
        if long_run.search(first) is None:
            assert token == f"tok_email_{first}"  # the usual case: the first derivation
            kept += 1
        else:
            retry = crypto.hmac(f"email:user{n}@example.com", f"{DETERMINISTIC_DOMAIN}#1")[:32]
            assert token != f"tok_email_{first}"
            assert token == f"tok_email_{retry}" or long_run.search(retry) is not None
            rederived += 1
    assert kept
    assert rederived


async def test_deterministic_types_select_per_type(crypto: LocalCryptoProvider) -> None:
    vault = _vault(crypto, deterministic=True, deterministic_types=["email"])
    emails = [await vault.tokenize(EMAIL, "email", context=CONTEXT) for _ in range(2)]
    phones = [await vault.tokenize(PHONE, "phone", context=CONTEXT) for _ in range(2)]
    assert emails[0].token == emails[1].token
    assert phones[0].token != phones[1].token
    assert all(re.fullmatch(r"tok_phone_[0-9a-f]{16}", p.token) for p in phones)


async def test_deterministic_needs_hmac(crypto: LocalCryptoProvider) -> None:
    class NoHmac:
        name = "no-hmac"
        encrypt = crypto.encrypt
        decrypt = crypto.decrypt

    with pytest.raises(ConfigError, match="hmac"):
        TokenVault(MemoryTokenStore(), NoHmac(), deterministic=True)  # type: ignore[arg-type]


async def test_reuse_keeps_the_token_decryptable_after_the_first_window(
    crypto: LocalCryptoProvider,
) -> None:
    real_now = datetime.now(UTC)
    clock = _Clock(real_now - timedelta(days=40))
    store = MemoryTokenStore()
    vault = TokenVault(store, crypto, deterministic=True, retention_days=30, clock=clock)
    first = await vault.tokenize(EMAIL, "email", context=CONTEXT, metadata={"path": "a"})
    original = await store.get(first.token)
    assert original is not None
    clock.now = real_now - timedelta(days=20)
    reused = await vault.tokenize(EMAIL, "email", context={"later": True}, metadata={"path": "b"})
    assert reused.reused
    assert reused.token == first.token
    record = await store.get(first.token)
    assert record is not None
    assert record["expiresAt"] == record["envelope"]["expiresAt"]
    assert datetime.fromisoformat(record["expiresAt"]) > real_now
    assert record["createdAt"] == original["createdAt"]
    assert record["metadata"] == {"path": "a"}
    assert record["aad"] == original["aad"]
    # Now (real time) the first window has closed; the extended token still restores.
    current = TokenVault(store, crypto, reveal_policy="local-dev", deterministic=True)
    assert await current.detokenize([first.token]) == {first.token: EMAIL}
    assert (await current.reveal(first.token)).plaintext == EMAIL


async def test_expired_deterministic_record_is_issued_afresh(
    crypto: LocalCryptoProvider,
) -> None:
    vault = _vault(crypto, deterministic=True, retention_days=-1)
    first = await vault.tokenize(EMAIL, "email", context=CONTEXT)
    second = await vault.tokenize(EMAIL, "email", context=CONTEXT)
    assert second.token == first.token
    assert not second.reused


# --- reveal ------------------------------------------------------------------------------


async def test_reveal_is_disabled_by_default_and_denied_before_any_read(
    tmp_path: Path, crypto: LocalCryptoProvider, audit: AuditSink
) -> None:
    # Any read of this store fails, so a denial proves the store was never touched.
    broken = tmp_path / "token-vault.json"
    broken.write_text("{not a vault")
    vault = TokenVault(FileTokenStore(broken), crypto, audit=audit)
    assert vault.reveal_policy == "disabled"
    with pytest.raises(VaultError) as caught:
        await vault.reveal("tok_email_a6d37638b9b21964")
    assert str(caught.value) == "Token reveal is disabled by tokenVault.revealPolicy"
    assert caught.value.reason == "reveal_policy_disabled"
    (event,) = await _events(audit)
    assert event["operation"] == "token-vault:reveal"
    assert event["decision"] == "reveal_denied"
    assert event["reason"] == "reveal_policy_disabled"
    assert event["blocked"] is True
    assert event["token"] == "tok_email_a6d37638b9b21964"
    assert event["revealPolicy"] == "disabled"
    assert event["summary"] == {"detectionCount": 0, "byType": {}, "byAction": {"reveal_denied": 1}}
    # The same store does fail a read (so the denial above really came first).
    with pytest.raises(VaultError) as failed:
        await vault.detokenize(["tok_email_a6d37638b9b21964"])
    assert failed.value.reason == "store_error"
    assert "not a valid vault" in str(failed.value.__cause__)


async def test_reveal_allowed_in_local_dev(crypto: LocalCryptoProvider, audit: AuditSink) -> None:
    vault = _vault(crypto, audit, reveal_policy="local-dev")
    issued = await vault.tokenize(EMAIL, "email", context=CONTEXT)
    revealed = await vault.reveal(issued.token)
    assert revealed == RevealedToken(issued.token, "email", EMAIL)
    assert EMAIL not in repr(revealed)
    (event,) = await _events(audit)
    assert (event["decision"], event["token"], event["tokenType"]) == (
        "reveal_allowed",
        issued.token,
        "email",
    )
    assert event["blocked"] is False
    assert event["revealPolicy"] == "local-dev"


async def test_reveal_of_a_raw_secret_is_unknown_and_hashed_in_audit(
    crypto: LocalCryptoProvider, audit: AuditSink
) -> None:
    secret = "sk-ant-api03-" + "A" * 40
    vault = _vault(crypto, audit, reveal_policy="local-dev")
    with pytest.raises(VaultError) as caught:
        await vault.reveal(secret)
    assert str(caught.value) == "Unknown token"
    assert caught.value.reason == "unknown_token"
    assert secret not in repr(caught.value)
    (event,) = await _events(audit)
    assert event["decision"] == "reveal_failed"
    assert re.fullmatch(r"nontoken_[0-9a-f]{32}", event["token"])
    assert secret not in json.dumps(event)


async def test_reveal_denied_hashes_a_raw_secret_too(
    crypto: LocalCryptoProvider, audit: AuditSink
) -> None:
    with pytest.raises(VaultError):
        await _vault(crypto, audit).reveal("ghp_" + "x" * 36)
    (event,) = await _events(audit)
    assert event["token"].startswith("nontoken_")


async def test_reveal_unknown_token(crypto: LocalCryptoProvider, audit: AuditSink) -> None:
    vault = _vault(crypto, audit, reveal_policy="local-dev")
    with pytest.raises(VaultError, match=r"^Unknown token$"):
        await vault.reveal("tok_email_0a1b2c3d4e5f6a7b")
    (event,) = await _events(audit)
    assert (event["reason"], event["token"]) == ("unknown_token", "tok_email_0a1b2c3d4e5f6a7b")


@pytest.mark.parametrize(
    "shaped",
    [
        "tok_4111111111111111_0a1b2c3d4e5f6a7b",
        "tok_email_4111111111111111",
        "tok_ssn_078051120_0a1b2c3d4e5f6a7b",
    ],
)
async def test_a_token_shaped_argument_carrying_a_number_is_hashed_in_the_audit(
    crypto: LocalCryptoProvider, audit: AuditSink, shaped: str
) -> None:
    # No minted id has a run of more than five digits: such an argument is a value.
    vault = _vault(crypto, audit, reveal_policy="local-dev")
    with pytest.raises(VaultError, match=r"^Unknown token$"):
        await vault.reveal(shaped)
    await vault.purge(shaped)
    events = await _events(audit)
    assert [event["token"][:9] for event in events] == ["nontoken_", "nontoken_"]
    assert "4111111111111111" not in json.dumps(events)
    assert "078051120" not in json.dumps(events)


async def test_reveal_expired_token(crypto: LocalCryptoProvider, audit: AuditSink) -> None:
    vault = _vault(crypto, audit, reveal_policy="local-dev", retention_days=-1)
    issued = await vault.tokenize(EMAIL, "email", context=CONTEXT)
    with pytest.raises(VaultError) as caught:
        await vault.reveal(issued.token)
    assert str(caught.value) == "Token expired"
    assert caught.value.reason == "token_expired"
    (event,) = await _events(audit)
    assert (event["reason"], event["token"], event["tokenType"]) == (
        "token_expired",
        issued.token,
        "email",
    )


async def test_reveal_of_a_tampered_record(crypto: LocalCryptoProvider, audit: AuditSink) -> None:
    vault = _vault(crypto, audit, reveal_policy="local-dev")
    issued = await vault.tokenize(EMAIL, "email", context=CONTEXT)
    record = await vault.store.get(issued.token)
    assert record is not None
    record["aad"]["type"] = "phone"
    await vault.store.put(issued.token, record)
    with pytest.raises(VaultError) as caught:
        await vault.reveal(issued.token)
    assert str(caught.value) == "Token decrypt failed"
    assert caught.value.reason == "decrypt_failed"
    assert (await _events(audit))[0]["reason"] == "decrypt_failed"


async def test_reveal_context_replaces_the_stored_context(crypto: LocalCryptoProvider) -> None:
    vault = _vault(crypto, reveal_policy="local-dev")
    issued = await vault.tokenize(EMAIL, "email", context=CONTEXT)
    assert (await vault.reveal(issued.token, context=dict(CONTEXT))).plaintext == EMAIL
    with pytest.raises(VaultError, match="decrypt failed"):
        await vault.reveal(issued.token, context={"protocol": "anthropic"})


async def test_reveal_fails_closed_when_the_audit_fails(
    tmp_path: Path, crypto: LocalCryptoProvider
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    audit = AuditSink(FileAuditStore(blocker / "audit.jsonl"))
    store = MemoryTokenStore()
    issued = await TokenVault(store, crypto).tokenize(EMAIL, "email", context=CONTEXT)
    vault = TokenVault(store, crypto, reveal_policy="local-dev", audit=audit)
    with pytest.raises(AuditError):
        await vault.reveal(issued.token)
    with pytest.raises(AuditError):
        await vault.detokenize([issued.token])


def test_unknown_reveal_policy(crypto: LocalCryptoProvider) -> None:
    with pytest.raises(ConfigError):
        TokenVault(MemoryTokenStore(), crypto, reveal_policy="always")  # type: ignore[arg-type]


# --- detokenize --------------------------------------------------------------------------


async def test_detokenize_restores_what_it_can(
    crypto: LocalCryptoProvider, audit: AuditSink
) -> None:
    vault = _vault(crypto, audit)
    email = await vault.tokenize(EMAIL, "email", context=CONTEXT)
    phone = await vault.tokenize(PHONE, "phone", context=CONTEXT)
    unknown = "tok_email_ffffffffffffffff"
    restored = await vault.detokenize([email.token, unknown, phone.token, email.token, "junk"])
    assert restored == {email.token: EMAIL, phone.token: PHONE}
    (event,) = await _events(audit)
    assert event["operation"] == "token-vault:detokenize"
    assert event["decision"] == "detokenize"
    assert event["reason"] == "2 tokens not restored"
    assert event["count"] == 2
    assert event["blocked"] is False
    assert EMAIL not in json.dumps(event)


async def test_detokenize_partial_restore_reason(
    crypto: LocalCryptoProvider, audit: AuditSink
) -> None:
    vault = _vault(crypto, audit)
    email = await vault.tokenize(EMAIL, "email", context=CONTEXT)
    restored = await vault.detokenize([email.token, "tok_email_0000000000000000"])
    assert restored == {email.token: EMAIL}
    (event,) = await _events(audit)
    assert (event["reason"], event["count"]) == ("1 tokens not restored", 1)


async def test_detokenize_is_not_governed_by_reveal_policy(crypto: LocalCryptoProvider) -> None:
    vault = _vault(crypto)
    issued = await vault.tokenize(EMAIL, "email", context=CONTEXT)
    assert vault.reveal_policy == "disabled"
    assert await vault.detokenize([issued.token]) == {issued.token: EMAIL}


async def test_detokenize_skips_expired_and_undecryptable(
    crypto: LocalCryptoProvider, audit: AuditSink
) -> None:
    store = MemoryTokenStore()
    expired = await TokenVault(store, crypto, retention_days=-1).tokenize(
        EMAIL, "email", context=CONTEXT
    )
    vault = TokenVault(store, crypto, audit=audit)
    broken = await vault.tokenize(PHONE, "phone", context=CONTEXT)
    record = await store.get(broken.token)
    assert record is not None
    record["envelope"]["kid"] = "local-0-000000"
    await store.put(broken.token, record)
    assert await vault.detokenize([expired.token, broken.token]) == {}
    (event,) = await _events(audit)
    assert (event["reason"], event["count"]) == ("2 tokens not restored", 0)


async def test_detokenize_nothing_records_nothing(
    crypto: LocalCryptoProvider, audit: AuditSink
) -> None:
    assert await _vault(crypto, audit).detokenize([]) == {}
    assert await _events(audit) == []


# --- retention, purge, export ------------------------------------------------------------


async def test_issuing_prunes_expired_records(crypto: LocalCryptoProvider) -> None:
    clock = _Clock(datetime.now(UTC))
    store = MemoryTokenStore()
    vault = TokenVault(store, crypto, retention_days=1, clock=clock)
    old = await vault.tokenize(EMAIL, "email", context=CONTEXT)
    clock.now += timedelta(days=2)
    new = await vault.tokenize(PHONE, "phone", context=CONTEXT)
    assert await store.get(old.token) is None
    assert await store.get(new.token) is not None


async def test_purge(crypto: LocalCryptoProvider, audit: AuditSink) -> None:
    vault = _vault(crypto, audit)
    issued = await vault.tokenize(EMAIL, "email", context=CONTEXT)
    result = await vault.purge(issued.token)
    assert result["token"] == issued.token
    assert result["purged"] is True
    assert datetime.fromisoformat(result["purgedAt"]).tzinfo is not None
    assert await vault.store.get(issued.token) is None
    again = await vault.purge(issued.token)
    assert again["purged"] is False
    not_a_token = await vault.purge(EMAIL)
    assert not_a_token["purged"] is False
    events = await _events(audit)
    assert [e["decision"] for e in events] == ["purge", "purge", "purge"]
    assert [e["count"] for e in events] == [1, 0, 0]
    assert events[0]["token"] == issued.token
    assert events[2]["token"].startswith("nontoken_")
    assert EMAIL not in json.dumps(events)


async def test_purge_expired(crypto: LocalCryptoProvider, audit: AuditSink) -> None:
    store = MemoryTokenStore()
    vault = TokenVault(store, crypto, audit=audit)
    kept = await vault.tokenize(PHONE, "phone", context=CONTEXT)
    expired = TokenVault(store, crypto, retention_days=-1)
    for value in ("a@x.io", "b@x.io"):
        await expired.tokenize(value, "email", context=CONTEXT)
    result = await vault.purge_expired()
    assert result["purged"] == 2
    assert [token async for token, _ in store.items()] == [kept.token]
    (event,) = await _events(audit)
    assert (event["operation"], event["decision"], event["count"]) == (
        "token-vault:purge-expired",
        "purge_expired",
        2,
    )


async def test_export_metadata_never_has_plaintext(crypto: LocalCryptoProvider) -> None:
    clock = _Clock(datetime(2030, 1, 1, tzinfo=UTC))
    vault = _vault(crypto, clock=clock)
    email = await vault.tokenize(EMAIL, "email", context=CONTEXT, metadata={"path": "p1"})
    clock.now += timedelta(seconds=1)
    phone = await vault.tokenize(PHONE, "phone", context=CONTEXT, metadata={"ruleId": "kr"})
    exported = await vault.export_metadata()
    assert [item["token"] for item in exported] == [email.token, phone.token]
    assert exported[0] == {
        "token": email.token,
        "type": "email",
        "createdAt": "2030-01-01T00:00:00.000Z",
        "expiresAt": "2030-01-31T00:00:00.000Z",
        "metadata": {"path": "p1"},
    }
    text = json.dumps(exported)
    assert EMAIL not in text
    assert PHONE not in text
    only_phone = await vault.export_metadata("phone")
    assert [item["token"] for item in only_phone] == [phone.token]


def test_from_config(crypto: LocalCryptoProvider) -> None:
    from haechi.config import parse_config

    config = parse_config({"tokenVault": {"revealPolicy": "local-dev", "deterministic": True}})
    vault = TokenVault.from_config(config, store=MemoryTokenStore(), crypto=crypto)
    assert vault.reveal_policy == "local-dev"
