# SPDX-License-Identifier: Apache-2.0
"""What a caller gets when the rate limiter fails or does not answer.

A limiter that raises, or that waits on a store that stopped answering, must neither let the
request through (every budget would be lifted whenever the store is down) nor hold it (its
in-flight slot with it, until ``limits.maxInFlight`` refuses everyone): the request is
refused 503 ``haechi_rate_limit_unavailable`` within ``rateLimit.timeoutMs``, its body
unread, and audited within ``rateLimit.deniedRecordsPerSecond``. Tests run a real gateway on
a socket, with the limiter injected as a provider.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.audit import read_summary
from haechi.cli import main
from tests.cli import run_haechi
from tests.test_proxy import raw_request
from tests.test_proxy_auth import bearer, chat, new_token
from tests.upstream_server import Gateway, gateway_in_front

URL = "/v1/chat/completions"
SECRET = "store at redis://jane.doe@example.com:6379 refused key AKIAIOSFODNN7EXAMPLE"
LIMITED = {"auth": {"provider": "bearer"}, "policy": {"rate": {"requestsPerMinute": 30}}}
ANONYMOUS = {"policy": {"rate": {"requestsPerMinute": 30}}}


class _Raising:
    """A limiter whose store fails, with a message that quotes what it holds."""

    name = "raising"

    async def allow(self, key: str, requests_per_minute: float) -> bool:
        raise RuntimeError(SECRET)


class _Stalling:
    """A shared limiter whose store stopped answering for some keys (the calls for them never
    return), and allows every other key."""

    name = "stalling"

    def __init__(self) -> None:
        self.stalled: set[str] = set()
        self.cancelled = 0

    async def allow(self, key: str, requests_per_minute: float) -> bool:
        if key in self.stalled:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return True


class _HintStalls:
    """A limiter that refuses, and whose ``retry_after`` never answers."""

    name = "hint-stalls"

    async def allow(self, key: str, requests_per_minute: float) -> bool:
        return False

    async def retry_after(self, key: str, requests_per_minute: float) -> float:
        await asyncio.Event().wait()
        return 1.0


class _Slow:
    """A limiter that answers after longer than the default bound (1 s)."""

    name = "slow"

    async def allow(self, key: str, requests_per_minute: float) -> bool:
        await asyncio.sleep(1.2)
        return True


def _unavailable(gateway: Gateway) -> list[dict[str, Any]]:
    return [r for r in gateway.audit() if r.get("decision") == "rate_limit_unavailable"]


def _logged(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    return [r.haechi_fields for r in caplog.records if r.getMessage() == event]  # type: ignore[attr-defined]


def test_a_raising_limiter_refuses_unread_unforwarded_and_untold(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="haechi.proxy"),
        gateway_in_front(tmp_path, LIMITED, providers={"rate_limiter": _Raising()}) as gateway,
    ):
        identity, token = new_token(gateway)
        # A declared body that never comes: a gateway that read it would wait for it.
        answer = raw_request(
            gateway,
            f"POST {URL} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n"
            "content-type: application/json\r\ncontent-length: 1000\r\n\r\n".encode(),
        )
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503")
        assert b"\r\nconnection: close" in head.lower()
        assert json.loads(body) == {
            "error": "haechi_rate_limit_unavailable",
            "message": "Rate limit could not be checked; the request was not forwarded",
        }
        sent = httpx.post(f"{gateway.url}{URL}", json=chat(SECRET), headers=bearer(token))
        assert sent.status_code == 503
        assert sent.json()["error"] == "haechi_rate_limit_unavailable"
        assert gateway.upstream.received == []
        counted = 'decision="rate_limit_unavailable",mode="enforce",route="chat-completions"} 2.0'
        assert counted in gateway.metrics(counted)
    records = _unavailable(gateway)
    assert [(r["reason"], r["identity"]["id"], r["blocked"]) for r in records] == [
        ("limiter_error", identity, True)
    ] * 2
    assert records[1]["correlationId"] == sent.headers["x-haechi-correlation-id"]
    assert _logged(caplog, "rate_limit_failed")[1] == {
        "correlationId": sent.headers["x-haechi-correlation-id"],
        "errorName": "RuntimeError",
        "reason": "limiter_error",
    }
    for text in (gateway.audit_text(), caplog.text, answer.decode(), sent.text):
        assert "jane" not in text
        assert "AKIA" not in text


def test_a_limiter_that_does_not_answer_is_refused_and_frees_the_slot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = _Stalling()
    config = {**LIMITED, "rateLimit": {"timeoutMs": 50}, "limits": {"maxInFlight": 1}}
    with (
        caplog.at_level(logging.WARNING, logger="haechi.proxy"),
        gateway_in_front(tmp_path, config, providers={"rate_limiter": limiter}) as gateway,
    ):
        stalled, stalled_token = new_token(gateway)
        _id, token = new_token(gateway)
        limiter.stalled.add(stalled)
        refused = httpx.post(
            f"{gateway.url}{URL}", json=chat(), headers=bearer(stalled_token), timeout=10
        )
        assert refused.status_code == 503
        assert refused.json()["error"] == "haechi_rate_limit_unavailable"
        assert limiter.cancelled == 1  # the call was given up, not left running
        # The only in-flight slot is free again: another caller is served.
        served = httpx.post(f"{gateway.url}{URL}", json=chat(), headers=bearer(token), timeout=10)
        assert served.status_code == 200
        assert len(gateway.upstream.received) == 1
    [record] = _unavailable(gateway)
    assert (record["reason"], record["identity"]["id"]) == ("limiter_timeout", stalled)
    [logged] = _logged(caplog, "rate_limit_failed")
    assert (logged["errorName"], logged["reason"]) == ("TimeoutError", "limiter_timeout")


def test_a_retry_after_that_does_not_answer_gets_the_whole_window(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = {**ANONYMOUS, "rateLimit": {"timeoutMs": 50}}
    limiter = _HintStalls()
    with (
        caplog.at_level(logging.WARNING, logger="haechi.proxy"),
        gateway_in_front(tmp_path, config, providers={"rate_limiter": limiter}) as gateway,
    ):
        refused = httpx.post(f"{gateway.url}{URL}", json=chat(), timeout=10)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "60"
        assert gateway.upstream.received == []
    assert [r["reason"] for r in gateway.audit() if r.get("decision") == "rate_limited"] == [
        "rate:30"
    ]
    [logged] = _logged(caplog, "rate_limit_retry_after_failed")
    assert logged["errorName"] == "TimeoutError"


def test_no_bound_waits_for_the_limiter(tmp_path: Path) -> None:
    """``timeoutMs: 0`` is no bound (not a bound of nothing): a limiter slower than the
    default bound still decides."""
    config = {**ANONYMOUS, "rateLimit": {"timeoutMs": 0}}
    with gateway_in_front(tmp_path, config, providers={"rate_limiter": _Slow()}) as gateway:
        assert httpx.post(f"{gateway.url}{URL}", json=chat(), timeout=10).status_code == 200
        assert len(gateway.upstream.received) == 1


def test_failures_past_the_bound_are_counted_in_one_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {**ANONYMOUS, "rateLimit": {"deniedRecordsPerSecond": 1}}
    with gateway_in_front(tmp_path, config, providers={"rate_limiter": _Raising()}) as gateway:
        with httpx.Client(base_url=gateway.url) as client:
            answers = [client.post(URL, json=chat()).status_code for _ in range(20)]
        assert answers == [503] * 20
        assert gateway.upstream.received == []
    # The gateway stopped: what was still counted is written on its way out.
    records = _unavailable(gateway)
    single = [r for r in records if r["reason"] != "aggregated"]
    summaries = [r for r in records if r["reason"] == "aggregated"]
    assert single
    assert {r["reason"] for r in single} == {"limiter_error"}
    assert summaries
    for summary in summaries:
        assert [summary[name] for name in ("correlationId", "identity", "routeId")] == [None] * 3
        counted = summary["summary"]["byAction"]["rate_limit_unavailable"]
        assert summary["summary"]["byReason"] == {"limiter_error": counted}
    audit = gateway.runtime.config.audit.path
    assert read_summary(audit)["byAction"]["rate_limit_unavailable"] == 20
    assert main(["audit-verify", "--audit", str(audit)]) == 0
    verified = json.loads(capsys.readouterr().out)["result"]
    assert verified["valid"] is True


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "rateLimit.timeoutMs: Input should be greater than or equal to 0"),
        (60001, "rateLimit.timeoutMs: Input should be less than or equal to 60000"),
        ("1000", "rateLimit.timeoutMs: Input should be a valid integer"),
    ],
)
def test_a_bad_timeout_is_refused_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: object, message: str
) -> None:
    config = tmp_path / "haechi.json"
    config.write_text(json.dumps({"rateLimit": {"timeoutMs": value}}))
    assert main(["proxy", "--config", str(config)]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_limiter_that_cannot_be_built_stops_the_gateway_before_it_serves(
    tmp_path: Path, workers: str
) -> None:
    config = tmp_path / "haechi.config.json"
    config.write_text(
        json.dumps(
            {
                "keys": {"keyFile": str(tmp_path / "keys.json")},
                "policy": {"rate": {"requestsPerMinute": 30}},
                "rateLimit": {"provider": "nosuch"},
            }
        )
    )
    result = run_haechi(
        "proxy", "--config", config, "--port", "0", "--workers", workers, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 1
    assert "rateLimit.provider: unknown provider 'nosuch'" in result.stderr
    assert "listening on" not in result.stdout
