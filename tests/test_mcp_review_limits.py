# SPDX-License-Identifier: Apache-2.0
"""A message whose inspection runs out of ``limits.maxInspectionMs``, through
``haechi mcp-stdio``: refused once, and audited once under the limit that refused it.

The payload is a list of phone-like numbers, the costly kind to scan (see
``tests/test_inspection_budget.py``), against a budget of a millisecond.
"""

from __future__ import annotations

import json
from pathlib import Path

from haechi.mcp import STDIO_ERROR
from tests.mcp_servers.harness import run_mcp_stdio, write_config
from tests.test_inspection_budget import numbers


def test_an_inspection_over_its_budget_is_audited_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"limits": {"maxInspectionMs": 1}})
    params = {"name": "echo", "arguments": {"text": numbers(20_000)}}
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    done = run_mcp_stdio(config, json.dumps(message).encode() + b"\n", tmp_path)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["id"], answer["error"]["code"]) == (1, STDIO_ERROR)
    assert answer["error"]["data"] == {"reason": "inspection exceeded limits.maxInspectionMs"}
    audit = (tmp_path / ".haechi" / "audit.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in audit]
    assert [(record["decision"], record["reason"]) for record in records] == [
        ("limit_exceeded", "haechi_inspection_budget_exceeded")
    ]
