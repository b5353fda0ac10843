# SPDX-License-Identifier: Apache-2.0
"""SSE fields the specification does not define never reach the client.

The specification reads ``data : {...}`` as a field named ``data `` and ``Data: {...}`` as
one named ``Data``, which clients ignore; so does the gateway's parser, which inspected such
a line alone, as a field line, and wrote it back. Readers that take a field's name trimmed
(``name.strip() == "data"``) or in any case read it as data: a chunk whose text no window
read, joined with the answer's. Such lines are dropped; the fields that matter (``event``,
``id``, ``retry``) and comments go on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.stream_fixtures import (
    EMAIL,
    INSPECT_REDACTING,
    openai_chunk,
    read_sse,
    sse,
    streamed_through,
)

#: A window of 8 characters: the first frame releases all but its last 8.
CONFIG: dict[str, Any] = {
    **INSPECT_REDACTING,
    "streaming": {"requestMode": "inspect", "maxMatchBytes": 8},
}
REQUEST = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
LOCAL, DOMAIN = EMAIL.split("@")


def _lenient_reader(body: bytes) -> str:
    """The answer as a reader adds it up that reads every line whose field name is ``data``
    once trimmed, in any case."""
    text = ""
    for line in body.decode().split("\n"):
        name, colon, value = line.partition(":")
        if not colon or name.strip().lower() != "data" or value.strip() == "[DONE]":
            continue
        text += json.loads(value)["choices"][0]["delta"].get("content") or ""
    return text


def _through(tmp_path: Path, wire: str) -> tuple[bytes, dict[str, Any]]:
    return streamed_through(tmp_path, CONFIG, "/v1/chat/completions", REQUEST, wire)


def _around(field: str) -> str:
    """A stream whose second line is ``field`` followed by a chunk holding the domain of
    the address the first chunk starts."""
    odd = json.dumps(openai_chunk(f"@{DOMAIN}"))
    return (
        sse(openai_chunk(f"mail {LOCAL} thanks!"))
        + f"{field} {odd}\n\n"
        + sse(openai_chunk(" bye"))
        + "data: [DONE]\n\n"
    )


@pytest.mark.parametrize("name", ["data ", "Data", "DATA", "data\t"])
def test_a_field_named_like_data_is_not_sent(tmp_path: Path, name: str) -> None:
    # "mail jane.doe" leaves in the first frame, the window keeping " thanks!"; the field
    # line comes next, so a reader of it would join the domain to the name.
    body, event = _through(tmp_path, _around(f"{name}:"))
    assert EMAIL not in _lenient_reader(body)
    assert DOMAIN.encode() not in body
    assert _lenient_reader(body) == f"mail {LOCAL} thanks! bye"
    assert body.endswith(b"data: [DONE]\n\n")
    assert event["reason"] == "stream_inspected"


def test_the_defined_fields_and_comments_go_on(tmp_path: Path) -> None:
    wire = (
        ": keep-alive\n\n"
        + "retry: 3000\nid: 7\nevent: chunk\n"
        + sse(openai_chunk("hello"))
        + "Retry: 1\nid : 8\n"
        + sse(openai_chunk(" world"))
        + "data: [DONE]\n\n"
    )
    body, _event = _through(tmp_path, wire)
    frames = read_sse(body)
    # The second chunk's ``Retry`` and ``id `` are no fields; the held text's copy and
    # ``[DONE]`` have none either.
    assert [frame.meta for frame in frames] == [
        (": keep-alive",),
        ("retry: 3000", "id: 7", "event: chunk"),
        (),
        (),
        (),
    ]
    assert _lenient_reader(body) == "hello world"


def test_a_frame_of_undefined_fields_alone_sends_nothing(tmp_path: Path) -> None:
    wire = sse(openai_chunk("hello")) + "x-note: 1\nData :\n\n" + "data: [DONE]\n\n"
    body, _event = _through(tmp_path, wire)
    assert b"x-note" not in body
    assert b"\n\n\n" not in body
    assert _lenient_reader(body) == "hello"


def _colon_reader(body: bytes) -> str:
    """The answer as a reader adds it up that takes every line past its first colon for
    data (``line.slice(line.indexOf(':') + 1)``) and skips what does not parse."""
    text = ""
    for line in body.decode().split("\n"):
        value = line.partition(":")[2].strip()
        if not value or value == "[DONE]":
            continue
        try:
            chunk = json.loads(value)
        except ValueError:
            continue
        text += chunk["choices"][0]["delta"].get("content") or ""
    return text


@pytest.mark.parametrize("field", [":", "event:", "id:", "retry:"])
def test_a_field_line_holding_a_chunk_stops_the_stream(tmp_path: Path, field: str) -> None:
    body, event = _through(tmp_path, _around(field))
    assert EMAIL not in _colon_reader(body)
    assert DOMAIN.encode() not in body
    assert b"[DONE]" not in body
    assert event["reason"] == "stream_inspection_error"
