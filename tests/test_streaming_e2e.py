# SPDX-License-Identifier: Apache-2.0
"""Official SDK clients read inspected streams through the gateway.

The gateway runs on a real socket in front of the local upstream (``tests/upstream_server``)
with ``streaming.requestMode: inspect``; the ``openai``, ``anthropic`` and ``ollama`` clients
stream from it exactly as they would from the real services.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import ollama
import openai

from tests.upstream_server import Reply, gateway_in_front, split_text

EMAIL = "john.doe@example.com"
ANSWER = f"Sure: write to {EMAIL} and I will reply."
REDACTED_ANSWER = "Sure: write to [REDACTED:email] and I will reply."
INSPECT: dict[str, Any] = {"streaming": {"requestMode": "inspect"}}


def _stream_events(audit: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in audit if str(e.get("operation", "")).startswith("response-stream:")]


def test_openai_client_reads_a_redacted_well_formed_stream(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, INSPECT) as gateway:
        gateway.upstream.queue(Reply(text=ANSWER, chunks=split_text(ANSWER, 3)))
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-test", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == REDACTED_ANSWER
        assert "stop" in [c.choices[0].finish_reason for c in chunks if c.choices]
        (event,) = _stream_events(gateway.audit())
        assert event["decision"] == "stream_inspected"
        assert EMAIL not in gateway.audit_text()


def test_openai_client_sees_a_truncated_stream_on_a_block(tmp_path: Path) -> None:
    answer = "Your card is 4111 1111 1111 1111, keep it safe. " + "More text. " * 40
    with gateway_in_front(tmp_path, INSPECT) as gateway:
        gateway.upstream.queue(Reply(text=answer, chunks=split_text(answer, 5)))
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-test", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "4111" not in text
        assert "More text" not in text
        (event,) = _stream_events(gateway.audit())
        assert event["decision"] == "stream_blocked"
        assert event["summary"]["byType"] == {"card": 1}


def test_openai_stream_restores_the_requests_own_tokens(tmp_path: Path) -> None:
    config = {
        **INSPECT,
        "policy": {"mode": "enforce", "actions": {"email": "tokenize"}},
        "tokenVault": {"detokenizeResponses": True},
    }
    with gateway_in_front(tmp_path, config) as gateway:
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-test", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"mail {EMAIL}"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        received = gateway.upstream.last.json()["messages"][0]["content"]
        assert EMAIL not in received
        assert "[TOKEN:tok_email_" in received
        # The upstream echoes the marker in four-character pieces; the client gets its value.
        assert text == f"echo: mail {EMAIL}"


def test_anthropic_client_streams_redacted_text_and_a_complete_message(tmp_path: Path) -> None:
    config = {**INSPECT, "target": {"type": "anthropic"}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(text=ANSWER, chunks=split_text(ANSWER, 2)))
        client = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-test", max_retries=0)
        with client.messages.stream(
            model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == REDACTED_ANSWER
        assert final.content[0].type == "text"
        assert final.content[0].text == REDACTED_ANSWER
        assert final.stop_reason == "end_turn"


def test_ollama_client_streams_redacted_text_ending_with_done(tmp_path: Path) -> None:
    config = {**INSPECT, "target": {"type": "ollama"}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(text=ANSWER, chunks=split_text(ANSWER, 1)))
        client = ollama.Client(host=gateway.url)
        parts = list(
            client.chat(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
        )
        assert "".join(part.message.content or "" for part in parts) == REDACTED_ANSWER
        assert [part.done for part in parts].count(True) == 1
        assert parts[-1].done is True
        assert parts[-1].done_reason == "stop"


def test_gemini_crlf_stream_is_inspected_through_the_gateway(tmp_path: Path) -> None:
    config = {**INSPECT, "target": {"type": "gemini"}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(text=ANSWER, chunks=split_text(ANSWER, 4)))
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            response = client.post("/v1beta/models/g:streamGenerateContent?alt=sse", json=body)
        assert response.status_code == 200
        assert b"\r" not in response.content
        texts = [
            json.loads(line[len("data: ") :])["candidates"][0]["content"]["parts"][0]["text"]
            for line in response.text.split("\n")
            if line.startswith("data: ")
        ]
        assert "".join(texts) == REDACTED_ANSWER


def test_a_client_that_goes_away_mid_stream_still_leaves_one_audit_event(tmp_path: Path) -> None:
    pieces = [f"piece {i} " for i in range(100)]
    with gateway_in_front(tmp_path, INSPECT) as gateway:
        gateway.upstream.queue(Reply(text="".join(pieces), chunks=pieces, chunk_delay=0.01))
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        with (
            httpx.Client(base_url=gateway.url, timeout=30) as client,
            client.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            assert response.status_code == 200
            next(response.iter_bytes())
        deadline = time.monotonic() + 10
        while not _stream_events(gateway.audit()) and time.monotonic() < deadline:
            time.sleep(0.05)
        (event,) = _stream_events(gateway.audit())
        assert event["reason"] == "stream_closed_early"
        assert event["decision"] == "stream_inspected"
