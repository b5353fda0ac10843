# SPDX-License-Identifier: Apache-2.0
"""The ``charset`` of an attachment declared as text, as every reader may read it.

Only UTF-8 is decoded; readers disagree on which of several ``charset`` parameters counts
(the WHATWG MIME parser and Python's ``email`` take the first), on a ``;`` inside a quoted
value and on RFC 2231's ``charset*``. UTF-7 text is ASCII, so it also reads as UTF-8, where
its ``+AEA-`` is not the ``@`` a UTF-7 reader sees: unless every reading names UTF-8, the
attachment cannot be inspected and blocks. See ``docs/detection.md`` ("Text attachments").
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from haechi.attachments import parse_media_type
from tests.upstream_server import gateway_in_front

#: "write to jane.doe@example.com" in UTF-7.
UTF7_NOTE = "write to jane.doe+AEA-example.com"
OTHER_CHARSET_READINGS = [
    "text/plain; charset=utf-7; charset=utf-8",
    'text/plain; charset=utf-7; name="x;charset=utf-8"',
    "text/plain; charset*=utf-8''utf-7",
    "text/plain; charset*0=utf; charset*1=-7",
    "text/plain, charset=utf-7",
]


def test_utf7_hides_an_address_from_a_utf8_reading() -> None:
    assert UTF7_NOTE.encode("ascii").decode("utf-7") == "write to jane.doe@example.com"


@pytest.mark.parametrize("declared", OTHER_CHARSET_READINGS)
def test_a_charset_some_reader_takes_for_another_is_not_utf8(declared: str) -> None:
    media = parse_media_type(declared)
    assert media.is_text
    assert not media.is_utf8


@pytest.mark.parametrize(
    "declared",
    ["text/plain", "text/plain; charset=UTF-8; charset=us-ascii", 'text/csv;charset="utf-8"'],
)
def test_utf8_in_every_reading_is_utf8(declared: str) -> None:
    assert parse_media_type(declared).is_utf8


@pytest.mark.parametrize("declared", OTHER_CHARSET_READINGS)
def test_an_attachment_another_reader_reads_as_utf7_is_refused(
    tmp_path: Path, declared: str
) -> None:
    data = base64.b64encode(UTF7_NOTE.encode("ascii")).decode()
    part = {"inlineData": {"mimeType": declared, "data": data}}
    body = {"contents": [{"role": "user", "parts": [part]}]}
    with gateway_in_front(tmp_path, {"target": {"type": "gemini"}}) as gateway:
        response = httpx.post(f"{gateway.url}/v1beta/models/gemini-pro:generateContent", json=body)
        assert response.status_code == 403
        assert response.json()["summary"]["byType"] == {"undecodable_attachment": 1}
        assert gateway.upstream.received == []
