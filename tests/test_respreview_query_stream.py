# SPDX-License-Identifier: Apache-2.0
"""``responseProtection.allowNonJson`` and a stream asked for in the query.

The openai SDK retrieves a stored response as a stream with ``GET
/v1/responses/{id}?stream=true`` and reads the answer as an event stream whatever its media
type. Such a request has no body, so it is no streaming request to the gateway: the
upstream here labels the stream ``text/plain``, and the answer is read with the real client.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.upstream_server import Gateway, Reply, SharedGateways

EMAIL = "jane.doe@example.com"
CONFIG = {"responseProtection": {"enabled": True, "allowNonJson": True}}
DELTA = {
    "type": "response.output_text.delta",
    "delta": f"mail {EMAIL}",
    "item_id": "msg_1",
    "output_index": 0,
    "content_index": 0,
    "sequence_number": 1,
    "logprobs": [],
}
STREAM = f"event: {DELTA['type']}\ndata: {json.dumps(DELTA)}\n\n".encode()


@pytest.fixture
def gateway(shared_gateway: SharedGateways) -> Gateway:
    return shared_gateway(CONFIG)


def decisions(gateway: Gateway) -> list[tuple[str, str]]:
    return [(r["decision"], r["reason"]) for r in gateway.audit() if "decision" in r]


def test_a_stream_asked_for_in_the_query_is_not_relayed_as_text(gateway: Gateway) -> None:
    gateway.upstream.queue(Reply(body=STREAM, headers={"content-type": "text/plain"}))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.InternalServerError) as refused:
        for _ in client.responses.retrieve("resp_1", stream=True):
            pass
    assert refused.value.response.json()["reason"] == "non_json_response"
    assert EMAIL not in refused.value.response.text
    assert decisions(gateway)[-1] == ("response_unprotected_blocked", "non_json_response")


def test_text_asked_for_without_a_stream_is_still_relayed(gateway: Gateway) -> None:
    gateway.upstream.queue(Reply(body=STREAM, headers={"content-type": "text/plain"}))
    answer = httpx.get(f"{gateway.url}/v1/responses/resp_1?stream=false", timeout=10)
    assert (answer.status_code, answer.content) == (200, STREAM)
    assert decisions(gateway)[-1] == ("response_unprotected_allowed", "non_json_response")
