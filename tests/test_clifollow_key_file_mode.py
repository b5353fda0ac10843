# SPDX-License-Identifier: Apache-2.0
"""A key file others may read is reported by every command that uses it and by the gateway
as it starts, not only by ``haechi status``: ``protect`` and ``proxy`` used it silently."""

from __future__ import annotations

import json
import os
from pathlib import Path

from haechi.crypto import init_key_file
from tests.cli import json_output, proxy_start_events, run_haechi
from tests.upstream_server import gateway_config


def _config(tmp_path: Path, key_mode: int) -> tuple[Path, str]:
    """A configuration in ``tmp_path`` whose key file has ``key_mode``, and the warning an
    exposed one gets."""
    settings = gateway_config(tmp_path, "http://127.0.0.1:9")
    key_file = settings["keys"]["keyFile"]
    init_key_file(key_file)
    os.chmod(key_file, key_mode)
    config = tmp_path / "haechi.config.json"
    config.write_text(json.dumps(settings))
    return config, f"key file {key_file} is readable by others (0644); expected 0600"


def test_protect_warns_of_a_key_file_others_can_read(tmp_path: Path) -> None:
    config, warning = _config(tmp_path, 0o644)
    result = json_output(run_haechi("protect", "--config", config, stdin="{}", cwd=tmp_path))
    assert warning in result["warnings"]
    os.chmod(tmp_path / ".haechi" / "dev.keys.json", 0o600)
    result = json_output(run_haechi("protect", "--config", config, stdin="{}", cwd=tmp_path))
    assert not [text for text in result["warnings"] if "readable by others" in text]


def test_the_gateway_warns_of_a_key_file_others_can_read_as_it_starts(tmp_path: Path) -> None:
    config, warning = _config(tmp_path, 0o644)
    _listening, events = proxy_start_events(config)
    exposed = [event for event in events if event["event"] == "key_file_exposed"]
    assert [event["warning"] for event in exposed] == [warning]
