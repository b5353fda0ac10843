# SPDX-License-Identifier: Apache-2.0
"""The object keys that give LLM, tool and JSON-RPC payloads their structure.

They lie on the paths of most findings and are the keys the detection engine meets most, so
work that depends only on a key's name (its hashed path segment, whether it names a secret) is
done for them once per process. No other key name is remembered beyond the call that meets
it: a key can itself be a detected value (an e-mail address used as a key), and a process-wide
cache of raw keys would keep it in memory after the call.
"""

from __future__ import annotations

from typing import Final

__all__ = ["STRUCTURAL_KEYS"]

STRUCTURAL_KEYS: Final = (
    "args",
    "arguments",
    "candidates",
    "choices",
    "content",
    "contents",
    "context",
    "data",
    "delta",
    "description",
    "document",
    "documents",
    "function",
    "functionCall",
    "functionResponse",
    "history",
    "id",
    "image_url",
    "input",
    "instructions",
    "message",
    "messages",
    "metadata",
    "model",
    "name",
    "output",
    "params",
    "parts",
    "prompt",
    "query",
    "response",
    "result",
    "role",
    "structuredContent",
    "system",
    "systemInstruction",
    "text",
    "tool_calls",
    "tools",
    "type",
    "url",
    "user",
    "value",
)
