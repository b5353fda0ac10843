# SPDX-License-Identifier: Apache-2.0
"""An injected (``external``) auth provider's identity is held to the built-in rules before
the gateway audits it: an id that may be an address becomes a keyed pseudonym, and a type or
label outside the rules denies the request. A real gateway on a socket, a real upstream."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from haechi.models import Identity
from tests.test_proxy_auth import post_chat
from tests.upstream_server import gateway_in_front

_EXTERNAL = {"auth": {"provider": "external"}}


class _Directory:
    """Answers every request with one identity, whose fields a test chooses."""

    name: ClassVar[str] = "directory"

    def __init__(self, **fields: Any) -> None:
        self.identity = Identity(
            **{
                "id": "jane.doe@example.com",
                "type": "user",
                "subject_hash": "0" * 64,
                "issuer_hash": "1" * 64,
                "provider": "directory",
                **fields,
            }
        )

    async def authenticate(self, headers: Mapping[str, str]) -> Identity | None:
        return self.identity if headers.get("authorization") else None


def _identities(tmp_path: Path, provider: _Directory, requests: int = 1) -> list[Any]:
    """The identity of each audited forwarded request (``None`` for a denial), after
    ``requests`` chat requests; every answer's status is checked to be 200 or 401."""
    with gateway_in_front(tmp_path, _EXTERNAL, providers={"auth": provider}) as gateway:
        statuses = {post_chat(gateway, "anything").status_code for _ in range(requests)}
        assert statuses <= {200, 401}
        assert "jane" not in gateway.audit_text()
        return [
            (r["identity"], r.get("reason"))
            for r in gateway.audit()
            if r.get("identity") or r.get("decision") == "auth_denied"
        ]


def test_an_id_that_is_an_address_is_audited_as_a_keyed_pseudonym(tmp_path: Path) -> None:
    audited = _identities(tmp_path, _Directory(), requests=2)
    ids = {identity["id"] for identity, _reason in audited}
    assert len(audited) == 2
    assert len(ids) == 1  # one caller, one id: its records, rate budget and sessions
    assert re.fullmatch(r"external:[0-9a-f]{16}", ids.pop())


def test_an_id_of_the_built_in_form_is_kept(tmp_path: Path) -> None:
    audited = _identities(tmp_path, _Directory(id="tok_auth_0a1b2c3d"))
    assert [identity["id"] for identity, _reason in audited] == ["tok_auth_0a1b2c3d"]
    assert audited[0][0]["provider"] == "directory"


def test_hashes_and_a_provider_name_holding_text_are_not_written(tmp_path: Path) -> None:
    provider = _Directory(subject_hash="jane", issuer_hash="Jane Doe", provider="jane@x")
    ((identity, _reason),) = _identities(tmp_path, provider)
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
def test_a_type_or_label_outside_the_rules_denies(tmp_path: Path, fields: Any) -> None:
    assert _identities(tmp_path, _Directory(**fields)) == [(None, "provider_error")]
