# SPDX-License-Identifier: Apache-2.0
"""``haechi proxy`` stopping writes what its providers still hold: the summary of a plugin
provider's latest denials, due a second after the first of them (a real process, a real
signed plugin in its sandbox)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.plugins.auth.kit import confinement_skip_reason, plugin_config_document, sign_plugin
from tests.test_proxy_server import _proxy_process, _write_config

MODE = "required" if confinement_skip_reason() is None else "best-effort"
DENIALS = 6


def _plugin_denials_recorded(audit: Path) -> int:
    """The plugin denials the audit log accounts for, one by one or in summaries."""
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    counted = 0
    for record in records:
        if record.get("decision") != "plugin.authenticate.deny":
            continue
        aggregated = record["reason"] == "aggregated"
        counted += record["summary"]["byAction"]["plugin.authenticate.deny"] if aggregated else 1
    return counted


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stop_writes_the_pending_summary_of_plugin_denials(tmp_path: Path, workers: int) -> None:
    signed = sign_plugin(tmp_path / "plugin", "good_auth.py")
    document: dict[str, Any] = plugin_config_document(signed, confinement=MODE, timeoutMs=1000)
    document["auth"]["deniedRecordsPerSecond"] = 1
    config = _write_config(tmp_path, "http://127.0.0.1:9", document)
    with _proxy_process(config, "--workers", str(workers)) as (process, url, _lines):
        # One keep-alive connection: every denial goes to the same worker.
        with httpx.Client(base_url=url) as client:
            for _ in range(DENIALS):
                denied = client.post(
                    "/v1/chat/completions",
                    json={"model": "m", "messages": []},
                    headers={"authorization": "Bearer wrong"},
                )
                assert denied.status_code == 401
        # At once: the summary of the denials past the first is due within a second.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert _plugin_denials_recorded(tmp_path / ".haechi" / "audit.jsonl") == DENIALS
