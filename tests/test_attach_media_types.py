# SPDX-License-Identifier: Apache-2.0
"""The media types of text files the providers read as text are text attachments.

OpenAI's file inputs take a ``.ts`` file as ``application/typescript`` and give the model
its text: such an attachment is decoded and protected like any other. See
``docs/detection.md`` ("Text attachments").
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from haechi.attachments import parse_media_type
from tests.upstream_server import gateway_in_front

SOURCE = 'const owner = "jane.doe@example.com";\n'


@pytest.mark.parametrize("declared", ["application/typescript", "Application/TypeScript"])
def test_typescript_is_text(declared: str) -> None:
    assert parse_media_type(declared).is_text


def test_a_typescript_input_file_goes_upstream_protected(tmp_path: Path) -> None:
    data = base64.b64encode(SOURCE.encode()).decode()
    part = {
        "type": "input_file",
        "filename": "owner.ts",
        "file_data": f"data:application/typescript;base64,{data}",
    }
    body = {"model": "gpt-4o", "input": [{"role": "user", "content": [part]}]}
    with gateway_in_front(tmp_path, {"target": {"type": "openai-compatible"}}) as gateway:
        response = httpx.post(f"{gateway.url}/v1/responses", json=body)
        assert response.status_code == 200
        sent = gateway.upstream.received[-1].json()["input"][0]["content"][0]["file_data"]
        header, encoded = sent.split(",", 1)
        assert header == "data:application/typescript;base64"
        text = base64.b64decode(encoded, validate=True).decode()
        assert text == 'const owner = "[REDACTED:email]";\n'
