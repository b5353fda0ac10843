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

import pytest

from haechi.runtime import create_runtime
from tests.plugins.directory_auth import Directory, install_directory_plugin
from tests.test_proxy_auth import post_chat
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


def test_an_id_of_the_built_in_form_is_kept(identities: Any) -> None:
    audited = identities(id="tok_auth_0a1b2c3d")
    assert [identity["id"] for identity, _reason in audited] == ["tok_auth_0a1b2c3d"]
    assert audited[0][0]["provider"] == "directory"


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
