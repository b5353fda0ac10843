# SPDX-License-Identifier: Apache-2.0
"""An id that is a number with a fraction or exponent is refused, and the reason says why.

The SDKs take an id as a string or an integer only, and so does the decision; the reason of
the refusal names what is accepted, not "a number", which ``1.5`` is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from haechi.mcp import STDIO_ERROR, McpFilter
from haechi.runtime import Runtime

pytestmark = pytest.mark.anyio
REASON = "JSON-RPC id must be a string, an integer or null"


@pytest.mark.parametrize("message_id", [1.5, 2.0, 1e3])
async def test_an_id_that_is_not_an_integer_is_refused_naming_integers(
    haechi_runtime: Callable[..., Runtime], tmp_path: Path, message_id: float
) -> None:
    decisions = McpFilter(haechi_runtime({"mode": "enforce"}), protocol="mcp-stdio")
    message = {"jsonrpc": "2.0", "id": message_id, "method": "tools/call", "params": {}}
    outcome = await decisions.decide(message, side="client", allowlist=True)
    assert outcome.action == "answer"
    assert outcome.message is not None
    assert outcome.message["id"] is None
    assert outcome.message["error"]["code"] == STDIO_ERROR
    assert outcome.message["error"]["data"] == {"reason": REASON}
    audit = (tmp_path / "haechi" / "audit.jsonl").read_text().splitlines()
    assert json.loads(audit[-1])["reason"] == "mcp_invalid_id"
