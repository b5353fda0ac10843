# SPDX-License-Identifier: Apache-2.0
"""``mcp-http``: a message the client posts that cannot be parsed still answers whoever
waits for it.

The server waits for the client's answer to its own request (a sampling request, an
elicitation); a client cutting the answer's text in the middle of an emoji (which
JavaScript's ``JSON.stringify`` writes as a lone surrogate escape) makes it unreadable. The
server then gets the error for its request, with its id, instead of waiting for ever; a
request that cannot be parsed is answered to the client with its own id.
"""

from __future__ import annotations

import json
from pathlib import Path

from haechi.mcp import STDIO_ERROR
from tests.test_mcp_http import ScriptedUpstream, decisions, gateway_before, post

EMAIL = "jane.doe@example.com"
CUT = rb'{"type":"text","text":"cut \ud83d"}'


def test_an_unreadable_answer_of_the_client_answers_the_server(tmp_path: Path) -> None:
    answer = b'{"jsonrpc":"2.0","id":"s1","result":{"content":' + CUT + b"}}"
    upstream = ScriptedUpstream()
    with gateway_before(upstream, tmp_path) as url:
        response = post(url, answer)
    assert response.status_code == 202, "the server's answer to the posted message"
    [(method, _headers, body)] = upstream.requests
    refusal = json.loads(body)
    assert (method, refusal["id"], refusal["error"]["code"]) == ("POST", "s1", STDIO_ERROR)
    assert "result" not in refusal
    assert ("mcp_refused", "mcp_unparseable_message") in decisions(tmp_path)


def test_an_unreadable_answer_does_not_repeat_an_id_holding_a_value(tmp_path: Path) -> None:
    answer = b'{"jsonrpc":"2.0","id":"' + EMAIL.encode() + b'","result":' + CUT + b"}"
    upstream = ScriptedUpstream()
    with gateway_before(upstream, tmp_path) as url:
        response = post(url, answer)
    assert response.status_code == 400
    assert (response.json()["id"], response.json()["error"]["code"]) == (None, STDIO_ERROR)
    assert upstream.requests == []


def test_an_unreadable_request_is_answered_with_its_id(tmp_path: Path) -> None:
    request = b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":' + CUT + b"}"
    upstream = ScriptedUpstream()
    with gateway_before(upstream, tmp_path) as url:
        response = post(url, request)
    assert response.status_code == 400
    assert (response.json()["id"], response.json()["error"]["code"]) == (7, STDIO_ERROR)
    assert upstream.requests == []


def test_a_batch_of_answers_answers_the_server_for_each(tmp_path: Path) -> None:
    """Batches are refused, but a batch answering the server's requests (which an older
    revision allowed) still gets the server the error for each of them, once; an id that
    holds a value is not repeated, and the client is told its batch was refused."""
    batch = [
        {"jsonrpc": "2.0", "id": "s1", "result": {}},
        {"jsonrpc": "2.0", "id": "s2", "result": {}},
        {"jsonrpc": "2.0", "id": "s1", "result": {}},
        {"jsonrpc": "2.0", "id": EMAIL, "result": {}},
    ]
    upstream = ScriptedUpstream()
    with gateway_before(upstream, tmp_path) as url:
        response = post(url, json.dumps(batch).encode())
    assert response.status_code == 400
    assert (response.json()["id"], response.json()["error"]["code"]) == (None, STDIO_ERROR)
    refusals = [json.loads(body) for _method, _headers, body in upstream.requests]
    assert [(r["id"], r["error"]["code"]) for r in refusals] == [
        ("s1", STDIO_ERROR),
        ("s2", STDIO_ERROR),
    ]
    assert EMAIL not in json.dumps(refusals)
