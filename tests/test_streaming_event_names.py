# SPDX-License-Identifier: Apache-2.0
"""Anthropic streams name each frame twice, in its ``event:`` line and in its JSON ``type``,
and clients read one or the other: the anthropic SDK skips a frame whose event is missing or
``ping`` (and older SDKs and JavaScript clients dispatch on the event name), while other
clients read the ``type``. A frame the two readings disagree on would let text the window
released into it reach one client and not the other: a separator between the halves of a
value, dropped, joins them. Such a frame stops the stream, and so does text in a frame, or
a delta, of a type clients read no text from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.stream_fixtures import EMAIL, INSPECT_REDACTING, anthropic_message, sse
from tests.upstream_server import Gateway, Reply, gateway_in_front

#: A window small enough that a short text shows where released text is written.
WINDOW = 32
CONFIG = {
    **INSPECT_REDACTING,
    "target": {"type": "anthropic"},
    "streaming": {"requestMode": "inspect", "maxMatchBytes": WINDOW},
}
#: Read by the window with the separator, an address to none of the detectors; read without
#: it, an address.
TEXT = "Here is the contact: jane.doe@|example.com, as you asked. Anything else I can do today?"
SEPARATOR = TEXT.index("|")


def _named(data: dict[str, Any]) -> str:
    """A frame as the API sends it: its event line names its type."""
    return sse(data, event=data["type"])


def _event(kind: str, **data: Any) -> str:
    return _named({"type": kind, **data})


def _stream(odd: Callable[[dict[str, Any]], str]) -> str:
    """``TEXT``, one character per ``content_block_delta``, the one whose frame the window
    releases the separator into written by ``odd`` (the window releases a character
    ``WINDOW`` frames after it arrived)."""
    frames = [
        _event("message_start", message=anthropic_message()),
        _event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
    ]
    assert len(TEXT) > SEPARATOR + WINDOW
    for at, character in enumerate(TEXT):
        data = {"type": "content_block_delta", "index": 0}
        data["delta"] = {"type": "text_delta", "text": character}
        frames.append((odd if at == SEPARATOR + WINDOW else _named)(data))
    return "".join(
        [
            *frames,
            _event("content_block_stop", index=0),
            _event("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 9}),
            _event("message_stop"),
        ]
    )


def _read(gw: Gateway, wire: str) -> str:
    """The text the anthropic SDK's ``text_stream`` reads, up to where the stream ended."""
    gw.upstream.queue(Reply(wire=[wire.encode()]))
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    text = ""
    try:
        with client.messages.stream(
            model="claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            for piece in stream.text_stream:
                text += piece
    except (anthropic.APIError, RuntimeError):
        pass  # a stopped stream ends without its message_stop
    return text


def _reason(gw: Gateway) -> str:
    (event,) = [e for e in gw.audit() if str(e.get("operation", "")).startswith("response-stream:")]
    return str(event["reason"])


def _untyped(data: dict[str, Any]) -> str:
    """Named, without a ``type``: the Python SDK takes the event name for it, JavaScript
    clients and loops reading the ``type`` skip the frame."""
    return sse({key: value for key, value in data.items() if key != "type"}, event=data["type"])


#: Frames the two readings disagree on: without an event line, named ``ping``, named another
#: data event, and named without a type.
ODD: dict[str, Callable[[dict[str, Any]], str]] = {
    "no event line": sse,
    "ping": lambda data: sse(data, event="ping"),
    "another event": lambda data: sse(data, event="message_delta"),
    "no type": _untyped,
}


def test_a_usual_stream_with_pings_is_read_as_sent(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, CONFIG) as gw:
        text = _read(gw, _stream(lambda data: _event("ping") + _named(data)))
        reason = _reason(gw)
    assert text == TEXT
    assert reason == "stream_inspected"


def _delta(**fields: Any) -> Callable[[dict[str, Any]], str]:
    """The frame with ``fields`` written over its delta (its character kept in ``text``)."""
    return lambda data: _named({**data, "delta": {**data["delta"], **fields}})


def _retyped(kind: str, **fields: Any) -> Callable[[dict[str, Any]], str]:
    """The frame as another kind of event (with ``fields``), named by it, its delta (and
    text) kept."""
    return lambda data: _named({**data, "type": kind, **fields})


#: Frames holding text at a place the window reads where clients do not read it: text in a
#: delta of another type (the SDK reads a thinking or signature delta's own field only), in
#: a frame of another type (a ``message_delta``, a ``ping``: the SDK skips pings), and a
#: text delta also holding the field another kind of delta is read from.
UNREAD: dict[str, Callable[[dict[str, Any]], str]] = {
    "text in a thinking delta": _delta(type="thinking_delta", thinking=""),
    "text in a signature delta": _delta(type="signature_delta", signature="c2ln"),
    "text in a message_delta": _retyped("message_delta", usage={"output_tokens": 1}),
    "text in a ping": _retyped("ping"),
    "thinking in a text delta": _delta(thinking="x"),
    "tool input in a text delta": _delta(partial_json="{"),
}


@pytest.mark.parametrize("odd", [*ODD.values(), *UNREAD.values()], ids=[*ODD, *UNREAD])
def test_a_frame_clients_read_apart_stops_the_stream(
    tmp_path: Path, odd: Callable[[dict[str, Any]], str]
) -> None:
    """A frame whose event line does not name its type, or text where clients do not read
    it: released text written there would be dropped by the SDK, which would join the text
    around it; held back for a frame of its own kind, it would reach other clients out of
    place. The API names every frame by its type, and sends text only in a text, thinking
    or tool-input delta."""
    with gateway_in_front(tmp_path, CONFIG) as gw:
        text = _read(gw, _stream(odd))
        reason = _reason(gw)
    assert EMAIL not in text
    assert reason == "stream_inspection_error"


def test_a_usual_stream_of_every_kind_of_block_is_read_as_sent(tmp_path: Path) -> None:
    """Thinking with its signature, text, and a tool call's input, as the API sends them."""
    thinking = {"type": "thinking", "thinking": "", "signature": ""}
    tool = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
    deltas: list[tuple[int, dict[str, Any]]] = [
        (0, {"type": "thinking_delta", "thinking": "Let me look "}),
        (0, {"type": "thinking_delta", "thinking": "it up."}),
        (0, {"type": "signature_delta", "signature": "c2lnbmF0dXJl"}),
        (1, {"type": "text_delta", "text": "Looking "}),
        (1, {"type": "text_delta", "text": "it up."}),
        (2, {"type": "input_json_delta", "partial_json": '{"q": '}),
        (2, {"type": "input_json_delta", "partial_json": '"weather"}'}),
    ]
    blocks = [thinking, {"type": "text", "text": ""}, tool]
    frames = [_event("message_start", message=anthropic_message())]
    for index, block in enumerate(blocks):
        frames.append(_event("content_block_start", index=index, content_block=block))
        frames += [
            _event("content_block_delta", index=index, delta=d) for i, d in deltas if i == index
        ]
        frames.append(_event("content_block_stop", index=index))
    frames += [
        _event("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 9}),
        _event("message_stop"),
    ]
    with gateway_in_front(tmp_path, CONFIG) as gw:
        gw.upstream.queue(Reply(wire=["".join(frames).encode()]))
        client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
        with client.messages.stream(
            model="claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            final = stream.get_final_message()
        reason = _reason(gw)
    assert reason == "stream_inspected"
    assert [block.model_dump(exclude_none=True) for block in final.content] == [
        {"type": "thinking", "thinking": "Let me look it up.", "signature": "c2lnbmF0dXJl"},
        {"type": "text", "text": "Looking it up."},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "weather"}},
    ]


# -- the legacy Text Completions stream (/v1/complete) ------------------------------------------


def _completion(character: str) -> dict[str, Any]:
    return {"type": "completion", "completion": character, "stop_reason": None, "model": "claude"}


def _completions_stream(odd: Callable[[dict[str, Any]], str]) -> str:
    """``TEXT`` as a Text Completions stream, one character per ``completion`` event, the
    one whose frame the window releases the separator into written by ``odd``."""
    frames = [
        (odd if at == SEPARATOR + WINDOW else _named)(_completion(character))
        for at, character in enumerate(TEXT)
    ]
    frames.append(_named({**_completion(""), "stop_reason": "stop_sequence"}))
    return "".join(frames)


def _read_completions(gw: Gateway, wire: str) -> str:
    """The text the anthropic SDK's stream class reads from ``/v1/complete`` (which skips
    an event named ``ping``, or not named), up to where the stream ended."""
    gw.upstream.queue(Reply(body=wire.encode(), headers={"content-type": "text/event-stream"}))
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    body = {"model": "claude", "prompt": "\n\nHuman: hi\n\nAssistant:", "stream": True}
    body["max_tokens_to_sample"] = 10
    stream = client.post(
        "/v1/complete", body=body, cast_to=object, stream=True, stream_cls=anthropic.Stream[Any]
    )
    text = ""
    try:
        for chunk in stream:
            text += chunk["completion"]
    except anthropic.APIError:
        pass
    return text


def test_a_usual_completions_stream_with_pings_is_read_as_sent(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, CONFIG) as gw:
        text = _read_completions(
            gw, _completions_stream(lambda data: _event("ping") + _named(data))
        )
        reason = _reason(gw)
    assert text == TEXT
    assert reason == "stream_inspected"


#: Completion frames the SDK skips, and text the window would read where the SDK reads none.
ODD_COMPLETIONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "no event line": sse,
    "ping": lambda data: sse(data, event="ping"),
    "no type": _untyped,
    "text in a ping": _retyped("ping"),
}


@pytest.mark.parametrize("odd", ODD_COMPLETIONS.values(), ids=ODD_COMPLETIONS)
def test_a_completions_frame_clients_read_apart_stops_the_stream(
    tmp_path: Path, odd: Callable[[dict[str, Any]], str]
) -> None:
    """The separator released into a frame the SDK skips would join the halves of the
    address for it; the stream stops there instead."""
    with gateway_in_front(tmp_path, CONFIG) as gw:
        text = _read_completions(gw, _completions_stream(odd))
        reason = _reason(gw)
    assert EMAIL not in text
    assert reason == "stream_inspection_error"
