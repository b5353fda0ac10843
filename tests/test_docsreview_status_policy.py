# SPDX-License-Identifier: Apache-2.0
"""``haechi status`` judges the policy as the gateway does: a policy the gateway refuses to
start with is a configuration error there too, and the warnings of one it runs are shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import json_output, run_haechi


def _write_config(directory: Path, policy: dict[str, object]) -> None:
    (directory / "haechi.config.json").write_text(json.dumps({"policy": policy}))


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"presets": ["no-such-preset"]}, "haechi: policy.presets: Unknown policy preset"),
        ({"actions": {"api_key": "allow"}}, "haechi: Policy action conflict for api_key"),
    ],
    ids=["unknown-preset", "weakened-preset"],
)
def test_a_policy_the_gateway_refuses_is_refused(
    tmp_path: Path, policy: dict[str, object], message: str
) -> None:
    _write_config(tmp_path, policy)
    protect = run_haechi("protect", cwd=tmp_path, stdin="{}")
    status = run_haechi("status", cwd=tmp_path)
    assert (protect.returncode, status.returncode) == (1, 1)
    assert status.stdout == ""
    assert status.stderr.startswith(message)
    assert status.stderr == protect.stderr


def test_the_warnings_of_an_unsafe_override_are_shown(tmp_path: Path) -> None:
    _write_config(tmp_path, {"actions": {"api_key": "allow"}, "allowUnsafeOverrides": True})
    warnings = json_output(run_haechi("status", cwd=tmp_path))["warnings"]
    assert any(text.startswith("Policy action conflict for api_key") for text in warnings)
