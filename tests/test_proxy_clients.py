# SPDX-License-Identifier: Apache-2.0
"""The official SDKs work unchanged through the gateway, and the model never sees PII.

Each test points an official client (``openai``, ``anthropic``, ``ollama``) at the gateway
(uvicorn on a real socket) in front of the local upstream, which records what it received.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.stream_fixtures import read_sse
from tests.upstream_server import Gateway, Reply, SharedGateways, gateway_in_front

EMAIL = "jane.doe@example.com"
PHONE = "010-1234-5678"
PROMPT = f"Reach me at {EMAIL} or {PHONE} please."
STREAMING = {"streaming": {"requestMode": "inspect"}, "responseProtection": {"enabled": True}}


def assert_never_seen(gateway: Gateway) -> None:
    assert gateway.upstream.received, "the upstream was not reached"
    for request in gateway.upstream.received:
        assert EMAIL not in request.text
        assert "1234-5678" not in request.text


@pytest.fixture
def openai_gateway(shared_gateway: SharedGateways) -> Gateway:
    return shared_gateway({"target": {"type": "openai-compatible"}, **STREAMING})


@pytest.fixture
def openai_client(openai_gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{openai_gateway.url}/v1", api_key="sk-test", max_retries=0)


def test_openai_chat(openai_gateway: Gateway, openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}]
    )
    answer = completion.choices[0].message.content or ""
    assert answer.startswith("echo: Reach me at ")
    assert EMAIL not in answer
    assert_never_seen(openai_gateway)
    assert openai_gateway.upstream.last.headers["authorization"] == "Bearer sk-test"


def test_openai_chat_streamed(openai_gateway: Gateway, openai_client: openai.OpenAI) -> None:
    stream = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.startswith("echo: Reach me at ")
    assert EMAIL not in text
    assert_never_seen(openai_gateway)


def test_openai_responses(openai_gateway: Gateway, openai_client: openai.OpenAI) -> None:
    response = openai_client.responses.create(model="gpt-4o-mini", input=PROMPT)
    assert response.output_text.startswith("echo: Reach me at ")
    assert openai_gateway.upstream.last.path == "/v1/responses"
    assert_never_seen(openai_gateway)


def test_openai_responses_streamed(openai_gateway: Gateway, openai_client: openai.OpenAI) -> None:
    with openai_client.responses.stream(model="gpt-4o-mini", input=PROMPT) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas).startswith("echo: Reach me at ")
    assert EMAIL not in final.output_text
    assert_never_seen(openai_gateway)


def test_openai_embeddings(openai_gateway: Gateway, openai_client: openai.OpenAI) -> None:
    result = openai_client.embeddings.create(model="text-embedding-3-small", input=PROMPT)
    assert result.data[0].embedding == [0.1, 0.2, 0.3]
    assert_never_seen(openai_gateway)


def test_openai_policy_block_surfaces_as_an_sdk_error(
    openai_gateway: Gateway, openai_client: openai.OpenAI
) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        openai_client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "card 4111 1111 1111 1111"}]
        )
    assert caught.value.status_code == 403
    assert openai_gateway.upstream.received == []


@pytest.fixture
def anthropic_gateway(shared_gateway: SharedGateways) -> Gateway:
    return shared_gateway({"target": {"type": "anthropic"}, **STREAMING})


def test_anthropic_messages(anthropic_gateway: Gateway) -> None:
    client = anthropic.Anthropic(
        base_url=anthropic_gateway.url, api_key="sk-ant-test", max_retries=0
    )
    message = client.messages.create(
        model="claude-test",
        max_tokens=64,
        messages=[{"role": "user", "content": PROMPT}],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("echo: Reach me at ")
    assert_never_seen(anthropic_gateway)
    seen = anthropic_gateway.upstream.last.headers
    # The SDK sends its key as x-api-key or as a bearer token depending on its version;
    # with gateway auth off, either reaches the upstream.
    assert "sk-ant-test" in (seen.get("x-api-key"), seen.get("authorization", "")[7:])
    assert seen["anthropic-version"]


def test_anthropic_messages_streamed(anthropic_gateway: Gateway) -> None:
    client = anthropic.Anthropic(base_url=anthropic_gateway.url, api_key="k", max_retries=0)
    with client.messages.stream(
        model="claude-test",
        max_tokens=64,
        messages=[{"role": "user", "content": PROMPT}],
    ) as stream:
        text = stream.get_final_text()
    assert text.startswith("echo: Reach me at ")
    assert EMAIL not in text
    assert_never_seen(anthropic_gateway)


def test_anthropic_count_tokens(anthropic_gateway: Gateway) -> None:
    client = anthropic.Anthropic(base_url=anthropic_gateway.url, api_key="k", max_retries=0)
    count = client.messages.count_tokens(
        model="claude-test", messages=[{"role": "user", "content": PROMPT}]
    )
    assert count.input_tokens == 7
    assert_never_seen(anthropic_gateway)


@pytest.fixture
def ollama_gateway(shared_gateway: SharedGateways) -> Gateway:
    return shared_gateway({"target": {"type": "ollama"}, **STREAMING})


def test_ollama_chat_and_generate(ollama_gateway: Gateway) -> None:
    client = ollama.Client(host=ollama_gateway.url)
    chat = client.chat(model="llama3", messages=[{"role": "user", "content": PROMPT}], stream=False)
    assert chat.message.content.startswith("echo: Reach me at ")
    generated = client.generate(model="llama3", prompt=PROMPT, stream=False)
    assert generated.response.startswith("echo: Reach me at ")
    embedded = client.embed(model="llama3", input=PROMPT)
    assert embedded.embeddings == [[0.1, 0.2, 0.3]]
    assert_never_seen(ollama_gateway)


def test_ollama_chat_streamed(ollama_gateway: Gateway) -> None:
    client = ollama.Client(host=ollama_gateway.url)
    parts = client.chat(model="llama3", messages=[{"role": "user", "content": PROMPT}], stream=True)
    text = "".join(part.message.content or "" for part in parts)
    assert text.startswith("echo: Reach me at ")
    assert EMAIL not in text
    assert_never_seen(ollama_gateway)


def test_ollama_implicit_streaming_is_refused_when_streaming_is_blocked(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"target": {"type": "ollama"}}) as gateway:
        implicit = {"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}
        refused = httpx.post(f"{gateway.url}/api/chat", json=implicit)
        assert refused.status_code == 501
        assert refused.json()["error"] == "haechi_streaming_unsupported"
        client = ollama.Client(host=gateway.url)
        parts = client.chat(model="llama3", messages=implicit["messages"], stream=True)
        with pytest.raises(ollama.ResponseError) as caught:
            list(parts)
        assert caught.value.status_code == 501
        answer = client.chat(model="llama3", messages=implicit["messages"], stream=False)
        assert answer.message.content == "echo: hi"
        assert len(gateway.upstream.received) == 1
        # /api/generate streams by default too.
        generate = httpx.post(
            f"{gateway.url}/api/generate", json={"model": "llama3", "prompt": "hi"}
        )
        assert generate.status_code == 501
        assert generate.json()["error"] == "haechi_streaming_unsupported"
        assert client.generate(model="llama3", prompt="hi", stream=False).response == "echo: hi"
        assert len(gateway.upstream.received) == 2


def gemini_stream_text(sse: str) -> str:
    """The text of a Gemini SSE answer: its frames' first parts, joined."""
    pieces = []
    for line in sse.splitlines():
        if line.startswith("data:"):
            frame = json.loads(line[5:])
            pieces.append(frame["candidates"][0]["content"]["parts"][0]["text"])
    return "".join(pieces)


def test_gemini_generate_and_stream(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}, **STREAMING}) as gateway:
        body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
        plain = httpx.post(
            f"{gateway.url}/v1beta/models/gemini-1.5-flash:generateContent",
            json=body,
            headers={"x-goog-api-key": "g"},
        )
        text = plain.json()["candidates"][0]["content"]["parts"][0]["text"]
        assert text.startswith("echo: Reach me at ")
        assert gateway.upstream.last.headers["x-goog-api-key"] == "g"
        streamed = httpx.post(
            f"{gateway.url}/v1beta/models/gemini-1.5-flash:streamGenerateContent?alt=sse",
            json=body,
        )
        assert streamed.status_code == 200
        assert gemini_stream_text(streamed.text).startswith("echo: Reach me at ")
        assert_never_seen(gateway)


def test_gemini_stream_method_streams_whatever_the_body_says(tmp_path: Path) -> None:
    """``:streamGenerateContent`` always answers with a stream, so ``"stream": false`` in its
    body must not take the request off the streaming path (where it would be relayed
    without the stream inspector, or let past the default ``block``)."""
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "stream": False}
    path = "/v1beta/models/gemini-1.5-flash:streamGenerateContent?alt=sse"
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}}) as gateway:
        refused = httpx.post(f"{gateway.url}{path}", json=body)
        assert refused.status_code == 501
        assert refused.json()["error"] == "haechi_streaming_unsupported"
        assert gateway.upstream.received == []
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}, **STREAMING}) as gateway:
        gateway.upstream.queue(Reply(text=f"write to {EMAIL}"))
        streamed = httpx.post(f"{gateway.url}{path}", json=body)
        assert streamed.status_code == 200
        assert streamed.headers["content-type"].startswith("text/event-stream")
        assert EMAIL not in streamed.text
        assert gemini_stream_text(streamed.text) == "write to [REDACTED:email]"


def test_ollama_generate_leaves_its_token_ids_out_of_an_enforced_answer(
    ollama_gateway: Gateway,
) -> None:
    """``context`` is the conversation as token ids, the answer's included: decoded with the
    model's tokenizer it would give back what was redacted, and detection cannot read it."""
    client = ollama.Client(host=ollama_gateway.url)
    answer = f"write to {EMAIL}"
    ollama_gateway.upstream.queue(Reply(text=answer), Reply(text=answer))
    whole = client.generate(model="llama3", prompt="hi", stream=False)
    assert whole.response == "write to [REDACTED:email]"
    assert whole.context is None
    parts = list(client.generate(model="llama3", prompt="hi", stream=True))
    assert "".join(part.response for part in parts) == "write to [REDACTED:email]"
    assert parts[-1].done
    assert all(part.context is None for part in parts)


def test_ollama_generate_keeps_its_token_ids_in_dry_run(tmp_path: Path) -> None:
    config = {
        "target": {"type": "ollama"},
        "streaming": {"requestMode": "inspect", "responseMode": "dry-run"},
        "responseProtection": {"enabled": True, "mode": "dry-run"},
    }
    with gateway_in_front(tmp_path, config) as gateway:
        client = ollama.Client(host=gateway.url)
        expected = [ord(char) for char in "hiecho: hi"]
        assert client.generate(model="llama3", prompt="hi", stream=False).context == expected
        parts = list(client.generate(model="llama3", prompt="hi", stream=True))
        assert parts[-1].context == expected


GEMINI_ARRAY_STREAM = "/v1beta/models/gemini-1.5-flash:streamGenerateContent"


def ask_gemini_array(gateway: Gateway, reply: Reply) -> httpx.Response:
    """Have the upstream answer ``reply`` as a JSON-array stream, through the gateway."""
    gateway.upstream.queue(reply)
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    return httpx.post(f"{gateway.url}{GEMINI_ARRAY_STREAM}", json=body)


def gemini_array_text(chunks: list[dict[str, object]]) -> str:
    """The text of a Gemini JSON-array stream: its chunks' first parts, joined."""
    return "".join(
        chunk["candidates"][0]["content"]["parts"][0]["text"]  # type: ignore[index]
        for chunk in chunks
    )


def test_gemini_array_stream_joins_a_value_cut_between_chunks(tmp_path: Path) -> None:
    """Without ``?alt=sse`` Gemini streams one JSON array of chunks; a value cut between
    chunks is read as a stream is, and one stream event is audited."""
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}, **STREAMING}) as gateway:
        response = ask_gemini_array(gateway, Reply(text=f"write to {EMAIL} now"))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert EMAIL not in response.text
        assert "jane" not in response.text
        chunks = response.json()
        assert len(chunks) > 2
        assert gemini_array_text(chunks) == "write to [REDACTED:email] now"
        finished = [c for c in chunks if c["candidates"][0].get("finishReason") == "STOP"]
        assert len(finished) == 1
        streams = [r for r in gateway.audit() if r.get("reason", "").startswith("stream_")]
        assert [r["reason"] for r in streams] == ["stream_inspected"]
        assert "stream_inspected" in gateway.metrics('decision="stream_inspected"')


def test_gemini_array_stream_that_is_clean_is_relayed_as_sent(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}, **STREAMING}) as gateway:
        response = ask_gemini_array(gateway, Reply(text="nothing to see here"))
        assert response.status_code == 200
        assert gemini_array_text(response.json()) == "nothing to see here"
        # The test upstream writes ``json.dumps`` spacing; a rewritten body is compact.
        assert response.text.startswith('[{"candidates": [')
        assert "no-store" not in response.headers.get("cache-control", "")


def test_gemini_array_stream_carries_no_token_pieces(tmp_path: Path) -> None:
    """The chunks' log-probability pieces spell the answer again, values whole or cut; an
    enforced stream carries none, even when its text holds nothing to protect."""
    pieces = [{"token": piece, "logProbability": -0.1} for piece in ("jane", ".doe@", "x.com")]
    chunk = {
        "candidates": [
            {
                "content": {"parts": [{"text": "hello"}], "role": "model"},
                "finishReason": "STOP",
                "logprobsResult": {
                    "chosenCandidates": pieces,
                    "topCandidates": [{"candidates": [piece]} for piece in pieces],
                },
            }
        ]
    }
    reply = Reply(body=json.dumps([chunk]).encode(), headers={"content-type": "application/json"})
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}, **STREAMING}) as gateway:
        response = ask_gemini_array(gateway, reply)
        assert response.status_code == 200
        assert "jane" not in response.text
        chunks = response.json()
        assert gemini_array_text(chunks) == "hello"
        results = [c["candidates"][0].get("logprobsResult") for c in chunks]
        assert {"chosenCandidates": [], "topCandidates": []} in results
        assert all(not result or not result["chosenCandidates"] for result in results)


@pytest.mark.parametrize("query", ["", "?alt=json", "?alt=sse&alt=json"])
def test_gemini_array_stream_labelled_as_events_is_read_as_the_client_reads_it(
    tmp_path: Path, query: str
) -> None:
    """Not asked for ``alt=sse``, the client parses the answer as one JSON array whatever
    its content type says; read as events, the array would be one line no window joins."""
    chunk = {"candidates": [{"content": {"parts": [{"text": "card 41111111"}, {"text": "1"}]}}]}
    halves = [chunk, {"candidates": [{"content": {"parts": [{"text": "1111111 ok"}]}}]}]
    reply = Reply(body=json.dumps(halves).encode(), headers={"content-type": "text/event-stream"})
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}, **STREAMING}) as gateway:
        gateway.upstream.queue(reply)
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        response = httpx.post(f"{gateway.url}{GEMINI_ARRAY_STREAM}{query}", json=body)
        assert response.status_code == 502
        assert response.json()["error"] == "haechi_response_unprotected"
        assert "4111" not in response.text


def test_gemini_array_stream_with_a_card_cut_between_chunks_is_refused(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}, **STREAMING}) as gateway:
        response = ask_gemini_array(gateway, Reply(text="card 4111 1111 1111 1111 ok"))
        assert response.status_code == 502
        assert response.json()["error"] == "haechi_response_policy_block"
        assert "4111" not in response.text
        streams = [r for r in gateway.audit() if r.get("reason", "").startswith("stream_")]
        assert [r["reason"] for r in streams] == ["stream_policy_block"]


def test_gemini_array_stream_never_shows_a_value_however_it_is_cut(tmp_path: Path) -> None:
    """Wherever the chunks of an array stream cut the answer, the address is not relayed and
    the chunks joined read as the redacted answer."""
    answer = f"mail {EMAIL} today"
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}, **STREAMING}) as gateway:

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(cuts=st.lists(st.integers(1, len(answer) - 1), unique=True, max_size=8))
        def check(cuts: list[int]) -> None:
            bounds = [0, *sorted(cuts), len(answer)]
            pieces = [answer[a:b] for a, b in itertools.pairwise(bounds)]
            response = ask_gemini_array(gateway, Reply(text=answer, chunks=pieces))
            assert response.status_code == 200
            assert "jane" not in response.text
            assert gemini_array_text(response.json()) == "mail [REDACTED:email] today"

        check()


def _gemini_chunk(parts: list[str]) -> dict[str, object]:
    content = {"parts": [{"text": text} for text in parts], "role": "model"}
    return {"candidates": [{"content": content, "index": 0}], "modelVersion": "g"}


def _candidate_text(chunks: list[dict[str, Any]]) -> str:
    """What google-genai's ``chunk.text`` gives, added up: each chunk's first candidate's
    text parts, joined."""
    return "".join(
        part.get("text", "")
        for chunk in chunks
        for part in chunk["candidates"][0]["content"]["parts"]
        if not part.get("thought")
    )


@pytest.mark.parametrize("form", ["sse", "array"])
def test_gemini_value_cut_between_parts_is_joined_as_clients_join_it(
    tmp_path: Path, form: str
) -> None:
    """Clients join a candidate's parts, within a chunk and across chunks: a value cut
    between two parts is one value."""
    chunks = [_gemini_chunk(["Mail jane.doe@", "exam"]), _gemini_chunk(["ple.com", " now"])]
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}, **STREAMING}) as gateway:
        if form == "sse":
            wire = [f"data: {json.dumps(chunk)}\r\n\r\n".encode() for chunk in chunks]
            gateway.upstream.queue(Reply(wire=wire))
            response = httpx.post(f"{gateway.url}{GEMINI_ARRAY_STREAM}?alt=sse", json=body)
            sent = [json.loads(f.data) for f in read_sse(response.content) if f.data]
        else:
            gateway.upstream.queue(Reply(body=json.dumps(chunks).encode()))
            response = httpx.post(f"{gateway.url}{GEMINI_ARRAY_STREAM}", json=body)
            sent = response.json()
        assert response.status_code == 200
        assert "jane" not in response.text
        assert _candidate_text(sent) == "Mail [REDACTED:email] now"


def test_gemini_array_stream_restores_this_requests_tokens(tmp_path: Path) -> None:
    """With ``detokenizeResponses`` the tokens issued for the request come back restored in
    an array stream too, even when the chunks cut a token."""
    config = {
        "target": {"type": "gemini"},
        **STREAMING,
        "policy": {"actions": {"email": "tokenize"}},
        "tokenVault": {"detokenizeResponses": True},
    }
    body = {"contents": [{"role": "user", "parts": [{"text": f"I am {EMAIL}"}]}]}
    with gateway_in_front(tmp_path, config) as gateway:
        response = httpx.post(f"{gateway.url}{GEMINI_ARRAY_STREAM}", json=body)
        assert response.status_code == 200
        seen = gateway.upstream.last.text
        assert EMAIL not in seen
        assert "[TOKEN:" in seen
        chunks = response.json()
        assert len(chunks) > 3
        assert gemini_array_text(chunks) == f"echo: I am {EMAIL}"
