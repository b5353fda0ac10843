# SPDX-License-Identifier: Apache-2.0
"""Token records edited by hand into a shape ``token-add`` never writes.

Such a record authenticates nothing: read loosely, scopes written as one string were one
scope per character (so the token got another profile than the one written), and labels
written as a list made every token of the store fail. The other records keep working.
A real gateway on a socket in front of a real upstream.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.auth import add_token
from tests.test_proxy_auth import post_chat
from tests.upstream_server import Gateway, gateway_in_front

CONFIG = {
    "auth": {"provider": "bearer"},
    "policy": {
        "profiles": {"open": {}, "limited": {"modelAllowlist": ["small"]}},
        "profileBinding": {"default": "open", "byScope": {"team:limited": "limited"}},
    },
}


def _chat(gateway: Gateway, token: str) -> httpx.Response:
    return post_chat(gateway, token, model="big")


def _edit(gateway: Gateway, index: int, **fields: Any) -> None:
    store = Path(gateway.runtime.config.auth.store)
    document = json.loads(store.read_text())
    document["tokens"][index].update(fields)
    store.write_text(json.dumps(document))


@pytest.mark.parametrize(
    "fields",
    [
        {"scopes": "team:limited"},
        {"scopes": [["team:limited"]]},
        {"labels": ["team"]},
        {"labels": {"team": ["a"]}},
        {"type": "admin"},
        {"id": ""},
        {"id": "jane.doe@example.com"},
        {"id": "tok_auth_jane.doe@example.com"},
        {"tokenHash": None},
    ],
)
def test_a_record_in_another_shape_authenticates_nothing(
    tmp_path: Path, fields: dict[str, Any]
) -> None:
    with gateway_in_front(tmp_path, CONFIG) as gateway:
        store, crypto = gateway.runtime.config.auth.store, gateway.runtime.crypto
        _record, edited = add_token(store, crypto, token_type="user", scopes=["team:limited"])
        _record, other = add_token(store, crypto, token_type="user", scopes=["team:limited"])
        # Both tokens get the limited profile: the model "big" is refused.
        assert [_chat(gateway, token).status_code for token in (edited, other)] == [403, 403]
        _edit(gateway, 0, **fields)
        refused = _chat(gateway, edited)
        assert refused.status_code == 401
        assert refused.json()["message"] == "Authentication required"
        assert _chat(gateway, other).status_code == 403
        assert gateway.upstream.received == []
        # The identity (its id included) of every audited request is one token-add wrote.
        assert "jane.doe" not in gateway.audit_text()


def test_token_list_shows_a_record_in_another_shape_as_stored(tmp_path: Path) -> None:
    from tests.cli import json_output, run_haechi

    run_haechi("init", cwd=tmp_path).check_returncode()
    store = tmp_path / ".haechi" / "auth.json"
    json_output(run_haechi("token-add", "--type", "user", cwd=tmp_path))
    document = json.loads(store.read_text())
    document["tokens"][0].update(scopes="team:limited", labels=["team"])
    store.write_text(json.dumps(document))
    [listed] = json_output(run_haechi("token-list", cwd=tmp_path))["tokens"]
    assert (listed["scopes"], listed["labels"]) == ("team:limited", ["team"])
    assert "tokenHash" not in listed
