# SPDX-License-Identifier: Apache-2.0
"""A streaming request answered with one JSON array of chunks, whatever the chunks hold.

The gateway reads such an answer as the frames of the route's stream, inspects them, then
reads the protected frames back into an array. A chunk that is no object (``null``, a
number, a string) is a frame like any other; whatever the inspector writes for it, the
client gets an inspected array or a refusal, never a 500.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.upstream_server import Gateway, Reply, gateway_in_front

EMAIL = "jane.doe@example.com"
ROUTES = [
    ("openai-compatible", "/v1/chat/completions"),
    ("gemini", "/v1beta/models/m:streamGenerateContent"),
    ("ollama", "/api/chat"),
    ("llama-cpp", "/completion"),
]
REQUEST = {
    "model": "m",
    "messages": [{"role": "user", "content": "hi"}],
    "contents": [{"parts": [{"text": "hi"}]}],
    "prompt": "hi",
    "stream": True,
}


def decisions(gateway: Gateway) -> list[tuple[str, str]]:
    return [(r["decision"], r["reason"]) for r in gateway.audit() if "decision" in r]


@pytest.mark.parametrize(("target", "path"), ROUTES)
@pytest.mark.parametrize("first", [None, 1, True])
@pytest.mark.parametrize("text", [EMAIL, f"mail {EMAIL}"])
def test_a_scalar_chunk_before_a_value_is_refused_not_a_500(
    tmp_path: Path, target: str, path: str, first: object, text: str
) -> None:
    config = {
        "responseProtection": {"enabled": True},
        "streaming": {"requestMode": "inspect"},
        "target": {"type": target},
    }
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(body=json.dumps([first, text]).encode()))
        response = httpx.post(f"{gateway.url}{path}", json=REQUEST, timeout=30)
        assert response.status_code in (200, 502)
        assert EMAIL not in response.text
        if response.status_code == 200:
            assert json.loads(response.text)[-1] == text.replace(EMAIL, "[REDACTED:email]")
        else:
            assert response.json()["error"] == "haechi_response_unprotected"
            assert decisions(gateway)[-1][0] == "response_unprotected_blocked"
