# SPDX-License-Identifier: Apache-2.0
"""A text data URL that some readers take apart at a later ``;base64,``.

The URL standard ends a data URL's media type at its first comma, so
``data:text/plain,x;base64,<data>`` is percent-encoded text; a reader that splits the URL at
``;base64,`` instead (a common way of taking one apart) reads ``<data>`` as base64, which is
never inspected here. Such a data URL cannot be inspected as every reader reads it, and
blocks. See ``docs/detection.md`` ("Text attachments").
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from tests.upstream_server import gateway_in_front

DATA = base64.b64encode(b"mail jane.doe@example.com").decode()


@pytest.mark.parametrize(
    "file_data",
    [
        f"data:text/plain,x;base64,{DATA}",
        f"data:text/plain;x=,;BASE64,{DATA}",
        f"data:,;base64,{DATA}",
    ],
)
def test_a_base64_reading_after_the_first_comma_blocks(tmp_path: Path, file_data: str) -> None:
    part = {"type": "file", "file": {"filename": "a.txt", "file_data": file_data}}
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": [part]}]}
    with gateway_in_front(tmp_path, {"target": {"type": "openai-compatible"}}) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
        assert response.status_code == 403
        assert gateway.upstream.received == []
        (record,) = [record for record in gateway.audit() if "detections" in record]
        assert [d["ruleId"] for d in record["detections"]] == ["attachment-ambiguous-base64-marker"]


def test_text_that_merely_mentions_the_marker_in_a_message_is_text(tmp_path: Path) -> None:
    """In a message's text the string is read as written: scanned so, and forwarded."""
    content = "data:,what does ;base64, mean?"
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}
    with gateway_in_front(tmp_path, {"target": {"type": "openai-compatible"}}) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
        assert response.status_code == 200
        assert gateway.upstream.received[-1].json()["messages"][0]["content"] == content
