# SPDX-License-Identifier: Apache-2.0
"""A base64 data URL whose media type does not parse is text, as the URL standard reads it.

The data URL processor reads a media type its MIME parser refuses (``foo``, ``image png``)
as ``text/plain;charset=US-ASCII``, so ``data:foo;base64,<data>`` is a text attachment to
a reader following it. Prose that merely starts like a data URL stays prose. See
``docs/detection.md`` ("Text attachments").
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from haechi.attachments import parse_media_type
from tests.upstream_server import gateway_in_front

DATA = base64.b64encode(b"mail jane.doe@example.com").decode()
REDACTED = base64.b64encode(b"mail [REDACTED:email]").decode()
OPENAI = {"target": {"type": "openai-compatible"}}


@pytest.mark.parametrize(
    ("declared", "valid"),
    [("text/plain", True), ("image/svg+xml", True), ("foo", False), ("image png", False)],
)
def test_a_media_type_is_valid_when_its_type_and_subtype_are_tokens(
    declared: str, valid: bool
) -> None:
    assert parse_media_type(declared).is_valid is valid


@pytest.mark.parametrize("declared", ["foo", "image png", "x/"])
def test_a_base64_data_url_of_an_unparsable_type_goes_upstream_protected(
    tmp_path: Path, declared: str
) -> None:
    part = {
        "type": "file",
        "file": {"filename": "a", "file_data": f"data:{declared};base64,{DATA}"},
    }
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": [part]}]}
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
        assert response.status_code == 200
        sent = gateway.upstream.received[-1].json()["messages"][0]["content"][0]["file"]
        assert sent["file_data"] == f"data:{declared};base64,{REDACTED}"


def test_prose_starting_like_a_data_url_is_prose(tmp_path: Path) -> None:
    tool = {
        "type": "function",
        "function": {"name": "f", "description": "Data: the rows, one\nper line (%FF marks)"},
    }
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "tools": [tool]}
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
        assert response.status_code == 200
