# SPDX-License-Identifier: Apache-2.0
"""An upstream redirect never takes the client's request past the gateway.

The openai and anthropic SDKs follow redirects, and after a 307 or 308 they send the same
request again, body as they wrote it, to the URL named: an upstream naming itself (or any
host) would receive what the gateway redacted on the way there. Each test puts the gateway
in front of an upstream that redirects, with a second server recording what reaches it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.test_proxy_upstream import RawUpstream, answer, json_answer
from tests.upstream_server import Gateway, gateway_in_front

EMAIL = "jane.doe@example.com"
COMPLETION = {
    "id": "c",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}
    ],
}
MESSAGES = [{"role": "user", "content": f"I am {EMAIL}"}]


def redirect(location: str, status: str = "307 Temporary Redirect") -> bytes:
    return answer(b"", f"Location: {location}", "Content-Length: 0", status=status)


@pytest.fixture
def servers() -> Iterator[Callable[[Callable[[bytes], bytes]], RawUpstream]]:
    started: list[RawUpstream] = []

    def start(script: Callable[[bytes], bytes]) -> RawUpstream:
        server = RawUpstream(lambda request: (script(request), False))
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def gateway_before(tmp_path: Path) -> Iterator[Callable[[RawUpstream], Gateway]]:
    with contextlib.ExitStack() as stack:

        def start(upstream: RawUpstream) -> Gateway:
            config = {"responseProtection": {"enabled": True}}
            return stack.enter_context(
                gateway_in_front(tmp_path, config, upstream_url=upstream.url)
            )

        yield start


@pytest.mark.parametrize("status", ["307 Temporary Redirect", "308 Permanent Redirect"])
def test_a_redirect_elsewhere_never_reaches_the_openai_client(
    servers: Callable[..., RawUpstream],
    gateway_before: Callable[[RawUpstream], Gateway],
    status: str,
) -> None:
    collector = servers(lambda request: json_answer(COMPLETION))
    upstream = servers(lambda request: redirect(f"{collector.url}/v1/chat/completions", status))
    gateway = gateway_before(upstream)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.APIStatusError) as stayed:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert stayed.value.status_code == int(status[:3])
    assert "location" not in stayed.value.response.headers
    assert collector.requests == []
    assert EMAIL.encode() not in upstream.requests[0]


def test_a_redirect_elsewhere_never_reaches_the_anthropic_client(
    servers: Callable[..., RawUpstream], gateway_before: Callable[[RawUpstream], Gateway]
) -> None:
    collector = servers(lambda request: json_answer({}))
    upstream = servers(lambda request: redirect(f"{collector.url}/v1/messages"))
    gateway = gateway_before(upstream)
    client = anthropic.Anthropic(base_url=gateway.url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(model="m", max_tokens=5, messages=MESSAGES)
    assert collector.requests == []


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:9/v1/chat/completions",
        "HTTPS://upstream.example/v1/chat/completions",
        "//upstream.example/v1/chat/completions",
        "/\\upstream.example/v1/chat/completions",
        "/\t/upstream.example/v1/chat/completions",
        "v1/chat/completions",
        "",
    ],
)
def test_only_a_path_on_the_gateway_is_relayed_as_location(
    servers: Callable[..., RawUpstream],
    gateway_before: Callable[[RawUpstream], Gateway],
    location: str,
) -> None:
    gateway = gateway_before(servers(lambda request: redirect(location)))
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "m"}, timeout=10)
    assert response.status_code == 307
    assert "location" not in response.headers


def test_a_redirect_to_a_path_comes_back_through_the_gateway(
    servers: Callable[..., RawUpstream], gateway_before: Callable[[RawUpstream], Gateway]
) -> None:
    def script(request: bytes) -> bytes:
        first = request.startswith(b"POST /v1/chat/completions ")
        return redirect("/v1/chat/completions?moved=1") if first else json_answer(COMPLETION)

    upstream = servers(script)
    gateway = gateway_before(upstream)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    answered = client.chat.completions.create(model="m", messages=MESSAGES)
    assert answered.choices[0].message.content == "ok"
    assert len(upstream.requests) == 2
    assert upstream.requests[1].startswith(b"POST /v1/chat/completions?moved=1 ")
    for request in upstream.requests:
        sent = json.loads(request.partition(b"\r\n\r\n")[2])
        assert sent["messages"][0]["content"] == "I am [REDACTED:email]"
