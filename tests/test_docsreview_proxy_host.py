# SPDX-License-Identifier: Apache-2.0
"""``haechi proxy --host`` is refused blank, as ``proxy.host`` and ``HAECHI_PROXY_HOST`` are:
an empty host (``--host "$HOST"`` with the variable unset) would listen on every interface."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import run_haechi


@pytest.mark.parametrize("host", ["", " "], ids=["empty", "space"])
@pytest.mark.parametrize("remote", [False, True], ids=["loopback-only", "allow-remote-bind"])
def test_a_blank_host_is_refused_before_anything_listens(
    tmp_path: Path, host: str, remote: bool
) -> None:
    # A TLS-terminating proxy in front: the only other guard a remote bind has.
    config = {"proxy": {"trustForwardedProto": True}}
    (tmp_path / "haechi.config.json").write_text(json.dumps(config))
    flags = ["--allow-remote-bind"] if remote else []
    result = run_haechi("proxy", "--port", "0", "--host", host, *flags, cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "haechi: Invalid value for '--host': must not be blank\n"
