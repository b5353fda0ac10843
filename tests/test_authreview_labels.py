# SPDX-License-Identifier: Apache-2.0
"""A bearer token's labels are read under the ``auth.allowedLabelKeys`` in force.

A label selects a policy profile (``policy.profileBinding.byLabel``). A token issued while
its key was allowed, or a record given a label by hand, must not keep selecting that
profile once the configuration does not allow the key: such a record authenticates
nothing, as a plugin's claims with such a key do. A real gateway on a socket in front of a
real upstream.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from haechi.auth import add_token
from tests.test_proxy_auth import post_chat
from tests.upstream_server import Gateway, gateway_in_front

CONFIG = {
    "auth": {"provider": "bearer", "allowedLabelKeys": ["team"]},
    "policy": {
        "profiles": {"limited": {"modelAllowlist": ["small"]}, "ops": {}},
        "profileBinding": {"default": "limited", "byLabel": {"role=ops": "ops"}},
    },
}


def _chat(gateway: Gateway, token: str) -> httpx.Response:
    return post_chat(gateway, token, model="big")


def test_a_label_key_the_configuration_does_not_allow_authenticates_nothing(
    tmp_path: Path,
) -> None:
    with gateway_in_front(tmp_path, CONFIG) as gateway:
        store, crypto = gateway.runtime.config.auth.store, gateway.runtime.crypto
        # Issued while "role" was allowed; "role" has been taken out of the list since.
        _record, retired = add_token(
            store,
            crypto,
            token_type="user",
            labels={"role": "ops"},
            allowed_label_keys=["team", "role"],
        )
        _record, edited = add_token(store, crypto, token_type="user", labels={"team": "a"})
        _record, kept = add_token(store, crypto, token_type="user", labels={"team": "a"})
        document = json.loads(Path(store).read_text())
        document["tokens"][1]["labels"] = {"team": "a", "role": "ops"}  # edited by hand
        Path(store).write_text(json.dumps(document))

        for token in (retired, edited):
            refused = _chat(gateway, token)
            assert refused.status_code == 401
            assert refused.json()["error"] == "haechi_auth_denied"
        # A token whose labels are allowed keeps its profile: "limited" refuses "big".
        assert _chat(gateway, kept).status_code == 403
        assert gateway.upstream.received == []
        denials = [r for r in gateway.audit() if r.get("decision") == "auth_denied"]
        assert [r["reason"] for r in denials] == ["invalid_token", "invalid_token"]
        assert all(r["profile"] is None for r in denials)
