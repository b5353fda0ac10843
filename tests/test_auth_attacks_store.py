# SPDX-License-Identifier: Apache-2.0
"""Gateway bearer tokens whose records share an id: revoking the id stops every one of them,
and creating a token never reuses an id already in the store."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from haechi.auth import BearerAuthProvider, add_token, list_tokens, revoke_token
from haechi.crypto import LocalCryptoProvider, init_key_file


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
    assert await provider.authenticate(_bearer(second_token)) is not None

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
