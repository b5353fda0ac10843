# SPDX-License-Identifier: Apache-2.0
"""``mcp-http``: a posted message refused with ``id: null`` is answered with HTTP ``400``.

Such a refusal answers no request: the message had no id the gateway can use (not a string
or an integer, none at all, ``null``) or one it does not repeat (the detector found a value
in it). The streamable HTTP transport has a server that cannot accept the input answer with
an HTTP error status; a ``200`` would be an answer the client has no request to match to.
A refusal carrying the request's id stays an ordinary ``200`` answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from haechi.mcp import INVALID_JSONRPC, METHOD_NOT_ALLOWED, POLICY_BLOCK, STDIO_ERROR
from tests.mcp_servers.harness import TIMEOUT_S, recorded
from tests.mcp_servers.tool_server import github_token, http_app
from tests.test_mcp_http import REQUEST, decisions, gateway_before, post

TOKEN = github_token()
#: Messages refused without a usable id: (message, the error's code, its audit reason).
UNATTRIBUTABLE: list[tuple[dict[str, Any], int, str]] = [
    ({**REQUEST, "id": [7]}, STDIO_ERROR, "mcp_invalid_id"),
    ({**REQUEST, "id": True}, STDIO_ERROR, "mcp_invalid_id"),
    ({**REQUEST, "id": 7.5}, STDIO_ERROR, "mcp_invalid_id"),
    ({**REQUEST, "id": f"req-{TOKEN}"}, STDIO_ERROR, "mcp_id_refused"),
    ({"jsonrpc": "2.0", "result": {}}, INVALID_JSONRPC, "mcp_invalid_shape"),
    (
        {"jsonrpc": "2.0", "id": None, "method": "resources/list"},
        METHOD_NOT_ALLOWED,
        "mcp_method_not_allowed",
    ),
]
#: A request with a ``null`` id whose arguments the policy blocks.
BLOCKED = {**REQUEST, "id": None, "params": {"name": "echo", "arguments": {"t": TOKEN}}}


def blocks_counted(mcp_url: str) -> str:
    """The ``haechi_blocks_total`` line of the gateway's metrics."""
    base = mcp_url.removesuffix("/mcp")
    metrics = httpx.get(f"{base}/__haechi/metrics", timeout=TIMEOUT_S).text
    return next(line for line in metrics.splitlines() if line.startswith("haechi_blocks_total"))


def audit_records(workdir: Path) -> list[dict[str, Any]]:
    """Every record of the gateway's audit log."""
    lines = (workdir / ".haechi" / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.anyio
async def test_a_refusal_without_an_id_is_answered_400(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "received.jsonl"
    monkeypatch.setenv("HAECHI_TEST_RECORD", str(record))
    with gateway_before(http_app(), tmp_path) as url, anyio.fail_after(TIMEOUT_S):
        answers = [post(url, message) for message, _code, _reason in UNATTRIBUTABLE]
        blocked = post(url, BLOCKED)
        with_id = post(url, {"jsonrpc": "2.0", "id": 9, "method": "resources/list"})
        counted = blocks_counted(url)
        assert recorded(record) == "", "nothing refused reached the server"
        async with (
            streamable_http_client(url) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            echoed = await session.call_tool("echo", {"text": "hello"})
            with pytest.raises(MCPError) as refused:
                await session.send_ping()
    for answer, (_message, code, _reason) in zip(answers, UNATTRIBUTABLE, strict=True):
        assert answer.status_code == 400
        assert (answer.json()["id"], answer.json()["error"]["code"]) == (None, code)
    assert blocked.status_code == 400
    assert (blocked.json()["id"], blocked.json()["error"]["code"]) == (None, POLICY_BLOCK)
    assert with_id.status_code == 200, "a refusal with the request's id answers it"
    assert (with_id.json()["id"], with_id.json()["error"]["code"]) == (9, METHOD_NOT_ALLOWED)
    # The audit records and the metrics are those of any refusal.
    reasons = [reason for _message, _code, reason in UNATTRIBUTABLE]
    assert [r for _d, r in decisions(tmp_path)][: len(reasons)] == reasons
    audit_ids = {r["id"] for r in audit_records(tmp_path) if r.get("blocked")}
    assert blocked.json()["error"]["data"]["auditId"] in audit_ids
    assert counted == f"haechi_blocks_total {len(UNATTRIBUTABLE) + 2}.0"
    assert TOKEN not in (tmp_path / ".haechi" / "audit.jsonl").read_text()
    assert TOKEN not in "".join(answer.text for answer in [*answers, blocked])
    # The official client's calls are answered as before, a refused one with its id.
    assert echoed.content[0].text == "hello"
    assert refused.value.code == METHOD_NOT_ALLOWED
