# SPDX-License-Identifier: Apache-2.0
"""With ``auth.provider: "none"`` (the default) the gateway checks no bearer token: a token
``token-add`` stores there is not required, and a gateway listening beyond this machine lets
whoever reaches it through. ``token-add`` and ``status`` said nothing of it."""

from __future__ import annotations

import json
from pathlib import Path

from haechi.crypto import init_key_file
from tests.cli import json_output, run_haechi

OFF = "authentication is off"


def _auth_warnings(status: dict[str, object]) -> list[str]:
    warnings = status["warnings"]
    assert isinstance(warnings, list)
    return [text for text in warnings if OFF in text]


def test_token_add_and_status_say_that_authentication_is_off(tmp_path: Path) -> None:
    init_key_file(tmp_path / ".haechi" / "dev.keys.json")
    assert _auth_warnings(json_output(run_haechi("status", cwd=tmp_path))) == []

    added = json_output(run_haechi("token-add", "--type", "service", cwd=tmp_path))
    assert added["warnings"] == [
        'auth.provider is "none": the gateway checks no bearer token, so this one is not '
        'required; set auth.provider to "bearer" to require it'
    ]
    status = json_output(run_haechi("status", cwd=tmp_path))
    assert _auth_warnings(status) == [
        '.haechi/auth.json holds bearer tokens, but authentication is off (auth.provider "none"): '
        'the gateway checks none of them; set auth.provider to "bearer"'
    ]

    remote = run_haechi("status", cwd=tmp_path, env={"HAECHI_PROXY_HOST": "0.0.0.0"})
    assert _auth_warnings(json_output(remote))[0] == (
        'authentication is off (auth.provider "none") and the gateway listens on 0.0.0.0: '
        "whoever reaches it can use it"
    )


def test_nothing_is_said_with_bearer_tokens_checked(tmp_path: Path) -> None:
    init_key_file(tmp_path / ".haechi" / "dev.keys.json")
    config = tmp_path / "haechi.config.json"
    config.write_text(json.dumps({"configVersion": 1, "auth": {"provider": "bearer"}}))
    added = json_output(run_haechi("token-add", "--type", "service", cwd=tmp_path))
    assert added["warnings"] == []
    assert _auth_warnings(json_output(run_haechi("status", cwd=tmp_path))) == []
