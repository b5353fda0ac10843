# SPDX-License-Identifier: Apache-2.0
"""A message nested deeper than the embedded-JSON walk can follow, through
``haechi mcp-stdio`` with ``limits.maxNestingDepth`` raised past it.

A message parsed whole may nest about a thousand levels deep, and the depth limit may be
set higher; the walk looking for JSON inside strings then ran out of recursion, the error
ended the filter, and the messages after it were lost. Such a message is refused and
audited like one over the depth limit, and the session goes on.
"""

from __future__ import annotations

import json
from pathlib import Path

from haechi.mcp import STDIO_ERROR
from tests.mcp_servers.harness import run_mcp_stdio, write_config

EMAIL = "jane.doe@example.com"
DEPTH = 900


def test_a_message_too_deep_to_walk_is_refused_and_the_session_goes_on(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"limits": {"maxNestingDepth": 5000}})
    nested = "[" * DEPTH + json.dumps(EMAIL) + "]" * DEPTH
    deep = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":' + nested + "}}"
    after = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"to": EMAIL}}
    done = run_mcp_stdio(
        config, deep.encode() + b"\n" + json.dumps(after).encode() + b"\n", tmp_path
    )
    assert done.returncode == 0, done.stderr
    refused, forwarded = (json.loads(line) for line in done.stdout.splitlines())
    assert (refused["id"], refused["error"]["code"]) == (1, STDIO_ERROR)
    assert forwarded["params"] == {"to": "[REDACTED:email]"}
    assert EMAIL.encode() not in done.stdout
    audit = (tmp_path / ".haechi" / "audit.jsonl").read_text()
    reasons = [json.loads(line).get("reason") for line in audit.splitlines()]
    assert reasons.count("mcp_nesting_too_deep") == 1
    assert EMAIL not in audit
