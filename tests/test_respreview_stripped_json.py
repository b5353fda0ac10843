# SPDX-License-Identifier: Apache-2.0
"""``responseProtection.allowNonJson`` and JSON behind white space only a client strips.

The openai SDK parses an error body as ``json.loads(response.text.strip())``: ``strip``
takes away a form feed, U+00A0 or U+3000, which JSON does not count as white space, so a
JSON error body behind one is no JSON to ``json.loads`` of the bytes and JSON to the SDK.
The gateway sits in front of an upstream that labels such a body ``text/plain``, and the
answer is read with the real client.
"""

from __future__ import annotations

import json

import openai
import pytest

from tests.upstream_server import Gateway, Reply, SharedGateways

EMAIL = "jane.doe@example.com"
CONFIG = {"responseProtection": {"enabled": True, "allowNonJson": True}}
ERROR = {"error": {"message": f"no account for {EMAIL}", "type": "invalid_request_error"}}


@pytest.fixture
def gateway(shared_gateway: SharedGateways) -> Gateway:
    return shared_gateway(CONFIG)


@pytest.mark.parametrize(
    ("before", "after"),
    [("\f", ""), ("\u00a0", ""), ("", "\x1c"), ("\u3000", "\v")],
    ids=["form-feed", "no-break-space", "file-separator", "ideographic-space"],
)
def test_an_error_in_json_behind_white_space_is_not_relayed(
    gateway: Gateway, before: str, after: str
) -> None:
    body = f"{before}{json.dumps(ERROR)}{after}".encode()
    gateway.upstream.queue(Reply(status=400, body=body, headers={"content-type": "text/plain"}))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.InternalServerError) as refused:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert EMAIL not in str(refused.value)
    assert refused.value.response.json()["reason"] == "non_json_response"
