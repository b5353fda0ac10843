# SPDX-License-Identifier: Apache-2.0
"""``haechi token-revoke`` ends a token whatever other record of the store holds its hash.

A record copied by hand under a new id (to give the token other labels), or a store merged
from two, holds one token's hash twice. Revoking the id the operator knows must end the
token, not hand it the identity of the copy. A real gateway on a socket in front of a real
upstream, and the real command line on the same store.
"""

from __future__ import annotations

import json
from pathlib import Path

from haechi.auth import add_token
from tests.cli import json_output, run_haechi
from tests.test_proxy_auth import post_chat
from tests.upstream_server import Gateway, gateway_in_front


def _status(gateway: Gateway, token: str) -> int:
    return post_chat(gateway, token).status_code


def test_a_revoked_token_is_refused_under_a_copy_of_its_record(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"auth": {"provider": "bearer"}}) as gateway:
        store = Path(gateway.runtime.config.auth.store)
        record, token = add_token(store, gateway.runtime.crypto, token_type="user")
        other_record, other = add_token(store, gateway.runtime.crypto, token_type="user")
        document = json.loads(store.read_text())
        copy = dict(document["tokens"][0], id="tok_auth_c0ffee00", labels={"team": "a"})
        document["tokens"].append(copy)
        store.write_text(json.dumps(document))
        assert _status(gateway, token) == 200

        config = tmp_path / "haechi.config.json"
        config.write_text(json.dumps({"auth": {"provider": "bearer", "store": str(store)}}))
        revoked = json_output(
            run_haechi("token-revoke", record["id"], "--config", config, cwd=tmp_path)
        )
        assert revoked["result"] == {"id": record["id"], "revoked": True}

        assert _status(gateway, token) == 401
        assert _status(gateway, other) == 200
        forwarded = [r for r in gateway.audit() if r.get("identity")]
        assert {r["identity"]["id"] for r in forwarded} <= {record["id"], other_record["id"]}
        denial = [r for r in gateway.audit() if r.get("decision") == "auth_denied"]
        assert [r["reason"] for r in denial] == ["invalid_token"]
