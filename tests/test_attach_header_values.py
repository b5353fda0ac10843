# SPDX-License-Identifier: Apache-2.0
"""A value written in a text data URL's header goes upstream protected, wherever it lies.

The header of a data URL is scanned with its text; its media type's parameters were the
only part rewritten, so an address written in the type itself (``data:text/<address>;...``)
was counted as redacted and forwarded as written. See ``docs/detection.md`` ("Text
attachments").
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from tests.upstream_server import gateway_in_front

EMAIL = "jane.doe@example.com"
DATA = base64.b64encode(b"hello").decode()


@pytest.mark.parametrize(
    ("file_data", "expected"),
    [
        (f"data:text/{EMAIL};base64,{DATA}", f"data:text/[REDACTED:email];base64,{DATA}"),
        (f"data:text/x-{EMAIL},hello", "data:text/[REDACTED:email],hello"),
        (
            f"data:text/plain;{EMAIL};base64,{DATA}",
            f"data:text/plain;[REDACTED:email];base64,{DATA}",
        ),
    ],
    ids=["in-the-type", "in-the-type-percent", "in-the-parameters"],
)
def test_an_address_in_the_header_does_not_reach_the_upstream(
    tmp_path: Path, file_data: str, expected: str
) -> None:
    part = {"type": "file", "file": {"filename": "a.txt", "file_data": file_data}}
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": [part]}]}
    with gateway_in_front(tmp_path, {"target": {"type": "openai-compatible"}}) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
        assert response.status_code == 200
        received = gateway.upstream.received[-1]
        assert EMAIL not in received.text
        assert received.json()["messages"][0]["content"][0]["file"]["file_data"] == expected
