# SPDX-License-Identifier: Apache-2.0
"""``responseProtection.allowNonJson`` and the charset a non-JSON answer declares.

httpx's ``Response.text`` decodes a body with the charset its ``content-type`` declares,
and the openai SDK parses an error body from that text: a JSON body written in EBCDIC is
no JSON to any UTF-8 reading, and JSON to it. The gateway sits
in front of an upstream that labels such a body ``text/plain; charset=cp037``, and the
answer is read with the real client.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.upstream_server import Gateway, Reply, SharedGateways

EMAIL = "jane.doe@example.com"
CONFIG = {"responseProtection": {"enabled": True, "allowNonJson": True}}
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def gateway(shared_gateway: SharedGateways) -> Gateway:
    return shared_gateway(CONFIG)


def decisions(gateway: Gateway) -> list[tuple[str, str]]:
    return [(r["decision"], r["reason"]) for r in gateway.audit() if "decision" in r]


def test_an_error_in_json_in_its_declared_charset_is_not_relayed(gateway: Gateway) -> None:
    error = {"error": {"message": f"no account for {EMAIL}", "type": "invalid_request_error"}}
    body = json.dumps(error).encode("cp037")
    headers = {"content-type": "text/plain; charset=cp037"}
    gateway.upstream.queue(Reply(status=400, body=body, headers=headers))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.InternalServerError) as refused:
        client.chat.completions.create(model="m", messages=HI)
    assert EMAIL not in str(refused.value)
    assert refused.value.response.json()["reason"] == "non_json_response"
    assert decisions(gateway)[-1] == ("response_unprotected_blocked", "non_json_response")


def test_a_page_in_a_declared_charset_is_still_relayed(gateway: Gateway) -> None:
    """Apache's own error pages declare ISO-8859-1: text, which no reading takes for JSON."""
    page = f"<html><body>Service unavailable \xe9, write to {EMAIL}</body></html>"
    body = page.encode("latin-1")
    headers = {"content-type": "text/html; charset=iso-8859-1"}
    gateway.upstream.queue(Reply(status=503, body=body, headers=headers))
    answer = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "m"}, timeout=10)
    assert (answer.status_code, answer.content) == (503, body)
    assert decisions(gateway)[-1] == ("response_unprotected_allowed", "non_json_response")
