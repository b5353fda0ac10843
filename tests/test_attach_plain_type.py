# SPDX-License-Identifier: Apache-2.0
"""Only Anthropic's plain-text source makes ``data`` text rather than base64.

``{"type": "text", "media_type": "text/plain", "data": "..."}`` is Anthropic's plain-text
document source, whose ``data`` is the text itself. Gemini's ``inlineData`` has no ``type``:
a reader that drops a member it does not know (a proxy decoding into its own structures)
decodes ``data`` as base64 whatever ``type`` says, so there it is an attachment. See
``docs/detection.md`` ("Text attachments").
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from tests.upstream_server import gateway_in_front

DATA = base64.b64encode(b"mail jane.doe@example.com").decode()
GEMINI_PATH = "/v1beta/models/gemini-pro:generateContent"


@pytest.mark.parametrize(
    ("part_name", "type_name"), [("inlineData", "mimeType"), ("inline_data", "mime_type")]
)
def test_a_type_of_text_beside_gemini_inline_data_does_not_hide_it(
    tmp_path: Path, part_name: str, type_name: str
) -> None:
    part = {part_name: {"type": "text", type_name: "text/plain", "data": DATA}}
    body = {"contents": [{"role": "user", "parts": [part]}]}
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}}) as gateway:
        response = httpx.post(f"{gateway.url}{GEMINI_PATH}", json=body)
        assert response.status_code == 200
        sent = gateway.upstream.received[-1].json()["contents"][0]["parts"][0][part_name]
        assert base64.b64decode(sent["data"], validate=True) == b"mail [REDACTED:email]"


def test_anthropic_plain_text_source_stays_text(tmp_path: Path) -> None:
    source = {"type": "text", "media_type": "text/plain", "data": "mail jane.doe@example.com"}
    block = {"type": "document", "source": source}
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": [block]}],
    }
    with gateway_in_front(tmp_path, {"target": {"type": "anthropic"}}) as gateway:
        response = httpx.post(f"{gateway.url}/v1/messages", json=body)
        assert response.status_code == 200
        sent = gateway.upstream.received[-1].json()["messages"][0]["content"][0]["source"]
        assert sent["data"] == "mail [REDACTED:email]"
