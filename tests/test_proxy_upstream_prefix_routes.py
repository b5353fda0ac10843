# SPDX-License-Identifier: Apache-2.0
"""Behind an upstream URL with a path (``…/v1``), a request is routed by the path the upstream
serves, its URL's path followed by the client's, so a client whose base URL stops at the
gateway's root gets the checks and stream inspection of the route it reaches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from haechi.proxy.background import serve_in_thread
from tests.upstream_server import Gateway, Reply, UpstreamServer, gateway_in_front

INSPECTED = {"streaming": {"requestMode": "inspect"}, "responseProtection": {"enabled": True}}
ANSWER = "write to jane.doe@example.com now"


@pytest.fixture
def behind_v1(tmp_path: Path) -> Iterator[tuple[Gateway, UpstreamServer]]:
    upstream = UpstreamServer()
    with (
        serve_in_thread(upstream) as served,
        gateway_in_front(tmp_path, INSPECTED, upstream_url=served.url + "/v1") as gateway,
    ):
        yield gateway, upstream


def _operations(gateway: Gateway) -> list[str]:
    return [record.get("operation", "") for record in gateway.audit()]


def test_a_streamed_chat_behind_an_upstream_path_is_inspected(
    behind_v1: tuple[Gateway, UpstreamServer],
) -> None:
    gateway, upstream = behind_v1
    client = openai.OpenAI(base_url=gateway.url, api_key="unused", max_retries=0)
    upstream.queue(Reply(text=ANSWER))
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "write to [REDACTED:email] now"
    assert [request.path for request in upstream.received] == ["/v1/chat/completions"]
    assert "request:POST chat-completions" in _operations(gateway)


def test_a_streamed_responses_call_behind_an_upstream_path_is_inspected(
    behind_v1: tuple[Gateway, UpstreamServer],
) -> None:
    gateway, upstream = behind_v1
    client = openai.OpenAI(base_url=gateway.url, api_key="unused", max_retries=0)
    upstream.queue(Reply(text=ANSWER))
    with client.responses.stream(model="m", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "write to [REDACTED:email] now"
    assert [request.path for request in upstream.received] == ["/v1/responses"]


def test_a_client_path_that_already_names_the_route_keeps_it(
    behind_v1: tuple[Gateway, UpstreamServer],
) -> None:
    """``/v1`` twice names no route: the client's own path still does (the upstream answers
    what it answers to ``/v1/v1/...``)."""
    gateway, upstream = behind_v1
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "mail jane.doe@example.com"}]
        )
    assert [request.path for request in upstream.received] == ["/v1/v1/chat/completions"]
    assert b"jane.doe" not in upstream.received[0].body
    assert "request:POST chat-completions" in _operations(gateway)
