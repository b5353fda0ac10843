# SPDX-License-Identifier: Apache-2.0
"""A batch of answers through ``haechi mcp-wrap``: the peer waiting for them gets errors.

MCP revision 2025-03-26 lets a peer answer several requests in one batch. The wrapper refuses
a batch whole, so the answers in it never reach the peer that sent the requests; that peer
must still get an answer for each request it waits for (the error, with its id) instead of
waiting for ever, as for an answer that cannot be read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from haechi.mcp import STDIO_ERROR
from tests.mcp_servers.harness import recorded
from tests.test_mcp_wrap import scripted, tool_call

EMAIL = "jane.doe@example.com"
REASON = "JSON-RPC batch messages are not supported"


def _batch_error(message: dict[str, Any], message_id: Any) -> None:
    assert message == {
        "jsonrpc": "2.0",
        "error": {
            "code": STDIO_ERROR,
            "message": "haechi_mcp_stdio_error",
            "data": {"reason": REASON},
        },
        "id": message_id,
    }


def _received(tmp_path: Path) -> list[dict[str, Any]]:
    lines = recorded(tmp_path / "received.jsonl").splitlines()
    return [json.loads(line) for line in lines]


def test_a_server_batch_answering_the_client_gets_it_an_error_per_request(
    tmp_path: Path,
) -> None:
    """The answers in the server's batch are withheld, and the client gets the error for its
    request once (answered twice in the batch); an answer to nothing it sent gets none."""
    raw = (
        '[{"jsonrpc":"2.0","id":@ID,"result":{"content":[{"type":"text","text":"@EMAIL"}]}},'
        '{"jsonrpc":"2.0","id":@ID,"error":{"code":-1,"message":"@EMAIL"}},'
        '{"jsonrpc":"2.0","id":77,"result":{}}]'
    ).replace("@EMAIL", EMAIL)
    client = scripted(tmp_path)
    try:
        client.send(tool_call(1, "echo", {"raw": raw}))
        client.send(tool_call(2, "echo", {"text": "after"}))
        refused = client.receive()
        _batch_error(refused, 1)
        assert EMAIL not in json.dumps(refused)
        assert client.receive()["id"] == 2, "one error for the request, then the session goes on"
        assert client.close() == 0
    finally:
        client.kill()
    # The server, which sent the batch, gets the refusal of the batch as a whole.
    _batch_error(_received(tmp_path)[-1], None)


def test_a_client_batch_answering_the_server_gets_it_an_error(tmp_path: Path) -> None:
    sampling = {"jsonrpc": "2.0", "id": "s1", "method": "sampling/createMessage", "params": {}}
    client = scripted(tmp_path, initial=[sampling])
    try:
        assert client.receive()["id"] == "s1"
        client.send(json.dumps([{"jsonrpc": "2.0", "id": "s1", "result": {}}]).encode())
        _batch_error(client.receive(), None)
        client.send(tool_call(9, "echo", {"text": "after"}))
        assert client.receive()["id"] == 9
        assert client.close() == 0
    finally:
        client.kill()
    received = _received(tmp_path)
    _batch_error(received[0], "s1")
    assert [message["id"] for message in received[1:]] == [9]
