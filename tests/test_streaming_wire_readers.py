# SPDX-License-Identifier: Apache-2.0
"""Streams of Ollama, Gemini and llama.cpp as their clients' own readers take them apart.

A hostile upstream does not have to keep to the framing the gateway reads: it can write a
stream whose frames the gateway takes one way while a real client's reader takes them
another, and cut a value between the two readings.

- **Readers of ``data:`` lines.** google-genai reads each line that starts with ``data: ``
  as one JSON chunk (it does not join the lines of an event), and so do the usual readers
  of llama.cpp's streams (its own server tests, web pages: ``if line.startswith("data: ")``).
  An event of two such lines is one unparseable text to the gateway, two chunks to them.
- **google-genai's other lines.** Any other line (a field line such as an unknown
  ``{"candidates":`` field) is buffered by google-genai until its braces balance and then
  parsed as a JSON chunk: its reader turns lines the gateway takes for field lines into
  chunks whose text it joins with the answer.
- **Go's JSON decoder** (Ollama's own ``api`` package, which the ``ollama`` command line
  reads streams with) binds a member to a field whatever the case of its name: a
  ``"Response"`` beside ``"response"`` is the text Go clients join.

Every shape here either reaches the client protected or stops the stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from haechi.protocols.member_names import named_like
from haechi.runtime import Runtime
from haechi.streaming import StreamInspector
from tests.stream_fixtures import EMAIL, INSPECT_REDACTING, chunked, collect, route
from tests.upstream_server import Gateway, Reply, gateway_in_front

HALVES = ("Contact: jane.doe@", "example.com thanks")
GEMINI_STREAM = "/v1beta/models/g:streamGenerateContent"
GEMINI = route("gemini", GEMINI_STREAM)
LLAMA = route("llama-cpp", "/completion")
OLLAMA_CHAT = route("ollama", "/api/chat")
OLLAMA_GENERATE = route("ollama", "/api/generate")


def _stream_event(gw: Gateway) -> dict[str, Any]:
    (event,) = [e for e in gw.audit() if str(e.get("operation", "")).startswith("response-stream:")]
    return event


async def _inspect(memory_runtime: Runtime, inspected: Any, wire: str) -> tuple[bytes, str | None]:
    inspector = StreamInspector(memory_runtime, inspected, mode="enforce")
    out = await collect(inspector.run(chunked(wire.encode(), 7)))
    return out, inspector.reason


# -- google-genai's reader ---------------------------------------------------------------------


def genai_chunks(body: bytes) -> Iterator[Any]:
    """The chunks google-genai's streaming reader (``HttpResponse._iter_response_stream``)
    parses out of a ``:streamGenerateContent?alt=sse`` answer: every line starting with
    ``data: `` is a chunk; other lines are buffered until their braces balance, then parsed
    as one chunk (meant for an error object written over several lines)."""
    buffered = ""
    balance = 0
    for line in httpx.Response(200, content=body).iter_lines():
        if not line:
            continue
        if line.startswith("data: "):
            yield json.loads(line[len("data: ") :])
            continue
        balance += line.count("{") - line.count("}")
        buffered += line
        if balance == 0:
            yield json.loads(buffered)
            buffered = ""


def genai_text(body: bytes) -> str:
    """What adding up google-genai's ``chunk.text`` reads: the text parts of the first
    candidate of every chunk that are not thought."""
    text = ""
    for chunk in genai_chunks(body):
        candidates = chunk.get("candidates") or []
        parts = (candidates[0].get("content") or {}).get("parts") or [] if candidates else []
        text += "".join(
            part["text"]
            for part in parts
            if isinstance(part.get("text"), str) and not part.get("thought")
        )
    return text


def _gemini_chunk(text: str) -> str:
    return json.dumps({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}}]})


GEMINI_CONFIG = {**INSPECT_REDACTING, "target": {"type": "gemini"}}


def _gemini_through(tmp_path: Path, wire: str) -> tuple[bytes, dict[str, Any]]:
    with gateway_in_front(tmp_path, GEMINI_CONFIG) as gw:
        gw.upstream.queue(
            Reply(wire=[wire.encode()], headers={"content-type": "text/event-stream"})
        )
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        response = httpx.post(f"{gw.url}{GEMINI_STREAM}?alt=sse", json=body, timeout=30)
        return response.content, _stream_event(gw)


def test_gemini_event_of_two_data_lines_is_not_two_chunks_to_genai(tmp_path: Path) -> None:
    """One event whose two ``data:`` lines each hold a chunk: unparseable joined (a text
    frame to the gateway, which reads no address in it), two chunks to google-genai, whose
    ``chunk.text`` joins their halves."""
    first, second = (_gemini_chunk(half) for half in HALVES)
    wire = f"data: {first}\r\ndata: {second}\r\n\r\n" + f"data: {_gemini_chunk(' ok')}\r\n\r\n"
    body, event = _gemini_through(tmp_path, wire)
    assert EMAIL not in genai_text(body)
    assert event["reason"] == "stream_inspection_error"


@pytest.mark.parametrize(
    "lines",
    [
        # One field line per event, each a whole chunk.
        [_gemini_chunk(HALVES[0]), "", _gemini_chunk(HALVES[1]), ""],
        # One chunk cut over two field lines, which google-genai joins without a break.
        [
            '{"candidates": [{"content": {"parts": [{"text": "' + HALVES[0],
            HALVES[1] + '", "thought": false}]}}]}',
            "",
        ],
    ],
    ids=["a-chunk-per-line", "a-chunk-over-two-lines"],
)
def test_gemini_lines_genai_parses_by_their_braces_stop_the_stream(
    tmp_path: Path, lines: list[str]
) -> None:
    """A line that is not a ``data:`` line (here an unknown field, to the SSE parser) is a
    JSON chunk to google-genai once its braces balance: the stream stops before it."""
    wire = f"data: {_gemini_chunk('Hi. ')}\r\n\r\n" + "".join(f"{line}\r\n" for line in lines)
    body, event = _gemini_through(tmp_path, wire)
    assert EMAIL not in genai_text(body)
    assert event["reason"] == "stream_inspection_error"


@pytest.mark.anyio
@pytest.mark.parametrize("line", [": keep-alive", "event: message", "id: 7"])
async def test_gemini_stream_with_any_other_line_stops(memory_runtime: Runtime, line: str) -> None:
    """Google sends nothing but ``data:`` lines, and google-genai reads every other line as
    (part of) a JSON chunk: any such line stops the stream, nothing of its frame sent."""
    wire = f"data: {_gemini_chunk('Hi.')}\r\n\r\n{line}\r\ndata: {_gemini_chunk(' x')}\r\n\r\n"
    out, reason = await _inspect(memory_runtime, GEMINI, wire)
    assert reason == "stream_inspection_error"
    assert line.encode() not in out
    assert all(line.startswith("data: ") for line in out.decode().splitlines() if line)
    assert len(list(genai_chunks(out))) == 1


@pytest.mark.anyio
async def test_gemini_stream_of_data_lines_is_unchanged(memory_runtime: Runtime) -> None:
    wire = "".join(f"data: {_gemini_chunk(text)}\r\n\r\n" for text in ("Hello ", "there."))
    out, reason = await _inspect(memory_runtime, GEMINI, wire)
    assert reason == "stream_inspected"
    assert genai_text(out) == "Hello there."


# -- readers of data lines: llama.cpp ----------------------------------------------------------


def data_lines(body: bytes) -> Iterator[Any]:
    """The chunks a reader of ``data:`` lines parses (llama.cpp's server tests:
    ``if line.startswith("data: "): json.loads(line[6:])``); other lines are skipped."""
    for line in httpx.Response(200, content=body).iter_lines():
        if line.startswith("data: "):
            yield json.loads(line[len("data: ") :])


def test_llama_cpp_event_of_two_data_lines_is_not_two_chunks(tmp_path: Path) -> None:
    first, second = (json.dumps({"content": half, "stop": False}) for half in HALVES)
    wire = f"data: {first}\ndata: {second}\n\n" + 'data: {"content": " ok", "stop": true}\n\n'
    config = {**INSPECT_REDACTING, "target": {"type": "llama-cpp"}}
    with gateway_in_front(tmp_path, config) as gw:
        gw.upstream.queue(
            Reply(wire=[wire.encode()], headers={"content-type": "text/event-stream"})
        )
        response = httpx.post(
            f"{gw.url}/completion", json={"prompt": "hi", "stream": True}, timeout=30
        )
        text = "".join(chunk.get("content", "") for chunk in data_lines(response.content))
        event = _stream_event(gw)
    assert EMAIL not in text
    assert event["reason"] == "stream_inspection_error"


@pytest.mark.anyio
async def test_text_event_of_several_plain_lines_still_passes(memory_runtime: Runtime) -> None:
    """A text frame of several lines none of which is a JSON chunk is sent as before."""
    wire = 'data: {"content": "a", "stop": false}\n\ndata: plain\ndata: text\n\n'
    wire += 'data: {"content": "", "stop": true}\n\n'
    out, reason = await _inspect(memory_runtime, LLAMA, wire)
    assert reason == "stream_inspected"
    assert b"data: plain\ndata: text\n\n" in out


# -- readers that trim a line first: go-openai, JavaScript ------------------------------------

#: What Go's ``bytes.TrimSpace`` trims (``unicode.IsSpace``), and what JavaScript's ``trim()``
#: trims beyond it (the byte order mark).
GO_SPACES = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
GO_SPACES += "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
JS_SPACES = GO_SPACES + "\ufeff"


def trimmed_data_lines(body: bytes, spaces: str = GO_SPACES) -> Iterator[Any]:
    """The chunks go-openai's stream reader parses: each line (cut at LF) trimmed with
    ``bytes.TrimSpace``, and every trimmed line matching ``^data:\\s*`` parsed as one chunk,
    up to ``[DONE]`` or a chunk it cannot parse (``Recv`` returns the error). With
    ``JS_SPACES``, a hand-written JavaScript reader that ``trim()``s its lines."""
    for line in body.decode().split("\n"):
        line = line.strip(spaces)
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].lstrip("\t\n\x0c\r ")
        if data == "[DONE]":
            return
        try:
            yield json.loads(data)
        except json.JSONDecodeError:
            return


def _chat_chunk(text: str) -> str:
    return json.dumps({"id": "c", "choices": [{"index": 0, "delta": {"content": text}}]})


@pytest.mark.parametrize(
    "frame",
    [
        "\u00a0data: {chunk}\n\n",  # a no-break space before the field name
        "\u3000data: {chunk}\n\n",  # an ideographic space
        "\ufeffdata: {chunk}\n\n",  # a byte order mark (JavaScript's trim())
        "data: {chunk}\u00a0\n\n",  # after the chunk: Python's parser refuses it
        "data: \ufeff{chunk}\n\n",  # before it
    ],
    ids=["nbsp-before", "ideographic-before", "bom-before", "nbsp-after", "bom-in-data"],
)
def test_lines_that_readers_trim_are_read_as_they_read_them(tmp_path: Path, frame: str) -> None:
    """Each half of the address in a chunk that a trimming reader parses: the gateway reads
    it as data too (and protects the joined halves), or stops the stream."""
    wire = "".join(frame.format(chunk=_chat_chunk(half)) for half in HALVES) + "data: [DONE]\n\n"
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        gw.upstream.queue(
            Reply(wire=[wire.encode()], headers={"content-type": "text/event-stream"})
        )
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        response = httpx.post(f"{gw.url}/v1/chat/completions", json=body, timeout=30)
        event = _stream_event(gw)
    for spaces in (GO_SPACES, JS_SPACES):
        chunks = trimmed_data_lines(response.content, spaces)
        text = "".join(chunk["choices"][0]["delta"]["content"] for chunk in chunks)
        assert EMAIL not in text
    assert b"example.com" not in response.content
    assert event["reason"] in ("stream_inspected", "stream_inspection_error")


def every_line(body: bytes) -> Iterator[Any]:
    """The chunks of the most copied hand-written reader (openai-node issue 18): every
    non-blank line, less a leading ``data: ``, is ``JSON.parse``d, up to ``[DONE]`` or a line
    it cannot parse (which throws)."""
    for line in body.decode().split("\n"):
        if not line.strip():
            continue
        message = line.removeprefix("data: ")
        if message == "[DONE]":
            return
        try:
            yield json.loads(message)
        except json.JSONDecodeError:
            return


def test_a_field_line_that_is_a_json_chunk_stops_the_stream(tmp_path: Path) -> None:
    """A line without ``data:`` is a field line (an unknown field, named ``{"id"``) to the
    SSE parser, inspected alone: a reader of every line parses it as a chunk."""
    chunks = [json.dumps({"id": "c", "choices": [{"index": 0, "text": half}]}) for half in HALVES]
    wire = "".join(f"{chunk}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
    with gateway_in_front(tmp_path, INSPECT_REDACTING) as gw:
        gw.upstream.queue(
            Reply(wire=[wire.encode()], headers={"content-type": "text/event-stream"})
        )
        body = {"model": "m", "prompt": "hi", "stream": True}
        response = httpx.post(f"{gw.url}/v1/completions", json=body, timeout=30)
        event = _stream_event(gw)
    text = "".join(chunk["choices"][0]["text"] for chunk in every_line(response.content))
    assert EMAIL not in text
    assert b"jane.doe@" not in response.content
    assert event["reason"] == "stream_inspection_error"


# -- Go's JSON decoder: Ollama --------------------------------------------------------------


def go_decoded(frame: dict[str, Any], field: str) -> Any:
    """The value Go's ``encoding/json`` binds to ``field`` in ``frame``: the last member whose
    name matches the field's under Go's case folding."""
    value = None
    for name, member in frame.items():
        if named_like(name, field):
            value = member
    return value


def go_texts(body: bytes, path: tuple[str, ...]) -> str:
    text = ""
    for line in body.decode().splitlines():
        node: Any = json.loads(line)
        for field in path:
            node = go_decoded(node, field) if isinstance(node, dict) else None
        text += node if isinstance(node, str) else ""
    return text


OLLAMA_CONFIG = {**INSPECT_REDACTING, "target": {"type": "ollama"}}
#: The text a Go client joins, by the member the upstream spelled in another case.
_FIELDS = {
    '"Response"': ("response",),
    '"CONTENT"': ("message", "content"),
    '"Message"': ("message", "content"),
    '"Thinking"': ("thinking",),
}


@pytest.mark.parametrize(
    ("path", "frames"),
    [
        (
            "/api/generate",
            [{"model": "m", "response": "", "Response": half, "done": False} for half in HALVES],
        ),
        (
            "/api/chat",
            [
                {"model": "m", "message": {"role": "assistant", "content": "", "CONTENT": half}}
                for half in HALVES
            ],
        ),
        (
            "/api/chat",
            [
                {"model": "m", "Message": {"role": "assistant", "content": half}, "done": False}
                for half in HALVES
            ],
        ),
        (
            "/api/generate",
            [{"model": "m", "response": "", "Thinking": half} for half in HALVES],
        ),
    ],
    ids=["generate-response", "chat-content", "chat-message", "generate-thinking"],
)
def test_ollama_member_go_binds_by_case_stops_the_stream(
    tmp_path: Path, path: str, frames: list[dict[str, Any]]
) -> None:
    """Ollama's Go client binds ``"Response"`` (or ``"CONTENT"``, ``"Message"``) to the
    field the gateway windows under its exact name: Go joins the halves the gateway read in
    two frames apart. The stream stops before such a frame; the Python client, which reads
    exact names only, sees no more of it either."""
    done = {"model": "m", "done": True, "message": {"role": "assistant", "content": ""}}
    wire = "".join(json.dumps(frame) + "\n" for frame in [*frames, done])
    field = _FIELDS[next(name for name in _FIELDS if name in json.dumps(frames[0]))]
    with gateway_in_front(tmp_path, OLLAMA_CONFIG) as gw:
        gw.upstream.queue(
            Reply(wire=[wire.encode()], headers={"content-type": "application/x-ndjson"})
        )
        body = {"model": "m", "prompt": "hi", "messages": [{"role": "user", "content": "hi"}]}
        response = httpx.post(f"{gw.url}{path}", json=body, timeout=30)
        event = _stream_event(gw)
    assert EMAIL not in go_texts(response.content, field)
    assert event["reason"] == "stream_inspection_error"


@pytest.mark.anyio
async def test_ollama_long_s_member_stops_the_stream(memory_runtime: Runtime) -> None:
    """Go folds a long s (U+017F) to an s: ``"re\u017fponse"`` is ``response`` to it."""
    frames = [
        {"model": "m", "response": "", "re\u017fponse": half, "done": False} for half in HALVES
    ]
    wire = "".join(json.dumps(frame) + "\n" for frame in frames)
    out, reason = await _inspect(memory_runtime, OLLAMA_GENERATE, wire)
    assert reason == "stream_inspection_error"
    assert b"jane.doe" not in out


@pytest.mark.anyio
async def test_ollama_context_go_binds_by_case_stops_the_stream(memory_runtime: Runtime) -> None:
    """``"Context"`` is the conversation's token ids to Go clients, which the gateway leaves
    out only under its exact name: the stream stops rather than send them."""
    wire = json.dumps({"model": "m", "response": "hi", "done": False}) + "\n"
    wire += json.dumps({"model": "m", "response": "", "Context": [1, 2, 3], "done": True}) + "\n"
    out, reason = await _inspect(memory_runtime, OLLAMA_GENERATE, wire)
    assert reason == "stream_inspection_error"
    assert b"Context" not in out


def test_ollama_python_client_reads_an_ordinary_stream_unchanged(tmp_path: Path) -> None:
    frames = [
        {
            "model": "m",
            "created_at": "t",
            "message": {"role": "assistant", "content": text},
            "done": False,
        }
        for text in ("Hello ", "there.")
    ]
    frames.append(
        {
            "model": "m",
            "created_at": "t",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "eval_count": 2,
        }
    )
    wire = "".join(json.dumps(frame) + "\n" for frame in frames)
    with gateway_in_front(tmp_path, OLLAMA_CONFIG) as gw:
        gw.upstream.queue(
            Reply(wire=[wire.encode()], headers={"content-type": "application/x-ndjson"})
        )
        client = ollama.Client(host=gw.url)
        parts = list(
            client.chat(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
        )
        event = _stream_event(gw)
    assert "".join(part.message.content or "" for part in parts) == "Hello there."
    assert parts[-1].done
    assert event["reason"] == "stream_inspected"
