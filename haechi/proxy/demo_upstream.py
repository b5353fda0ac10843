# SPDX-License-Identifier: Apache-2.0
"""A stand-in model server for ``haechi demo`` and the throughput benchmark.

It speaks the OpenAI chat-completions wire format, answers by echoing the last user message
(so whatever the gateway let through is visible in the reply), and records every request body
it received. That record is the point of the demo: it shows what the model actually saw.
"""

from __future__ import annotations

import json
import time
from typing import Any

__all__ = ["DemoUpstream", "chat_completion", "last_user_text"]

_Scope = dict[str, Any]


def last_user_text(body: Any) -> str:
    """Text of the last user message of an OpenAI-style ``messages`` list ("" if none)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    part["text"]
                    for part in content
                    if isinstance(part, dict) and isinstance(part.get("text"), str)
                )
    return ""


def chat_completion(text: str, model: str) -> dict[str, Any]:
    """A complete, non-streamed ``chat.completion`` object whose answer is ``text``."""
    return {
        "id": "chatcmpl-demo",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class DemoUpstream:
    """ASGI app answering ``POST /v1/chat/completions`` with an echo of the user message."""

    def __init__(self) -> None:
        self.received: list[Any] = []

    async def __call__(self, scope: _Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        if scope["method"] != "POST" or scope["path"] != "/v1/chat/completions":
            await _send_json(send, 404, {"error": {"message": "not found"}})
            return
        try:
            body = json.loads(b"".join(chunks) or b"{}")
        except ValueError:
            await _send_json(send, 400, {"error": {"message": "invalid JSON"}})
            return
        self.received.append(body)
        model = body.get("model") if isinstance(body, dict) else None
        reply = chat_completion(f"You said: {last_user_text(body)}", str(model or "demo"))
        await _send_json(send, 200, reply)


async def _send_json(send: Any, status: int, document: Any) -> None:
    data = json.dumps(document).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
