# SPDX-License-Identifier: Apache-2.0
"""The header fields of an MCP server's answers behind an ``mcp-http`` gateway are inspected
like those of the gateway's other routes: a field holding a value is dropped (the client's
SDK keeps ``x-request-id`` and shows it in errors), the rest kept, and the session id, which
the gateway binds to the caller, always goes back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_mcp_http import (
    EMAIL,
    REQUEST,
    Reply,
    ScriptedUpstream,
    bound_session,
    event,
    gateway_before,
    post,
    sse,
)

ANSWER = json.dumps({"jsonrpc": "2.0", "id": 7, "result": {"text": "fine"}}).encode()
FIELDS = (
    (b"mcp-session-id", b"s-1"),
    (b"x-request-id", EMAIL.encode()),
    (b"x-trace", b"kept-value"),
)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=ANSWER, headers=FIELDS),
        Reply(status=202, headers=FIELDS),
        Reply(
            content_type="text/event-stream",
            body=sse(event({"jsonrpc": "2.0", "id": 7, "result": {"text": "fine"}})),
            headers=FIELDS,
        ),
    ],
    ids=["json", "empty", "event-stream"],
)
def test_a_value_in_an_answer_field_never_reaches_the_client(tmp_path: Path, reply: Reply) -> None:
    with gateway_before(ScriptedUpstream([reply]), tmp_path) as url:
        answer = post(url, REQUEST)
    assert answer.status_code == reply.status
    assert "x-request-id" not in answer.headers
    assert EMAIL not in str(answer.headers)
    assert answer.headers["x-trace"] == "kept-value"
    assert answer.headers["mcp-session-id"] == bound_session(tmp_path, "s-1")
    records = [
        json.loads(line) for line in (tmp_path / ".haechi" / "audit.jsonl").read_text().splitlines()
    ]
    assert "response_header_dropped" in {record.get("decision") for record in records}
    assert EMAIL not in (tmp_path / ".haechi" / "audit.jsonl").read_text()
