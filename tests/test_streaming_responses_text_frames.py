# SPDX-License-Identifier: Apache-2.0
"""Text frames of a Responses stream go through a window, as those of every other stream.

A Responses stream names its texts in its events (``response.output_text.delta`` and the
like) and has no delta text at one place of every frame; a frame whose data is not a JSON
object or array (a text frame) is still text a client reads: a reader that keeps data it
cannot parse yet and parses it joined with the next event's (a JSON document an upstream
cut across two events) reads the two as one. Such frames are windowed joined with each
other, so a value cut between two of them is found whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.stream_fixtures import (
    EMAIL,
    INSPECT_REDACTING,
    REDACTED,
    read_sse,
    sse,
    streamed_through,
)

REQUEST = {"model": "m", "input": "hi", "stream": True}


def _through(tmp_path: Path, wire: str) -> tuple[bytes, dict[str, Any]]:
    return streamed_through(tmp_path, INSPECT_REDACTING, "/v1/responses", REQUEST, wire)


def _buffering_reader(body: bytes) -> str:
    """The output text a reader adds up that keeps the data of an event it cannot parse
    and parses it joined with the next event's."""
    text = ""
    pending = ""
    for frame in read_sse(body):
        if frame.data is None:
            continue
        pending += frame.data
        try:
            event = json.loads(pending)
        except ValueError:
            continue
        pending = ""
        if event.get("type") == "response.output_text.delta":
            text += event["delta"]
    return text


def _created() -> str:
    response = {"id": "resp_1", "status": "in_progress", "output": []}
    return sse({"type": "response.created", "sequence_number": 0, "response": response})


def _completed() -> str:
    response = {"id": "resp_1", "status": "completed", "output": []}
    return sse({"type": "response.completed", "sequence_number": 9, "response": response})


def test_an_event_cut_across_two_text_frames_is_read_joined(tmp_path: Path) -> None:
    event = json.dumps({"type": "response.output_text.delta", "delta": f"mail {EMAIL} now"})
    cut = event.index(EMAIL) + EMAIL.index("@") + 1  # neither half is an address
    wire = _created() + sse(event[:cut]) + sse(event[cut:]) + _completed()
    body, audited = _through(tmp_path, wire)
    assert EMAIL.encode() not in body
    assert EMAIL not in _buffering_reader(body)
    assert REDACTED in "".join(frame.data or "" for frame in read_sse(body))
    assert audited["reason"] == "stream_inspected"
    assert audited["summary"]["byType"] == {"email": 1}


def test_a_value_cut_between_two_plain_text_frames_is_found(tmp_path: Path) -> None:
    wire = _created() + sse(f"mail {EMAIL[:9]}") + sse(f"{EMAIL[9:]} now") + _completed()
    body, _audited = _through(tmp_path, wire)
    texts = [frame.data for frame in read_sse(body) if frame.data and frame.data[0] != "{"]
    assert "".join(texts) == f"mail {REDACTED} now"
    assert len(texts) == 2  # each text frame keeps its own boundaries
    assert body.rstrip().endswith(b'"status":"completed","output":[]}}')
