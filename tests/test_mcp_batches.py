# SPDX-License-Identifier: Apache-2.0
"""A JSON-RPC batch is refused whole, and answered as JSON-RPC answers a batch.

MCP revision 2025-06-18 removed batching, but a client of 2025-03-26 may still send one and
then waits for the ids of its requests: one error with ``id: null`` answers none of them.
Each surface runs as the real thing here: ``haechi mcp-stdio`` and ``haechi mcp-wrap`` as
processes (the wrapper around the scripted peer), the ``mcp-http`` gateway under uvicorn on
a real socket in front of a scripted upstream.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from haechi.mcp import STDIO_ERROR
from tests.mcp_servers.harness import (
    SCRIPTED,
    LineClient,
    haechi_argv,
    recorded,
    run_mcp_stdio,
    write_config,
)
from tests.test_mcp_http import (
    REQUEST,
    Reply,
    ScriptedUpstream,
    decisions,
    gateway_before,
    post,
)


def line(message: Any) -> bytes:
    return json.dumps(message).encode()


EMAIL = "jane.doe@example.com"
REASON = "JSON-RPC batch messages are not supported"
REFUSED = ("mcp_refused", "mcp_unparseable_message")
NOTIFICATION = {"jsonrpc": "2.0", "method": "notifications/initialized"}
#: Two requests and a notification: answered with the errors for ids 1 and 2, in order.
BATCH = [
    {"jsonrpc": "2.0", "id": 1, "method": "ping"},
    NOTIFICATION,
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
]
#: A request whose id holds an address: its error carries ``id: null``, as a single
#: request's refusal would (the id is not repeated).
ADDRESSED = [
    {"jsonrpc": "2.0", "id": f"req-{EMAIL}", "method": "tools/list"},
    {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
]
#: An answer in a batch, which its receiver may be waiting for.
ODD_ANSWER = {"jsonrpc": "2.0", "id": 4, "result": {}}
#: Batches without a request: nothing to answer per element, so one error with ``id: null``.
WITHOUT_REQUESTS: list[list[Any]] = [
    [NOTIFICATION, {"jsonrpc": "2.0", "method": "notifications/cancelled"}],
    [],
    [
        5,
        "text",
        {"jsonrpc": "2.0", "id": True, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1.5, "method": "ping"},
        {"jsonrpc": "2.0", "id": None, "method": "ping"},
        ODD_ANSWER,
    ],
]
#: A batch only a lenient reading can take apart (``NaN``): its request is answered too.
LENIENT = (
    b'[{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"n":NaN}},'
    + line(NOTIFICATION)
    + b"]"
)
FOLLOWING = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "echo"}}


def assert_batch_answer(answer: Any, ids: list[Any], reason: str = REASON) -> None:
    """``answer`` is an array of the batch refusal's ``-32000`` error, once per id."""
    assert isinstance(answer, list)
    assert [entry["id"] for entry in answer] == ids
    for entry in answer:
        assert entry["jsonrpc"] == "2.0"
        assert entry["error"] == {
            "code": STDIO_ERROR,
            "message": "haechi_mcp_stdio_error",
            "data": {"reason": reason},
        }


def assert_single_refusal(answer: Any) -> None:
    assert isinstance(answer, dict)
    assert (answer["id"], answer["error"]["code"]) == (None, STDIO_ERROR)
    assert answer["error"]["data"] == {"reason": REASON}


def test_mcp_stdio_answers_each_request_of_a_batch(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    batches = [BATCH, ADDRESSED, *WITHOUT_REQUESTS]
    lines = [*map(line, batches), LENIENT, line(FOLLOWING)]
    data = b"".join(text + b"\n" for text in lines)
    done = run_mcp_stdio(config, data, tmp_path)
    assert done.returncode == 0, done.stderr
    out = [json.loads(output) for output in done.stdout.splitlines()]
    assert len(out) == len(lines)
    assert_batch_answer(out[0], [1, 2])
    assert_batch_answer(out[1], [None, 3])
    for answer in out[2:-2]:
        assert_single_refusal(answer)
    assert_batch_answer(out[-2], [5], "MCP message is not valid JSON")
    assert out[-1] == FOLLOWING, "the session goes on"
    assert EMAIL.encode() not in done.stdout
    # One audit record per batch, as for any line that is not one message.
    assert decisions(tmp_path) == [REFUSED] * (len(batches) + 1)
    assert EMAIL not in (tmp_path / ".haechi" / "audit.jsonl").read_text()


def wrapped(tmp_path: Path, initial: list[Any] | None = None) -> LineClient:
    config = write_config(tmp_path)
    argv = haechi_argv("mcp-wrap", "--config", config, "--", sys.executable, SCRIPTED)
    env = {
        "HAECHI_TEST_RECORD": str(tmp_path / "received.jsonl"),
        "SCRIPTED_INITIAL": json.dumps(initial or []),
    }
    return LineClient(argv, cwd=tmp_path, env=env)


def test_mcp_wrap_answers_each_request_of_a_batch_and_the_server_sees_none(
    tmp_path: Path,
) -> None:
    client = wrapped(tmp_path)
    try:
        client.send(line(BATCH))
        assert_batch_answer(client.receive(), [1, 2])
        client.send(line(ADDRESSED))
        addressed = client.receive()
        assert_batch_answer(addressed, [None, 3])
        assert EMAIL not in json.dumps(addressed)
        for batch in WITHOUT_REQUESTS:
            client.send(line(batch))
            assert_single_refusal(client.receive())
        client.send(FOLLOWING)
        served = client.receive()
        assert (served["id"], "result" in served) == (9, True), "the session goes on"
        assert client.close() == 0
    finally:
        client.kill()
    seen = [json.loads(text) for text in recorded(tmp_path / "received.jsonl").splitlines()]
    assert seen == [FOLLOWING], "nothing of a batch reaches the server"


def test_mcp_wrap_answers_each_request_of_a_server_batch(tmp_path: Path) -> None:
    """The server's direction is decided alike: its batch of requests gets their errors."""
    sampling = {"jsonrpc": "2.0", "method": "sampling/createMessage", "params": {}}
    batch = [{**sampling, "id": "s1"}, NOTIFICATION, {**sampling, "id": "s2"}]
    # Sent after the batch: once the client has it, the batch was answered to the server.
    after = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "after"}}
    client = wrapped(tmp_path, initial=[batch, after])
    try:
        assert client.receive() == after, "nothing of the server's batch reached the client"
        client.send(FOLLOWING)
        assert client.receive()["id"] == 9
        assert client.close() == 0
    finally:
        client.kill()
    seen = [json.loads(text) for text in recorded(tmp_path / "received.jsonl").splitlines()]
    assert_batch_answer(seen[0], ["s1", "s2"])
    assert seen[1:] == [FOLLOWING]


@pytest.mark.parametrize("without_requests", WITHOUT_REQUESTS, ids=["notes", "empty", "odd"])
def test_mcp_http_answers_each_request_of_a_batch(
    tmp_path: Path, without_requests: list[Any]
) -> None:
    answer = {"jsonrpc": "2.0", "id": 7, "result": {"content": []}}
    upstream = ScriptedUpstream()
    with gateway_before(upstream, tmp_path) as url:
        batch = post(url, BATCH)
        addressed = post(url, ADDRESSED)
        only_addressed = post(url, ADDRESSED[:1])
        no_requests = post(url, without_requests)
        # Nothing of a batch reaches the server; an answer in it (the server may wait for
        # it) gets the server the error with its id instead.
        answered = [json.loads(body)["id"] for _method, _headers, body in upstream.requests]
        assert answered == [4 for element in without_requests if element == ODD_ANSWER]
        upstream.replies.append(Reply(body=json.dumps(answer).encode()))
        following = post(url, REQUEST)
    # An array of errors answering the client's requests is an answer it matches by id.
    assert batch.status_code == 200
    assert batch.headers["content-type"] == "application/json"
    assert_batch_answer(batch.json(), [1, 2])
    assert addressed.status_code == 200
    assert_batch_answer(addressed.json(), [None, 3])
    assert EMAIL not in addressed.text
    # One whose errors all carry id: null answers no request, like a single such refusal.
    assert only_addressed.status_code == 400
    assert_batch_answer(only_addressed.json(), [None])
    assert EMAIL not in only_addressed.text
    assert no_requests.status_code == 400
    assert_single_refusal(no_requests.json())
    assert (following.status_code, following.json()) == (200, answer), "the session goes on"
    assert [json.loads(body) for _m, _h, body in upstream.requests][len(answered) :] == [REQUEST]
    assert decisions(tmp_path) == [REFUSED] * 4
    assert EMAIL not in (tmp_path / ".haechi" / "audit.jsonl").read_text()
