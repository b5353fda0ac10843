# SPDX-License-Identifier: Apache-2.0
"""An object declaring text beside base64 data, read as every reader of it may read it.

An MCP client reads an embedded resource's ``blob`` whatever other members the object
holds, and a Gemini-compatible reader may take either spelling of ``mimeType``: each
string a reader may decode as text is inspected decoded, and a declaration the data does not
decode as blocks. See ``docs/detection.md`` ("Text attachments").
"""

from __future__ import annotations

import base64
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.mcp_servers.harness import SCRIPTED, LineClient, haechi_argv, write_config
from tests.upstream_server import gateway_in_front

EMAIL = "jane.doe@example.com"
NOTE = f"write to {EMAIL} today"
GEMINI_PATH = "/v1beta/models/gemini-pro:generateContent"


def _b64(text: str, encoding: str = "utf-8") -> str:
    return base64.b64encode(text.encode(encoding)).decode()


def _tool_answer(resource: dict[str, Any]) -> str:
    """A server's ``tools/call`` answer embedding ``resource``, as the scripted server
    writes it (``@ID`` is the request's id)."""
    result = {"content": [{"type": "resource", "resource": resource}]}
    return json.dumps({"jsonrpc": "2.0", "id": 0, "result": result}).replace('"id": 0', '"id": @ID')


def _call_through_wrapper(tmp_path: Path, answer: str) -> dict[str, Any]:
    """What a client of ``haechi mcp-wrap`` receives for a tool whose server sends
    ``answer``."""
    config = write_config(tmp_path)
    argv = haechi_argv("mcp-wrap", "--config", config, "--", sys.executable, SCRIPTED)
    client = LineClient(argv, cwd=tmp_path, env={"HAECHI_TEST_RECORD": str(tmp_path / "r")})
    try:
        params = {"name": "echo", "arguments": {"raw": answer}}
        client.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
        received = client.receive()
        assert client.close() == 0
    finally:
        client.kill()
    return received


@pytest.mark.parametrize(
    "resource",
    [
        # ``data`` beside it is no part of a blob resource: the client reads ``blob``.
        {"uri": "file:///note.txt", "mimeType": "text/plain", "data": "aGk=", "blob": _b64(NOTE)},
        # Nor is a ``type``: ``blob`` is base64 whatever it says.
        {"uri": "file:///note.txt", "mimeType": "text/plain", "type": "text", "blob": _b64(NOTE)},
    ],
    ids=["data-beside-blob", "type-text"],
)
def test_a_text_blob_reaches_the_mcp_client_protected(
    tmp_path: Path, resource: dict[str, Any]
) -> None:
    received = _call_through_wrapper(tmp_path, _tool_answer(resource))
    assert received["id"] == 1
    blob = received["result"]["content"][0]["resource"]["blob"]
    assert base64.b64decode(blob, validate=True).decode() == "write to [REDACTED:email] today"


@pytest.mark.parametrize(
    "inline",
    [
        {"mimeType": "text/plain; charset=utf-7", "mime_type": "text/plain"},
        {"mime_type": "text/plain", "mimeType": "text/plain; charset=utf-7"},
    ],
    ids=["undecodable-first", "undecodable-last"],
)
def test_two_declarations_block_when_either_cannot_be_read(
    tmp_path: Path, inline: dict[str, str]
) -> None:
    """A reader taking the UTF-7 declaration reads an address the UTF-8 reading does not
    show (``+AEA-`` is UTF-7's ``@``): that declaration blocks, whichever spelling comes
    last."""
    data = _b64("write to jane.doe+AEA-example.com")
    part = {"inlineData": {**inline, "data": data}}
    body = {"contents": [{"role": "user", "parts": [part]}]}
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}}) as gateway:
        response = httpx.post(f"{gateway.url}{GEMINI_PATH}", json=body)
        assert response.status_code == 403
        assert response.json()["summary"]["byType"] == {"undecodable_attachment": 1}
        assert gateway.upstream.received == []


def _spellings(name: str) -> list[str]:
    """Every spelling of ``name`` a case-insensitive decoder binds to it with its letters
    in either case, an ``i`` also dotless (U+0131)."""
    cases = [
        {letter, letter.upper(), "\u0131"} if letter == "i" else {letter, letter.upper()}
        for letter in name
    ]
    return ["".join(spelling) for spelling in itertools.product(*cases)]


def test_many_spellings_of_a_declaration_are_read_once(tmp_path: Path) -> None:
    """An object declaring its type in 1,536 spellings beside 700 KB of base64 text once
    decoded the text for each (seconds holding the gateway); each kind of declaration is
    now read once, and the text is protected all the same."""
    names = [*_spellings("mimetype"), *_spellings("mime_type"), *_spellings("media_type")]
    assert len(set(names)) == 1_536
    inline: dict[str, str] = dict.fromkeys(names, "text/plain")
    inline["data"] = _b64(f"{NOTE}\n" + "lorem ipsum " * 43_000)
    body = {"contents": [{"role": "user", "parts": [{"inlineData": inline}]}]}
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}}) as gateway:
        response = httpx.post(f"{gateway.url}{GEMINI_PATH}", json=body, timeout=3)
        assert response.status_code == 200
        sent = gateway.upstream.last.json()["contents"][0]["parts"][0]["inlineData"]["data"]
        assert base64.b64decode(sent).decode().startswith("write to [REDACTED:email] today\n")
