# SPDX-License-Identifier: Apache-2.0
"""The text an opening event carries (an Anthropic ``content_block_start``, a Responses
``content_part.added``) sent as a number or a list stops the stream.

The SDKs start a block's or a part's text with what its opening event holds and add the
deltas that follow to it; a JavaScript client adds them as what the first value spells, so
``41111111`` followed by ``"11111111"`` is a card number no window saw joined.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.stream_fixtures import sse, streamed_through

CARD = "4111111111111111"
FIRST, REST = int(CARD[:8]), CARD[8:]
#: One request for both APIs: Anthropic reads ``messages``, the Responses API ``input``.
REQUEST = {
    "model": "m",
    "max_tokens": 9,
    "input": "hi",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
}
INSPECT: dict[str, Any] = {
    "streaming": {"requestMode": "inspect"},
    "responseProtection": {"enabled": True},
}


def _event(kind: str, **data: Any) -> str:
    return sse({"type": kind, **data}, event=kind)


def _anthropic(opening: Any) -> str:
    message = {"id": "m", "type": "message", "role": "assistant", "content": []}
    delta = {"type": "text_delta", "text": REST}
    return (
        _event("message_start", message=message)
        + _event("content_block_start", index=0, content_block={"type": "text", "text": opening})
        + _event("content_block_delta", index=0, delta=delta)
        + _event("content_block_stop", index=0)
        + _event("message_stop")
    )


def _responses(opening: Any) -> str:
    place = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": opening, "annotations": []}
    return (
        _event("response.content_part.added", sequence_number=1, part=part, **place)
        + _event("response.output_text.delta", sequence_number=2, delta=REST, **place)
        + _event("response.completed", sequence_number=3, response={"id": "r", "output": []})
    )


CASES = [
    pytest.param("anthropic", "/v1/messages", _anthropic, id="anthropic"),
    pytest.param("openai-compatible", "/v1/responses", _responses, id="responses"),
]


@pytest.mark.parametrize("opening", [FIRST, [FIRST]], ids=["number", "list"])
@pytest.mark.parametrize(("target", "path", "stream"), CASES)
def test_an_opening_text_that_is_no_string_stops_the_stream(
    tmp_path: Path, target: str, path: str, stream: Any, opening: Any
) -> None:
    config = {**INSPECT, "target": {"type": target}}
    body, event = streamed_through(tmp_path, config, path, REQUEST, stream(opening))
    assert REST.encode() not in body
    assert event["decision"] == "stream_blocked"
    assert event["reason"] == "stream_inspection_error"


@pytest.mark.parametrize(("target", "path", "stream"), CASES)
def test_an_opening_text_that_is_a_string_is_joined_with_its_deltas(
    tmp_path: Path, target: str, path: str, stream: Any
) -> None:
    config = {**INSPECT, "target": {"type": target}}
    body, event = streamed_through(tmp_path, config, path, REQUEST, stream(CARD[:8]))
    assert CARD[:8].encode() not in body
    assert REST.encode() not in body
    assert event["decision"] == "stream_blocked"
    assert event["summary"]["byType"] == {"card": 1}
