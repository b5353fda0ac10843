# SPDX-License-Identifier: Apache-2.0
"""The stream inspector against a real runtime: what a client receives, in which order."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from haechi.crypto import init_key_file
from haechi.runtime import Runtime, create_runtime
from haechi.streaming import Frame, StreamInspector
from tests.stream_fixtures import (
    anthropic_sse,
    chunked,
    collect,
    delta_text,
    gemini_sse,
    ollama_ndjson,
    openai_chunk,
    openai_sse,
    read_ndjson,
    read_sse,
    route,
    sse,
)

pytestmark = pytest.mark.anyio

CHAT = route("openai-compatible", "/v1/chat/completions")
CHAT_PATH = ("choices", 0, "delta", "content")
EMAIL = "john.doe@example.com"
CARD = "4111 1111 1111 1111"
REDACTED = "[REDACTED:email]"


def _runtime(**sections: Any) -> Runtime:
    """A runtime whose state lives in the current (temporary) directory."""
    init_key_file(".haechi/dev.keys.json")
    config: dict[str, Any] = {"mode": "enforce", "policy": {"mode": "enforce"}}
    config.update(sections)
    return create_runtime(config)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
async def runtime(workdir: Path) -> AsyncIterator[Runtime]:
    runtime = _runtime()
    yield runtime
    await runtime.aclose()


def _stream_events(workdir: Path) -> list[dict[str, Any]]:
    lines = (workdir / ".haechi" / "audit.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines if line]
    return [e for e in events if str(e.get("operation", "")).startswith("response-stream:")]


async def _inspect(
    runtime: Runtime,
    wire: bytes,
    *,
    target: Any = CHAT,
    sizes: int | list[int] = 1,
    mode: Any = "enforce",
    **options: Any,
) -> tuple[bytes, StreamInspector]:
    inspector = StreamInspector(runtime, target, mode=mode, **options)
    return await collect(inspector.run(chunked(wire, sizes))), inspector


def _is_done(frame: Frame) -> bool:
    return frame.data == "[DONE]"


# --- cross-frame window and ordering ------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
async def test_email_split_byte_by_byte_is_redacted_and_the_tail_precedes_done(
    runtime: Runtime, workdir: Path, newline: str
) -> None:
    answer = f"Write to {EMAIL} today."
    wire = openai_sse(list(answer), newline=newline)
    out, inspector = await _inspect(runtime, wire, sizes=1)

    assert EMAIL.encode() not in out
    assert b"\r" not in out  # CRLF framing is parsed, never passed on raw
    frames = read_sse(out)
    assert delta_text(frames, CHAT_PATH) == f"Write to {REDACTED} today."
    assert _is_done(frames[-1])
    assert sum(_is_done(frame) for frame in frames) == 1
    carriers = [i for i, f in enumerate(frames) if delta_text([f], CHAT_PATH)]
    # The whole short answer was held until the choice finished, and sent before that frame.
    assert carriers == [len(frames) - 3]
    assert json.loads(frames[-2].data or "")["choices"][0]["finish_reason"] == "stop"
    assert not inspector.blocked
    assert inspector.reason == "stream_inspected"
    assert inspector.summary()["byType"] == {"email": 1}
    (event,) = _stream_events(workdir)
    assert event["decision"] == "stream_inspected"
    assert event["operation"] == "response-stream:POST chat-completions"
    assert event["summary"]["byType"] == {"email": 1}


async def test_tail_copy_keeps_only_the_text_path(runtime: Runtime) -> None:
    tool_frame = openai_chunk("x")
    tool_frame["choices"][0]["delta"]["role"] = "assistant"
    tool_frame["choices"][0]["delta"]["tool_calls"] = [
        {"index": 0, "id": "call_1", "function": {"name": "send", "arguments": "{}"}}
    ]
    wire = (sse(tool_frame) + sse("[DONE]")).encode()
    out, _ = await _inspect(runtime, wire, sizes=len(wire))
    frames = read_sse(out)
    # The answer's tail and the arguments' tail each come as a copy reduced to their path:
    # the role, the id and the name are not repeated (a client adding deltas up would
    # double them), the nulls and the indexes are kept.
    top = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    call = {"index": 0, "function": {"arguments": "{}"}}
    assert [json.loads(frame.data or "") for frame in frames[1:-1]] == [
        {**top, "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]},
        {
            **top,
            "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}],
        },
    ]


async def test_long_answer_is_released_while_streaming(runtime: Runtime) -> None:
    words = [f"word{i} " for i in range(200)]
    out, _ = await _inspect(runtime, openai_sse(words), sizes=64)
    frames = read_sse(out)
    assert delta_text(frames, CHAT_PATH) == "".join(words)
    carriers = [i for i, f in enumerate(frames) if delta_text([f], CHAT_PATH)]
    assert len(carriers) > 100  # text flows with the frames, not all at the end
    assert _is_done(frames[-1])


async def test_ollama_done_frame_is_last_carries_the_tail_and_is_not_repeated(
    runtime: Runtime,
) -> None:
    answer = f"mail {EMAIL} ok"
    target = route("ollama", "/api/chat")
    for newline in ("\n", "\r\n"):
        out, _ = await _inspect(
            runtime, ollama_ndjson(list(answer), newline=newline), target=target
        )
        values = read_ndjson(out)
        assert [v["done"] for v in values].count(True) == 1
        assert values[-1]["done"] is True
        assert values[-1]["done_reason"] == "stop"
        assert values[-1]["message"]["content"] == f"mail {REDACTED} ok"
        assert delta_text(values, ("message", "content")) == f"mail {REDACTED} ok"


async def test_anthropic_event_lines_are_kept_and_nothing_follows_message_stop(
    runtime: Runtime,
) -> None:
    target = route("anthropic", "/v1/messages")
    answer = f"reach {EMAIL} soon"
    wire = anthropic_sse(list(answer)) + sse({"type": "content_block_delta"}).encode()
    out, _ = await _inspect(runtime, wire, target=target, sizes=3)
    frames = read_sse(out)
    kinds = [json.loads(f.data or "")["type"] for f in frames]
    for frame, kind in zip(frames[:-1], kinds, strict=False):
        assert frame.meta == (f"event: {kind}",)
    assert kinds[-1] == "message_stop"
    assert frames[-1].meta == ("event: message_stop",)
    stop = kinds.index("content_block_stop")
    assert "content_block_delta" not in kinds[stop:]
    assert "ping" in kinds
    assert delta_text(frames, ("delta", "text")) == f"reach {REDACTED} soon"


async def test_a_ping_between_two_halves_does_not_release_the_window(runtime: Runtime) -> None:
    target = route("anthropic", "/v1/messages")
    out, _ = await _inspect(runtime, anthropic_sse(["x john.doe@exa", "mple.com y"]), target=target)
    assert delta_text(read_sse(out), ("delta", "text")) == f"x {REDACTED} y"


async def test_gemini_crlf_stream_without_end_marker_gets_its_tail_at_the_end(
    runtime: Runtime,
) -> None:
    target = route("gemini", "/v1beta/models/g:streamGenerateContent")
    out, _ = await _inspect(runtime, gemini_sse(list(f"to {EMAIL}")), target=target, sizes=5)
    frames = read_sse(out)
    path = ("candidates", 0, "content", "parts", 0, "text")
    assert delta_text(frames, path) == f"to {REDACTED}"
    assert delta_text(frames[-1:], path) == f"to {REDACTED}"


async def test_frames_after_done_are_dropped(runtime: Runtime) -> None:
    wire = openai_sse(["hi"]) + sse(openai_chunk(f"late {EMAIL}")).encode()
    out, _ = await _inspect(runtime, wire, sizes=len(wire))
    assert b"late" not in out
    assert _is_done(read_sse(out)[-1])


# --- blocks and modes ----------------------------------------------------------------------


async def test_nothing_is_sent_after_a_block(runtime: Runtime, workdir: Path) -> None:
    filler = ["lorem ipsum dolor sit amet " for _ in range(20)]
    deltas = [*filler, "card 4111 1111 ", "1111 1111 end", " AFTER-THE-BLOCK"]
    out, inspector = await _inspect(runtime, openai_sse(deltas), sizes=7)
    assert b"4111" not in out
    assert b"AFTER-THE-BLOCK" not in out
    assert b"[DONE]" not in out
    frames = read_sse(out)
    assert delta_text(frames, CHAT_PATH)  # text released before the block was sent
    assert "".join(filler).startswith(delta_text(frames, CHAT_PATH))
    assert inspector.blocked
    assert inspector.reason == "stream_policy_block"
    (event,) = _stream_events(workdir)
    assert event["decision"] == "stream_blocked"
    assert event["reason"] == "stream_policy_block"
    assert event["blocked"] is True
    assert event["summary"]["byType"] == {"card": 1}


async def test_report_only_passes_text_through_and_counts_it(
    runtime: Runtime, workdir: Path
) -> None:
    answer = f"{CARD} and {EMAIL}"
    out, inspector = await _inspect(runtime, openai_sse(list(answer)), mode="report-only")
    frames = read_sse(out)
    assert delta_text(frames, CHAT_PATH) == answer
    assert _is_done(frames[-1])
    assert not inspector.blocked
    assert inspector.summary()["byType"] == {"card": 1, "email": 1}
    (event,) = _stream_events(workdir)
    assert event["decision"] == "stream_inspected"
    assert event["mode"] == "report-only"


async def test_allowlisted_values_pass_in_streams(workdir: Path) -> None:
    runtime = _runtime(filters={"allowlist": ["help@example.com"]})
    answer = f"ask help@example.com or {EMAIL}"
    out, _ = await _inspect(runtime, openai_sse(list(answer)))
    assert delta_text(read_sse(out), CHAT_PATH) == f"ask help@example.com or {REDACTED}"


# --- frame kinds ----------------------------------------------------------------------------


async def test_control_frames_pass(runtime: Runtime) -> None:
    wire = (": keep-alive\n\nevent: ping\ndata: {}\n\n" + sse(openai_chunk("hi"))).encode()
    out, _ = await _inspect(runtime, wire + b"data: [DONE]\n\n", sizes=len(wire))
    frames = read_sse(out)
    assert frames[0] == Frame((": keep-alive",), None)
    assert frames[1] == Frame(("event: ping",), "{}")
    assert _is_done(frames[-1])


async def test_multi_line_data_json_parses(runtime: Runtime) -> None:
    body = json.dumps(openai_chunk(f"to {EMAIL}"), indent=1)
    out, _ = await _inspect(runtime, (sse(body) + sse("[DONE]")).encode(), sizes=4)
    assert delta_text(read_sse(out), CHAT_PATH) == f"to {REDACTED}"


async def test_indented_data_line_is_inspected_and_never_sent_raw(runtime: Runtime) -> None:
    frame = json.dumps(openai_chunk(f"to {EMAIL}"))
    out, _ = await _inspect(runtime, f" \tdata: {frame}\n\ndata: [DONE]\n\n".encode())
    assert b" \tdata" not in out
    assert delta_text(read_sse(out), CHAT_PATH) == f"to {REDACTED}"


async def test_json_string_root_frame_is_inspected_as_text(runtime: Runtime) -> None:
    wire = (sse(json.dumps(f"mail {EMAIL}")) + sse("[DONE]")).encode()
    out, _ = await _inspect(runtime, wire)
    frames = read_sse(out)
    texts = [json.loads(f.data or "") for f in frames if not _is_done(f)]
    assert all(isinstance(text, str) for text in texts)
    assert "".join(texts) == f"mail {REDACTED}"


async def test_bare_json_primitive_frames_are_answer_text(runtime: Runtime) -> None:
    # A bare number, boolean or null is not a JSON container: it is text for the window.
    wire = b"data: true\n\ndata: null\n\ndata: 42\n\ndata: -1.5e3\n\ndata: [DONE]\n\n"
    out, inspector = await _inspect(runtime, wire)
    frames = read_sse(out)
    assert "".join(f.data or "" for f in frames[:-1]) == "truenull42-1.5e3"
    assert _is_done(frames[-1])
    assert inspector.reason == "stream_inspected"
    assert inspector.summary()["byType"] == {}


@pytest.mark.parametrize(
    "before", [[], ["true"], ["null", "false"]], ids=["alone", "after-true", "after-null-false"]
)
async def test_a_bare_card_number_frame_blocks_the_stream(
    runtime: Runtime, workdir: Path, before: list[str]
) -> None:
    frames = [*before, "4111111111111111", '"AFTER-THE-BLOCK"', "[DONE]"]
    wire = "".join(sse(frame) for frame in frames).encode()
    out, inspector = await _inspect(runtime, wire)
    assert b"4111" not in out
    assert b"AFTER-THE-BLOCK" not in out
    assert b"[DONE]" not in out
    assert inspector.reason == "stream_policy_block"
    (event,) = _stream_events(workdir)
    assert event["decision"] == "stream_blocked"
    assert event["summary"]["byType"] == {"card": 1}


async def test_text_frames_are_redacted_when_the_value_spans_two_frames(
    runtime: Runtime,
) -> None:
    wire = b"data: write to john.do\n\ndata: e@example.com please\n\ndata: [DONE]\n\n"
    out, _ = await _inspect(runtime, wire)
    frames = read_sse(out)
    assert EMAIL.encode() not in out
    assert "".join(f.data or "" for f in frames[:-1]) == f"write to {REDACTED} please"
    assert _is_done(frames[-1])


async def test_ndjson_text_lines_are_redacted(runtime: Runtime) -> None:
    wire = f'{{"message": {{"content": "a"}}, "done": false}}\nplain {EMAIL}\n'.encode()
    out, _ = await _inspect(runtime, wire, target=route("ollama", "/api/chat"))
    assert EMAIL.encode() not in out
    assert REDACTED.encode() in out


async def test_tool_call_argument_deltas_are_protected_within_the_frame(
    runtime: Runtime,
) -> None:
    frame = openai_chunk()
    arguments = json.dumps({"to": EMAIL})
    frame["choices"][0]["delta"]["tool_calls"] = [
        {"index": 0, "id": "call_1", "type": "function", "function": {"arguments": arguments}}
    ]
    out, _ = await _inspect(runtime, (sse(frame) + sse("[DONE]")).encode())
    calls = [
        json.loads(sent.data or "")["choices"][0]["delta"]["tool_calls"][0]
        for sent in read_sse(out)[:-1]
    ]
    assert "".join(call["function"]["arguments"] for call in calls) == json.dumps({"to": REDACTED})
    assert [call.get("id") for call in calls] == ["call_1", None]


@pytest.mark.parametrize("mode", ["enforce", "report-only"])
async def test_a_value_beside_the_delta_is_found_in_every_frame(
    runtime: Runtime, mode: Any
) -> None:
    frames = []
    for piece in ("a", "b", "c"):
        frame = openai_chunk(piece)
        frame["model"] = EMAIL
        frames.append(sse(frame))
    out, inspector = await _inspect(runtime, "".join(frames).encode(), mode=mode)
    assert inspector.summary()["byType"] == {"email": 3}
    models = [json.loads(f.data or "")["model"] for f in read_sse(out)]
    assert models == [REDACTED if mode == "enforce" else EMAIL] * 4  # three frames and the tail


async def test_field_lines_are_inspected_and_counted_each_time(runtime: Runtime) -> None:
    wire = f"id: {EMAIL}\n: ok\n\nid: {EMAIL}\nevent: x\ndata: [DONE]\n\n".encode()
    out, inspector = await _inspect(runtime, wire)
    assert read_sse(out) == [
        Frame((f"id: {REDACTED}", ": ok"), None),
        Frame((f"id: {REDACTED}", "event: x"), "[DONE]"),
    ]
    assert inspector.summary()["byType"] == {"email": 2}


async def test_responses_deltas_without_an_item_share_one_window(runtime: Runtime) -> None:
    # No item_id names the text a piece belongs to: such pieces of one kind of event are
    # windowed together, so a value cut across them is still found.
    target = route("openai-compatible", "/v1/responses")
    kind = "response.output_text.delta"
    pieces = ["write to john.d", "oe@exam", "ple.com now"]
    wire = "".join(sse({"type": kind, "delta": piece}, event=kind) for piece in pieces)
    out, _ = await _inspect(runtime, wire.encode(), target=target)
    frames = read_sse(out)
    assert all(frame.meta == (f"event: {kind}",) for frame in frames)
    text = "".join(json.loads(frame.data or "")["delta"] for frame in frames)
    assert text == f"write to {REDACTED} now"


async def test_a_lone_surrogate_never_reaches_the_wire_raw(runtime: Runtime) -> None:
    wire = b'data: {"choices":[{"delta":{"content":"a\\ud800b"}}]}\n\ndata: [DONE]\n\n'
    out, inspector = await _inspect(runtime, wire)
    out.decode("utf-8")  # always valid UTF-8
    if inspector.blocked:  # the detectors refused the text: failed closed
        assert inspector.reason == "stream_inspection_error"
        assert b"ud800" not in out
    else:
        assert b"\\ud800" in out


# --- failures ------------------------------------------------------------------------------


async def test_a_frame_over_the_limit_stops_the_stream(workdir: Path) -> None:
    runtime = _runtime(responseProtection={"maxBytes": 2048})
    wire = openai_sse(["ok"])[: -len("data: [DONE]\n\n")] + sse(openai_chunk("x" * 4096)).encode()
    out, inspector = await _inspect(runtime, wire, sizes=512)
    assert b"xxxx" not in out
    assert inspector.blocked
    assert inspector.reason == "stream_frame_too_large"
    (event,) = _stream_events(workdir)
    assert event["decision"] == "stream_blocked"
    assert event["reason"] == "stream_frame_too_large"


async def test_invalid_utf8_stops_the_stream(runtime: Runtime, workdir: Path) -> None:
    out, inspector = await _inspect(runtime, b"data: \xc3\x28\n\ndata: [DONE]\n\n")
    assert out == b""
    assert inspector.reason == "stream_invalid_utf8"
    assert _stream_events(workdir)[0]["decision"] == "stream_blocked"


async def test_an_upstream_failure_is_audited_and_raised(runtime: Runtime, workdir: Path) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield sse(openai_chunk("hello")).encode()
        raise ConnectionResetError("upstream went away")

    inspector = StreamInspector(runtime, CHAT, mode="enforce")
    with pytest.raises(ConnectionResetError):
        await collect(inspector.run(failing()))
    assert inspector.reason == "stream_upstream_error"
    (event,) = _stream_events(workdir)
    assert event["reason"] == "stream_upstream_error"


async def test_a_consumer_that_stops_early_still_gets_one_audit_event(
    runtime: Runtime, workdir: Path
) -> None:
    inspector = StreamInspector(runtime, CHAT, mode="enforce")
    chunks = inspector.run(chunked(openai_sse(["a" * 400, "b" * 400]), 200))
    first = await anext(chunks)
    assert first
    await chunks.aclose()  # type: ignore[attr-defined]
    assert inspector.reason == "stream_closed_early"
    assert not inspector.blocked
    (event,) = _stream_events(workdir)
    assert event["decision"] == "stream_inspected"
    assert event["reason"] == "stream_closed_early"


async def test_an_inspector_runs_once(runtime: Runtime) -> None:
    inspector = StreamInspector(runtime, CHAT, mode="enforce")
    await collect(inspector.run(chunked(openai_sse(["a"]))))
    with pytest.raises(RuntimeError):
        await collect(inspector.run(chunked(openai_sse(["a"]))))


async def test_a_route_without_a_stream_format_is_refused(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="stream descriptor"):
        StreamInspector(runtime, route("openai-compatible", "/v1/embeddings"), mode="enforce")


async def test_metrics_count_inspected_and_blocked_streams(runtime: Runtime) -> None:
    await _inspect(runtime, openai_sse(["hello"]))
    await _inspect(runtime, openai_sse([f"card {CARD}"]))
    body, _ = runtime.metrics.render()
    text = body.decode()
    assert 'decision="stream_inspected",mode="enforce",route="chat-completions"} 1.0' in text
    assert 'decision="stream_blocked",mode="enforce",route="chat-completions"} 1.0' in text
    assert "haechi_blocks_total 1.0" in text


# --- de-tokenization -----------------------------------------------------------------------


async def test_tokens_of_this_request_are_restored_across_frames(workdir: Path) -> None:
    runtime = _runtime(
        policy={"mode": "enforce", "actions": {"email": "tokenize"}},
        tokenVault={"detokenizeResponses": True},
    )
    request = await runtime.protect({"messages": [{"role": "user", "content": f"to {EMAIL}"}]})
    (token,) = request.issued_tokens
    marker = f"[TOKEN:{token}]"
    assert marker in request.payload["messages"][0]["content"]
    other = await runtime.protect({"content": "other@example.com"})
    foreign = f"[TOKEN:{other.issued_tokens[0]}]"

    answer = f"Sure, I wrote to {marker}; not {foreign}."
    out, inspector = await _inspect(
        runtime,
        openai_sse(list(answer)),
        issued_tokens=request.issued_tokens,
        detokenize=True,
    )
    assert delta_text(read_sse(out), CHAT_PATH) == f"Sure, I wrote to {EMAIL}; not {foreign}."
    assert not inspector.blocked


async def test_tokens_are_left_alone_without_detokenize(workdir: Path) -> None:
    runtime = _runtime(policy={"mode": "enforce", "actions": {"email": "tokenize"}})
    request = await runtime.protect({"content": EMAIL})
    marker = f"[TOKEN:{request.issued_tokens[0]}]"
    out, _ = await _inspect(runtime, openai_sse([marker[:9], marker[9:]]), sizes=len(marker))
    assert delta_text(read_sse(out), CHAT_PATH) == marker


async def test_tokens_minted_in_the_stream_are_reported(workdir: Path) -> None:
    runtime = _runtime(policy={"mode": "enforce", "actions": {"email": "tokenize"}})
    out, inspector = await _inspect(runtime, openai_sse(list(f"to {EMAIL}")))
    (token,) = inspector.issued_tokens
    assert delta_text(read_sse(out), CHAT_PATH) == f"to [TOKEN:{token}]"
