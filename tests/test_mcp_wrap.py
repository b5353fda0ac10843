# SPDX-License-Identifier: Apache-2.0
"""``haechi mcp-wrap`` as a real process around real MCP servers.

The SDK tests run the official client (``mcp.client.stdio``) against the official server
(``tests/mcp_servers/tool_server.py``) with the wrapper in between. The other tests use a
small scripted peer (``tests/mcp_servers/scripted.py``) where the SDK cannot produce the
situation (exit codes, signals, server-initiated requests, stderr).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from haechi.mcp import INVALID_JSONRPC, METHOD_NOT_ALLOWED, POLICY_BLOCK, STDIO_ERROR
from haechi.mcp._io import MAX_LINE_BYTES
from tests.mcp_servers.harness import (
    SCRIPTED,
    TIMEOUT_S,
    TOOL_SERVER,
    LineClient,
    haechi_argv,
    recorded,
    write_config,
)
from tests.mcp_servers.tool_server import github_token

EMAIL = "jane.doe@example.com"
PHONE = "010-1234-5678"
FIVE_MB = 5 * 1024 * 1024
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def tool_call(message_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": message_id, "method": "tools/call", "params": params}


def sdk_params(config: Path, record: Path) -> StdioServerParameters:
    argv = haechi_argv("mcp-wrap", "--config", config, "--", sys.executable, TOOL_SERVER)
    return StdioServerParameters(
        command=argv[0],
        args=argv[1:],
        env={"HAECHI_TEST_RECORD": str(record)},
        cwd=config.parent,
    )


@pytest.mark.anyio
async def test_sdk_session_through_the_wrapper(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record = tmp_path / "received.jsonl"
    with anyio.fail_after(TIMEOUT_S):
        async with (
            stdio_client(sdk_params(config, record)) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert {"echo", "get_secret", "big"} <= tools
            echoed = await session.call_tool("echo", {"text": f"write to {EMAIL}"})
            assert echoed.content[0].text == "write to [REDACTED:email]"
            with pytest.raises(MCPError) as blocked:
                await session.call_tool("get_secret", {})
            assert blocked.value.code == POLICY_BLOCK
            assert set(blocked.value.data["summary"]["byType"]) == {"secret"}
            big = await session.call_tool("big", {"size": FIVE_MB})
            assert len(big.content[0].text) == FIVE_MB
            after = await session.call_tool("echo", {"text": "still here"})
            assert after.content[0].text == "still here"
    seen = recorded(record)
    assert "[REDACTED:email]" in seen
    assert EMAIL not in seen


@pytest.mark.anyio
async def test_sdk_session_with_a_redacting_policy(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"policy": {"presets": ["llm-redact"]}})
    record = tmp_path / "received.jsonl"
    with anyio.fail_after(TIMEOUT_S):
        async with (
            stdio_client(sdk_params(config, record)) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool("get_secret", {})
            text = result.content[0].text
            assert text == "the deploy token is [REDACTED:secret]"
            fields = {"owner": EMAIL, "note": "ok"}
            nested = await session.call_tool("echo_json", {"fields": fields})
            assert json.loads(nested.content[0].text) == {
                "owner": "[REDACTED:email]",
                "note": "ok",
            }
    assert EMAIL not in recorded(record)


def test_refusals_never_reach_the_server_and_the_session_survives(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record = tmp_path / "received.jsonl"
    argv = haechi_argv("mcp-wrap", "--config", config, "--", sys.executable, TOOL_SERVER)
    client = LineClient(argv, cwd=tmp_path, env={"HAECHI_TEST_RECORD": str(record)})
    try:
        client.send(INIT)
        assert client.receive()["id"] == 0
        client.send(INITIALIZED)
        client.send({"jsonrpc": "2.0", "id": 1, "method": "resources/list"})
        assert client.receive()["error"] == {
            "code": METHOD_NOT_ALLOWED,
            "message": "haechi_mcp_method_not_allowed",
            "data": {"method": "resources/list"},
        }
        client.send({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})
        client.send(b"this is not json")
        malformed = client.receive()
        assert (malformed["id"], malformed["error"]["code"]) == (None, STDIO_ERROR)
        client.send({"jsonrpc": "1.0", "id": 2, "method": "tools/list"})
        old = client.receive()
        assert (old["id"], old["error"]["code"]) == (2, INVALID_JSONRPC)
        client.send(b'[{"jsonrpc":"2.0","id":3,"method":"tools/list"}]')
        [batch] = client.receive()
        assert (batch["id"], batch["error"]["data"]["reason"]) == (
            3,
            "JSON-RPC batch messages are not supported",
        )
        client.send(tool_call(4, "echo", {"text": f"mail {EMAIL}"}))
        answer = client.receive()
        assert answer["id"] == 4, "the dropped notification was never answered"
        assert answer["result"]["content"][0]["text"] == "mail [REDACTED:email]"
        assert client.close() == 0
    finally:
        client.kill()
    seen = recorded(record)
    assert '"tools/call"' in seen
    for refused in ("resources/list", "roots/list_changed", "not json", '"1.0"', "[{"):
        assert refused not in seen
    assert EMAIL not in seen


def test_no_deadlock_when_the_client_writes_while_not_reading(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    argv = haechi_argv("mcp-wrap", "--config", config, "--", sys.executable, TOOL_SERVER)
    client = LineClient(argv, cwd=tmp_path, env={}, read=False)
    big_text = "lorem ipsum " * (3 * 1024 * 1024 // 12)

    def write_everything() -> None:
        client.send(INIT)
        client.send(INITIALIZED)
        client.send(tool_call(1, "big", {"size": FIVE_MB}))
        client.send(tool_call(2, "echo", {"text": big_text}))

    try:
        writer = threading.Thread(target=write_everything, daemon=True)
        writer.start()
        writer.join(TIMEOUT_S)
        assert not writer.is_alive(), "the wrapper stopped taking input: deadlock"
        client.start_reading()
        answers = {m["id"]: m for m in client.receive_until(lambda m: m.get("id") == 2)}
        assert len(answers[1]["result"]["content"][0]["text"]) == FIVE_MB
        assert answers[2]["result"]["content"][0]["text"] == big_text
        assert client.close() == 0
    finally:
        client.kill()


def scripted(tmp_path: Path, *extra: str, initial: list[Any] | None = None) -> LineClient:
    config = write_config(tmp_path)
    argv = haechi_argv("mcp-wrap", "--config", config, *extra, "--", sys.executable, SCRIPTED)
    env = {
        "HAECHI_TEST_RECORD": str(tmp_path / "received.jsonl"),
        "SCRIPTED_INITIAL": json.dumps(initial or []),
    }
    return LineClient(argv, cwd=tmp_path, env=env)


@pytest.mark.parametrize(("method", "expected"), [("exit", 3), ("kill", 1)])
def test_the_exit_code_of_the_child_is_passed_through(
    tmp_path: Path, method: str, expected: int
) -> None:
    config = write_config(tmp_path, {"mcp": {"allowedMethods": ["*"]}})
    argv = haechi_argv("mcp-wrap", "--config", config, "--", sys.executable, SCRIPTED)
    client = LineClient(argv, cwd=tmp_path, env={"HAECHI_TEST_RECORD": str(tmp_path / "r")})
    try:
        client.send({"jsonrpc": "2.0", "method": method, "params": {"code": 3}})
        assert client.proc.wait(timeout=TIMEOUT_S) == expected
    finally:
        client.kill()


def test_sigterm_is_forwarded_to_the_child(tmp_path: Path) -> None:
    client = scripted(tmp_path)
    try:
        client.send(tool_call(1, "echo", {"text": "ready"}))
        assert client.receive()["id"] == 1
        client.proc.send_signal(signal.SIGTERM)
        assert client.proc.wait(timeout=TIMEOUT_S) == 7
    finally:
        client.kill()
    assert "signal:SIGTERM" in recorded(tmp_path / "received.jsonl")


def test_end_of_client_input_ends_the_child(tmp_path: Path) -> None:
    client = scripted(tmp_path)
    try:
        assert client.close() == 0
    finally:
        client.kill()


def test_server_initiated_messages(tmp_path: Path) -> None:
    token = github_token()
    sampling = {
        "jsonrpc": "2.0",
        "id": "s1",
        "method": "sampling/createMessage",
        "params": {"messages": [{"content": {"type": "text", "text": f"call {PHONE}, {EMAIL}"}}]},
    }
    leaking = {
        "jsonrpc": "2.0",
        "id": "s2",
        "method": "sampling/createMessage",
        "params": {"messages": [{"content": {"type": "text", "text": token}}]},
    }
    client = scripted(tmp_path, initial=[leaking, sampling])
    try:
        first = client.receive()
        # Not in the client allowlist, but server-initiated: it passes, protected.
        assert first["id"] == "s1"
        text = first["params"]["messages"][0]["content"]["text"]
        assert EMAIL not in text
        assert "1234-5678" not in text
        # The client answers with a secret: the server gets an error instead.
        client.send({"jsonrpc": "2.0", "id": "s1", "result": {"text": f"use {token}"}})
        client.send(tool_call(9, "echo", {"text": "sync"}))
        assert client.receive()["id"] == 9, "the refused request s2 never reached the client"
        assert client.close() == 0
    finally:
        client.kill()
    lines = [json.loads(line) for line in recorded(tmp_path / "received.jsonl").splitlines()]
    errors = {m["id"]: m["error"]["code"] for m in lines if "error" in m}
    assert errors == {"s2": POLICY_BLOCK, "s1": POLICY_BLOCK}
    assert token not in json.dumps(lines)


STDERR_LINES = [f"contact {EMAIL} please", f"token {github_token()}", "plain progress line"]


def stderr_of(tmp_path: Path, *extra: str) -> str:
    config = write_config(tmp_path)
    argv = haechi_argv("mcp-wrap", "--config", config, *extra, "--", sys.executable, SCRIPTED)
    env = {"HAECHI_TEST_RECORD": str(tmp_path / "r"), "SCRIPTED_STDERR": json.dumps(STDERR_LINES)}
    client = LineClient(argv, cwd=tmp_path, env=env)
    try:
        client.send(tool_call(1, "echo", {"text": "done"}))
        assert client.receive()["id"] == 1
        assert client.close() == 0
    finally:
        client.kill()
    return client.stderr


def test_stderr_filter_redacts_and_drops_lines(tmp_path: Path) -> None:
    lines = stderr_of(tmp_path).splitlines()
    assert lines == ["contact [REDACTED:email] please", "plain progress line"]


def test_stderr_drop(tmp_path: Path) -> None:
    assert stderr_of(tmp_path, "--stderr", "drop") == ""


def test_stderr_inherit_is_raw(tmp_path: Path) -> None:
    assert stderr_of(tmp_path, "--stderr", "inherit").splitlines() == STDERR_LINES


def test_an_invalid_stderr_mode_is_refused_before_spawning(tmp_path: Path) -> None:
    marker = tmp_path / "spawned"
    child = [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    client = LineClient(
        haechi_argv("mcp-wrap", "--stderr", "loud", "--", *child), cwd=tmp_path, env={}
    )
    try:
        assert client.close() == 1
    finally:
        client.kill()
    assert "haechi:" in client.stderr
    assert "--stderr" in client.stderr
    assert not marker.exists()


def test_a_child_command_is_required(tmp_path: Path) -> None:
    client = LineClient(haechi_argv("mcp-wrap"), cwd=tmp_path, env={})
    try:
        assert client.close() == 1
    finally:
        client.kill()
    assert "requires a child command after --" in client.stderr


@pytest.mark.parametrize(
    "answer",
    [
        # A server that cuts a text in the middle of an emoji, as JavaScript's JSON.stringify
        # writes it.
        r'{"jsonrpc":"2.0","id":@ID,"result":{"content":[{"type":"text","text":"cut \ud83d"}]}}',
        '{"jsonrpc":"2.0","id":@ID,"result":{"content":[{"type":"text","text":"x"}]},"n":1e400}',
        '{"jsonrpc":"2.0","id":@ID,"result":{"content":[]}} trailing',
    ],
    ids=["lone-surrogate", "huge-number", "trailing-text"],
)
def test_an_unreadable_answer_still_answers_the_waiting_client(tmp_path: Path, answer: str) -> None:
    """An answer that cannot be passed on is replaced by an error for the client's request
    when a lenient reading of it carries exactly the id the client is waiting for."""
    client = scripted(tmp_path)
    try:
        client.send(tool_call(1, "echo", {"raw": answer}))
        client.send(tool_call(2, "echo", {"text": "after"}))
        refused = client.receive()
        assert (refused["id"], refused["error"]["code"]) == (1, STDIO_ERROR)
        assert "result" not in refused
        assert client.receive()["id"] == 2
        assert client.close() == 0
    finally:
        client.kill()
    lines = [json.loads(line) for line in recorded(tmp_path / "received.jsonl").splitlines()]
    assert all(message.get("id") is not None for message in lines), "nothing went to the server"


OVER_LIMIT = MAX_LINE_BYTES + 1


@pytest.mark.parametrize(
    "answer",
    [
        # The id before the large part, as Python's SDK writes an answer.
        '{"jsonrpc":"2.0","id":@ID,"result":{"content":[{"type":"text","text":"@PAD"}]}}',
        # The id after it, as TypeScript's SDK writes one ({result, jsonrpc, id}).
        '{"result":{"content":[{"type":"text","text":"@PAD"}]},"jsonrpc":"2.0","id":@ID}',
    ],
    ids=["id-first", "id-last"],
)
def test_an_answer_too_long_to_read_still_answers_the_waiting_client(
    tmp_path: Path, answer: str
) -> None:
    """A server answer over the line limit is never read, but its ends carry the id of the
    client's request: the client gets the error for it instead of waiting for ever."""
    client = scripted(tmp_path)
    try:
        client.send(tool_call(1, "echo", {"raw": answer, "pad": OVER_LIMIT}))
        client.send(tool_call(2, "echo", {"text": "after"}))
        refused = client.receive()
        assert (refused["id"], refused["error"]["code"]) == (1, STDIO_ERROR)
        assert "exceeds" in refused["error"]["data"]["reason"]
        assert client.receive()["id"] == 2
        assert client.close() == 0
    finally:
        client.kill()
    lines = [json.loads(line) for line in recorded(tmp_path / "received.jsonl").splitlines()]
    assert [message["id"] for message in lines] == [1, 2], "no refusal went to the server"


def test_a_server_request_too_long_to_read_is_not_taken_for_an_answer(tmp_path: Path) -> None:
    """A server request over the limit with the id of a client request waiting (each side
    numbers its own requests) is refused to the server: the client's request is not
    answered with its error."""
    request = '{"jsonrpc":"2.0","id":@ID,"method":"sampling/createMessage","params":{"t":"@PAD"}}'
    client = scripted(tmp_path)
    try:
        client.send(tool_call(1, "echo", {"raw": request, "pad": OVER_LIMIT}))
        client.send(tool_call(2, "echo", {"text": "after"}))
        assert client.receive()["id"] == 2
        assert client.close() == 0
    finally:
        client.kill()
    lines = [json.loads(line) for line in recorded(tmp_path / "received.jsonl").splitlines()]
    refusals = [message for message in lines if "error" in message]
    assert [(message["id"], message["error"]["code"]) for message in refusals] == [(1, STDIO_ERROR)]


def test_a_request_too_long_to_read_is_answered_with_its_id(tmp_path: Path) -> None:
    client = scripted(tmp_path)
    try:
        text = "x" * OVER_LIMIT
        client.send(tool_call(4, "echo", {"text": text}))
        client.send({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"x": text}})
        client.send(tool_call(6, "echo", {"text": "after"}))
        refused = [client.receive(), client.receive()]
        assert [(message["id"], message["error"]["code"]) for message in refused] == [
            (4, STDIO_ERROR),
            (5, STDIO_ERROR),
        ]
        assert client.receive()["id"] == 6
        assert client.close() == 0
    finally:
        client.kill()
    lines = [json.loads(line) for line in recorded(tmp_path / "received.jsonl").splitlines()]
    assert [message["id"] for message in lines] == [6]


def test_a_request_too_long_to_read_does_not_repeat_an_id_holding_a_value(tmp_path: Path) -> None:
    client = scripted(tmp_path)
    try:
        client.send(tool_call(1, "echo", {"text": "x" * OVER_LIMIT}) | {"id": EMAIL})
        refused = client.receive()
        assert (refused["id"], refused["error"]["code"]) == (None, STDIO_ERROR)
        assert client.close() == 0
    finally:
        client.kill()
