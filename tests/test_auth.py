# SPDX-License-Identifier: Apache-2.0
"""Built-in bearer-token auth: hashed store, constant-time lookup, immediate revocation."""

from __future__ import annotations

import hmac
import json
import stat
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from haechi.auth import (
    IDENTITY_HASH_DOMAIN,
    TOKEN_HASH_DOMAIN,
    BearerAuthProvider,
    add_token,
    list_tokens,
    read_auth_store,
    revoke_token,
)
from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.errors import ConfigError, ProviderError
from haechi.providers import AuthProvider


@pytest.fixture
def crypto(tmp_path: Path) -> LocalCryptoProvider:
    key_file = tmp_path / "keys.json"
    init_key_file(key_file)
    return LocalCryptoProvider(key_file)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "state" / "auth.json"


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_store_holds_only_a_keyed_hash(store: Path, crypto: LocalCryptoProvider) -> None:
    record, token = add_token(store, crypto, token_type="service", scopes=["team:eng"])
    assert token.startswith("hae_")
    assert len(token) == 4 + 43
    text = store.read_text()
    assert token not in text
    stored = read_auth_store(store)[0]
    assert stored["tokenHash"] == crypto.hmac(token, TOKEN_HASH_DOMAIN)
    assert stored["id"] == record["id"]
    assert record["id"].startswith("tok_auth_")
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert json.loads(text)["version"] == 1


@pytest.mark.anyio
async def test_valid_token_yields_a_pii_safe_identity(
    store: Path, crypto: LocalCryptoProvider
) -> None:
    record, token = add_token(
        store, crypto, token_type="agent", scopes=["team:eng"], labels={"env": "prod"}
    )
    identity = await BearerAuthProvider(store, crypto).authenticate(_bearer(token))
    assert identity is not None
    assert identity.id == record["id"]
    assert identity.type == "agent"
    assert identity.provider == "bearer"
    assert identity.scopes == ("team:eng",)
    assert identity.labels == {"env": "prod"}
    assert identity.subject_hash == crypto.hmac(record["id"], IDENTITY_HASH_DOMAIN)
    assert token not in repr(identity)
    assert set(identity.audit_projection()) == {
        "id",
        "type",
        "subjectHash",
        "issuerHash",
        "provider",
    }


@pytest.mark.anyio
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": ""},
        {"authorization": "Basic dXNlcjpwYXNz"},
        {"authorization": "Bearer"},
        {"authorization": "Bearer    "},
        {"authorization": "Bearer hae_not-a-real-token"},
        {"authorization": "Bearer hae_\ud800"},
        {"authorization": "\udcff"},
    ],
)
async def test_missing_or_wrong_credentials_are_denied(
    store: Path, crypto: LocalCryptoProvider, headers: dict[str, str]
) -> None:
    add_token(store, crypto, token_type="user")
    assert await BearerAuthProvider(store, crypto).authenticate(headers) is None


@pytest.mark.anyio
async def test_scheme_is_case_insensitive_and_token_trimmed(
    store: Path, crypto: LocalCryptoProvider
) -> None:
    _record, token = add_token(store, crypto, token_type="user")
    provider = BearerAuthProvider(store, crypto)
    assert await provider.authenticate({"authorization": f"  bearer   {token}  "}) is not None


@pytest.mark.anyio
async def test_revocation_is_immediate(store: Path, crypto: LocalCryptoProvider) -> None:
    record, token = add_token(store, crypto, token_type="user")
    provider = BearerAuthProvider(store, crypto)
    assert await provider.authenticate(_bearer(token)) is not None
    assert revoke_token(store, record["id"]) == {"id": record["id"], "revoked": True}
    assert await provider.authenticate(_bearer(token)) is None
    assert revoke_token(store, record["id"]) == {"id": record["id"], "revoked": False}


@pytest.mark.anyio
async def test_new_tokens_work_without_restart(store: Path, crypto: LocalCryptoProvider) -> None:
    provider = BearerAuthProvider(store, crypto)
    assert await provider.authenticate(_bearer("hae_x")) is None
    _record, token = add_token(store, crypto, token_type="user")
    assert await provider.authenticate(_bearer(token)) is not None


@pytest.mark.anyio
async def test_a_corrupt_store_fails_closed(store: Path, crypto: LocalCryptoProvider) -> None:
    store.parent.mkdir(parents=True)
    store.write_text("{not json")
    with pytest.raises(ProviderError):
        await BearerAuthProvider(store, crypto).authenticate(_bearer("hae_x"))


def test_list_never_shows_tokens_or_hashes(store: Path, crypto: LocalCryptoProvider) -> None:
    _record, token = add_token(store, crypto, token_type="user", labels={"team": "a"})
    listing = list_tokens(store)
    assert len(listing) == 1
    assert set(listing[0]) == {"id", "type", "scopes", "labels", "createdAt", "disabled"}
    assert token not in json.dumps(listing)


def test_validation(store: Path, crypto: LocalCryptoProvider) -> None:
    with pytest.raises(ConfigError, match="token type"):
        add_token(store, crypto, token_type="robot")
    with pytest.raises(ConfigError, match="allowedLabelKeys"):
        add_token(store, crypto, token_type="user", labels={"email": "x"})
    with pytest.raises(ConfigError, match="1 to 64"):
        add_token(store, crypto, token_type="user", labels={"team": "x" * 65})
    with pytest.raises(ConfigError, match="scopes"):
        add_token(store, crypto, token_type="user", scopes=[" "])
    with pytest.raises(ConfigError, match="unknown token id"):
        revoke_token(store, "tok_auth_missing")
    assert not store.exists()


def test_is_an_auth_provider(store: Path, crypto: LocalCryptoProvider) -> None:
    assert isinstance(BearerAuthProvider(store, crypto), AuthProvider)
    assert BearerAuthProvider.name == "bearer"


@pytest.mark.anyio
@pytest.mark.parametrize("presented", [0, 2, None])
async def test_every_enabled_record_is_compared_in_constant_time(
    store: Path,
    crypto: LocalCryptoProvider,
    monkeypatch: pytest.MonkeyPatch,
    presented: int | None,
) -> None:
    tokens = [add_token(store, crypto, token_type="user")[1] for _ in range(3)]
    revoked, _token = add_token(store, crypto, token_type="user")
    revoke_token(store, revoked["id"])
    calls: list[tuple[bytes, bytes]] = []

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return hmac.compare_digest(a, b)

    # Patched in the auth module only: the scan is a timing property, not visible otherwise.
    monkeypatch.setattr("haechi.auth.hmac", SimpleNamespace(compare_digest=counting))
    token = "hae_not-a-real-token" if presented is None else tokens[presented]
    identity = await BearerAuthProvider(store, crypto).authenticate(_bearer(token))
    assert (identity is None) is (presented is None)
    # One constant-time compare per enabled record, even when the first one matched; the
    # revoked record is not a candidate at all.
    assert len(calls) == len(tokens)
    assert all(len(a) == len(b) for a, b in calls)
    assert len({b for _a, b in calls}) == len(tokens)


# -- records that share an id (a store merged or edited by hand) ----------------------------


@pytest.mark.anyio
async def test_revoking_an_id_disables_every_record_that_has_it(
    store: Path, crypto: LocalCryptoProvider
) -> None:
    # Two records with one id (a store merged from two hosts, or edited by hand): the id
    # the operator revokes must not leave one of the two tokens working.
    first, first_token = add_token(store, crypto, token_type="user")
    _second, second_token = add_token(store, crypto, token_type="service")
    document = json.loads(store.read_text())
    document["tokens"][1]["id"] = first["id"]
    store.write_text(json.dumps(document))
    provider = BearerAuthProvider(store, crypto)
    # One id naming two tokens is refused before any revocation (see
    # test_authreview_shared_id); revoking the id still disables every record.
    assert await provider.authenticate(_bearer(second_token)) is None

    assert revoke_token(store, first["id"]) == {"id": first["id"], "revoked": True}

    assert await provider.authenticate(_bearer(first_token)) is None
    assert await provider.authenticate(_bearer(second_token)) is None
    assert [token["disabled"] for token in list_tokens(store)] == [True, True]
    assert revoke_token(store, first["id"]) == {"id": first["id"], "revoked": False}


def test_a_new_token_never_takes_an_id_already_in_the_store(
    store: Path, crypto: LocalCryptoProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ids are short (eight hex digits): a repeated one must be drawn again, not stored.
    same, other = uuid.UUID("1" * 32), uuid.UUID("2" * 32)
    draws = iter([same, same, other])
    monkeypatch.setattr("haechi.auth.uuid", SimpleNamespace(uuid4=lambda: next(draws)))
    first, _ = add_token(store, crypto, token_type="user")
    second, _ = add_token(store, crypto, token_type="user")
    assert (first["id"], second["id"]) == ("tok_auth_11111111", "tok_auth_22222222")
    assert len({token["id"] for token in list_tokens(store)}) == 2
