# SPDX-License-Identifier: Apache-2.0
"""A local model server speaking each upstream wire format, for the gateway tests.

Real LLM servers cannot run here, so tests put the gateway in front of this ASGI app. It
answers like the real APIs do — including their streaming framing — and records every request
exactly as it arrived, so a test can assert on what "the model" received.

Wire formats:

- OpenAI-compatible (also vLLM and llama.cpp's OpenAI routes): ``/v1/chat/completions``,
  ``/v1/completions``, ``/v1/responses``, ``/v1/embeddings``, ``GET /v1/models``; streams are
  SSE ``data:`` frames ending with ``data: [DONE]`` (``/v1/responses`` uses named events).
- llama.cpp native: ``/completion``; SSE frames, the last one with ``"stop": true``.
- Ollama: ``/api/chat``, ``/api/generate`` (NDJSON streaming unless ``"stream": false``),
  ``/api/embed``, ``/api/embeddings``, ``GET /api/tags``.
- Anthropic: ``/v1/messages`` (SSE with ``event:`` lines, ``ping`` keep-alives and the
  ``message_stop`` terminal event), ``/v1/messages/count_tokens``.
- Gemini: ``/v1beta/models/<model>:generateContent``, ``:streamGenerateContent?alt=sse``
  (SSE framed with CRLF, as Google sends it), ``:countTokens``, ``:embedContent``.

By default the answer echoes the last user text (``"echo: <text>"``), so whatever the gateway
let through comes back in the response. Tests script other answers with :meth:`queue`
(in-process) or ``POST /__upstream/reply`` (out of process); ``GET /__upstream/received``
returns the record.

:func:`gateway_in_front` runs the real gateway (uvicorn on a real socket, the same server
settings ``haechi proxy`` uses) in front of an :class:`UpstreamServer`, with its own key file,
audit log and vault in a test directory.

Run standalone with ``python tests/upstream_server.py --port 0``: it prints its port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haechi.proxy.background import serve_in_thread
from haechi.proxy.demo_upstream import chat_completion, last_user_text

__all__ = [
    "Gateway",
    "Received",
    "Reply",
    "SharedGateways",
    "UpstreamServer",
    "gateway_config",
    "gateway_in_front",
    "split_text",
]

_Send = Any
_Receive = Any


@dataclass(frozen=True)
class Received:
    """One request exactly as the upstream saw it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")


@dataclass
class Reply:
    """How the next response should look.

    Attributes:
        text: the assistant text; ``None`` echoes the last user text.
        chunks: the streamed deltas; ``None`` splits ``text`` with :func:`split_text`.
        status: HTTP status of a scripted raw body (protocol replies are always 200).
        headers: extra response headers.
        body: send exactly these bytes instead of a protocol reply (with ``headers``).
        wire: for a streamed reply, send exactly these byte pieces, one body chunk each.
        delay: seconds to wait before the response starts.
        chunk_delay: seconds to wait between streamed chunks.
        gzip: gzip the (non-streamed) body and say so in ``content-encoding``.
    """

    text: str | None = None
    chunks: Sequence[str] | None = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    wire: Iterable[bytes] | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    gzip: bool = False


def read_message(sock: socket.socket) -> bytes:
    """One HTTP/1.1 message from ``sock`` whose body has a ``Content-Length`` (none: no
    body): its head and body. :class:`ConnectionResetError` when the peer closes first."""

    def more() -> bytes:
        data = sock.recv(65536)
        if not data:
            raise ConnectionResetError
        return data

    received = b""
    while b"\r\n\r\n" not in received:
        received += more()
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        body += more()
    return head + b"\r\n\r\n" + body


def read_slowly(sock: Any, answer: bytes, size: int, pause: float) -> bytes:
    """``answer`` (what was read already) and the rest of what ``sock`` sends until it is
    closed, read ``size`` bytes at most every ``pause`` seconds: a client slow to read."""
    while data := sock.recv(size):
        answer += data
        time.sleep(pause)
    return answer


def split_text(text: str, size: int = 4) -> list[str]:
    """Cut ``text`` into pieces of ``size`` characters, so values span several frames."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _sse(data: Any, event: str | None = None, newline: str = "\n") -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}{newline}" if event else ""
    return f"{head}data: {payload}{newline}{newline}".encode()


def _ndjson(data: Any) -> bytes:
    return (json.dumps(data) + "\n").encode()


def _user_text(protocol_body: Any, kind: str) -> str:
    body = protocol_body if isinstance(protocol_body, dict) else {}
    if kind == "chat":
        # OpenAI, Anthropic and Ollama chat all carry {"role": "user", "content": ...}.
        return last_user_text(body)
    if kind == "responses":
        value = body.get("input")
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return last_user_text({"messages": value}) or " ".join(
                part.get("text", "")
                for item in value
                if isinstance(item, dict)
                for part in (item.get("content") if isinstance(item.get("content"), list) else [])
                if isinstance(part, dict)
            )
        return ""
    if kind == "gemini":
        contents = body.get("contents")
        if isinstance(contents, list) and contents and isinstance(contents[-1], dict):
            parts = contents[-1].get("parts")
            if isinstance(parts, list):
                return " ".join(p["text"] for p in parts if isinstance(p, dict) and "text" in p)
        return ""
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else ""


class UpstreamServer:
    """The ASGI app. ``received`` lists every request; :meth:`queue` scripts replies."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._replies: deque[Reply] = deque()

    # -- scripting ---------------------------------------------------------------------

    def queue(self, *replies: Reply) -> None:
        """Use ``replies`` (in order) for the next requests, then go back to echoing."""
        self._replies.extend(replies)

    def clear(self) -> None:
        """Forget the record and any scripted replies."""
        self.received.clear()
        self._replies.clear()

    @property
    def last(self) -> Received:
        """The most recent request."""
        return self.received[-1]

    # -- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        path: str = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        if path.startswith("/__upstream/"):
            await self._control(scope["method"], path, body, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.received.append(Received(scope["method"], path, query, headers, body))
        reply = self._replies.popleft() if self._replies else Reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.body is not None:
            await _respond(send, reply.status, reply.body, reply.headers, reply.gzip)
            return
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            await _respond_json(send, 400, {"error": {"message": "invalid JSON body"}})
            return
        await self._route(scope["method"], path, query, parsed, reply, send)

    async def _control(self, method: str, path: str, body: bytes, send: _Send) -> None:
        if method == "POST" and path == "/__upstream/reply":
            spec = json.loads(body)
            self.queue(Reply(**spec))
            await _respond_json(send, 200, {"queued": len(self._replies)})
        elif method == "GET" and path == "/__upstream/received":
            record = [
                {
                    "method": r.method,
                    "path": r.path,
                    "query": r.query,
                    "headers": r.headers,
                    "body": r.body.decode("utf-8", "replace"),
                }
                for r in self.received
            ]
            await _respond_json(send, 200, record)
        else:
            await _respond_json(send, 404, {"error": "unknown control path"})

    async def _route(
        self, method: str, path: str, query: str, body: Any, reply: Reply, send: _Send
    ) -> None:
        body = body if isinstance(body, dict) else {}
        model = str(body.get("model") or "test-model")
        if method == "GET" and path == "/v1/models":
            listing = {
                "object": "list",
                "data": [{"id": model, "object": "model", "created": 0, "owned_by": "test"}],
            }
            await _respond_json(send, 200, listing, reply)
            return
        if method == "GET" and path == "/api/tags":
            await _respond_json(send, 200, {"models": [{"name": "test-model"}]}, reply)
            return
        if ":" in path and path.startswith("/v1beta/models/"):
            model_part, _, verb = path.removeprefix("/v1beta/models/").partition(":")
            await self._gemini(verb, model_part, query, body, reply, send)
            return
        handlers = {
            "/v1/chat/completions": self._openai_chat,
            "/v1/completions": self._openai_completions,
            "/v1/responses": self._openai_responses,
            "/v1/embeddings": self._openai_embeddings,
            "/completion": self._llama_completion,
            "/api/chat": self._ollama_chat,
            "/api/generate": self._ollama_generate,
            "/api/embed": self._ollama_embed,
            "/api/embeddings": self._ollama_embed,
            "/v1/messages": self._anthropic_messages,
            "/v1/messages/count_tokens": self._anthropic_count,
        }
        handler = handlers.get(path)
        if handler is None or method != "POST":
            await _respond_json(send, 404, {"error": {"message": f"no route {method} {path}"}})
            return
        await handler(model, body, reply, send)

    # -- OpenAI-compatible -------------------------------------------------------------

    async def _openai_chat(
        self, model: str, body: dict[str, Any], reply: Reply, send: _Send
    ) -> None:
        text = _answer(reply, _user_text(body, "chat"))
        # vLLM's ``return_token_ids``: each choice also carries its text as token ids (one
        # per character here).
        ids = body.get("return_token_ids") is True
        logprobs = _chat_logprobs(body)
        if body.get("stream") is not True:
            completion = chat_completion(text, model)
            if ids:
                completion["choices"][0]["token_ids"] = [ord(char) for char in text]
            if logprobs is not None:
                completion["choices"][0]["logprobs"] = logprobs(text)
            await _respond_json(send, 200, completion, reply)
            return

        def frame(delta: dict[str, Any], finish: str | None) -> bytes:
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
            if ids:
                choice["token_ids"] = [ord(char) for char in delta.get("content", "")]
            if logprobs is not None and delta.get("content"):
                choice["logprobs"] = logprobs(delta["content"])
            chunk = {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [choice],
            }
            return _sse(chunk)

        frames = [frame({"role": "assistant", "content": ""}, None)]
        frames += [frame({"content": piece}, None) for piece in _chunks(reply, text)]
        frames += [frame({}, "stop"), _sse("[DONE]")]
        await _stream(send, "text/event-stream", frames, reply)

    async def _openai_completions(
        self, model: str, body: dict[str, Any], reply: Reply, send: _Send
    ) -> None:
        text = _answer(reply, _user_text(body, "prompt"))

        def completion(piece: str, finish: str | None) -> dict[str, Any]:
            return {
                "id": "cmpl-test",
                "object": "text_completion",
                "created": 0,
                "model": model,
                "choices": [{"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}],
            }

        if body.get("stream") is not True:
            await _respond_json(send, 200, completion(text, "stop"), reply)
            return
        frames = [_sse(completion(piece, None)) for piece in _chunks(reply, text)]
        frames += [_sse(completion("", "stop")), _sse("[DONE]")]
        await _stream(send, "text/event-stream", frames, reply)

    async def _openai_responses(
        self, model: str, body: dict[str, Any], reply: Reply, send: _Send
    ) -> None:
        text = _answer(reply, _user_text(body, "responses"))

        def response(status: str, output_text: str | None) -> dict[str, Any]:
            output = (
                []
                if output_text is None
                else [
                    {
                        "type": "message",
                        "id": "msg_test",
                        "status": "completed",
                        "role": "assistant",
                        "content": [
                            {"type": "output_text", "text": output_text, "annotations": []}
                        ],
                    }
                ]
            )
            return {
                "id": "resp_test",
                "object": "response",
                "created_at": 0,
                "model": model,
                "status": status,
                "output": output,
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "usage": {
                    "input_tokens": 1,
                    "output_tokens": 1,
                    "total_tokens": 2,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens_details": {"reasoning_tokens": 0},
                },
            }

        if body.get("stream") is not True:
            await _respond_json(send, 200, response("completed", text), reply)
            return
        seq = iter(range(1_000_000))

        def event(kind: str, **data: Any) -> bytes:
            return _sse({"type": kind, "sequence_number": next(seq), **data}, event=kind)

        item = {
            "type": "message",
            "id": "msg_test",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        frames = [
            event("response.created", response=response("in_progress", None)),
            event("response.output_item.added", output_index=0, item=item),
            event(
                "response.content_part.added",
                item_id="msg_test",
                output_index=0,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": []},
            ),
        ]
        frames += [
            event(
                "response.output_text.delta",
                item_id="msg_test",
                output_index=0,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
            for piece in _chunks(reply, text)
        ]
        frames += [
            event(
                "response.output_text.done",
                item_id="msg_test",
                output_index=0,
                content_index=0,
                text=text,
                logprobs=[],
            ),
            event("response.completed", response=response("completed", text)),
        ]
        await _stream(send, "text/event-stream", frames, reply)

    async def _openai_embeddings(
        self, model: str, body: dict[str, Any], reply: Reply, send: _Send
    ) -> None:
        data = {
            "object": "list",
            "model": model,
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
        await _respond_json(send, 200, data, reply)

    async def _llama_completion(
        self, model: str, body: dict[str, Any], reply: Reply, send: _Send
    ) -> None:
        text = _answer(reply, _user_text(body, "prompt"))
        if body.get("stream") is not True:
            answer: dict[str, Any] = {"content": text, "stop": True, "model": model}
            if body.get("return_tokens") is True:
                answer["tokens"] = [ord(char) for char in text]
            await _respond_json(send, 200, answer, reply)
            return
        # Streamed, every frame carries its piece as token ids too (one per character here).
        frames = [
            _sse({"content": piece, "tokens": [ord(char) for char in piece], "stop": False})
            for piece in _chunks(reply, text)
        ]
        frames.append(_sse({"content": "", "stop": True, "model": model}))
        await _stream(send, "text/event-stream", frames, reply)

    # -- Ollama ------------------------------------------------------------------------

    async def _ollama_chat(
        self, model: str, body: dict[str, Any], reply: Reply, send: _Send
    ) -> None:
        text = _answer(reply, _user_text(body, "chat"))
        await _ollama_answer(
            model,
            body,
            reply,
            send,
            text,
            lambda piece: {"message": {"role": "assistant", "content": piece}},
        )

    async def _ollama_generate(
        self, model: str, body: dict[str, Any], reply: Reply, send: _Send
    ) -> None:
        text = _answer(reply, _user_text(body, "prompt"))
        # The final chunk carries ``context``: the conversation as token ids (one per
        # character here), the answer's included.
        context = {"context": [ord(char) for char in _user_text(body, "prompt") + text]}
        await _ollama_answer(
            model, body, reply, send, text, lambda piece: {"response": piece}, context
        )

    async def _ollama_embed(
        self, model: str, body: dict[str, Any], reply: Reply, send: _Send
    ) -> None:
        await _respond_json(
            send,
            200,
            {"model": model, "embeddings": [[0.1, 0.2, 0.3]], "embedding": [0.1, 0.2, 0.3]},
            reply,
        )

    # -- Anthropic ---------------------------------------------------------------------

    async def _anthropic_messages(
        self, model: str, body: dict[str, Any], reply: Reply, send: _Send
    ) -> None:
        text = _answer(reply, _user_text(body, "chat"))
        usage = {"input_tokens": 1, "output_tokens": 1}
        message = {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if body.get("stream") is not True:
            await _respond_json(send, 200, message, reply)
            return
        start = dict(message, content=[], stop_reason=None)
        frames = [
            _sse({"type": "message_start", "message": start}, event="message_start"),
            _sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                event="content_block_start",
            ),
            _sse({"type": "ping"}, event="ping"),
        ]
        for number, piece in enumerate(_chunks(reply, text)):
            if number == 1:
                frames.append(_sse({"type": "ping"}, event="ping"))
            frames.append(
                _sse(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                    event="content_block_delta",
                )
            )
        frames += [
            _sse({"type": "content_block_stop", "index": 0}, event="content_block_stop"),
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 1},
                },
                event="message_delta",
            ),
            _sse({"type": "message_stop"}, event="message_stop"),
        ]
        await _stream(send, "text/event-stream", frames, reply)

    async def _anthropic_count(
        self, model: str, body: dict[str, Any], reply: Reply, send: _Send
    ) -> None:
        await _respond_json(send, 200, {"input_tokens": 7}, reply)

    # -- Gemini ------------------------------------------------------------------------

    async def _gemini(
        self, verb: str, model: str, query: str, body: dict[str, Any], reply: Reply, send: _Send
    ) -> None:
        if verb == "countTokens":
            await _respond_json(send, 200, {"totalTokens": 7}, reply)
            return
        if verb in {"embedContent", "batchEmbedContents"}:
            await _respond_json(send, 200, {"embedding": {"values": [0.1, 0.2]}}, reply)
            return
        text = _answer(reply, _user_text(body, "gemini"))

        def candidate(piece: str, finish: str | None) -> dict[str, Any]:
            cand: dict[str, Any] = {
                "content": {"parts": [{"text": piece}], "role": "model"},
                "index": 0,
            }
            if finish:
                cand["finishReason"] = finish
            return {
                "candidates": [cand],
                "modelVersion": model,
                "usageMetadata": {
                    "promptTokenCount": 1,
                    "candidatesTokenCount": 1,
                    "totalTokenCount": 2,
                },
            }

        if verb == "generateContent":
            await _respond_json(send, 200, candidate(text, "STOP"), reply)
            return
        if verb == "streamGenerateContent":
            pieces = list(_chunks(reply, text))
            if "alt=sse" not in query:
                # Without ``alt=sse`` Gemini sends the chunks as one JSON array.
                last = len(pieces) - 1
                chunks = [
                    candidate(piece, "STOP" if i == last else None)
                    for i, piece in enumerate(pieces)
                ]
                await _respond_json(send, 200, chunks, reply)
                return
            frames = [
                _sse(candidate(piece, "STOP" if i == len(pieces) - 1 else None), newline="\r\n")
                for i, piece in enumerate(pieces)
            ]
            await _stream(send, "text/event-stream", frames, reply)
            return
        await _respond_json(send, 404, {"error": {"message": f"unknown method {verb}"}})


def _chat_logprobs(body: dict[str, Any]) -> Callable[[str], dict[str, Any]] | None:
    """With ``logprobs`` asked for, the chat ``logprobs`` of a text: one piece per character,
    with one alternative each; with vLLM's ``return_tokens_as_token_ids``, every piece and
    alternative written as its id (``token_id:<code point>`` here)."""
    if body.get("logprobs") is not True:
        return None
    as_ids = body.get("return_tokens_as_token_ids") is True

    def piece(char: str) -> dict[str, Any]:
        token = f"token_id:{ord(char)}" if as_ids else char
        alternative = "token_id:0" if as_ids else "?"
        return {
            "token": token,
            "logprob": -0.1,
            "bytes": list(token.encode()),
            "top_logprobs": [{"token": alternative, "logprob": -2.0, "bytes": [63]}],
        }

    return lambda text: {"content": [piece(char) for char in text], "refusal": None}


def _answer(reply: Reply, user_text: str) -> str:
    return reply.text if reply.text is not None else f"echo: {user_text}"


def _chunks(reply: Reply, text: str) -> Sequence[str]:
    return reply.chunks if reply.chunks is not None else split_text(text)


async def _respond(
    send: _Send, status: int, data: bytes, headers: Mapping[str, str], compress: bool = False
) -> None:
    head = {k.lower(): v for k, v in headers.items()}
    if compress:
        data = gzip.compress(data)
        head["content-encoding"] = "gzip"
    head.setdefault("content-type", "application/json")
    head["content-length"] = str(len(data))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in head.items()],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _respond_json(
    send: _Send, status: int, document: Any, reply: Reply | None = None
) -> None:
    data = json.dumps(document).encode()
    if reply is None:
        await _respond(send, status, data, {})
    else:
        await _respond(send, status, data, reply.headers, reply.gzip)


async def _stream(send: _Send, content_type: str, frames: Iterable[bytes], reply: Reply) -> None:
    head = {"content-type": content_type, "cache-control": "no-cache"}
    head.update({k.lower(): v for k, v in reply.headers.items()})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in head.items()],
        }
    )
    for piece in reply.wire if reply.wire is not None else frames:
        await send({"type": "http.response.body", "body": piece, "more_body": True})
        if reply.chunk_delay:
            await asyncio.sleep(reply.chunk_delay)
    await send({"type": "http.response.body", "body": b""})


#: Writes the answer to one request on the upstream side of its connection.
Answer = Callable[[socket.socket], None]


class ScriptedUpstream:
    """A TCP upstream that reads each request (head and ``Content-Length`` body) and hands
    the connection to the next of ``answers`` (the last one for every request after)."""

    def __init__(self, *answers: Answer) -> None:
        self._answers = list(answers)
        self.received = threading.Semaphore(0)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        # shutdown wakes the thread blocked in accept(), which close alone may not.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self._listener.accept()
                threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            read_message(conn)
            respond = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
            self.received.release()
            respond(conn)


# -- the gateway in front of it -----------------------------------------------------------


@dataclass
class Gateway:
    """A running gateway and what it sits in front of."""

    url: str
    upstream: UpstreamServer
    upstream_url: str
    runtime: Any
    app: Any
    workdir: Path

    def audit(self) -> list[dict[str, Any]]:
        """Every audit record written so far."""
        path = Path(self.runtime.config.audit.path)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def audit_text(self) -> str:
        """The raw audit log."""
        path = Path(self.runtime.config.audit.path)
        return path.read_text() if path.exists() else ""

    def metrics(self, expect: str | None = None, timeout: float = 2.0) -> str:
        """The Prometheus exposition of the gateway.

        With ``expect``, wait (up to ``timeout`` seconds) until it contains that text: the
        gateway counts a request after its response went out, so a client can be faster.
        """
        deadline = time.monotonic() + timeout
        while True:
            text = bytes(self.runtime.metrics.render()[0]).decode()
            if expect is None or expect in text or time.monotonic() > deadline:
                return text
            time.sleep(0.01)


#: Hands out a running gateway for a configuration (the ``shared_gateway`` fixture).
SharedGateways = Callable[[Mapping[str, Any]], Gateway]


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def gateway_config(
    workdir: Path, upstream_url: str, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An enforce-mode configuration whose state lives in ``workdir``, plus ``overrides``."""
    state = workdir / ".haechi"
    base = {
        "mode": "enforce",
        "target": {"type": "openai-compatible", "upstream": upstream_url},
        "policy": {"mode": "enforce"},
        "keys": {"keyFile": str(state / "dev.keys.json")},
        "audit": {"path": str(state / "audit.jsonl")},
        "tokenVault": {"path": str(state / "token-vault.json")},
        "auth": {"store": str(state / "auth.json")},
    }
    return _merge(base, overrides or {})


@contextlib.contextmanager
def gateway_in_front(
    workdir: Path,
    config: Mapping[str, Any] | None = None,
    *,
    upstream: UpstreamServer | None = None,
    upstream_url: str | None = None,
    providers: Mapping[str, Any] | None = None,
    forwarded_proto_gate: bool = False,
    **uvicorn_options: Any,
) -> Iterator[Gateway]:
    """Run the gateway on a free loopback port in front of ``upstream`` (a fresh one).

    ``upstream_url`` replaces the upstream's address (for example to add a path prefix, or
    to point at a port nothing listens on).
    """
    from haechi.crypto import init_key_file
    from haechi.proxy.app import GatewayApp
    from haechi.proxy.server import uvicorn_options as gateway_options
    from haechi.runtime import create_runtime

    upstream = upstream or UpstreamServer()
    upstream_serving = serve_in_thread(upstream)
    up = upstream_serving.__enter__()
    # A server takes a few tenths of a second to stop (uvicorn looks for the request on its
    # next tick, then lets its connections finish): the upstream stops while the gateway does.
    upstream_stop = threading.Thread(target=upstream_serving.__exit__, args=(None, None, None))
    try:
        settings = gateway_config(workdir, upstream_url or up.url, config)
        init_key_file(settings["keys"]["keyFile"])
        runtime = create_runtime(settings, providers)
        app = GatewayApp(runtime, forwarded_proto_gate=forwarded_proto_gate)
        # The server options haechi proxy runs with, its event loop (uvloop) included.
        options = gateway_options(runtime.config)
        options.update(uvicorn_options)
        with serve_in_thread(app, **options) as server:
            try:
                yield Gateway(server.url, upstream, up.url, runtime, app, workdir)
            finally:
                upstream_stop.start()
    finally:
        if upstream_stop.ident is None:  # the gateway did not start
            upstream_stop.start()
        upstream_stop.join()


def main() -> None:  # pragma: no cover - used when started as a separate process
    """Serve on ``--host``/``--port`` and print the bound port on stdout."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: small response writes go out at once instead of
    # waiting out the peer's delayed ACK (40 ms per response on Linux).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((args.host, args.port))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(UpstreamServer(), log_level="warning", lifespan="off", access_log=False)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":  # pragma: no cover
    main()


async def _ollama_answer(
    model: str,
    body: dict[str, Any],
    reply: Reply,
    send: _Send,
    text: str,
    content: Callable[[str], dict[str, Any]],
    final: Mapping[str, Any] | None = None,
) -> None:
    """Answer an Ollama chat or generate call: one JSON body, or NDJSON chunks ending in done
    (which carries ``final``'s fields)."""

    def chunk(piece: str, done: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": model,
            "created_at": "2024-01-01T00:00:00Z",
            **content(piece),
            "done": done,
        }
        if done:
            data.update(done_reason="stop", total_duration=1, eval_count=1, **(final or {}))
        return data

    if body.get("stream") is False:
        await _respond_json(send, 200, chunk(text, True), reply)
        return
    frames = [_ndjson(chunk(piece, False)) for piece in _chunks(reply, text)]
    frames.append(_ndjson(chunk("", True)))
    await _stream(send, "application/x-ndjson", frames, reply)
