# SPDX-License-Identifier: Apache-2.0
"""``tokenVault.maxTokensPerPayload``: how many values one payload may have tokenized.

Every token is a write of the vault under its lock; a payload with tens of thousands of
values would hold every other tokenizing request for minutes. Past the limit the payload is
refused before any value is stored, and the refusal is audited without the values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.errors import LimitError
from haechi.mcp import STDIO_ERROR, McpFilter
from haechi.runtime import Runtime
from tests.upstream_server import Gateway, Reply, gateway_in_front

LIMIT = 5
CONFIG: dict[str, Any] = {
    "policy": {"actions": {"email": "tokenize"}},
    "tokenVault": {"maxTokensPerPayload": LIMIT},
}


def _emails(count: int) -> str:
    return " ".join(f"user{number}@example.com" for number in range(count))


def _post(gateway: Gateway, text: str, *, stream: bool = False) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": text}], "stream": stream}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)


def _vault_records(gateway: Gateway) -> dict[str, Any]:
    path = Path(gateway.runtime.config.token_vault.path)
    return json.loads(path.read_text())["tokens"] if path.exists() else {}


def test_a_request_within_the_limit_is_tokenized(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, CONFIG) as gateway:
        assert _post(gateway, _emails(LIMIT)).status_code == 200
        sent = gateway.upstream.last.json()["messages"][0]["content"]
        assert sent.count("[TOKEN:") == LIMIT
        assert len(_vault_records(gateway)) == LIMIT


def test_a_request_over_the_limit_is_refused_before_any_value_is_stored(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, CONFIG) as gateway:
        answer = _post(gateway, _emails(LIMIT + 1))
        assert answer.status_code == 413
        assert answer.json()["error"] == "haechi_too_many_tokens"
        assert "maxTokensPerPayload" in answer.json()["message"]
        assert gateway.upstream.received == []
        assert _vault_records(gateway) == {}
        [record] = [r for r in gateway.audit() if r.get("decision") == "limit_exceeded"]
        assert record["reason"] == "haechi_too_many_tokens"
        assert record["blocked"] is True
        assert "@example.com" not in gateway.audit_text()


@pytest.mark.parametrize("failure_mode", ["fail-closed", "allow"])
@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_over_the_limit_is_not_relayed(
    tmp_path: Path, stream: bool, failure_mode: str
) -> None:
    """Whatever ``failureMode`` says: the answer was inspected, its values are known."""
    config = {
        **CONFIG,
        "responseProtection": {"enabled": True, "failureMode": failure_mode},
        "streaming": {"requestMode": "inspect"},
    }
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(text=_emails(LIMIT + 1)))
        answer = _post(gateway, "list the users", stream=stream)
        assert "user5@example.com" not in answer.text
        if stream:
            assert answer.status_code == 200  # the stream had started: it stops
            [event] = [r for r in gateway.audit() if r["operation"].startswith("response-stream")]
            assert event["reason"] == "stream_too_many_tokens"
        else:
            assert answer.status_code == 502
            assert answer.json()["reason"] == "response_too_many_tokens"
        assert "@example.com" not in gateway.audit_text()


@pytest.mark.anyio
async def test_the_library_raises_the_limit(haechi_runtime: Callable[..., Runtime]) -> None:
    runtime = haechi_runtime({**CONFIG, "mode": "enforce"})
    with pytest.raises(LimitError) as raised:
        await runtime.protect({"text": _emails(LIMIT + 1)})
    assert raised.value.error_code == "haechi_too_many_tokens"
    result = await runtime.protect({"text": _emails(LIMIT)})
    assert len(result.issued_tokens) == LIMIT


@pytest.mark.anyio
async def test_an_mcp_message_over_the_limit_is_refused_with_one_record(
    haechi_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    decisions = McpFilter(haechi_runtime({**CONFIG, "mode": "enforce"}), protocol="mcp-stdio")
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "t", "arguments": {"text": _emails(LIMIT + 1)}},
    }
    outcome = await decisions.decide(call, side="client", allowlist=True)
    assert outcome.message is not None
    assert outcome.message["error"]["code"] == STDIO_ERROR
    audit = tmp_path / "haechi" / "audit.jsonl"
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(r["decision"], r["reason"]) for r in records] == [
        ("limit_exceeded", "haechi_too_many_tokens")
    ]
    assert "@example.com" not in audit.read_text()
