# SPDX-License-Identifier: Apache-2.0
"""``haechi status`` refuses a provider name the gateway refuses to start with, with the
gateway's message; it reported such a configuration as valid (exit 0)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from haechi.crypto import init_key_file
from tests.cli import json_output, run_haechi


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"rateLimit": {"provider": "nope"}},
            "rateLimit.provider: unknown provider 'nope' (registered: memory)",
        ),
        (
            {"audit": {"sink": "nope"}},
            "audit.sink: unknown provider 'nope' (registered: jsonl, memory)",
        ),
        (
            {"keys": {"provider": "external"}},
            'keys.provider "external" needs an injected crypto provider',
        ),
    ],
)
def test_status_refuses_what_the_gateway_refuses(
    tmp_path: Path, section: dict[str, Any], message: str
) -> None:
    init_key_file(tmp_path / ".haechi" / "dev.keys.json")  # the gateway reads it first
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"configVersion": 1, "proxy": {"port": 0}, **section}))
    status = run_haechi("status", "--config", config, cwd=tmp_path)
    proxy = run_haechi("proxy", "--config", config, cwd=tmp_path, timeout=60)
    assert (status.returncode, status.stderr) == (1, f"haechi: {message}\n")
    assert (proxy.returncode, proxy.stderr) == (1, status.stderr)
    assert status.stdout == ""


def test_status_accepts_the_providers_the_runtime_builds_itself(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"configVersion": 1, "auth": {"provider": "none"}}))
    assert json_output(run_haechi("status", "--config", config, cwd=tmp_path))["ok"]
