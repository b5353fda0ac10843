# SPDX-License-Identifier: Apache-2.0
"""``limits.maxInspectionMs``: the CPU time one payload's inspection may take.

Text made of number groups is the costly kind to scan (each phone-like number is validated),
so the payloads here are lists of such numbers, which take a good part of a second whatever
the machine, against a budget of a millisecond.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import haechi
from haechi.crypto import init_key_file
from haechi.detect.budget import InspectionBudget, current_budget
from haechi.errors import LimitError
from haechi.runtime import Runtime
from tests.upstream_server import Reply, gateway_in_front

CODE = "haechi_inspection_budget_exceeded"
EMAIL = "jane.doe@example.com"


def numbers(count: int) -> str:
    """``count`` phone-like numbers, different each time (no verdict is remembered)."""
    rng = random.Random(count)
    return " ".join(
        f"+{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        for _ in range(count)
    )


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


def make_runtime(tmp_path: Path, limits: dict[str, Any]) -> Runtime:
    init_key_file(tmp_path / "keys.json")
    return haechi.create_runtime(
        {
            "mode": "enforce",
            "audit": {"sink": "memory"},
            "keys": {"keyFile": str(tmp_path / "keys.json")},
            "limits": {"maxRequestBytes": 4_000_000, **limits},
        }
    )


def spin(seconds: float) -> None:
    """Spend ``seconds`` of this thread's CPU time."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def steps(budget: InspectionBudget, count: int) -> None:
    for _ in range(count):
        budget.step()


def test_a_budget_counts_the_scanning_threads_cpu_not_the_clock() -> None:
    budget = InspectionBudget(0.05)
    with budget.running():
        assert current_budget() is budget
        time.sleep(0.2)  # waiting is not charged
        steps(budget, 64)
        spin(0.06)
        with pytest.raises(LimitError) as raised:
            steps(budget, 64)
    assert current_budget() is None
    assert (raised.value.status_code, raised.value.error_code) == (413, CODE)


def test_scans_under_one_budget_share_it() -> None:
    budget = InspectionBudget(0.05)
    with budget.running():
        spin(0.06)
    with budget.running(), pytest.raises(LimitError):
        budget.step()  # the first step of a later scan checks what is left


def test_a_budget_is_seen_only_by_the_scan_it_runs() -> None:
    seen: list[InspectionBudget | None] = []
    budget = InspectionBudget(1.0)
    with budget.running():
        other = threading.Thread(target=lambda: seen.append(current_budget()))
        other.start()
        other.join()
    assert seen == [None]


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        InspectionBudget(0)


@pytest.mark.anyio
@pytest.mark.parametrize("count", [1_500, 6_000], ids=["on-the-loop", "in-a-worker-thread"])
async def test_a_payload_over_budget_is_blocked_and_audited(tmp_path: Path, count: int) -> None:
    runtime = make_runtime(tmp_path, {"maxInspectionMs": 1})
    text = f"{EMAIL} {numbers(count)}"
    with pytest.raises(LimitError) as raised:
        await runtime.protect(
            chat(text), direction="request", protocol="openai-compatible", operation="chat"
        )
    assert raised.value.error_code == CODE
    (record,) = [record async for record in runtime.audit.store.records()]
    assert (record["decision"], record["reason"], record["blocked"]) == (
        "limit_exceeded",
        CODE,
        True,
    )
    assert EMAIL not in json.dumps(record)
    await runtime.aclose()


@pytest.mark.anyio
async def test_without_a_budget_the_same_payload_is_inspected_whole(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, {})
    result = await runtime.protect(
        chat(f"{EMAIL} {numbers(1_500)}"),
        direction="request",
        protocol="openai-compatible",
        operation="chat",
    )
    assert not result.blocked
    assert EMAIL not in json.dumps(result.payload)
    await runtime.aclose()


@pytest.fixture
def budgeted(tmp_path: Path) -> Iterator[Any]:
    config = {
        "limits": {"maxInspectionMs": 1},
        "responseProtection": {"enabled": True},
        "streaming": {"requestMode": "inspect"},
    }
    with gateway_in_front(tmp_path, config) as gateway:
        yield gateway


def test_the_gateway_refuses_a_request_over_budget_before_forwarding(budgeted: Any) -> None:
    response = httpx.post(
        f"{budgeted.url}/v1/chat/completions", json=chat(numbers(1_500)), timeout=30
    )
    assert response.status_code == 413
    assert response.json()["error"] == CODE
    assert budgeted.upstream.received == []
    assert [(r.get("decision"), r.get("reason")) for r in budgeted.audit()] == [
        ("limit_exceeded", CODE)
    ]
    # A short request is well within the budget.
    budgeted.upstream.queue(Reply(text="fine"))
    assert httpx.post(f"{budgeted.url}/v1/chat/completions", json=chat("hi")).status_code == 200


def test_an_answer_over_budget_is_not_relayed(budgeted: Any) -> None:
    secret = f"{EMAIL} {numbers(1_500)}"
    budgeted.upstream.queue(Reply(text=secret))
    response = httpx.post(f"{budgeted.url}/v1/chat/completions", json=chat("hi"), timeout=30)
    assert response.status_code == 502
    assert EMAIL not in response.text
    assert response.json()["reason"] == "response_inspection_budget_exceeded"
    decisions = [(r.get("decision"), r.get("reason")) for r in budgeted.audit()]
    assert ("limit_exceeded", CODE) in decisions
    assert ("response_unprotected_blocked", "response_inspection_budget_exceeded") in decisions


def test_a_stream_frame_over_budget_stops_the_stream(budgeted: Any) -> None:
    frame = json.dumps({"choices": [{"delta": {"content": f"{EMAIL} {numbers(1_500)}"}}]})
    wire = [b'data: {"choices": [{"delta": {"content": "start "}}]}\n\n']
    wire += [f"data: {frame}\n\n".encode(), b"data: [DONE]\n\n"]
    budgeted.upstream.queue(Reply(wire=wire))
    response = httpx.post(
        f"{budgeted.url}/v1/chat/completions", json=chat("hi", stream=True), timeout=30
    )
    assert EMAIL not in response.text
    assert "[DONE]" not in response.text
    reasons = [r.get("reason") for r in budgeted.audit()]
    assert "stream_inspection_budget_exceeded" in reasons
