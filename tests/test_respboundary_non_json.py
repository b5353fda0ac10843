# SPDX-License-Identifier: Apache-2.0
"""``responseProtection.allowNonJson`` relays only what no client reads as data.

The clients do not go by the declared media type: the openai SDK parses the answer to a
call returning a model object with ``json.loads`` of its bytes whatever its
``content-type`` (as the Ollama client parses every answer), and the client of a streaming
request reads a successful body as its stream. Each test puts the gateway in front of an
upstream that labels such a body ``text/plain`` (or not at all) and reads the answer with
the real client.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from tests.upstream_server import Gateway, Reply, SharedGateways, gateway_in_front

EMAIL = "jane.doe@example.com"
CONFIG = {
    "responseProtection": {"enabled": True, "allowNonJson": True},
    "streaming": {"requestMode": "inspect"},
}
COMPLETION = {
    "id": "c",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": f"mail {EMAIL}"},
        }
    ],
}
HI = [{"role": "user", "content": "hi"}]


def decisions(gateway: Gateway) -> list[tuple[str, str]]:
    return [(r["decision"], r["reason"]) for r in gateway.audit() if "decision" in r]


@pytest.fixture
def gateway(shared_gateway: SharedGateways) -> Gateway:
    """The module's gateway, its upstream's record emptied: the audit decisions a test reads
    are the last ones, written before each answer."""
    return shared_gateway(CONFIG)


def openai_client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        ("text/plain", "utf-8"),
        ("", "utf-8"),
        ("text/json", "utf-8"),
        ("application/x-ndjson", "utf-8"),
        ("text/plain", "utf-8-sig"),
        ("text/plain", "utf-16-le"),
    ],
)
def test_a_json_answer_labelled_otherwise_is_not_relayed_as_non_json(
    gateway: Gateway, content_type: str, encoding: str
) -> None:
    body = json.dumps(COMPLETION).encode(encoding)
    gateway.upstream.queue(Reply(body=body, headers={"content-type": content_type}))
    with pytest.raises(openai.InternalServerError) as refused:
        openai_client(gateway).chat.completions.create(model="m", messages=HI)
    assert refused.value.response.json()["reason"] == "non_json_response"
    assert EMAIL not in refused.value.response.text
    assert decisions(gateway)[-1] == ("response_unprotected_blocked", "non_json_response")


def test_an_error_answer_in_json_labelled_otherwise_is_not_relayed(gateway: Gateway) -> None:
    error = {"error": {"message": f"no account for {EMAIL}", "type": "invalid_request_error"}}
    body = json.dumps(error).encode()
    gateway.upstream.queue(Reply(status=400, body=body, headers={"content-type": "text/plain"}))
    with pytest.raises(openai.InternalServerError) as refused:
        openai_client(gateway).chat.completions.create(model="m", messages=HI)
    assert EMAIL not in str(refused.value)
    assert refused.value.response.json()["reason"] == "non_json_response"


def test_an_event_stream_labelled_as_text_is_not_relayed(gateway: Gateway) -> None:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": f"mail {EMAIL}"}, "finish_reason": None}],
    }
    body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
    gateway.upstream.queue(Reply(body=body, headers={"content-type": "text/plain"}))
    client = openai_client(gateway)
    with pytest.raises(openai.InternalServerError) as refused:
        for _ in client.chat.completions.create(model="m", messages=HI, stream=True):
            pass
    assert refused.value.response.json()["reason"] == "non_json_response"
    assert decisions(gateway)[-1] == ("response_unprotected_blocked", "non_json_response")


def test_an_ndjson_stream_labelled_as_text_is_not_relayed(tmp_path: Path) -> None:
    def line(content: str, done: bool) -> str:
        message = {"role": "assistant", "content": content}
        created = "2024-01-01T00:00:00Z"
        frame = {"model": "m", "created_at": created, "message": message, "done": done}
        return json.dumps(frame) + "\n"

    body = line(f"mail {EMAIL}", False) + line("", True)
    config = {**CONFIG, "target": {"type": "ollama"}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(body=body.encode(), headers={"content-type": "text/plain"}))
        client = ollama.Client(host=gateway.url)
        with pytest.raises(ollama.ResponseError) as refused:
            for _ in client.chat(model="m", messages=HI, stream=True):
                pass
        assert refused.value.status_code == 502
        assert EMAIL not in str(refused.value)
        assert decisions(gateway)[-1] == ("response_unprotected_blocked", "non_json_response")


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        (
            "/v1/responses/resp_1?stream=true",
            "text/event-stream",
            f'event: response.output_text.delta\ndata: {{"delta": "mail {EMAIL}"}}\n\n',
        ),
        (
            "/v1/batches/b_1/results",
            "application/jsonl",
            "".join(
                json.dumps({"custom_id": str(n), "result": {"text": f"mail {EMAIL}"}}) + "\n"
                for n in range(2)
            ),
        ),
    ],
)
def test_a_success_declared_as_a_stream_is_not_relayed_whatever_the_request(
    gateway: Gateway, path: str, content_type: str, body: str
) -> None:
    # The request is no streaming request the gateway knows (the stream is asked for in the
    # query, or the API answers with lines): the client reads the body as data all the same.
    gateway.upstream.queue(Reply(body=body.encode(), headers={"content-type": content_type}))
    answer = httpx.get(gateway.url + path, timeout=30)
    assert answer.status_code == 502, answer.text
    assert EMAIL not in answer.text
    assert answer.json()["reason"] == "non_json_response"
    assert decisions(gateway)[-1] == ("response_unprotected_blocked", "non_json_response")


def test_a_body_no_client_reads_as_data_is_still_relayed(gateway: Gateway) -> None:
    page = f"<html><body>upstream down, write to {EMAIL}</body></html>".encode()
    gateway.upstream.queue(
        Reply(body=page, headers={"content-type": "text/html"}),
        Reply(status=503, body=page, headers={"content-type": "text/html"}),
    )
    url = f"{gateway.url}/v1/chat/completions"
    plain = httpx.post(url, json={"model": "m", "messages": HI}, timeout=10)
    assert (plain.status_code, plain.content) == (200, page)
    streamed = httpx.post(url, json={"model": "m", "messages": HI, "stream": True}, timeout=10)
    assert (streamed.status_code, streamed.content) == (503, page)
    assert decisions(gateway)[-2:] == [("response_unprotected_allowed", "non_json_response")] * 2


def test_a_json_answer_with_a_long_integer_labelled_otherwise_is_not_relayed(
    gateway: Gateway,
) -> None:
    """Python converts integers of at most 4300 digits, but ``JSON.parse`` (with which the
    openai SDK for JavaScript reads a ``text/json`` answer) and Go read longer ones: the
    body is JSON to them, whatever Python's ``json`` says of it."""
    body = f'{{"n": {"9" * 4301}, "message": "mail {EMAIL}"}}'.encode()
    gateway.upstream.queue(Reply(body=body, headers={"content-type": "text/json"}))
    refused = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "m"}, timeout=10)
    assert refused.status_code == 502
    assert refused.json()["reason"] == "non_json_response"
    assert EMAIL not in refused.text
