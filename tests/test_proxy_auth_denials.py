# SPDX-License-Identifier: Apache-2.0
"""How many authentication denials get a record each (``auth.deniedRecordsPerSecond``).

A client without a token must not be able to make the gateway write one audit record per
request without bound; every denial is still accounted for, in one record a second past
the bound. Tests run a real gateway on a socket and read its audit file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.audit import read_summary, verify_chain
from tests.upstream_server import Gateway, gateway_in_front

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _deny(gateway: Gateway, count: int) -> None:
    """``count`` requests, half without a token and half with a wrong one."""
    with httpx.Client(base_url=gateway.url) as client:
        for number in range(count):
            headers = {"authorization": "Bearer wrong"} if number % 2 else {}
            response = client.post("/v1/chat/completions", json=CHAT, headers=headers)
            assert response.status_code == 401


def _denial_records(gateway: Gateway) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The records of single denials, and the summaries."""
    records = [r for r in gateway.audit() if r.get("decision") == "auth_denied"]
    single = [r for r in records if r["reason"] != "aggregated"]
    return single, [r for r in records if r["reason"] == "aggregated"]


def _accounted(gateway: Gateway) -> int:
    single, summaries = _denial_records(gateway)
    return len(single) + sum(r["summary"]["byAction"]["auth_denied"] for r in summaries)


def test_denials_past_the_bound_are_counted_in_one_record(tmp_path: Path) -> None:
    config = {"auth": {"provider": "bearer", "deniedRecordsPerSecond": 3}}
    with gateway_in_front(tmp_path, config) as gateway:
        _deny(gateway, 40)
        deadline = time.monotonic() + 5
        while _accounted(gateway) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        single, summaries = _denial_records(gateway)
        assert _accounted(gateway) == 40
        # Three at once, then three a second while the 40 requests were sent.
        assert 3 <= len(single) < 3 + 3 * 5
        assert summaries
        for summary in summaries:
            assert summary["correlationId"] is None
            assert summary["identity"] is None
            assert summary["routeId"] is None
            assert summary["blocked"] is True
            counts = summary["summary"]["byReason"]
            assert set(counts) <= {"no_token", "invalid_token"}
            assert sum(counts.values()) == summary["summary"]["byAction"]["auth_denied"]
        by_reason = {"no_token": 0, "invalid_token": 0}
        for record in single:
            by_reason[record["reason"]] += 1
        for summary in summaries:
            for reason, count in summary["summary"]["byReason"].items():
                by_reason[reason] += count
        assert by_reason == {"no_token": 20, "invalid_token": 20}
        assert "haechi_auth_denied_total 40.0" in gateway.metrics("haechi_auth_denied_total 40")
    assert verify_chain(gateway.runtime.config.audit.path).valid
    # haechi report adds the summaries up: every denial is counted once.
    assert read_summary(gateway.runtime.config.audit.path)["byAction"]["auth_denied"] == 40


def test_a_pending_summary_is_written_when_the_gateway_stops(tmp_path: Path) -> None:
    config = {"auth": {"provider": "bearer", "deniedRecordsPerSecond": 1}}
    with gateway_in_front(tmp_path, config) as gateway:
        _deny(gateway, 6)
    # The summary is due a second after the first counted denial; the gateway stopped
    # before that, and wrote it on its way out.
    assert _accounted(gateway) == 6
    assert _denial_records(gateway)[1]


@pytest.mark.parametrize("per_second", [0, 20])
def test_denials_within_the_bound_get_a_record_each(tmp_path: Path, per_second: int) -> None:
    config = {"auth": {"provider": "bearer", "deniedRecordsPerSecond": per_second}}
    with gateway_in_front(tmp_path, config) as gateway:
        _deny(gateway, 20)
        single, summaries = _denial_records(gateway)
        assert len(single) == 20
        assert summaries == []
        assert len({r["correlationId"] for r in single}) == 20


def test_a_summary_that_cannot_be_written_is_kept_for_the_next(tmp_path: Path) -> None:
    config = {"auth": {"provider": "bearer", "deniedRecordsPerSecond": 1}}
    with gateway_in_front(tmp_path, config) as gateway:
        audit = gateway.runtime.audit
        record = audit.record
        failing = True

        async def flaky(event: dict[str, Any]) -> None:
            if failing and event.get("reason") == "aggregated":
                raise OSError("disk full")
            await record(event)

        audit.record = flaky
        _deny(gateway, 5)
        time.sleep(1.5)  # the first summary is due, and fails
        assert _denial_records(gateway)[1] == []
        failing = False
        deadline = time.monotonic() + 5
        while not _denial_records(gateway)[1] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _accounted(gateway) == 5
