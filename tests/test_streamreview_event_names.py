# SPDX-License-Identifier: Apache-2.0
"""A chat stream whose frame is named as an event the openai SDK reads apart.

The openai SDK hands a frame whose ``event:`` line starts with ``thread.`` (the Assistants
API's events) on as ``{"event": ..., "data": ...}``: to its caller the chunk has no
``choices``, and the usual loop (which skips a chunk without choices, as it must for the
usage chunk) drops the text in it. The window releases its text a window behind, into
whatever frame is being sent: an upstream that names the frame carrying a separator so
gets the halves of an address, which the window saw apart, joined by that loop.
"""

from __future__ import annotations

from pathlib import Path

import openai

from tests.stream_fixtures import EMAIL, INSPECT_REDACTING, openai_chunk, sse
from tests.upstream_server import Reply, gateway_in_front

WINDOW = 32
#: The first frame fills the window; every one-character frame after it then releases one
#: character, the one ``WINDOW`` characters behind it.
PADDING = "the cat sat on the mat, then ran"
LOCAL, DOMAIN = EMAIL.split("@")
TEXT = f"{LOCAL}|@{DOMAIN} and a few more words after it"
#: The frame (of those carrying ``TEXT`` a character each) the separator is released into.
SEPARATOR_FRAME = WINDOW + len(LOCAL)


def _wire() -> str:
    frames = [sse(openai_chunk(PADDING))]
    for at, character in enumerate(TEXT):
        event = "thread.message.delta" if at == SEPARATOR_FRAME else None
        frames.append(sse(openai_chunk(character), event=event))
    return "".join(frames) + sse(openai_chunk(finish="stop")) + sse("[DONE]")


def test_a_frame_named_as_a_thread_event_stops_the_stream(tmp_path: Path) -> None:
    assert len(PADDING) == WINDOW
    config = {**INSPECT_REDACTING, "streaming": {"requestMode": "inspect", "maxMatchBytes": WINDOW}}
    with gateway_in_front(tmp_path, config) as gw:
        gw.upstream.queue(Reply(wire=[_wire().encode()]))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = ""
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
        (event,) = [e for e in gw.audit() if e["operation"].startswith("response-stream:")]
    assert EMAIL not in text
    assert text == PADDING + LOCAL
    assert (event["decision"], event["reason"]) == ("stream_blocked", "stream_inspection_error")
