# SPDX-License-Identifier: Apache-2.0
"""A message line starting with a UTF-8 byte order mark, through ``haechi mcp-wrap``.

Writers set to UTF-8 with a byte order mark (.NET's ``Encoding.UTF8``, PowerShell) put one
at the start of their output, so the first message of such a peer starts with it. The line
is not strict JSON and is refused, but the peer waiting for its answer must get one: the
refusal carries the id the line's lenient reading shows, as for any other line that cannot
be parsed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from haechi.mcp import STDIO_ERROR
from tests.mcp_servers.harness import recorded
from tests.test_mcp_wrap import scripted, tool_call

BOM = "\ufeff"


def _refused_then_served(tmp_path: Path, first: Any) -> None:
    """Send ``first`` (the call with id 1) then a plain call with id 2 through the wrapper:
    the first is refused with its id, the second answered after it."""
    client = scripted(tmp_path)
    try:
        client.send(first)
        client.send(tool_call(2, "echo", {"text": "after"}))
        refused = client.receive()
        assert (refused["id"], refused["error"]["code"]) == (1, STDIO_ERROR)
        assert client.receive()["id"] == 2
        assert client.close() == 0
    finally:
        client.kill()


def test_an_answer_after_a_byte_order_mark_still_answers_the_waiting_client(
    tmp_path: Path,
) -> None:
    answer = BOM + '{"jsonrpc":"2.0","id":@ID,"result":{"content":[]}}'
    _refused_then_served(tmp_path, tool_call(1, "echo", {"raw": answer}))


def test_a_request_after_a_byte_order_mark_is_answered_with_its_id(tmp_path: Path) -> None:
    _refused_then_served(
        tmp_path, BOM.encode() + json.dumps(tool_call(1, "echo", {"text": "x"})).encode()
    )
    lines = [json.loads(line) for line in recorded(tmp_path / "received.jsonl").splitlines()]
    assert [message["id"] for message in lines] == [2]
