# SPDX-License-Identifier: Apache-2.0
"""``mcp-http``: the events before one that cannot be read, in the same network chunk.

Whether an upstream's bytes arrive in one chunk or in several is the transport's choice, so
it must not change what a client gets: the answer to the posted request, followed by bytes
no event can be read from (invalid UTF-8, an event past ``responseProtection.maxBytes``),
reaches the client whole, then the stream ends, however the bytes were chunked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_mcp_http import REQUEST, Reply, ScriptedUpstream, decisions, event, gateway_before
from tests.test_mcp_http import post as post_message

CAP = 4096
RESULT = {"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": "done"}]}}
#: What follows the answer, in the same write: bytes no event can be read from.
JUNK = {
    "invalid-utf8": (b"data: \xff\xfe\n\n", "mcp_sse_event_not_utf8"),
    "too-large": (b"data: " + b"x" * (2 * CAP) + b"\n\n", "mcp_sse_event_too_large"),
}


@pytest.mark.parametrize("junk", JUNK.values(), ids=JUNK.keys())
def test_the_answer_before_an_unreadable_event_in_its_chunk_is_relayed(
    tmp_path: Path, junk: tuple[bytes, str]
) -> None:
    unreadable, reason = junk
    body = event(RESULT, "e1").encode() + unreadable
    upstream = ScriptedUpstream([Reply(content_type="text/event-stream", body=body)])
    overrides = {"responseProtection": {"maxBytes": CAP}}
    with gateway_before(upstream, tmp_path, overrides) as url:
        response = post_message(url, REQUEST)
    messages = [
        json.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]
    assert messages == [RESULT]
    assert ("mcp_refused", reason) in decisions(tmp_path)
