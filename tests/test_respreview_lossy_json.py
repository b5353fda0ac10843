# SPDX-License-Identifier: Apache-2.0
"""``responseProtection.allowNonJson`` and a JSON body with a byte that is not UTF-8.

Python's ``json.loads`` refuses such bytes, but the Fetch standard's ``Response.json()``
(Node, browsers, and so the openai SDK for JavaScript, which parses every error body so)
decodes them as UTF-8 with U+FFFD in place of the bad byte and reads the rest as JSON. The
gateway counted the body as no client's data and relayed it under ``allowNonJson``,
uninspected. Each test reads the answer with Node's ``fetch``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.upstream_server import Reply, gateway_in_front

EMAIL = "jane.doe@example.com"
CONFIG = {"responseProtection": {"enabled": True, "allowNonJson": True}}
NODE = shutil.which("node")
#: Posts a chat request and prints the status and what ``Response.json()`` read (or null).
FETCH = """
const response = await fetch(process.argv[1] + "/v1/chat/completions", {
  method: "POST",
  headers: {"content-type": "application/json"},
  body: JSON.stringify({model: "m", messages: [{role: "user", content: "hi"}]}),
});
let document = null;
try { document = await response.json(); } catch {}
console.log(JSON.stringify({status: response.status, document}));
"""

pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node")


def fetched(url: str) -> dict[str, Any]:
    assert NODE is not None
    out = subprocess.run(
        [NODE, "--input-type=module", "-e", FETCH, url],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.mark.parametrize("content_type", ["text/plain", "text/json"])
@pytest.mark.parametrize("status", [200, 400])
def test_json_with_a_stray_byte_is_not_relayed_as_non_json(
    tmp_path: Path, content_type: str, status: int
) -> None:
    body = b'{"error": {"message": "no access for ' + EMAIL.encode() + b' \xff"}}'
    with gateway_in_front(tmp_path, CONFIG) as gateway:
        gateway.upstream.queue(
            Reply(status=status, body=body, headers={"content-type": content_type})
        )
        result = fetched(gateway.url)
        records = [r["reason"] for r in gateway.audit() if "decision" in r]
    assert EMAIL not in json.dumps(result)
    assert result["status"] == 502
    assert result["document"]["reason"] == "non_json_response"
    assert records == ["non_json_response"]


def test_text_that_no_reading_takes_for_json_is_still_relayed(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, CONFIG) as gateway:
        gateway.upstream.queue(
            Reply(status=503, body=b"upstream \xff busy", headers={"content-type": "text/plain"})
        )
        result = fetched(gateway.url)
    assert result == {"status": 503, "document": None}
