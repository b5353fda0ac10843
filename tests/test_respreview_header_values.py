# SPDX-License-Identifier: Apache-2.0
"""Values an upstream writes into its answer's header fields, not its body.

Response protection read the body alone: ``x-request-id``, ``set-cookie``, ``link``,
``www-authenticate``, ``retry-after``, a ``Location`` path or a field's very name went to the
client as the upstream wrote them, and the official clients hand them on (the openai SDK's
``request_id``, a raw response's headers). Each test has the upstream put a value there and
checks that it never reaches the client, that the answer itself still does, and that clean
fields are kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.test_proxy_upstream import RawUpstream
from tests.upstream_server import Gateway, Reply, gateway_in_front

EMAIL = "jane.doe@example.com"
SECRET = "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCD"
CARD = "4111 1111 1111 1111"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
PROTECTED: dict[str, Any] = {
    "responseProtection": {"enabled": True},
    "streaming": {"requestMode": "inspect"},
}
#: Fields an upstream writes values into, each holding one.
CARRIERS = {
    "x-request-id": EMAIL,
    "set-cookie": f"session={EMAIL}; Path=/",
    "link": f"<https://api.example/v1/files?owner={EMAIL}>; rel=next",
    "www-authenticate": f'Bearer realm="{EMAIL}"',
    "retry-after": CARD,
    "x-debug-key": SECRET,
    "location": f"/v1/users?email={EMAIL}",
    SECRET: "1",
}
#: Fields every provider sends, which hold no value and must stay.
CLEAN = {
    "x-request-id": "req_8f2e1c3a9b7d4e6f0a1b2c3d4e5f6a7b",
    "openai-processing-ms": "1234",
    "x-ratelimit-remaining-requests": "4999",
    "x-ratelimit-reset-tokens": "6ms",
}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    with gateway_in_front(tmp_path, PROTECTED) as running:
        yield running


def leaked(headers: httpx.Headers | str) -> list[str]:
    """The protected values that appear in ``headers`` (names included) or a text."""
    text = headers if isinstance(headers, str) else str(headers.raw)
    return [value for value in (EMAIL, SECRET, CARD) if value in text]


def dropped_records(gateway: Gateway) -> list[dict[str, Any]]:
    return [r for r in gateway.audit() if r.get("decision") == "response_header_dropped"]


@pytest.mark.parametrize("name", list(CARRIERS))
def test_a_value_in_a_header_field_never_reaches_the_client(gateway: Gateway, name: str) -> None:
    gateway.upstream.queue(Reply(text="all good", headers={**CLEAN, name: CARRIERS[name]}))
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "all good"
    assert leaked(response.headers) == []
    if name != "x-request-id":
        assert response.headers["openai-processing-ms"] == "1234"
    assert len(dropped_records(gateway)) == 1
    assert leaked(gateway.audit_text()) == []


def test_clean_header_fields_are_kept_and_nothing_is_recorded(gateway: Gateway) -> None:
    gateway.upstream.queue(Reply(text="all good", headers=CLEAN))
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
    assert response.status_code == 200
    for name, value in CLEAN.items():
        assert response.headers[name] == value
    assert dropped_records(gateway) == []


def test_the_openai_client_never_sees_a_request_id_holding_a_value(gateway: Gateway) -> None:
    gateway.upstream.queue(Reply(text="all good", headers={"x-request-id": EMAIL}))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    completion = client.chat.completions.create(model="m", messages=[CHAT["messages"][0]])
    assert completion.choices[0].message.content == "all good"
    assert completion._request_id is None


def test_the_openai_error_of_an_answer_with_such_a_field_holds_no_value(gateway: Gateway) -> None:
    body = b'{"error": {"message": "quota exceeded", "type": "insufficient_quota"}}'
    gateway.upstream.queue(Reply(status=429, body=body, headers={"x-request-id": EMAIL}))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="m", messages=[CHAT["messages"][0]])
    assert raised.value.request_id is None
    assert EMAIL not in str(raised.value)


def test_an_answer_to_head_carries_no_value_in_its_fields(gateway: Gateway) -> None:
    gateway.upstream.queue(Reply(body=b"", headers={"x-request-id": EMAIL}))
    response = httpx.head(f"{gateway.url}/v1/models", timeout=10)
    assert leaked(response.headers) == []


def test_an_inspected_stream_carries_no_value_in_its_fields(gateway: Gateway) -> None:
    gateway.upstream.queue(Reply(text="all good", headers={**CLEAN, "x-request-id": EMAIL}))
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={**CHAT, "stream": True},
        timeout=10,
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    assert response.status_code == 200
    deltas = [json.loads(line[6:])["choices"][0]["delta"] for line in lines]
    assert "".join(delta.get("content") or "" for delta in deltas) == "all good"
    assert leaked(response.headers) == []
    assert response.headers["openai-processing-ms"] == "1234"


def test_dry_run_answers_keep_their_fields(tmp_path: Path) -> None:
    config = {"responseProtection": {"enabled": True, "mode": "dry-run"}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(text="all good", headers={"x-request-id": EMAIL}))
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
    assert response.headers["x-request-id"] == EMAIL


def test_a_value_written_in_utf8_in_a_field_never_reaches_the_client(tmp_path: Path) -> None:
    """httpx reads a field's bytes as UTF-8 when they are: an address written with the
    fullwidth at sign (U+FF20) reads as one to the client and to the detector, while its
    bytes read as Latin-1 hold no address."""
    wide = EMAIL.replace("@", "\uff20")
    body = b'{"choices": [{"message": {"role": "assistant", "content": "all good"}}]}'
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: "
    reply = head + wide.encode() + b"\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    upstream = RawUpstream(lambda request: (reply, False))
    try:
        with gateway_in_front(tmp_path, PROTECTED, upstream_url=upstream.url) as gateway:
            client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
            raw = client.chat.completions.with_raw_response.create(
                model="m", messages=[CHAT["messages"][0]]
            )
    finally:
        upstream.close()
    assert raw.parse().choices[0].message.content == "all good"
    assert wide not in str(raw.headers)
    assert "x-request-id" not in raw.headers
