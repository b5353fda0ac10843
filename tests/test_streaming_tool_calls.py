# SPDX-License-Identifier: Apache-2.0
"""Streamed texts besides a chat answer go through cross-frame windows of their own.

A model streams the arguments of a tool call a few characters per frame, like its answer
(OpenAI ``delta.tool_calls[i].function.arguments``, Anthropic ``input_json_delta``), and the
Responses API streams every text (output text, function-call arguments) as ``*.delta``
events; a value split across those frames must be found as it is in a chat answer, and what
the client's SDK puts back together must be the protected text, with nothing doubled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from haechi.runtime import Runtime
from haechi.streaming import StreamInspector
from tests.stream_fixtures import (
    anthropic_message,
    chunked,
    collect,
    openai_choices_sse,
    openai_tool_sse,
    read_sse,
    route,
    sse,
)
from tests.upstream_server import Reply, gateway_in_front

EMAIL = "john.doe@example.com"
CARD = "4111111111111111"
REDACTED = "[REDACTED:email]"
CHAT = route("openai-compatible", "/v1/chat/completions")
MESSAGES = route("anthropic", "/v1/messages")
RESPONSES = route("openai-compatible", "/v1/responses")


def _pieces(text: str, size: int = 1) -> list[str]:
    return [text[at : at + size] for at in range(0, len(text), size)]


def openai_tool_stream(calls: dict[int, tuple[str, str]], *, finish: bool = True) -> bytes:
    """A chat stream calling ``calls`` (index -> name, arguments), their arguments streamed
    one character per frame, the calls' frames interleaved."""
    pieces = {index: (name, _pieces(arguments)) for index, (name, arguments) in calls.items()}
    return openai_tool_sse(pieces, finish=finish)


def anthropic_tool_stream(arguments: str) -> bytes:
    """A Messages stream with one ``tool_use`` block whose input is streamed in pieces."""

    def event(kind: str, **data: Any) -> str:
        return sse({"type": kind, **data}, event=kind)

    block = {"type": "tool_use", "id": "toolu_1", "name": "send", "input": {}}
    frames = [
        event("message_start", message=anthropic_message()),
        event("content_block_start", index=0, content_block=block),
    ]
    for piece in _pieces(arguments, 2):
        delta = {"type": "input_json_delta", "partial_json": piece}
        frames.append(event("content_block_delta", index=0, delta=delta))
    frames += [
        event("content_block_stop", index=0),
        event("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 9}),
        event("message_stop"),
    ]
    return "".join(frames).encode()


@pytest.fixture
def runtime(enforcing_runtime: Runtime) -> Runtime:
    return enforcing_runtime


async def _inspect(runtime: Runtime, target: Any, wire: bytes) -> tuple[bytes, StreamInspector]:
    inspector = StreamInspector(runtime, target, mode="enforce")
    return await collect(inspector.run(chunked(wire, 7))), inspector


def _calls(out: bytes) -> tuple[dict[int, dict[str, Any]], list[str]]:
    """The tool calls a client adds up from ``out`` (by index), and the finish reasons."""
    calls: dict[int, dict[str, Any]] = {}
    finishes: list[str] = []
    for frame in read_sse(out):
        if frame.data in (None, "[DONE]"):
            continue
        choice = json.loads(frame.data)["choices"][0]
        if choice.get("finish_reason"):
            finishes.append(choice["finish_reason"])
        for call in choice["delta"].get("tool_calls", ()):
            assert not finishes, "a tool-call piece came after the choice finished"
            into = calls.setdefault(call["index"], {"ids": [], "names": [], "arguments": ""})
            into["ids"] += [call["id"]] if "id" in call else []
            into["names"] += [call["function"]["name"]] if "name" in call["function"] else []
            into["arguments"] += call["function"].get("arguments", "")
    return calls, finishes


@pytest.mark.anyio
async def test_an_email_split_across_argument_pieces_is_redacted(runtime: Runtime) -> None:
    first = json.dumps({"to": EMAIL, "subject": "hello"})
    second = json.dumps({"cc": EMAIL})
    out, inspector = await _inspect(
        runtime, CHAT, openai_tool_stream({0: ("send", first), 1: ("copy", second)})
    )
    assert EMAIL.encode() not in out
    calls, finishes = _calls(out)
    assert calls[0] == {
        "ids": ["call_0"],
        "names": ["send"],
        "arguments": json.dumps({"to": REDACTED, "subject": "hello"}),
    }
    assert calls[1] == {
        "ids": ["call_1"],
        "names": ["copy"],
        "arguments": json.dumps({"cc": REDACTED}),
    }
    assert finishes == ["tool_calls"]
    assert read_sse(out)[-1].data == "[DONE]"
    assert inspector.summary()["byType"] == {"email": 2}


def legacy_function_call_stream(name: str, arguments: str) -> bytes:
    """A chat stream of the older ``functions`` API: one ``delta.function_call`` whose
    arguments are streamed three characters per frame."""
    deltas: list[dict[str, Any]] = [
        {"role": "assistant"},
        {"function_call": {"name": name, "arguments": ""}},
    ]
    deltas += [{"function_call": {"arguments": piece}} for piece in _pieces(arguments, 3)]
    frames = [openai_choices_sse([{"index": 0, "delta": delta}]) for delta in deltas]
    finish = openai_choices_sse([{"index": 0, "delta": {}, "finish_reason": "function_call"}])
    return "".join([*frames, finish, sse("[DONE]")]).encode()


@pytest.mark.anyio
async def test_legacy_function_call_arguments_are_windowed(runtime: Runtime) -> None:
    arguments = json.dumps({"to": EMAIL, "subject": "hello"})
    out, inspector = await _inspect(runtime, CHAT, legacy_function_call_stream("send", arguments))
    assert EMAIL.encode() not in out
    sent = ""
    for frame in read_sse(out):
        if frame.data not in (None, "[DONE]"):
            call = json.loads(frame.data)["choices"][0]["delta"].get("function_call") or {}
            sent += call.get("arguments", "")
    assert sent == json.dumps({"to": REDACTED, "subject": "hello"})
    assert inspector.summary()["byType"] == {"email": 1}


@pytest.mark.anyio
async def test_legacy_function_call_card_stops_the_stream(runtime: Runtime) -> None:
    arguments = json.dumps({"card": CARD, "note": "x" * 300})
    out, inspector = await _inspect(runtime, CHAT, legacy_function_call_stream("pay", arguments))
    assert inspector.blocked
    assert CARD[:8].encode() not in out
    assert b"[DONE]" not in out


@pytest.mark.anyio
async def test_held_arguments_are_sent_before_done_without_a_finish_frame(
    runtime: Runtime,
) -> None:
    arguments = json.dumps({"to": EMAIL})
    out, _ = await _inspect(
        runtime, CHAT, openai_tool_stream({0: ("send", arguments)}, finish=False)
    )
    calls, _ = _calls(out)
    assert calls[0]["arguments"] == json.dumps({"to": REDACTED})
    assert read_sse(out)[-1].data == "[DONE]"


@pytest.mark.anyio
async def test_a_card_split_across_argument_pieces_stops_the_stream(runtime: Runtime) -> None:
    arguments = json.dumps({"card": CARD, "note": "x" * 300})
    out, inspector = await _inspect(runtime, CHAT, openai_tool_stream({0: ("pay", arguments)}))
    calls, finishes = _calls(out)
    # What was sent before the block is the text before the card, and nothing follows it.
    assert arguments.startswith(calls[0]["arguments"])
    assert not any(character.isdigit() for character in calls[0]["arguments"])
    assert finishes == []
    assert b"[DONE]" not in out
    assert inspector.blocked
    assert inspector.summary()["byType"] == {"card": 1}


@pytest.mark.anyio
async def test_anthropic_input_json_pieces_are_redacted_before_the_block_stops(
    runtime: Runtime,
) -> None:
    out, _ = await _inspect(runtime, MESSAGES, anthropic_tool_stream(json.dumps({"to": EMAIL})))
    assert EMAIL.encode() not in out
    frames = [json.loads(frame.data or "") for frame in read_sse(out)]
    kinds = [frame["type"] for frame in frames]
    stop = kinds.index("content_block_stop")
    partial = "".join(
        frame["delta"]["partial_json"]
        for frame in frames[:stop]
        if frame["type"] == "content_block_delta"
    )
    assert partial == json.dumps({"to": REDACTED})
    assert "content_block_delta" not in kinds[stop:]
    assert kinds[-1] == "message_stop"


INSPECT = {"streaming": {"requestMode": "inspect"}, "responseProtection": {"enabled": True}}


def test_the_openai_sdk_assembles_protected_tool_calls(tmp_path: Path) -> None:
    arguments = json.dumps({"to": EMAIL, "subject": "hi"})
    wire = openai_tool_stream({0: ("send", arguments)})
    with gateway_in_front(tmp_path, {"target": {"type": "openai-compatible"}, **INSPECT}) as gw:
        gw.upstream.queue(Reply(wire=[wire[at : at + 50] for at in range(0, len(wire), 50)]))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k")
        with client.chat.completions.stream(
            model="m", messages=[{"role": "user", "content": "mail it"}]
        ) as stream:
            final = stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls or []
    assert call.id == "call_0"
    assert call.function.name == "send"
    assert json.loads(call.function.arguments) == {"to": REDACTED, "subject": "hi"}
    assert final.choices[0].finish_reason == "tool_calls"


def test_the_anthropic_sdk_assembles_protected_tool_input(tmp_path: Path) -> None:
    wire = anthropic_tool_stream(json.dumps({"to": EMAIL}))
    with gateway_in_front(tmp_path, {"target": {"type": "anthropic"}, **INSPECT}) as gw:
        gw.upstream.queue(Reply(wire=[wire[at : at + 40] for at in range(0, len(wire), 40)]))
        client = anthropic.Anthropic(base_url=gw.url, api_key="k")
        with client.messages.stream(
            model="claude", max_tokens=64, messages=[{"role": "user", "content": "mail it"}]
        ) as stream:
            final = stream.get_final_message()
    (block,) = final.content
    assert block.type == "tool_use"
    assert block.name == "send"
    assert block.input == {"to": REDACTED}


def responses_stream(texts: dict[str, tuple[str, str]]) -> bytes:
    """A Responses API stream: ``texts`` maps an item id to its event kind
    (``output_text`` or ``function_call_arguments``) and its text, streamed one character per
    event, the items' events interleaved; then each item's ``.done`` and ``response.completed``."""
    number = iter(range(1_000_000))

    def event(kind: str, **data: Any) -> str:
        return sse({"type": kind, "sequence_number": next(number), **data}, event=kind)

    def place(item: str) -> dict[str, Any]:
        index = list(texts).index(item)
        return {"item_id": item, "output_index": index, "content_index": 0}

    frames = [event("response.created", response={"id": "resp_1", "output": []})]
    pieces = {item: _pieces(text) for item, (_kind, text) in texts.items()}
    for turn in range(max(len(p) for p in pieces.values())):
        for item, (kind, _text) in texts.items():
            if turn < len(pieces[item]):
                frames.append(
                    event(f"response.{kind}.delta", **place(item), delta=pieces[item][turn])
                )
    for item, (kind, text) in texts.items():
        whole = {"text": text} if kind == "output_text" else {"arguments": text}
        frames.append(event(f"response.{kind}.done", **place(item), **whole))
    frames.append(event("response.completed", response={"id": "resp_1", "status": "completed"}))
    return "".join(frames).encode()


@pytest.mark.anyio
async def test_responses_deltas_are_windowed_per_item(runtime: Runtime) -> None:
    arguments = json.dumps({"to": EMAIL})
    wire = responses_stream(
        {
            "msg_1": ("output_text", f"Write to {EMAIL} now."),
            "fc_1": ("function_call_arguments", arguments),
        }
    )
    out, inspector = await _inspect(runtime, RESPONSES, wire)
    assert EMAIL.encode() not in out
    events = [json.loads(frame.data or "") for frame in read_sse(out)]
    joined: dict[str, str] = {}
    first_done = next(n for n, e in enumerate(events) if e["type"].endswith(".done"))
    for position, sent in enumerate(events):
        if sent["type"].endswith(".delta"):
            assert position < first_done  # every held piece precedes the first .done
            joined[sent["item_id"]] = joined.get(sent["item_id"], "") + sent["delta"]
    assert joined == {"msg_1": f"Write to {REDACTED} now.", "fc_1": json.dumps({"to": REDACTED})}
    assert events[-1]["type"] == "response.completed"
    # Two windows and the tool call's .done event; the output text's repeats its deltas.
    assert inspector.summary()["byType"] == {"email": 3}


def test_an_item_id_changing_inside_one_output_does_not_split_its_window(
    tmp_path: Path,
) -> None:
    # The openai SDK adds output_text deltas up by output and content index; an upstream
    # that gives each half of a value its own item_id must not get it past the window.
    number = iter(range(1000))

    def event(kind: str, **data: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(number), **data}, event=kind).encode()

    def response(status: str) -> dict[str, Any]:
        return {"id": "resp_1", "object": "response", "created_at": 0, "model": "m",
                "status": status, "output": [], "parallel_tool_calls": True,
                "tool_choice": "auto", "tools": []}  # fmt: skip

    item = {"type": "message", "id": "msg_a", "status": "in_progress", "role": "assistant"}
    place = {"output_index": 0, "content_index": 0}
    wire = [
        event("response.created", response=response("in_progress")),
        event("response.output_item.added", output_index=0, item={**item, "content": []}),
        event(
            "response.content_part.added",
            item_id="msg_a",
            **place,
            part={"type": "output_text", "text": "", "annotations": []},
        ),
        event("response.output_text.delta", item_id="msg_a", **place, delta="Mail jane.doe@"),
        event("response.output_text.delta", item_id="msg_b", **place, delta="example.com now"),
        event("response.output_text.done", item_id="msg_a", **place, text="Mail (above) now"),
        event("response.output_item.done", output_index=0, item={**item, "content": []}),
        event("response.completed", response=response("completed")),
    ]
    with gateway_in_front(tmp_path, {"target": {"type": "openai-compatible"}, **INSPECT}) as gw:
        gw.upstream.queue(Reply(wire=wire))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        with client.responses.stream(model="m", input="hi") as stream:
            snapshots = [e.snapshot for e in stream if e.type == "response.output_text.delta"]
    assert snapshots[-1] == f"Mail {REDACTED} now"
    assert EMAIL not in "".join(snapshots)


def test_the_openai_sdk_streams_a_protected_responses_answer(tmp_path: Path) -> None:
    text = f"Write to {EMAIL} now."
    with gateway_in_front(tmp_path, {"target": {"type": "openai-compatible"}, **INSPECT}) as gw:
        gw.upstream.queue(Reply(text=text, chunks=list(text)))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k")
        with client.responses.stream(model="m", input="mail it") as stream:
            deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
            final = stream.get_final_response()
    assert "".join(deltas) == f"Write to {REDACTED} now."
    assert final.output_text == f"Write to {REDACTED} now."


def test_a_token_in_streamed_arguments_is_restored_for_the_client(tmp_path: Path) -> None:
    """With ``detokenizeResponses``, a marker of this request that the model repeats in a tool
    call's arguments, cut one character per frame, reaches the client as the value."""
    config = {
        "target": {"type": "openai-compatible"},
        **INSPECT,
        "policy": {"mode": "enforce", "actions": {"email": "tokenize"}},
        "tokenVault": {"detokenizeResponses": True},
    }
    with gateway_in_front(tmp_path, config) as gw:

        def echo_marker() -> Iterator[bytes]:
            # Built once the request arrived: the model repeats the marker it was sent.
            prompt = gw.upstream.last.json()["messages"][0]["content"]
            marker = prompt[prompt.index("[TOKEN:") : prompt.index("]") + 1]
            # A long field after it: the window (256 characters) releases the marker
            # one character per frame while that field streams in.
            arguments = json.dumps({"to": marker, "body": "z" * 400})
            yield openai_tool_stream({0: ("send", arguments)})

        gw.upstream.queue(Reply(wire=echo_marker()))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        with client.chat.completions.stream(
            model="m", messages=[{"role": "user", "content": f"mail {EMAIL}"}]
        ) as stream:
            final = stream.get_final_completion()
        assert EMAIL not in gw.upstream.last.text
    (call,) = final.choices[0].message.tool_calls or []
    assert json.loads(call.function.arguments) == {"to": EMAIL, "body": "z" * 400}
