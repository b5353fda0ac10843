# SPDX-License-Identifier: Apache-2.0
"""Numbers that Python's JSON parser reads and JavaScript's and Go's do not write back.

Python reads ``NaN``, ``Infinity`` and a number too large for a double (``1e400``, which is
JSON and JavaScript reads as Infinity) into a float it writes back as ``NaN`` or
``Infinity``: no JSON to ``JSON.parse`` or Go's ``encoding/json``. A reader that skips a
frame it cannot parse (``try { JSON.parse(...) } catch { continue }``) then drops the answer
text the window released into that frame, and joins the text around it: the halves of a
value the window saw apart. A stream holding such a number stops (fail closed) instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.stream_fixtures import EMAIL, INSPECT_REDACTING, openai_chunk, sse
from tests.upstream_server import Reply, gateway_in_front

#: A window of 8 characters, so that which text each frame carries is easy to choose.
CONFIG: dict[str, Any] = {
    **INSPECT_REDACTING,
    "streaming": {"requestMode": "inspect", "maxMatchBytes": 8},
}
#: The answer: the address cut by a space the detector sees, which no client must lose.
ANSWER = "jane.doe @example.com and more"
STREAM_HEADERS = {"content-type": "text/event-stream"}
REQUEST = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def _strict(text: str) -> Any:
    """``JSON.parse``: no ``NaN``, no ``Infinity``."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _skipping_reader(body: bytes) -> str:
    """The answer as a reader that skips the frames it cannot parse adds it up."""
    text = ""
    for line in body.decode().split("\n"):
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        try:
            chunk = _strict(line[len("data: ") :])
        except ValueError:
            continue
        text += chunk["choices"][0]["delta"].get("content") or ""
    return text


def _odd_frame(content: str, number: str) -> str:
    """A chunk carrying ``content`` and a member whose value is ``number``, written as is."""
    frame = json.dumps(openai_chunk(content))
    return f'data: {frame[:-1]},"usage_ratio":{number}}}\n\n'


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity", "-Infinity"])
def test_a_frame_holding_a_number_javascript_cannot_read_back_stops_the_stream(
    tmp_path: Path, number: str
) -> None:
    # With a window of 8, the first frame releases "jane.doe" and the odd one the space.
    wire = (
        sse(openai_chunk(ANSWER[:16]))
        + _odd_frame(ANSWER[16], number)
        + sse(openai_chunk(ANSWER[17:]))
        + "data: [DONE]\n\n"
    )
    with gateway_in_front(tmp_path, CONFIG) as gw:
        gw.upstream.queue(Reply(wire=[wire.encode()], headers=STREAM_HEADERS))
        response = httpx.post(f"{gw.url}/v1/chat/completions", json=REQUEST, timeout=30)
        (event,) = [e for e in gw.audit() if e["operation"].startswith("response-stream:")]
    assert EMAIL not in _skipping_reader(response.content)
    for line in response.text.split("\n"):
        if line.startswith("data: ") and line != "data: [DONE]":
            _strict(line[len("data: ") :])  # every frame sent is JSON to every parser
    assert b"[DONE]" not in response.content
    assert event["decision"] == "stream_blocked"
    assert event["reason"] == "stream_inspection_error"


def test_a_number_in_a_field_the_stream_empties_does_not_stop_it(tmp_path: Path) -> None:
    """Token log-probabilities are emptied in enforce mode: an infinite one (Python servers
    write ``-Infinity``) is never written back, and the stream goes on."""
    chunk = openai_chunk("hello")
    piece = {"token": "hello", "logprob": float("-inf"), "bytes": None, "top_logprobs": []}
    chunk["choices"][0]["logprobs"] = {"content": [piece]}
    wire = sse(chunk) + sse(openai_chunk(" world")) + "data: [DONE]\n\n"
    assert "-Infinity" in wire
    with gateway_in_front(tmp_path, CONFIG) as gw:
        gw.upstream.queue(Reply(wire=[wire.encode()], headers=STREAM_HEADERS))
        response = httpx.post(f"{gw.url}/v1/chat/completions", json=REQUEST, timeout=30)
    assert _skipping_reader(response.content) == "hello world"
    assert response.content.endswith(b"data: [DONE]\n\n")
