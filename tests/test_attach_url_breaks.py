# SPDX-License-Identifier: Apache-2.0
"""Tabs and line breaks inside a data URL, read as the URL standard reads them.

The URL parser removes every tab and line break before reading a URL, so
``data:te<TAB>xt/plain;base<LF>64,...`` is a base64 text attachment to a reader following it
(a browser, Node's ``fetch``), and base64 cut into lines is one base64 text. Percent-encoded
data with a line break has two readings (readers such as Python's ``urllib`` keep it): it
cannot be inspected as every reader reads it, and blocks. See ``docs/detection.md`` ("Text
attachments").
"""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path

import httpx
import pytest

from haechi.attachments.codec import parse_data_url
from tests.upstream_server import gateway_in_front

EMAIL = "jane.doe@example.com"
NOTE = f"write to {EMAIL} today, " * 8
REDACTED = "write to [REDACTED:email] today, " * 8
DATA = base64.b64encode(NOTE.encode()).decode()
OPENAI = {"target": {"type": "openai-compatible"}}


def _chat(file_data: str) -> dict[str, object]:
    part = {"type": "file", "file": {"filename": "note.txt", "file_data": file_data}}
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": [part]}]}


@pytest.mark.parametrize(
    ("url", "media_type", "is_base64"),
    [
        ("data:te\txt/plain;base64,aGk=", "text/plain", True),
        ("data:text/plain;base\r\n64,aG\nk=", "text/plain", True),
        ("d\na\tta:application/json,{}", "application/json", False),
    ],
)
def test_tabs_and_line_breaks_are_removed_before_reading(
    url: str, media_type: str, is_base64: bool
) -> None:
    parsed = parse_data_url(url)
    assert parsed is not None
    assert (parsed.media_type, parsed.base64, parsed.stripped) == (media_type, is_base64, True)


@pytest.mark.parametrize(
    "file_data",
    [
        f"data:te\txt/plain;base64,{DATA}",
        f"data:text/plain;base\n64,{DATA}",
        "d\tata:text/plain;base64," + "\n".join(textwrap.wrap(DATA, 76)),
    ],
    ids=["tab-in-type", "break-in-marker", "base64-in-lines"],
)
def test_a_text_data_url_with_breaks_goes_upstream_protected(
    tmp_path: Path, file_data: str
) -> None:
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=_chat(file_data))
        assert response.status_code == 200
        sent = gateway.upstream.received[-1].json()["messages"][0]["content"][0]["file"]
        header, data = sent["file_data"].split(",", 1)
        assert header == "data:text/plain;base64"
        assert base64.b64decode(data, validate=True).decode() == REDACTED


def test_percent_encoded_text_with_a_line_break_is_refused(tmp_path: Path) -> None:
    """``4111111111111111<LF>2`` is a card where the line break is kept and seventeen digits
    where it is removed."""
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        body = _chat("data:text/plain,card%204111111111111111\n2")
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
        assert response.status_code == 403
        assert response.json()["summary"]["byType"] == {"undecodable_attachment": 1}
        assert gateway.upstream.received == []
        (record,) = [record for record in gateway.audit() if "detections" in record]
        assert [d["ruleId"] for d in record["detections"]] == ["attachment-ambiguous-line-breaks"]


@pytest.mark.parametrize("after", ["\x0c", " \x0c ", "  "])
def test_white_space_after_the_base64_marker_keeps_it(after: str, tmp_path: Path) -> None:
    """The data URL processor strips ASCII white space, a form feed too, from the end of the
    media type before it looks for ``;base64``."""
    parsed = parse_data_url(f"data:text/plain;base64{after},aGk=")
    assert parsed is not None
    assert (parsed.media_type, parsed.base64) == ("text/plain", True)
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        body = _chat(f"data:text/plain;base64{after},{DATA}")
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
        assert response.status_code == 200
        sent = gateway.upstream.received[-1].json()["messages"][0]["content"][0]["file"]
        header, data = sent["file_data"].split(",", 1)
        assert header == f"data:text/plain;base64{after}"
        assert base64.b64decode(data, validate=True).decode() == REDACTED
