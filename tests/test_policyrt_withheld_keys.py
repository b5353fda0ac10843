# SPDX-License-Identifier: Apache-2.0
"""A key in which a value was found is withheld from the paths bound into vault records and
encryption AAD, as from the audit: the short hash of a key such as a phone number is reversed
by trying every number, and the vault keeps the path in clear beside the sealed value while
the ``aadHash`` of an envelope sent upstream hashes it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx

from haechi.crypto import init_key_file
from haechi.crypto._aad import aad_hash, canonical_aad
from haechi.payload import path_text
from haechi.runtime import create_runtime
from tests.upstream_server import gateway_in_front

PHONE = "010-1234-5678"
EMAIL = "jane.doe@example.com"
#: What the path of a value under the key ``PHONE`` names of the key when not withheld.
PHONE_HASH = hashlib.sha256(PHONE.encode("utf-8")).hexdigest()[:12]


def test_the_vault_never_keeps_the_hash_of_a_key_holding_a_value(tmp_path: Path) -> None:
    config = {"policy": {"actions": {"email": "tokenize", "phone": "tokenize"}}}
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hello"}],
        "metadata": {PHONE: EMAIL, "nested": {PHONE: {"to": EMAIL}}},
    }
    with gateway_in_front(tmp_path, config) as gateway:
        reply = httpx.post(gateway.url + "/v1/chat/completions", json=body, timeout=30.0)
        forwarded = gateway.upstream.last.json()
    assert reply.status_code == 200, reply.text
    assert PHONE not in json.dumps(forwarded)
    vault = (tmp_path / ".haechi" / "token-vault.json").read_text("utf-8")
    paths = {record["metadata"]["path"] for record in json.loads(vault)["tokens"].values()}
    withheld = {PHONE}
    assert paths == {
        path_text(("metadata", PHONE), withheld),
        path_text(("metadata", "nested", PHONE), withheld),
        path_text(("metadata", "nested", PHONE, "to"), withheld),
    }
    assert PHONE_HASH not in vault


def _envelope(marker: str) -> dict[str, Any]:
    encoded = marker.removeprefix("[HAECHI_ENC:").removesuffix("]")
    padded = encoded + "=" * (-len(encoded) % 4)
    envelope: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return envelope


def test_an_envelope_cannot_confirm_a_guess_of_the_key_above_its_value(tmp_path: Path) -> None:
    keys = tmp_path / "dev.keys.json"
    init_key_file(keys)
    config = {
        "policy": {"mode": "enforce", "actions": {"email": "encrypt", "phone": "redact"}},
        "keys": {"keyFile": str(keys)},
        "audit": {"path": str(tmp_path / "audit.jsonl")},
        "tokenVault": {"path": str(tmp_path / "token-vault.json")},
    }
    runtime = create_runtime(config)
    try:
        result = runtime.protect_sync({PHONE: EMAIL})
        ((key, marker),) = result.payload.items()
        envelope = _envelope(marker)
        context = {
            "direction": "request",
            "protocol": "custom",
            "operation": "protect",
            "mode": "enforce",
            "correlationId": None,
            "profile": None,
            "identity": None,
        }

        def aad(path: str) -> dict[str, Any]:
            return {"context": context, "path": path, "type": "email", "ruleId": "email"}

        # Whoever receives the envelope and guesses the key cannot check the guess ...
        assert envelope["aadHash"] != aad_hash(canonical_aad(aad(path_text((PHONE,)))))
        # ... while the path the audit writes still opens it.
        assert runtime.crypto.decrypt(envelope, aad("key_redacted")) == EMAIL
    finally:
        runtime.close()
    assert key == "[REDACTED:phone]"
