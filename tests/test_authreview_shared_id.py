# SPDX-License-Identifier: Apache-2.0
"""One token id naming two tokens (a store merged from two, edited by hand).

The id is the caller's identity: in the audit log, as its rate budget and as the owner of
its MCP sessions. Two tokens under one id would be one caller to all of these, so neither
authenticates; the same record written twice (one token) keeps working. A real gateway on
a socket in front of a real upstream.
"""

from __future__ import annotations

import json
from pathlib import Path

from haechi.auth import add_token
from tests.test_proxy_auth import post_chat
from tests.upstream_server import Gateway, gateway_in_front


def _status(gateway: Gateway, token: str) -> int:
    return post_chat(gateway, token).status_code


def test_an_id_naming_two_tokens_authenticates_neither(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"auth": {"provider": "bearer"}}) as gateway:
        store = Path(gateway.runtime.config.auth.store)
        crypto = gateway.runtime.crypto
        first, token = add_token(store, crypto, token_type="user")
        _second, merged = add_token(store, crypto, token_type="user")
        third, kept = add_token(store, crypto, token_type="user")
        document = json.loads(store.read_text())
        document["tokens"][1]["id"] = first["id"]
        document["tokens"].append(dict(document["tokens"][2]))  # one token written twice
        store.write_text(json.dumps(document))

        assert [_status(gateway, t) for t in (token, merged, kept)] == [401, 401, 200]
        assert [r["identity"]["id"] for r in gateway.audit() if r.get("identity")] == [third["id"]]
        denials = [r for r in gateway.audit() if r.get("decision") == "auth_denied"]
        assert [r["reason"] for r in denials] == ["invalid_token", "invalid_token"]
