# SPDX-License-Identifier: Apache-2.0
"""Attachment members named in another letter case, as a case-insensitive decoder binds them.

Go's ``encoding/json`` binds ``"Media_Type"`` to a ``media_type`` field and ``"DATA"`` to
``data`` (the last of several spellings winning), so a Go proxy between the gateway and the
API sends such an attachment on under the names the API reads, and the model reads its text.
The gateway matches the names the same way. See ``docs/detection.md`` ("Text attachments").
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.upstream_server import gateway_in_front

DATA = base64.b64encode(b"mail jane.doe@example.com").decode()
REDACTED = b"mail [REDACTED:email]"


def document_request(source: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages request whose one content block is a document of ``source``."""
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": [{"type": "document", "source": source}]}],
    }


def sent_source(tmp_path: Path, source: dict[str, Any]) -> dict[str, Any]:
    """The document source the upstream got for ``source`` through an Anthropic gateway."""
    with gateway_in_front(tmp_path, {"target": {"type": "anthropic"}}) as gateway:
        response = httpx.post(f"{gateway.url}/v1/messages", json=document_request(source))
        assert response.status_code == 200
        block: dict[str, Any] = gateway.upstream.received[-1].json()["messages"][0]["content"][0]
        source_sent: dict[str, Any] = block["source"]
        return source_sent


@pytest.mark.parametrize(
    "source",
    [
        {"Type": "base64", "Media_Type": "text/plain", "Data": DATA},
        {"type": "base64", "MEDIA_TYPE": "text/plain", "data": DATA},
        # A dotless i folds to I as Go folds names.
        {"type": "base64", "med\u0131a_type": "text/plain", "data": DATA},
        # The last "type" a decoder binds says base64: ``data`` is base64, not text.
        {"type": "text", "TYPE": "base64", "media_type": "text/plain", "data": DATA},
    ],
    ids=["title-case", "upper-case", "dotless-i", "type-spelled-twice"],
)
def test_a_text_document_named_in_another_case_goes_upstream_protected(
    tmp_path: Path, source: dict[str, Any]
) -> None:
    sent = sent_source(tmp_path, source)
    (data_member,) = [name for name in sent if name.lower() == "data"]
    assert base64.b64decode(sent[data_member], validate=True) == REDACTED
