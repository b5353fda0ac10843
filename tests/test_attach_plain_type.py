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
from typing import Any

import httpx
import pytest

from tests.test_attach_member_case import document_request, sent_source
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
    assert sent_source(tmp_path, source)["data"] == "mail [REDACTED:email]"


def _anthropic_plain(data: str) -> dict[str, Any]:
    return document_request({"type": "text", "media_type": "text/plain", "data": data})


def test_a_data_url_as_plain_text_is_read_as_written(tmp_path: Path) -> None:
    """The plain-text source's ``data`` is what the model reads: a data URL there is read
    as written too (``%32`` hides the card from the decoded reading), and one that does not
    decode is text, not an attachment to refuse."""
    with gateway_in_front(tmp_path, {"target": {"type": "anthropic"}}) as gateway:
        url = f"{gateway.url}/v1/messages"
        response = httpx.post(url, json=_anthropic_plain("data:,4111111111111111%32"))
        assert response.status_code == 403
        assert response.json()["summary"]["byType"] == {"card": 1}
        assert gateway.upstream.received == []
        quoted = "data:text/plain;base64,!! is how it starts"
        assert httpx.post(url, json=_anthropic_plain(quoted)).status_code == 200
        sent = gateway.upstream.received[-1].json()["messages"][0]["content"][0]["source"]
        assert sent["data"] == quoted
