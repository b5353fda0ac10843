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


EMAIL = (
    "From: Jane Doe <jane.doe@example.com>\r\nTo: ops@example.org\r\n"
    "Subject: access\r\n\r\nplease add me\r\n"
)


@pytest.mark.parametrize("declared", ["message/rfc822", "Message/RFC822", "message/global"])
def test_an_email_message_is_text(declared: str) -> None:
    assert parse_media_type(declared).is_text


def _chat_file(file: dict[str, str]) -> dict[str, object]:
    part = {"type": "file", "file": file}
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": [part]}]}


@pytest.mark.parametrize(
    "file",
    [
        {"file_data": "data:message/rfc822;base64,{data}"},
        {"file_data": "{data}", "filename": "thread.eml"},
    ],
    ids=["data-url", "named-eml"],
)
def test_an_email_attachment_goes_upstream_protected(tmp_path: Path, file: dict[str, str]) -> None:
    data = base64.b64encode(EMAIL.encode()).decode()
    sent = {name: value.format(data=data) for name, value in file.items()}
    with gateway_in_front(tmp_path) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=_chat_file(sent))
        assert response.status_code == 200
        forwarded = gateway.upstream.received[-1].json()["messages"][0]["content"][0]["file"]
        encoded = forwarded["file_data"].rpartition(",")[2]
        text = base64.b64decode(encoded, validate=True).decode()
        assert "jane.doe@example.com" not in text
        assert "ops@example.org" not in text
        assert text.count("[REDACTED:email]") == 2
        assert text.startswith("From: Jane Doe <")


def test_an_email_attachment_that_is_not_utf8_blocks(tmp_path: Path) -> None:
    latin = base64.b64encode(("From: Jos\xe9 <jose@example.com>\r\n\r\nhola").encode("latin-1"))
    file = {"file_data": f"data:message/rfc822;base64,{latin.decode()}"}
    with gateway_in_front(tmp_path) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=_chat_file(file))
        assert response.status_code == 403
        assert not gateway.upstream.received
