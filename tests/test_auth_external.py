# SPDX-License-Identifier: Apache-2.0
"""An auth provider that is not haechi's own, injected (``external``) or installed as a plugin
and selected by name, has its identity held to the built-in rules before the gateway audits
it: an id that may be an address becomes a keyed pseudonym, and a type or label outside the
rules denies the request. A real gateway on a socket, a real upstream."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.auth import BearerAuthProvider, add_token
from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.models import Identity
from haechi.runtime import create_runtime
from tests.plugins.directory_auth import Directory, install_directory_plugin
from tests.test_proxy_auth import chat, post_chat
from tests.upstream_server import gateway_config, gateway_in_front


@pytest.fixture(params=["injected", "registered"])
def identities(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """``identities(requests=1, **fields)``: the identity and reason of each audited request
    (forwarded, or denied) after ``requests`` chat requests, the provider answering with
    ``fields``, injected or installed as a plugin; every answer is 200 or 401."""

    def run(requests: int = 1, **fields: Any) -> list[Any]:
        if request.param == "injected":
            config, providers = {"auth": {"provider": "external"}}, {"auth": Directory(**fields)}
        else:
            install_directory_plugin(tmp_path, monkeypatch, **fields)
            config, providers = {"auth": {"provider": "directory"}}, None
        with gateway_in_front(tmp_path, config, providers=providers) as gateway:
            statuses = {post_chat(gateway, "anything").status_code for _ in range(requests)}
            assert statuses <= {200, 401}
            assert "jane" not in gateway.audit_text()
            return [
                (r["identity"], r.get("reason"))
                for r in gateway.audit()
                if r.get("identity") or r.get("decision") == "auth_denied"
            ]

    return run


def test_an_id_that_is_an_address_is_audited_as_a_keyed_pseudonym(identities: Any) -> None:
    audited = identities(requests=2)
    ids = {identity["id"] for identity, _reason in audited}
    assert len(audited) == 2
    assert len(ids) == 1  # one caller, one id: its records, rate budget and sessions
    assert re.fullmatch(r"external:[0-9a-f]{16}", ids.pop())


def test_an_id_of_the_built_in_form_is_a_pseudonym_too(identities: Any) -> None:
    """A directory's subject may read ``tok_auth_…``: only a bearer token's identity keeps
    such an id (see the next test)."""
    ((identity, _reason),) = identities(id="tok_auth_0a1b2c3d", provider="bearer")
    assert re.fullmatch(r"external:[0-9a-f]{16}", identity["id"])
    assert identity["provider"] == "external"


class _TokensOrDirectory:
    """What a deployment injects to serve two kinds of callers: services present the
    gateway's bearer tokens (answered by the built-in provider), users a directory
    credential, whose subject the directory hands on as the id and which here reads like
    the id of a token."""

    def __init__(self, store: Path, crypto: LocalCryptoProvider, subject: str) -> None:
        self._tokens = BearerAuthProvider(store, crypto)
        self._subject = subject

    async def authenticate(self, headers: Mapping[str, str]) -> Identity | None:
        if headers.get("authorization") == "Directory jane":
            return Identity(
                id=self._subject,
                type="user",
                subject_hash="0" * 64,
                issuer_hash="1" * 64,
                provider="bearer",
            )
        return await self._tokens.authenticate(headers)


def test_a_caller_naming_a_token_s_id_is_not_that_token_s_caller(tmp_path: Path) -> None:
    """A directory user whose subject is a token's id got that id, its provider too: it
    spent the token's rate budget (the service's next request refused) and was audited as
    the token. The token's own identity keeps its id; the user's is a pseudonym."""
    config = gateway_config(tmp_path, "http://127.0.0.1:9")
    init_key_file(config["keys"]["keyFile"])
    crypto = LocalCryptoProvider(config["keys"]["keyFile"])
    store = Path(config["auth"]["store"])
    record, token = add_token(store, crypto, token_type="service")
    provider = _TokensOrDirectory(store, crypto, subject=record["id"])
    settings = {"auth": {"provider": "external"}, "policy": {"rate": {"requestsPerMinute": 1}}}
    with gateway_in_front(tmp_path, settings, providers={"auth": provider}) as gateway:
        directory = {"authorization": "Directory jane"}
        url = f"{gateway.url}/v1/chat/completions"
        assert httpx.post(url, json=chat(), headers=directory).status_code == 200
        assert post_chat(gateway, token).status_code == 200
        forwarded = [r["identity"] for r in gateway.audit() if r.get("identity")]
    user, service = forwarded[0], forwarded[-1]
    assert (service["id"], service["provider"]) == (record["id"], "bearer")
    assert re.fullmatch(r"external:[0-9a-f]{16}", user["id"])
    assert user["provider"] == "external"


def test_hashes_and_a_provider_name_holding_text_are_not_written(identities: Any) -> None:
    ((identity, _reason),) = identities(
        subject_hash="jane", issuer_hash="Jane Doe", provider="jane@x"
    )
    assert re.fullmatch(r"[0-9a-f]{64}", identity["subjectHash"])
    assert re.fullmatch(r"[0-9a-f]{64}", identity["issuerHash"])
    assert identity["provider"] == "external"


@pytest.mark.parametrize(
    "fields",
    [
        {"labels": {"email": "jane.doe@example.com"}},
        {"labels": {"team": "x" * 65}},
        {"type": "robot"},
        {"scopes": (7,)},
        {"scopes": "team:eng"},
    ],
    ids=["label-key", "label-value", "type", "scope", "scopes-as-text"],
)
def test_a_type_or_label_outside_the_rules_denies(identities: Any, fields: Any) -> None:
    # A reason of its own: the provider answered, with an identity the rules refuse, which
    # an operator tells apart from a provider that raised.
    assert identities(**fields) == [(None, "invalid_identity")]


class _Untyped(Directory):
    """Answers with a mapping where an Identity belongs."""

    async def authenticate(self, headers: Mapping[str, str]) -> Any:
        return {"id": "jane.doe@example.com"}


def test_an_answer_that_is_no_identity_denies(tmp_path: Path) -> None:
    config = {"auth": {"provider": "external"}}
    with gateway_in_front(tmp_path, config, providers={"auth": _Untyped()}) as gateway:
        assert post_chat(gateway, "anything").status_code == 401
        denials = [r for r in gateway.audit() if r.get("decision") == "auth_denied"]
    assert [record["reason"] for record in denials] == ["invalid_identity"]


def test_a_provider_that_raises_is_still_a_provider_error(identities: Any) -> None:
    assert identities(failing=True) == [(None, "provider_error")]


def test_a_provider_selected_by_name_is_closed_with_the_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_directory_plugin(tmp_path, monkeypatch)
    runtime = create_runtime(
        gateway_config(tmp_path, "http://127.0.0.1:9", {"auth": {"provider": "directory"}})
    )
    assert runtime.auth is runtime.auth  # built once
    runtime.close()
    assert Directory.closed == 1
