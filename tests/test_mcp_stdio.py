# SPDX-License-Identifier: Apache-2.0
"""``haechi mcp-stdio`` as a real process, and the line streams under it."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from haechi.mcp import INVALID_JSONRPC, METHOD_NOT_ALLOWED, POLICY_BLOCK, STDIO_ERROR
from haechi.mcp._io import LineReader, LineTooLong
from haechi.mcp.stdio import AwaitedIds
from tests.mcp_servers.harness import TIMEOUT_S, haechi_argv, run_mcp_stdio, write_config
from tests.mcp_servers.tool_server import github_token

EMAIL = "jane.doe@example.com"
TOKEN = github_token()

#: Input lines and what each must produce on stdout, in order (None = nothing).
SCRIPT: list[tuple[bytes, Any]] = [
    (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"to":"'
        + EMAIL.encode()
        + b'"}}}',
        {"id": 1, "params": {"arguments": {"to": "[REDACTED:email]"}}},
    ),
    (b'{"jsonrpc":"2.0","id":2,"method":"resources/list"}', ("error", 2, METHOD_NOT_ALLOWED)),
    (b'{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}', None),
    (b"", None),
    (b"   ", None),
    (b"{oops", ("error", None, STDIO_ERROR)),
    (b'{"jsonrpc":"1.0","id":3,"method":"tools/call"}', ("error", 3, INVALID_JSONRPC)),
    (
        b'{"jsonrpc":"2.0","id":4,"result":{"text":"' + TOKEN.encode() + b'"}}\r',
        ("error", 4, POLICY_BLOCK),
    ),
    (b'{"jsonrpc":"2.0","id":5,"method":"initialize","params":{}}\r', {"id": 5, "params": {}}),
    # JSON in a string naming a key twice: the copy parsing drops never goes on.
    (
        b'{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"arguments":{"j":"{\\"k\\":\\"'
        + TOKEN.encode()
        + b'\\",\\"k\\":\\"\\"}"}}}',
        {"id": 6, "params": {"arguments": {"j": '{"k":""}'}}},
    ),
    # The client's answer to a server request goes out like a request: numbers included.
    (
        b'{"jsonrpc":"2.0","id":7,"result":{"content":{"card":4111111111111111}}}',
        ("error", 7, POLICY_BLOCK),
    ),
]


def check(output: bytes) -> None:
    lines = [json.loads(line) for line in output.splitlines()]
    expected = [want for _line, want in SCRIPT if want is not None]
    assert len(lines) == len(expected)
    for got, want in zip(lines, expected, strict=True):
        if isinstance(want, tuple):
            _kind, message_id, code = want
            assert got["id"] == message_id
            assert got["error"]["code"] == code
        else:
            assert {key: got[key] for key in want} == want
    assert EMAIL.encode() not in output
    assert TOKEN.encode() not in output


def test_the_filter_over_pipes(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"mcp": {"allowedMethods": ["initialize", "tools/call"]}})
    data = b"\n".join(line for line, _want in SCRIPT) + b"\n"
    done = run_mcp_stdio(config, data, tmp_path)
    assert done.returncode == 0, done.stderr
    check(done.stdout)


def test_the_filter_over_files(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"mcp": {"allowedMethods": ["initialize", "tools/call"]}})
    source = tmp_path / "in.jsonl"
    # The last line has no newline: it is still a message.
    source.write_bytes(b"\n".join(line for line, _want in SCRIPT))
    target = tmp_path / "out.jsonl"
    with source.open("rb") as stdin, target.open("wb") as stdout:
        code = subprocess.call(
            haechi_argv("mcp-stdio", "--config", config),
            stdin=stdin,
            stdout=stdout,
            cwd=tmp_path,
            timeout=TIMEOUT_S,
        )
    assert code == 0
    check(target.read_bytes())


def test_a_stdout_anchor_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"audit": {"anchor": {"mode": "stdout"}}})
    done = run_mcp_stdio(config, b"", tmp_path)
    assert done.returncode == 1
    assert b'audit.anchor.mode "stdout"' in done.stderr
    assert done.stdout == b""


@pytest.mark.anyio
async def test_an_oversized_line_is_skipped_to_its_end() -> None:
    reader = asyncio.StreamReader(limit=16)
    reader.feed_data(b"short\r\n" + b"x" * 100 + b"\n" + b"y" * 40 + b"\nlast")
    reader.feed_eof()
    lines = LineReader.from_stream(reader)
    assert await lines.readline() == b"short"
    with pytest.raises(LineTooLong):
        await lines.readline()
    with pytest.raises(LineTooLong):
        await lines.readline()
    assert await lines.readline() == b"last"
    assert await lines.readline() is None


def test_awaited_ids_are_bounded_in_number_and_in_characters() -> None:
    awaited = AwaitedIds(limit=3, max_chars=10)
    for message_id in ("aaaa", "bbbb", 1, "cccc"):
        awaited.add(message_id)
    # 12 characters of string ids: the oldest is forgotten; numbers cost no characters.
    assert list(awaited) == ["bbbb", 1, "cccc"]
    awaited.add(2)
    assert list(awaited) == [1, "cccc", 2]
    awaited.discard("cccc")
    awaited.add("d" * 10)
    assert list(awaited) == [1, 2, "d" * 10]
    awaited.add("e" * 11)  # longer than the whole budget: not kept, and nothing else lost
    assert list(awaited) == [1, 2, "d" * 10]


def test_an_awaited_id_sent_again_is_counted_once() -> None:
    awaited = AwaitedIds(max_chars=8)
    for _ in range(5):
        awaited.add("abcd")
    awaited.add("efgh")
    assert list(awaited) == ["abcd", "efgh"]
    assert "1" not in awaited
