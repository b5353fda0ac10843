# SPDX-License-Identifier: Apache-2.0
"""Text written as the model's token ids, which detection cannot read.

Some model servers return, beside an answer's text, the same text as token ids: Ollama's
``/api/generate`` its ``context`` (the whole conversation), llama.cpp's ``/completion`` its
``tokens`` (always when streaming), vLLM its ``token_ids`` per choice when asked with
``return_token_ids``. Anyone holding the model's tokenizer reads the ids back into text, the
redacted parts included. A route names such fields in
:attr:`~haechi.protocols.types.Route.opaque_fields`, and an answer protected in enforce mode
goes out without them, wherever they sit in it (:func:`drop_fields`).

Requests can carry token ids too: a completions ``prompt`` or an embeddings ``input`` may be
lists of ids (LangChain's OpenAI embeddings send them), and so may Ollama's ``context`` and
llama.cpp's ``prompt``. Whatever they spell reaches the model uninspected, so the gateway
refuses such a request unless ``target.tokenIdInput`` is ``relay`` (:func:`holds_token_ids`
finds them, in the fields a route names in
:attr:`~haechi.protocols.types.Route.token_id_inputs`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["drop_fields", "holds_token_ids"]


def drop_fields(document: Any, names: frozenset[str], text: str | None = None) -> bool:
    """Remove the members named in ``names`` from every object in ``document``, in place;
    whether any was there.

    ``text``, the JSON ``document`` was parsed from, spares the walk when it cannot name
    one: it spells none of the names in quotes and has no escape (which could spell any).
    The walk is iterative, so nesting depth is bounded by what the caller parsed, not by
    Python's recursion limit.
    """
    if not names:
        return False
    if text is not None and "\\" not in text and not any(f'"{name}"' in text for name in names):
        return False
    dropped = False
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for name in names:
                if name in node:
                    del node[name]
                    dropped = True
            stack.extend(value for value in node.values() if isinstance(value, dict | list))
        elif isinstance(node, list):
            stack.extend(value for value in node if isinstance(value, dict | list))
    return dropped


def holds_token_ids(body: Any, fields: tuple[str, ...]) -> bool:
    """Whether one of the top-level ``fields`` of the request ``body`` holds an integer, at
    any depth: a token id (text in these fields is strings, or lists of strings)."""
    if not isinstance(body, dict):
        return False
    stack = [body[field] for field in fields if field in body]
    while stack:
        node = stack.pop()
        if type(node) is int:
            return True
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
    return False
