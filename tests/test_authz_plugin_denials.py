# SPDX-License-Identifier: Apache-2.0
"""Denials of a signed auth plugin are audited within ``auth.deniedRecordsPerSecond``.

A client without a valid credential must not make the gateway write one record per request
without bound: the gateway's own ``auth_denied`` records are bounded, and so are the
``plugin.authenticate.deny`` records of the plugin provider; every denial is still
accounted for. A real signed plugin runs in the sandbox behind a real gateway on a socket.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import httpx

from haechi.audit import read_summary, verify_chain
from tests.plugins.auth.kit import confinement_skip_reason, plugin_config_document, sign_plugin
from tests.upstream_server import Gateway, gateway_in_front

MODE = "required" if confinement_skip_reason() is None else "best-effort"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
DENIALS = 40


def _plugin_denials(gateway: Gateway) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The plugin's records of single denials, and its summaries."""
    records = [r for r in gateway.audit() if r.get("decision") == "plugin.authenticate.deny"]
    single = [r for r in records if r["reason"] != "aggregated"]
    return single, [r for r in records if r["reason"] == "aggregated"]


def _accounted(gateway: Gateway) -> int:
    single, summaries = _plugin_denials(gateway)
    counted = (r["summary"]["byAction"]["plugin.authenticate.deny"] for r in summaries)
    return len(single) + sum(counted)


def test_plugin_denials_past_the_bound_are_counted_in_one_record(tmp_path: Path) -> None:
    signed = sign_plugin(tmp_path / "plugin", "good_auth.py")
    config = plugin_config_document(signed, confinement=MODE, timeoutMs=1000)
    config["auth"]["deniedRecordsPerSecond"] = 3
    with gateway_in_front(tmp_path, config) as gateway:
        try:
            started = time.monotonic()
            with httpx.Client(base_url=gateway.url) as client:
                for number in range(DENIALS):
                    headers = {"authorization": "Bearer wrong"} if number % 2 else {}
                    answer = client.post("/v1/chat/completions", json=CHAT, headers=headers)
                    assert answer.status_code == 401
            # A burst of three, then three a second while the requests were sent.
            allowed = 3 + 3 * math.ceil(time.monotonic() - started + 1)
            deadline = time.monotonic() + 10
            while _accounted(gateway) < DENIALS and time.monotonic() < deadline:
                time.sleep(0.05)
            single, summaries = _plugin_denials(gateway)
            assert _accounted(gateway) == DENIALS
            assert 3 <= len(single) <= min(allowed, DENIALS - 1)
            assert summaries
            by_reason: dict[str, int] = {}
            for record in single:
                by_reason[record["reason"]] = by_reason.get(record["reason"], 0) + 1
            for summary in summaries:
                assert summary["pluginId"] == "test-auth"
                assert summary["identity"] is None
                for reason, count in summary["summary"]["byReason"].items():
                    by_reason[reason] = by_reason.get(reason, 0) + count
            assert by_reason == {"missing-credential": DENIALS // 2, "deny": DENIALS // 2}
            assert gateway.upstream.received == []
            assert "wrong" not in gateway.audit_text()
        finally:
            gateway.runtime.auth.close()
        audit_path = gateway.runtime.config.audit.path
    assert verify_chain(audit_path).valid
    # haechi report adds the summaries up: every denial is counted once.
    assert read_summary(audit_path)["byAction"]["plugin.authenticate.deny"] == DENIALS


def test_a_pending_plugin_summary_is_written_when_the_runtime_closes(tmp_path: Path) -> None:
    signed = sign_plugin(tmp_path / "plugin", "good_auth.py")
    config = plugin_config_document(signed, confinement=MODE, timeoutMs=1000)
    config["auth"]["deniedRecordsPerSecond"] = 1
    with (
        gateway_in_front(tmp_path, config) as gateway,
        httpx.Client(base_url=gateway.url) as client,
    ):
        for _ in range(6):
            answer = client.post("/v1/chat/completions", json=CHAT)
            assert answer.status_code == 401
    # The summary is due a second after the first counted denial; the runtime closed
    # before that (stopping the plugin) and wrote it on its way out.
    gateway.runtime.close()
    assert _accounted(gateway) == 6
    single, summaries = _plugin_denials(gateway)
    assert summaries
    assert {r["reason"] for r in single} == {"missing-credential"}
