# SPDX-License-Identifier: Apache-2.0
"""A small MCP server built with the official ``mcp`` SDK, for the MCP protection tests.

Tools: ``echo`` returns its text, ``get_secret`` returns a GitHub classic token with a valid
checksum (made fresh per process), ``echo_json`` returns its arguments as a JSON string,
``big`` returns a text of the requested size, ``log`` writes its text to stderr and ``image``
returns a PNG image (binary content, which detection cannot read), ``attach`` returns its
base64 argument as an embedded resource's ``blob`` declaring no media type (MCP leaves it
optional), ``resumed`` closes its request's event stream before it answers (a client of a
server with an event store then gets the answer by resuming the stream).

Everything the server receives is appended to the file named by ``HAECHI_TEST_RECORD``: over
stdio the raw lines, over HTTP the raw request bodies. ``python tool_server.py`` serves on
stdio; :func:`http_app` is the streamable-HTTP ASGI application.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import sys
import threading
import zlib
from typing import Any

from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.types import BlobResourceContents, EmbeddedResource

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def github_token() -> str:
    """A fresh ``ghp_`` token whose last six characters are its CRC-32 in base 62."""
    body = "".join(secrets.choice(_BASE62) for _ in range(30))
    number = zlib.crc32(body.encode())
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return f"ghp_{body}{digits.rjust(6, '0')}"


SECRET = github_token()
server = MCPServer("haechi-test-tools")


@server.tool()
def echo(text: str) -> str:
    """Return ``text`` unchanged."""
    return text


@server.tool()
def echo_json(fields: dict[str, str]) -> str:
    """Return ``fields`` serialised as a JSON string."""
    return json.dumps(fields)


@server.tool()
def get_secret() -> str:
    """Return a credential the gateway must never let through."""
    return f"the deploy token is {SECRET}"


@server.tool()
def big(size: int) -> str:
    """Return ``size`` characters of plain prose."""
    sentence = "The quick brown fox jumps over the lazy dog. "
    return (sentence * (size // len(sentence) + 1))[:size]


@server.tool()
def log(text: str) -> str:
    """Write ``text`` to standard error and acknowledge."""
    print(text, file=sys.stderr, flush=True)
    return "logged"


@server.tool()
def image() -> Image:
    """Return the start of a PNG image."""
    return Image(data=b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), format="png")


@server.tool()
def attach(blob: str) -> EmbeddedResource:
    """Return the base64 ``blob`` as a resource's contents with no ``mimeType``."""
    contents = BlobResourceContents(uri="file:///attachment", blob=blob)
    return EmbeddedResource(type="resource", resource=contents)


@server.tool()
async def resumed(text: str, ctx: Context) -> str:
    """Close this request's event stream, then return ``text``."""
    await ctx.close_sse_stream()
    return text


def _record(data: bytes) -> None:
    path = os.environ.get("HAECHI_TEST_RECORD")
    if path:
        with open(path, "ab") as handle:
            handle.write(data if data.endswith(b"\n") else data + b"\n")


def _record_stdin() -> None:
    """Put a recording pipe between the real standard input and the SDK."""
    read_end, write_end = os.pipe()
    real = os.dup(0)
    os.dup2(read_end, 0)
    os.close(read_end)

    def pump() -> None:
        with os.fdopen(real, "rb") as source, os.fdopen(write_end, "wb") as target:
            for line in source:
                _record(line)
                target.write(line)
                target.flush()

    threading.Thread(target=pump, daemon=True).start()


def http_app(**options: Any) -> Any:
    """The streamable-HTTP application, recording each request body it receives."""
    app = server.streamable_http_app(**options)

    async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def capture() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body") and any(chunks):
                    _record(b"".join(chunks))
            return message

        await app(scope, capture, send)

    return recording


if __name__ == "__main__":
    _record_stdin()
    server.run("stdio")
