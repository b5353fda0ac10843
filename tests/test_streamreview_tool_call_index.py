# SPDX-License-Identifier: Apache-2.0
"""A chat stream whose tool-call pieces carry an ``index`` in some frames and none in others.

The gateway names a piece without an index by its position in the frame's list, which
the usual loop over ``delta.tool_calls`` reads it at; clients that add tool calls up keyed
by ``index`` (openai-node's accumulator, a dict keyed by ``tool_call.index``) put it apart,
under ``undefined`` or ``None``. The window releases its text a window behind, into
whatever frame is being sent: a separator released into the piece without an index is
missing from the arguments such a client adds up under index 0, which joins the halves
of an address the window saw apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.stream_fixtures import EMAIL, INSPECT_REDACTING, openai_chunk, read_sse, sse
from tests.upstream_server import Reply, gateway_in_front

WINDOW = 32
#: The first piece fills the window; every one-character piece after it then releases one
#: character, the one ``WINDOW`` characters behind it.
PADDING = '{"to": "the cat sat on the mat",'
LOCAL, DOMAIN = EMAIL.split("@")
TEXT = f'"cc": "{LOCAL}|@{DOMAIN}", "note": "and a few more words"}}'
#: The piece (of those carrying ``TEXT`` a character each) the separator is released into.
SEPARATOR_PIECE = WINDOW + TEXT.index("|")


def _calls(*calls: dict[str, Any], finish: str | None = None) -> str:
    chunk = openai_chunk(finish=finish)
    chunk["choices"][0]["delta"] = {"tool_calls": list(calls)} if calls else {}
    return sse(chunk)


def _wire() -> str:
    opening = {"index": 0, "id": "call_1", "type": "function"}
    frames = [_calls({**opening, "function": {"name": "send", "arguments": PADDING}})]
    for at, character in enumerate(TEXT):
        piece: dict[str, Any] = {"function": {"arguments": character}}
        frames.append(_calls(piece if at == SEPARATOR_PIECE else {"index": 0, **piece}))
    return "".join(frames) + _calls(finish="tool_calls") + sse("[DONE]")


def _by_index(body: bytes) -> dict[Any, str]:
    """The arguments a client keyed by ``index`` adds up, by index (``None``: none)."""
    arguments: dict[Any, str] = {}
    for frame in read_sse(body):
        if frame.data in (None, "[DONE]"):
            continue
        for call in json.loads(frame.data or "")["choices"][0]["delta"].get("tool_calls") or ():
            index = call.get("index")
            arguments[index] = arguments.get(index, "") + call["function"].get("arguments", "")
    return arguments


def test_a_tool_call_piece_without_the_index_the_others_carry_stops_the_stream(
    tmp_path: Path,
) -> None:
    assert len(PADDING) == WINDOW
    config = {**INSPECT_REDACTING, "streaming": {"requestMode": "inspect", "maxMatchBytes": WINDOW}}
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with gateway_in_front(tmp_path, config) as gw:
        gw.upstream.queue(Reply(wire=[_wire().encode()]))
        body = httpx.post(f"{gw.url}/v1/chat/completions", json=request, timeout=30).content
        (event,) = [e for e in gw.audit() if e["operation"].startswith("response-stream:")]
    assert not any(EMAIL in text for text in _by_index(body).values())
    assert (event["decision"], event["reason"]) == ("stream_blocked", "stream_inspection_error")
