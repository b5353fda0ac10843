# SPDX-License-Identifier: Apache-2.0
"""Streaming decisions at the gateway (§13.6): block, inspect, pass-through, disconnects."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.upstream_server import Reply, gateway_in_front

EMAIL = "jane.doe@example.com"


def chat(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


def test_streaming_is_refused_by_default(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(stream=True))
        assert response.status_code == 501
        assert response.json()["error"] == "haechi_streaming_unsupported"
        assert gateway.upstream.received == []
        assert 'decision="streaming_blocked"' in gateway.metrics('decision="streaming_blocked"')


def test_inspect_needs_a_stream_format(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"streaming": {"requestMode": "inspect"}}) as gateway:
        response = httpx.post(
            f"{gateway.url}/v1/embeddings", json={"model": "e", "input": "x", "stream": True}
        )
        assert response.status_code == 501
        assert response.json()["error"] == "haechi_streaming_uninspectable_route"
        assert gateway.upstream.received == []


def test_inspect_protects_a_plain_error_answer_to_a_stream_request(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"streaming": {"requestMode": "inspect"}}) as gateway:
        error = {"error": {"message": f"bad request from {EMAIL}"}}
        gateway.upstream.queue(Reply(body=json.dumps(error).encode(), status=400))
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(stream=True))
        assert response.status_code == 400
        assert EMAIL not in response.text


PASS_THROUGH = {"streaming": {"requestMode": "pass-through"}}


def test_pass_through_still_protects_the_request_body(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, PASS_THROUGH) as gateway:
        gateway.upstream.queue(Reply(text=f"raw {EMAIL}"))
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions", json=chat(f"mail {EMAIL}", stream=True)
        )
        assert response.status_code == 200
        assert EMAIL not in gateway.upstream.last.text
        # The streamed answer itself is relayed uninspected (that is what pass-through means).
        assert EMAIL in "".join(response.text.split("\n")) or "raw" in response.text
        decisions = [r.get("decision") for r in gateway.audit()]
        assert "streaming_request_pass_through" in decisions


def test_pass_through_stream_is_cut_at_the_size_cap(tmp_path: Path) -> None:
    config = {**PASS_THROUGH, "responseProtection": {"maxBytes": 2000}}
    endless = (b"data: " + b"x" * 100 + b"\n\n" for _ in range(1000))
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(wire=endless))
        received: list[bytes] = []

        def read() -> None:
            with httpx.stream(
                "POST", f"{gateway.url}/v1/chat/completions", json=chat(stream=True)
            ) as response:
                received.extend(response.iter_raw())

        with pytest.raises(httpx.RemoteProtocolError):
            read()
        assert len(b"".join(received)) <= 2000 + 200
        assert "haechi_response_stream_truncated_total 1.0" in gateway.metrics(
            "haechi_response_stream_truncated_total 1.0"
        )


def test_client_disconnect_cancels_the_upstream_stream(tmp_path: Path) -> None:
    pulled: list[int] = []

    def slow() -> Iterator[bytes]:
        for number in range(150):
            pulled.append(number)
            yield b'data: {"choices": [{"index": 0, "delta": {"content": "tick "}}]}\n\n'

    config = {"streaming": {"requestMode": "inspect"}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(wire=slow(), chunk_delay=0.02))
        with httpx.stream(
            "POST", f"{gateway.url}/v1/chat/completions", json=chat(stream=True)
        ) as response:
            next(response.iter_raw())
        deadline = time.monotonic() + 3
        while gateway.app.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gateway.app.in_flight == 0
        events = [
            r for r in gateway.audit() if str(r.get("operation", "")).startswith("response-stream:")
        ]
        assert len(events) == 1
        assert len(pulled) < 150
