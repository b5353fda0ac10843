# SPDX-License-Identifier: Apache-2.0
"""What a caller over its rate limit gets, and what the audit log keeps of it.

A 429 says when to come back (``Retry-After``), so that a client that honours it, as the
official ones do, does not spend its next window on retries; and a caller that keeps
sending cannot make the gateway write one audit record per refusal
(``rateLimit.deniedRecordsPerSecond``). Tests run a real gateway on a socket.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from haechi.audit import read_summary
from haechi.cli import main
from tests.test_proxy_auth import bearer, chat, new_token
from tests.upstream_server import gateway_in_front

URL = "/v1/chat/completions"
LIMITED = {"auth": {"provider": "bearer"}, "policy": {"rate": {"requestsPerMinute": 2}}}


def test_the_openai_client_reads_when_to_retry(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, LIMITED) as gateway:
        _id, token = new_token(gateway)
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0)
        messages: Any = chat()["messages"]
        for _ in range(2):
            client.chat.completions.create(model="m", messages=messages)
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="m", messages=messages)
        # The window started with the first request, a moment ago: most of it is left.
        retry_after = refused.value.response.headers["retry-after"]
        assert retry_after.isdigit()
        assert 55 <= int(retry_after) <= 60
        assert len(gateway.upstream.received) == 2


def test_refusals_past_the_bound_are_counted_in_one_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {**LIMITED, "rateLimit": {"deniedRecordsPerSecond": 3}}
    with gateway_in_front(tmp_path, config) as gateway:
        identity, token = new_token(gateway)
        with httpx.Client(base_url=gateway.url, headers=bearer(token)) as client:
            allowed = [client.post(URL, json=chat()).status_code for _ in range(2)]
            started = time.monotonic()
            refused = [client.post(URL, json=chat()).status_code for _ in range(40)]
            elapsed = time.monotonic() - started
        assert (allowed, refused) == ([200] * 2, [429] * 40)
        assert "haechi_rate_limited_total 40.0" in gateway.metrics("haechi_rate_limited_total 40")
    # The gateway stopped: what was still counted is written on its way out.
    records = [r for r in gateway.audit() if r.get("decision") == "rate_limited"]
    single = [r for r in records if r["reason"] != "aggregated"]
    summaries = [r for r in records if r["reason"] == "aggregated"]
    # Three at once, then three a second while the 40 requests were sent.
    assert 3 <= len(single) <= 3 + 3 * elapsed
    assert {(r["reason"], r["identity"]["id"]) for r in single} == {("rate:2", identity)}
    assert summaries
    for summary in summaries:
        assert [summary[name] for name in ("correlationId", "identity", "routeId")] == [None] * 3
        counted = summary["summary"]["byAction"]["rate_limited"]
        assert summary["summary"]["byReason"] == {"rate:2": counted}
    assert len(single) + sum(r["summary"]["byAction"]["rate_limited"] for r in summaries) == 40
    audit = gateway.runtime.config.audit.path
    assert read_summary(audit)["byAction"]["rate_limited"] == 40
    assert main(["audit-verify", "--audit", str(audit)]) == 0
    verified = json.loads(capsys.readouterr().out)["result"]
    assert (verified["valid"], verified["records"]) == (True, len(gateway.audit()))


class _AllowOnly:
    """A third-party limiter that answers allow/deny and nothing else."""

    name = "allow-only"

    async def allow(self, key: str, requests_per_minute: float) -> bool:
        return False


class _Hinting(_AllowOnly):
    """A limiter that also says how long a refused key waits."""

    name = "hinting"

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def retry_after(self, key: str, requests_per_minute: float) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    ("limiter", "expected"),
    [
        (_AllowOnly(), "60"),
        (_Hinting(2.5), "3"),
        (_Hinting(0.2), "1"),
        (_Hinting(-4), "1"),
        (_Hinting(86400.5), "60"),
        (_Hinting(10**400), "60"),
        (_Hinting(float("nan")), "60"),
        (_Hinting("soon"), "60"),
        (_Hinting(RuntimeError("backend says jane.doe@example.com")), "60"),
    ],
    ids=[
        "allow-only",
        "rounded-up",
        "at-least-one",
        "past",
        "a-day",
        "beyond-a-float",
        "nan",
        "text",
        "raises",
    ],
)
def test_retry_after_from_the_limiter_or_the_window(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, limiter: Any, expected: str
) -> None:
    """The limiter's answer, rounded up, is at least 1 and at most the window: a per-minute
    budget is back within it, whatever a limiter says. Without an answer, the window."""
    config = {"policy": {"rate": {"requestsPerMinute": 30}}}
    with (
        caplog.at_level(logging.WARNING, logger="haechi.proxy"),
        gateway_in_front(tmp_path, config, providers={"rate_limiter": limiter}) as gateway,
    ):
        refused = httpx.post(f"{gateway.url}{URL}", json=chat())
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == expected
    failed = [r for r in caplog.records if r.getMessage() == "rate_limit_retry_after_failed"]
    raised = isinstance(getattr(limiter, "answer", None), Exception)
    assert len(failed) == raised
    assert "jane" not in caplog.text
