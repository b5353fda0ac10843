# SPDX-License-Identifier: Apache-2.0
"""A JSON answer is inspected in the encoding its clients read it in.

httpx's ``Response.json()`` (which the openai SDK and the Ollama client parse answers with)
is ``json.loads`` of the bytes: UTF-8 with or without a byte order mark, UTF-16 or UTF-32,
told apart by the mark or by the zero bytes. Each test sends such an answer through the
gateway and reads it with the openai SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.upstream_server import Gateway, Reply, gateway_in_front

EMAIL = "jane.doe@example.com"
HI = [{"role": "user", "content": "hi"}]
ENCODINGS = ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"]


def completion(text: str) -> dict[str, object]:
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "finish_reason": "stop", "message": message}
    return {"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice]}


def decisions(gateway: Gateway) -> list[tuple[str, str]]:
    return [(r["decision"], r["reason"]) for r in gateway.audit() if "decision" in r]


@pytest.fixture(params=["fail-closed", "allow"])
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Gateway]:
    config = {"responseProtection": {"enabled": True, "failureMode": request.param}}
    with gateway_in_front(tmp_path, config) as running:
        yield running


def ask(gateway: Gateway) -> str:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    answered = client.chat.completions.create(model="m", messages=HI)
    return answered.choices[0].message.content or ""


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_value_in_an_answer_so_encoded_is_protected(gateway: Gateway, encoding: str) -> None:
    body = json.dumps(completion(f"mail {EMAIL}")).encode(encoding)
    gateway.upstream.queue(Reply(body=body, headers={"content-type": "application/json"}))
    assert ask(gateway) == "mail [REDACTED:email]"
    assert not [d for d in decisions(gateway) if d[0].startswith("response_unprotected")]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_clean_answer_so_encoded_reads_the_same_as_text(gateway: Gateway, encoding: str) -> None:
    """Only UTF-8 reads as the same text when decoded as UTF-8 (httpx's ``Response.text``);
    an answer in UTF-16 or UTF-32 is sent again in UTF-8."""
    document = completion("all good")
    body = json.dumps(document).encode(encoding)
    gateway.upstream.queue(Reply(body=body, headers={"content-type": "application/json"}))
    relayed = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "m"}, timeout=10)
    assert relayed.json() == document
    assert json.loads(relayed.text.removeprefix("\ufeff")) == document
    if encoding == "utf-8-sig":
        assert relayed.content == body


def test_characters_whose_bytes_spell_a_value_never_reach_a_text_reader(gateway: Gateway) -> None:
    """Each UTF-16 character of the message is two bytes of the address, so decoded as
    UTF-8 (the openai SDK builds the error of an answer it cannot parse from
    ``Response.text``) the body spells the address the gateway never saw as such."""
    data = EMAIL.encode()
    hidden = "".join(chr(data[i] | data[i + 1] << 8) for i in range(0, len(data), 2))
    error = {"error": {"message": hidden, "type": "invalid_request_error"}}
    body = json.dumps(error, ensure_ascii=False).encode("utf-16-le")
    assert EMAIL.encode() in body
    gateway.upstream.queue(
        Reply(status=400, body=body, headers={"content-type": "application/json"})
    )
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="m", messages=HI)
    assert EMAIL not in str(refused.value)
    assert EMAIL not in refused.value.response.text
