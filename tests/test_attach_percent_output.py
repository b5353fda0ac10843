# SPDX-License-Identifier: Apache-2.0
"""Percent-encoded text goes upstream without a ``;base64,`` it did not have as written.

``data:text/plain,<address>%3Bbase64%2C<data>`` holds no ``;base64,`` as sent; decoded, it
does. Protected text is percent-encoded again, and written with ``;`` unescaped it would
give a reader that splits a data URL at ``;base64,`` a base64 reading of ``<data>`` (here a
card) that was never inspected. See ``docs/detection.md`` ("Text attachments").
"""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import unquote

import httpx

from tests.upstream_server import gateway_in_front

CARD = base64.b64encode(b"card 4111 1111 1111 1111").decode()


def test_a_redacted_percent_encoded_text_writes_no_base64_marker(tmp_path: Path) -> None:
    file_data = f"data:text/plain,jane.doe@example.com%3Bbase64%2C{CARD}"
    part = {"type": "file", "file": {"filename": "a.txt", "file_data": file_data}}
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": [part]}]}
    with gateway_in_front(tmp_path, {"target": {"type": "openai-compatible"}}) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
        assert response.status_code == 200
        sent = gateway.upstream.received[-1].json()["messages"][0]["content"][0]["file"]
        assert ";base64," not in sent["file_data"].lower()
        header, data = sent["file_data"].split(",", 1)
        assert header == "data:text/plain"
        assert unquote(data) == f"[REDACTED:email];base64,{CARD}"
