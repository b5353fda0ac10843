# SPDX-License-Identifier: Apache-2.0
"""The openai SDK adds a chat stream up member by member (``accumulate_delta``): every string
of a choice's ``delta``, at any depth, is joined across chunks (a tool call's id and name, any
member a server adds), list elements merged by their ``index``, only ``index`` and ``type``
replaced. A value an upstream cuts across chunks in such a member looks clean in each chunk
and reaches the client whole; so each is inspected after what it delivered before, while a
usual stream, whose ids and names come whole in one chunk, reads as it was sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.stream_fixtures import EMAIL, INSPECT_REDACTING, REDACTED, openai_chunk, sse
from tests.upstream_server import Gateway, Reply, gateway_in_front

CARD = "4111111111111111"
KEY = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    frame = openai_chunk(finish=finish)
    frame["choices"][0]["delta"] = delta
    return sse(frame)


def _calls(*calls: dict[str, Any]) -> dict[str, Any]:
    return {"tool_calls": list(calls)}


def _opening(index: int, call_id: str, name: str) -> dict[str, Any]:
    """A tool call's first piece as servers send it: id, type and name whole."""
    function = {"name": name, "arguments": ""}
    return {"index": index, "id": call_id, "type": "function", "function": function}


def _arguments(index: int, piece: str) -> dict[str, Any]:
    return {"index": index, "function": {"arguments": piece}}


def _stream(*deltas: dict[str, Any], finish: str = "tool_calls") -> str:
    return "".join([*map(_chunk, deltas), _chunk({}, finish), sse("[DONE]")])


def _read(gw: Gateway, wire: str) -> tuple[str, str]:
    """What the SDK's stream accumulator (``chat.completions.stream``) read through the
    gateway, up to where the stream ended, as JSON; and why the gateway ended it."""
    gw.upstream.queue(Reply(wire=[wire.encode()]))
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
    with client.chat.completions.stream(
        model="m", messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        for _event in stream:
            pass
        read = stream.current_completion_snapshot.model_dump_json()
    (event,) = [e for e in gw.audit() if str(e.get("operation", "")).startswith("response-stream:")]
    return read, str(event["reason"])


#: Streams cutting a value between two chunks of a member no named text covers, and the
#: value.
CUT: dict[str, tuple[str, str]] = {
    "tool call name": (
        _stream(
            {"role": "assistant", **_calls(_opening(0, "call_1", "jane.doe@exa"))},
            _calls({"index": 0, "function": {"name": "mple.com"}}),
            _calls(_arguments(0, "{}")),
        ),
        EMAIL,
    ),
    "tool call id": (
        _stream(
            {"role": "assistant", **_calls(_opening(0, CARD[:8], "pay"))},
            _calls({**_arguments(0, ""), "id": CARD[8:]}),
            _calls(_arguments(0, "{}")),
        ),
        CARD,
    ),
    "a member servers do not send": (
        _stream(
            {"role": "assistant", "content": "", "note": KEY[:15]},
            {"note": KEY[15:]},
            finish="stop",
        ),
        KEY,
    ),
    "a member of a member": (
        _stream(
            {"role": "assistant", "content": "", "meta": {"by": "jane.doe@exa"}},
            {"meta": {"by": "mple.com"}},
            finish="stop",
        ),
        EMAIL,
    ),
    # The SDK merges list elements by their index, wherever they sit in the list.
    "a later tool call's id": (
        _stream(
            {"role": "assistant", **_calls(_opening(0, "call_0", "f"), _opening(1, CARD[:8], "g"))},
            _calls({**_arguments(1, ""), "id": CARD[8:]}),
            _calls(_arguments(0, "{}"), _arguments(1, "{}")),
        ),
        CARD,
    ),
}


@pytest.mark.parametrize(("wire", "value"), list(CUT.values()), ids=list(CUT))
def test_a_value_cut_across_chunks_of_a_delta_member_is_never_read(
    tmp_path: Path, wire: str, value: str
) -> None:
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        read, reason = _read(gw, wire)
    assert value not in read
    if value == EMAIL:
        assert REDACTED in read
        assert reason == "stream_inspected"
    else:
        assert reason == "stream_policy_block"


def test_a_role_that_is_no_role_stops_the_stream(tmp_path: Path) -> None:
    """The SDK joins a stream's roles too; a role is one of a few words, so any other string
    there stops the stream rather than be windowed (and held back) like the other members."""
    wire = _stream(
        {"role": "assistant", "content": ""},
        {"role": "jane.doe@exa"},
        {"role": "mple.com"},
        finish="stop",
    )
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        read, reason = _read(gw, wire)
    assert EMAIL not in read
    assert reason == "stream_inspection_error"


#: A usual stream: text, then two tool calls whose ids and names come whole in their first
#: chunk, arguments in pieces, and a usage chunk (no choices) at the end.
USUAL = "".join(
    [
        _chunk({"role": "assistant", "content": ""}),
        *(_chunk({"content": piece}) for piece in ("Let me ", "check ", "both.")),
        _chunk(_calls(_opening(0, "call_a1", "get_weather"))),
        *(_chunk(_calls(_arguments(0, piece))) for piece in ('{"city"', ': "Paris"}')),
        _chunk(_calls(_opening(1, "call_b2", "get_time"))),
        *(_chunk(_calls(_arguments(1, piece))) for piece in ('{"tz"', ': "CET"}')),
        _chunk({}, "tool_calls"),
        sse({**openai_chunk(), "choices": [], "usage": {"prompt_tokens": 5, "total_tokens": 9}}),
        sse("[DONE]"),
    ]
)


def _named_calls(url: str) -> list[tuple[Any, ...]]:
    """The chunks' tool-call pieces that carry an id or a name, as the SDK reads them."""
    client = openai.OpenAI(base_url=url, api_key="k", max_retries=0)
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    return [
        (call.index, call.id, call.function.name if call.function else None)
        for chunk in stream
        for choice in chunk.choices
        for call in choice.delta.tool_calls or ()
        if call.id or (call.function and call.function.name)
    ]


def test_a_usual_stream_reads_as_sent(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        read, reason = _read(gw, USUAL)
        gw.upstream.queue(Reply(wire=[USUAL.encode()]))
        named = _named_calls(f"{gw.url}/v1")
    assert reason == "stream_inspected"
    assert named == [(0, "call_a1", "get_weather"), (1, "call_b2", "get_time")]
    message = json.loads(read)["choices"][0]["message"]
    assert message["role"] == "assistant"
    assert message["content"] == "Let me check both."
    assert [
        (call["id"], call["function"]["name"], call["function"]["arguments"])
        for call in message["tool_calls"]
    ] == [
        ("call_a1", "get_weather", '{"city": "Paris"}'),
        ("call_b2", "get_time", '{"tz": "CET"}'),
    ]


def test_a_member_named_by_a_value_is_not_written_back_under_that_name(tmp_path: Path) -> None:
    """Protection redacts the name of the member too, so its text has no place to go back
    to: the stream stops rather than write it under the name it had."""
    wire = _stream({"role": "assistant", "content": ""}, {EMAIL: "hi"}, finish="stop")
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        read, reason = _read(gw, wire)
    assert EMAIL not in read
    assert reason == "stream_inspection_error"


def test_members_count_against_the_texts_a_stream_may_window(tmp_path: Path) -> None:
    members = {f"m{number}": "x" for number in range(70)}
    wire = _stream({"role": "assistant", "content": ""}, members, finish="stop")
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        read, reason = _read(gw, wire)
    assert '"m0"' not in read
    assert reason == "stream_inspection_error"


def test_a_tool_call_index_that_skips_ahead_stops_the_stream(tmp_path: Path) -> None:
    """A client that adds tool calls up by position (appending one whose ``index`` is past
    the end of its list, as the openai SDK's ``accumulate_delta`` does) puts a first call
    named 1 where a later piece named 0 is added, so halves the gateway would window apart
    by ``index`` are joined there: the stream stops before the second half."""
    wire = _stream(
        {"role": "assistant", "content": ""},
        _calls({**_opening(1, "call_1", "pay"), "function": {"arguments": '{"card": "4111'}}),
        _calls(_arguments(0, '111111111111"}')),
    )
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        gw.upstream.queue(Reply(wire=[wire.encode()]))
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        read = httpx.post(f"{gw.url}/v1/chat/completions", json=body).text
        (event,) = [e for e in gw.audit() if str(e.get("operation", "")).startswith("response-")]
    assert "111111111111" not in read
    assert event["reason"] == "stream_inspection_error"
