# SPDX-License-Identifier: Apache-2.0
"""A data URL in a message's text is read both as the model reads it and decoded.

In a member whose text the model reads as written (a message's ``content``, a part's
``text``), a data URL that decodes is still text to the model: ``data:,4111111111111111%32``
shows it a card its decoded reading (seventeen digits) hides. Both readings are scanned. See
``docs/detection.md`` ("Text attachments").
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx

from tests.upstream_server import gateway_in_front

OPENAI = {"target": {"type": "openai-compatible"}}
#: A card as written; decoded, `%32` adds a seventeenth digit.
CARD_URL = "data:,4111111111111111%32"


def _chat(content: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}


def test_a_card_the_written_text_shows_blocks(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        body = _chat("data:,4111111111111111%32 is my card")
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
        assert response.status_code == 403
        assert response.json()["summary"]["byType"] == {"card": 1}
        assert gateway.upstream.received == []


def test_a_value_of_the_written_text_is_protected_in_it(tmp_path: Path) -> None:
    """Decoded, ``%33`` adds a digit to the phone number, which is then no phone number; as
    written it is one. The text is rewritten as written (where a value of one reading lies
    in the other is not known)."""
    part = {"type": "text", "text": "data:,call +1 415 555 0132%33"}
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=_chat([part]))
        assert response.status_code == 200
        sent = gateway.upstream.received[-1].json()["messages"][0]["content"][0]["text"]
        assert "415 555" not in sent
        assert sent.startswith("data:,call +1")
        assert sent.endswith("%33")


def test_a_base64_data_url_in_a_message_stays_a_data_url(tmp_path: Path) -> None:
    data = base64.b64encode(b"mail jane.doe@example.com").decode()
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        body = _chat(f"data:text/plain;base64,{data}")
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
        assert response.status_code == 200
        sent = gateway.upstream.received[-1].json()["messages"][0]["content"]
        header, encoded = sent.split(",", 1)
        assert header == "data:text/plain;base64"
        assert base64.b64decode(encoded, validate=True) == b"mail [REDACTED:email]"


def test_a_message_text_named_in_another_case_is_read_as_written(tmp_path: Path) -> None:
    """A case-insensitive decoder (Go's) binds ``"Content"`` to ``content``: the model reads
    the string as written there too."""
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "Content": "data:,4111111111111111%32"}],
    }
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
        assert response.status_code == 403
        assert response.json()["summary"]["byType"] == {"card": 1}
        assert gateway.upstream.received == []


def test_a_data_url_in_a_function_response_is_read_as_written(tmp_path: Path) -> None:
    """A function's response is JSON the model reads as written, whatever its fields are
    named: only members that readers fetch or decode as a file (``file_data``, ``url``...)
    are read decoded alone."""
    response_part = {"functionResponse": {"name": "lookup", "response": {"result": CARD_URL}}}
    body = {"contents": [{"role": "user", "parts": [response_part]}]}
    path = "/v1beta/models/gemini-pro:generateContent"
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}}) as gateway:
        response = httpx.post(f"{gateway.url}{path}", json=body)
        assert response.status_code == 403
        assert response.json()["summary"]["byType"] == {"card": 1}
        assert gateway.upstream.received == []
