# SPDX-License-Identifier: Apache-2.0
"""A message that cannot be read still answers whoever waits for it.

A request that cannot be parsed (a client cutting a text in the middle of an emoji, a text
in Latin-1) is refused, and its sender is waiting for an answer with its id; the server's
own requests (a sampling request, an elicitation) wait for the client's answer, which may be
just as unreadable or too long to read. Each peer gets the refusal with the id it waits for,
never one with ``id: null`` that it cannot match.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from haechi.mcp import STDIO_ERROR
from haechi.mcp._io import MAX_LINE_BYTES
from tests.mcp_servers.harness import (
    SCRIPTED,
    LineClient,
    haechi_argv,
    recorded,
    run_mcp_stdio,
    write_config,
)

EMAIL = "jane.doe@example.com"
HEAD = b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":'
#: Requests no JSON reader takes as they are, each holding the id 5.
UNREADABLE_REQUESTS = {
    "lone-surrogate": HEAD + rb'{"text":"cut \ud83d"}}',
    "latin-1": HEAD + b'{"text":"caf\xe9"}}',
    "trailing-text": HEAD + b"{}} and more",
}
SAMPLING = {
    "jsonrpc": "2.0",
    "id": "s1",
    "method": "sampling/createMessage",
    "params": {"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}]},
}


def scripted(tmp_path: Path, initial: list[Any] | None = None) -> LineClient:
    config = write_config(tmp_path, {"mcp": {"allowedMethods": ["*"]}})
    argv = haechi_argv("mcp-wrap", "--config", config, "--", sys.executable, SCRIPTED)
    env = {
        "HAECHI_TEST_RECORD": str(tmp_path / "received.jsonl"),
        "SCRIPTED_INITIAL": json.dumps(initial or []),
    }
    return LineClient(argv, cwd=tmp_path, env=env)


def received(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in recorded(tmp_path / "received.jsonl").splitlines()]


def echo(message_id: int) -> dict[str, Any]:
    params = {"name": "echo", "arguments": {"text": "after"}}
    return {"jsonrpc": "2.0", "id": message_id, "method": "tools/call", "params": params}


@pytest.mark.parametrize("line", list(UNREADABLE_REQUESTS.values()), ids=list(UNREADABLE_REQUESTS))
def test_an_unreadable_request_is_answered_with_its_id(tmp_path: Path, line: bytes) -> None:
    client = scripted(tmp_path)
    try:
        client.send(line)
        refused = client.receive()
        assert (refused["id"], refused["error"]["code"]) == (5, STDIO_ERROR)
        client.send(echo(6))
        assert client.receive()["id"] == 6
        assert client.close() == 0
    finally:
        client.kill()
    assert [message["id"] for message in received(tmp_path)] == [6]


def test_an_unreadable_request_does_not_repeat_an_id_holding_a_value(tmp_path: Path) -> None:
    line = UNREADABLE_REQUESTS["lone-surrogate"].replace(b'"id":5', f'"id":"{EMAIL}"'.encode())
    client = scripted(tmp_path)
    try:
        client.send(line)
        refused = client.receive()
        assert (refused["id"], refused["error"]["code"]) == (None, STDIO_ERROR)
        assert client.close() == 0
    finally:
        client.kill()


def test_an_unreadable_server_request_is_answered_to_the_server(tmp_path: Path) -> None:
    cut = {**SAMPLING, "params": {"messages": [{"content": {"type": "text", "text": "\ud83d"}}]}}
    client = scripted(tmp_path, initial=[cut])
    try:
        client.send(echo(6))
        assert client.receive()["id"] == 6, "the unreadable request never reached the client"
        assert client.close() == 0
    finally:
        client.kill()
    answers = [message for message in received(tmp_path) if "method" not in message]
    assert [(m["id"], m["error"]["code"]) for m in answers] == [("s1", STDIO_ERROR)]


@pytest.mark.parametrize(
    "answer",
    [
        rb'{"jsonrpc":"2.0","id":"s1","result":{"content":{"type":"text","text":"cut \ud83d"}}}',
        b'{"jsonrpc":"2.0","id":"s1","result":{"content":{"type":"text","text":"'
        + b"x" * (MAX_LINE_BYTES + 1)
        + b'"}}}',
        # The id after the large part, as TypeScript's SDK writes an answer.
        b'{"result":{"content":{"type":"text","text":"'
        + b"x" * (MAX_LINE_BYTES + 1)
        + b'"}},"jsonrpc":"2.0","id":"s1"}',
    ],
    ids=["lone-surrogate", "too-long-id-first", "too-long-id-last"],
)
def test_an_unreadable_answer_of_the_client_answers_the_server(
    tmp_path: Path, answer: bytes
) -> None:
    """The server waits for the answer to its request: a client answer that cannot be
    passed on becomes the error for it, not an error the client gets with ``id: null``."""
    client = scripted(tmp_path, initial=[SAMPLING])
    try:
        assert client.receive()["id"] == "s1"
        client.send(answer)
        client.send(echo(6))
        assert client.receive()["id"] == 6, "nothing else was sent to the client"
        assert client.close() == 0
    finally:
        client.kill()
    answers = [message for message in received(tmp_path) if "method" not in message]
    assert [(m["id"], m["error"]["code"]) for m in answers] == [("s1", STDIO_ERROR)]


def test_an_answer_to_no_server_request_is_refused_to_the_client(tmp_path: Path) -> None:
    """Only an id the server is waiting for is answered to it."""
    client = scripted(tmp_path)
    try:
        client.send(rb'{"jsonrpc":"2.0","id":"s9","result":{"text":"cut \ud83d"}}')
        refused = client.receive()
        assert (refused["id"], refused["error"]["code"]) == (None, STDIO_ERROR)
        assert client.close() == 0
    finally:
        client.kill()
    assert received(tmp_path) == []


def test_the_stdio_filter_answers_an_unreadable_request_with_its_id(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"mcp": {"allowedMethods": ["*"]}})
    done = run_mcp_stdio(config, b"\n".join(UNREADABLE_REQUESTS.values()) + b"\n", tmp_path)
    assert done.returncode == 0, done.stderr
    refusals = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(m["id"], m["error"]["code"]) for m in refusals] == [(5, STDIO_ERROR)] * 3
