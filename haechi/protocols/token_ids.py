# SPDX-License-Identifier: Apache-2.0
"""Answer fields that restate the answer as the model's token ids.

Some model servers return, beside an answer's text, the same text as token ids: Ollama's
``/api/generate`` its ``context`` (the whole conversation), llama.cpp's ``/completion`` its
``tokens`` (always when streaming), vLLM its ``token_ids`` per choice when asked with
``return_token_ids``. Detection reads text, not ids, and anyone holding the model's tokenizer
reads the ids back into text, the redacted parts included. A route names such fields in
:attr:`~haechi.protocols.types.Route.opaque_fields`, and an answer protected in enforce mode
goes out without them, wherever they sit in it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["drop_fields"]


def drop_fields(document: Any, names: frozenset[str]) -> bool:
    """Remove the members named in ``names`` from every object in ``document``, in place;
    whether any was there.

    The walk is iterative, so nesting depth is bounded by what the caller parsed, not by
    Python's recursion limit.
    """
    if not names:
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
