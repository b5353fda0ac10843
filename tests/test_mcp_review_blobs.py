# SPDX-License-Identifier: Apache-2.0
"""A resource ``blob`` declaring no media type, through both MCP surfaces.

MCP leaves a resource's ``mimeType`` optional, and readers take such a blob by its content:
Anthropic's MCP helpers decode it as UTF-8 text for the model. The official server returns
one from a tool (``attach`` in ``tests/mcp_servers/tool_server.py``); the official client
reads it through ``haechi mcp-wrap`` and through the ``mcp-http`` gateway. The tool's argument
is base64 the client sends, scanned as written; the blob it becomes is the server's answer.
The ``resources/read`` shape is decided by the shared decision on a real runtime.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from haechi.mcp import POLICY_BLOCK, McpFilter
from haechi.runtime import Runtime
from tests.mcp_servers.harness import TIMEOUT_S, TOOL_SERVER, haechi_argv, write_config
from tests.mcp_servers.tool_server import http_app
from tests.test_mcp_http import gateway_before

EMAIL = "jane.doe@example.com"
BLOCK_BINARY = {"filters": {"binaryAttachments": "block"}}
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
pytestmark = pytest.mark.anyio


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def _check_session(session: ClientSession) -> None:
    """The text of a blob is protected; a binary one blocks under ``binaryAttachments:
    block``; the session goes on."""
    await session.initialize()
    result = await session.call_tool("attach", {"blob": _b64(f"write to {EMAIL}".encode())})
    blob: Any = result.content[0].resource  # type: ignore[union-attr]
    assert blob.mime_type is None
    assert base64.b64decode(blob.blob).decode("utf-8") == "write to [REDACTED:email]"
    with pytest.raises(MCPError) as blocked:
        await session.call_tool("attach", {"blob": _b64(PNG)})
    assert blocked.value.code == POLICY_BLOCK
    assert blocked.value.data["summary"]["byType"] == {"uninspectable_attachment": 1}
    echoed = await session.call_tool("echo", {"text": "still here"})
    assert echoed.content[0].text == "still here"  # type: ignore[union-attr]


def _audit_holds_no_address(workdir: Path) -> None:
    audit = (workdir / ".haechi" / "audit.jsonl").read_text()
    assert "attachment-binary-blob" in audit
    assert EMAIL not in audit
    assert _b64(EMAIL.encode())[:16] not in audit


async def test_an_undeclared_blob_through_the_wrapper(tmp_path: Path) -> None:
    config = write_config(tmp_path, BLOCK_BINARY)
    argv = haechi_argv("mcp-wrap", "--config", config, "--", sys.executable, TOOL_SERVER)
    params = StdioServerParameters(command=argv[0], args=argv[1:], cwd=tmp_path)
    with anyio.fail_after(TIMEOUT_S):
        async with (
            stdio_client(params) as (read, write),
            ClientSession(read, write) as session,
        ):
            await _check_session(session)
    _audit_holds_no_address(tmp_path)


async def test_an_undeclared_blob_through_the_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAECHI_TEST_RECORD", str(tmp_path / "received.jsonl"))
    with gateway_before(http_app(), tmp_path, BLOCK_BINARY) as url, anyio.fail_after(TIMEOUT_S):
        async with (
            streamable_http_client(url) as (read, write),
            ClientSession(read, write) as session,
        ):
            await _check_session(session)
    _audit_holds_no_address(tmp_path)


async def test_the_contents_of_a_resource_read_and_look_alike_arguments(
    haechi_runtime: Callable[..., Runtime],
) -> None:
    """A ``resources/read`` result's blob is read by its content; an argument object that
    merely has a ``uri`` and a ``blob`` is no resource and is scanned as written."""
    decisions = McpFilter(haechi_runtime({"mode": "enforce"}), protocol="mcp-stdio")
    contents = {"uri": "file:///notes", "blob": _b64(f"write to {EMAIL}".encode())}
    answer = {"jsonrpc": "2.0", "id": 1, "result": {"contents": [contents]}}
    outcome = await decisions.decide(answer, side="server", allowlist=False)
    assert outcome.action == "forward"
    assert outcome.message is not None
    blob = outcome.message["result"]["contents"][0]["blob"]
    assert base64.b64decode(blob).decode("utf-8") == "write to [REDACTED:email]"
    arguments = {"uri": "file:///notes", "blob": "plain words"}
    params = {"name": "upload", "arguments": arguments}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}
    outcome = await decisions.decide(call, side="client", allowlist=False)
    assert outcome.action == "forward"
    assert outcome.message is not None
    assert outcome.message["params"]["arguments"] == arguments
