# SPDX-License-Identifier: Apache-2.0
"""Text written as the model's token ids, which detection cannot read.

Some model servers return, beside an answer's text, the same text as token ids: Ollama's
``/api/generate`` its ``context`` (the whole conversation), llama.cpp's ``/completion`` its
``tokens`` (always when streaming), vLLM its ``token_ids`` per choice when asked with
``return_token_ids``. Anyone holding the model's tokenizer reads the ids back into text, the
redacted parts included. vLLM can also write the pieces of an answer's log-probabilities as
ids (``"token_id:1234"``, with ``return_tokens_as_token_ids`` in the request or as a server
option). A route names such fields in :attr:`~haechi.protocols.types.Route.token_ids`
(:class:`TokenIdFields`), and an answer protected in enforce mode goes out without them,
wherever they sit in it (:meth:`TokenIdFields.scrub`). A path no adapter knows may be served
like any known route (vLLM answers ``/invocations`` as its chat route), so its answers are
scrubbed of the fields of every route (:meth:`TokenIdFields.union`).

Requests can carry token ids too: a completions ``prompt`` or an embeddings ``input`` may be
lists of ids (LangChain's OpenAI embeddings send them), and so may Ollama's ``context`` and
llama.cpp's ``prompt``. Whatever they spell reaches the model uninspected, so the gateway
refuses such a request unless ``target.tokenIdInput`` is ``relay`` (:func:`holds_token_ids`
finds them, in the fields a route names in
:attr:`~haechi.protocols.types.Route.token_id_inputs`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from haechi.protocols.member_names import members_named, named_like

__all__ = ["NO_TOKEN_IDS", "TokenIdFields", "holds_embeddings", "holds_token_ids"]

#: How vLLM writes a piece as its token id.
_SPELLED_ID: Final = re.compile(r"token_id:[0-9]+")
_SPELLED_MARK: Final = "token_id:"


@dataclass(frozen=True, slots=True)
class TokenIdFields:
    """The members of a route's answers that may restate its text as token ids.

    ``opaque``: members that are token ids (Ollama's ``context``): left out of the answer.
    ``spelled``: members whose pieces a server may write as ids (vLLM's ``logprobs``): set to
    ``null`` when any piece in them, or any key of their alternatives, is one.
    """

    opaque: frozenset[str] = frozenset()
    spelled: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.opaque or self.spelled)

    @classmethod
    def union(cls, fields: Iterable[TokenIdFields]) -> TokenIdFields:
        """The members any of ``fields`` names: what an answer may carry when it can be the
        answer of any of their routes (on a path no adapter knows, it can)."""
        listed = tuple(fields)
        return cls(
            frozenset().union(*(each.opaque for each in listed)),
            frozenset().union(*(each.spelled for each in listed)),
        )

    def scrub(self, document: Any, text: str | None = None) -> bool:
        """Take the token ids out of ``document``, in place; whether there were any.

        A member is taken out under every name a lenient decoder binds to the field (see
        :func:`~haechi.protocols.member_names.named_like`): Ollama's Go client fills
        ``context`` from ``"Context"`` or ``"CONTEXT"`` as well, the last one winning.

        ``text``, the JSON ``document`` was parsed from, spares the walk when it cannot hold
        one: it is ASCII (no other character folds to a letter of a name), names none of the
        members in quotes in any letter case (or, for ``spelled``, holds no ``token_id:``)
        and has no ``\\u`` escape (the only escape that writes a letter, digit, ``_`` or
        ``:``, so the only one that could spell them; answers are full of ``\\n``). The walk
        is iterative, so nesting depth is bounded by what the caller parsed, not by Python's
        recursion limit.
        """
        opaque, spelled = self.opaque, self.spelled
        if text is not None and text.isascii() and "\\u" not in text:
            lowered = text.lower()
            if not any(f'"{name}"' in lowered for name in opaque):
                opaque = frozenset()
            if _SPELLED_MARK not in text or not any(f'"{name}"' in lowered for name in spelled):
                spelled = frozenset()
        if not (opaque or spelled):
            return False
        changed = False
        stack = [document]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for name in _members(node, opaque):
                    del node[name]
                    changed = True
                for name in _members(node, spelled):
                    value = node[name]
                    if value is not None and _spells_ids(value):
                        node[name] = None
                        changed = True
                stack.extend(value for value in node.values() if isinstance(value, dict | list))
            elif isinstance(node, list):
                stack.extend(value for value in node if isinstance(value, dict | list))
        return changed


#: A route whose answers restate nothing as token ids.
NO_TOKEN_IDS: Final = TokenIdFields()


def _members(node: dict[str, Any], fields: frozenset[str]) -> list[str]:
    """The names of ``node``'s members a lenient decoder may bind to one of ``fields``."""
    if not fields:
        return []
    return [name for name in node if any(named_like(name, field) for field in fields)]


def _spells_ids(value: Any) -> bool:
    """Whether a string in ``value``, or a key of an object in it, is a token id."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _SPELLED_ID.fullmatch(node):
                return True
        elif isinstance(node, dict):
            if any(isinstance(key, str) and _SPELLED_ID.fullmatch(key) for key in node):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def holds_token_ids(body: Any, fields: tuple[str, ...]) -> bool:
    """Whether a top-level member of the request ``body`` named like one of ``fields``
    holds an integral number, at any depth: a token id (text in these fields is strings, or
    lists of strings).

    Both tests follow the servers that read the body, not its exact spelling: Ollama's Go
    decoder binds ``"Context"`` or ``"CONTEXT"`` to ``context`` (every member named like a
    field counts, see :func:`~haechi.protocols.member_names.named_like`), and a lax decoder
    (pydantic, as vLLM's) reads ``73.0`` or ``7.3e1`` as the id 73 (any number without a
    fraction counts, whatever its JSON spelling; ``true`` and ``false`` never).
    """
    stack = _values_named(body, fields)
    while stack:
        node = stack.pop()
        if _is_token_id(node):
            return True
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
    return False


def holds_embeddings(body: Any, fields: tuple[str, ...]) -> bool:
    """Whether a top-level member of the request ``body`` named like one of ``fields`` holds
    anything: a prompt given as embeddings (vLLM's base64 tensors) reaches the model without
    any text to inspect."""
    return any(value is not None for value in _values_named(body, fields))


def _values_named(body: Any, fields: tuple[str, ...]) -> list[Any]:
    """The values of ``body``'s top-level members named like one of ``fields``."""
    return [body[name] for field in fields for name in members_named(body, field)]


def _is_token_id(node: Any) -> bool:
    """Whether ``node`` is a number a server may read as an integer (never a boolean)."""
    if isinstance(node, bool):
        return False
    if isinstance(node, int):
        return True
    return isinstance(node, float) and node.is_integer()
