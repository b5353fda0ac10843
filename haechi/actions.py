# SPDX-License-Identifier: Apache-2.0
"""What each action writes in place of a detected value, and how a payload is rewritten.

The replacement formats are a compatibility contract (tools downstream parse them):

- ``redact``   -> ``[REDACTED:<type>]``
- ``mask``     -> all ``*`` up to 8 characters; else first 2 + ``*`` x max(4, n-4) + last 2
- ``tokenize`` -> ``[TOKEN:<token id>]`` from the vault, or ``[TOKEN:<type>:<12 hex>]`` (a
  keyed hash, not reversible, stable within the process) when no vault is configured
- ``encrypt``  -> ``[HAECHI_ENC:<base64url of the envelope JSON, no padding>]``, the envelope
  bound to the AAD ``{context, path, type, ruleId}``
- ``allow`` leaves the text; ``block`` rejects the whole payload (decided by the caller).

Only the matched span changes; the text around it is kept byte for byte. Overlapping spans
are merged and replaced once with the strongest action among them (``redact`` rather than
the equally strong ``mask``), so no character of any finding survives a rewrite. A
transformed number becomes a string; a transformed object key is renamed in place (``#2``,
``#3``, ... when the new name is taken), deepest keys first.
Rewriting copies only the containers on the way to a change: the input is never modified,
and unchanged parts are shared with it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from haechi.errors import LimitError
from haechi.models import ACTION_STRENGTH, Action, Detection, PathSegment
from haechi.payload import PathTexts, number_text, path_text
from haechi.providers import CryptoProvider

__all__ = [
    "Item",
    "Tokenizer",
    "Transformer",
    "apply_rewrites",
    "encrypt_marker",
    "mask",
    "redact_marker",
    "transform_payload",
    "unvaulted_token_marker",
]

_UNCHANGED: frozenset[str] = frozenset({"allow", "block"})

#: The key of the labels ``tokenize`` writes without a vault (see
#: :func:`unvaulted_token_marker`); drawn per process and never stored.
_LABEL_KEY: Final = secrets.token_bytes(32)


class _Issued(Protocol):
    @property
    def token(self) -> str: ...


class Tokenizer(Protocol):
    """The part of the token vault the transform needs."""

    async def tokenize(
        self,
        plaintext: str,
        type: str,
        *,
        context: Mapping[str, Any],
        metadata: Mapping[str, Any],
    ) -> _Issued:
        """Store ``plaintext`` and return the issued token."""
        ...


def redact_marker(detection_type: str) -> str:
    """``[REDACTED:<type>]``."""
    return f"[REDACTED:{detection_type}]"


def mask(segment: str) -> str:
    """Hide ``segment`` but keep its length (lengths count characters, i.e. code points)."""
    length = len(segment)
    if length <= 8:
        return "*" * length
    return segment[:2] + "*" * max(4, length - 4) + segment[-2:]


def unvaulted_token_marker(detection_type: str, segment: str) -> str:
    """``[TOKEN:<type>:<12 hex>]``: a one-way label, stable within the process, used only
    without a vault.

    The hex is an HMAC under a key drawn when the process starts, not a plain hash: a phone
    number or a national id has few enough possible values that whoever receives a plain
    hash of one (the upstream) finds the value by hashing them all. No key file is needed,
    as none was for a label that is never restored.
    """
    digest = hmac.new(_LABEL_KEY, segment.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return f"[TOKEN:{detection_type}:{digest.hexdigest()[:12]}]"


def encrypt_marker(envelope: Mapping[str, Any]) -> str:
    """``[HAECHI_ENC:<base64url(compact JSON of the envelope), no padding>]``."""
    text = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)
    encoded = base64.urlsafe_b64encode(text.encode("utf-8")).rstrip(b"=").decode("ascii")
    return f"[HAECHI_ENC:{encoded}]"


@dataclass(frozen=True, slots=True)
class Item:
    """One decided detection: what was found and what to do with it."""

    detection: Detection
    action: Action


class Transformer:
    """Produces replacement text for one protect call and remembers the tokens it issued.

    ``context`` is the call context bound into vault records and encryption AAD (direction,
    protocol, operation, mode, correlation id, identity, profile), or a function returning
    it: most calls never tokenize or encrypt, so the function is called only when a value
    is first tokenized or encrypted (once).
    """

    __slots__ = (
        "_binding",
        "_context",
        "_crypto",
        "_issued",
        "_max_tokens",
        "_paths",
        "_reserved",
        "_vault",
        "_withheld",
    )

    def __init__(
        self,
        *,
        crypto: CryptoProvider,
        vault: Tokenizer | None,
        context: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
        max_tokens: int = 0,
    ) -> None:
        self._crypto = crypto
        self._vault = vault
        self._max_tokens = max_tokens
        self._reserved = 0
        self._binding = context
        self._context: dict[str, Any] | None = None
        self._issued: dict[str, None] = {}
        self._paths: PathTexts | None = None
        self._withheld: set[str] = set()

    def _bound(self) -> dict[str, Any]:
        """The call context (a private copy, made on first use)."""
        if self._context is None:
            binding = self._binding
            self._context = dict(binding() if callable(binding) else binding)
        return self._context

    def _path_text(self, item: Item) -> str:
        """The audit-safe path of ``item``, bound into its vault record or encryption AAD
        (named on first use; prefixes are shared across the call).

        A key in which a value was found is written ``key_redacted``, as the audit writes it:
        the vault keeps the path in clear beside the sealed value, and the envelope's
        ``aadHash`` hashes it, so the short hash of a key such as a phone number would give
        the number back to whoever tries them all.
        """
        if self._withheld:
            return path_text(item.detection.path, self._withheld)
        if self._paths is None:
            self._paths = PathTexts()
        return self._paths(item.detection.path)

    def withhold_keys(self, items: Iterable[Item]) -> None:
        """Take note of the keys in which ``items`` found a value (whatever their action),
        so that no path bound into a record or an AAD names them (see :meth:`_path_text`).

        :meth:`reserve` and :func:`transform_payload` call it with the items of the call
        before anything is stored.
        """
        for item in items:
            path = item.detection.path
            if item.detection.kind == "key" and path and isinstance(path[-1], str):
                self._withheld.add(path[-1])

    def reserve(self, items: Iterable[Item]) -> None:
        """Count the values ``items`` would tokenize in the vault against ``max_tokens``
        (over the transformer's life: a call, or a whole stream) before any is stored.

        Every token is a record the vault stores and keeps (the local store rewrites its
        file to add it), so an unbounded payload could fill the vault and hold it for as
        long as its writes take. Raises
        :class:`~haechi.errors.LimitError` (413 ``haechi_too_many_tokens``) past the limit;
        counts each detection, so overlapping ones may count more values than are stored.
        The keys holding values among ``items`` are withheld (:meth:`withhold_keys`).
        """
        items = tuple(items)
        self.withhold_keys(items)
        if not self._max_tokens or self._vault is None:
            return
        wanted = self._reserved + sum(1 for item in items if item.action == "tokenize")
        if wanted > self._max_tokens:
            raise LimitError(
                f"more values to tokenize than tokenVault.maxTokensPerPayload ({self._max_tokens})",
                status_code=413,
                error_code="haechi_too_many_tokens",
            )
        self._reserved = wanted

    @property
    def issued_tokens(self) -> tuple[str, ...]:
        """Tokens minted or reused so far, in first-issue order, without repeats."""
        return tuple(self._issued)

    async def _replacements(self, spans: Sequence[tuple[Item, str]]) -> list[str]:
        """The replacement of every ``(item, segment)``, in order.

        Values to tokenize are stored in the vault together: each token is a write of the
        vault's store, and a store that writes concurrent puts together (the local file
        store rewrites its file once per group) then stores a payload of many values in a
        few writes rather than one rewrite per value. Tokens are registered in span order
        whatever order the writes finish in; the first failure cancels the other writes.
        """
        vaulted = [index for index, (item, _) in enumerate(spans) if item.action == "tokenize"]
        issued: dict[int, str] = {}
        if self._vault is not None and len(vaulted) > 1:
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = {
                        index: group.create_task(self._tokenize(*spans[index])) for index in vaulted
                    }
            except BaseExceptionGroup as failed:
                raise failed.exceptions[0] from None
            issued = {index: task.result() for index, task in tasks.items()}
        results: list[str] = []
        for index, (item, segment) in enumerate(spans):
            if item.action == "tokenize" and self._vault is not None:
                token = issued.get(index)
                if token is None:
                    token = await self._tokenize(item, segment)
                self._issued[token] = None
                results.append(f"[TOKEN:{token}]")
            else:
                results.append(self._written(item, segment))
        return results

    async def _tokenize(self, item: Item, segment: str) -> str:
        """Store ``segment`` in the vault; return its token id."""
        assert self._vault is not None
        detection = item.detection
        issued = await self._vault.tokenize(
            segment,
            detection.type,
            context=self._bound(),
            metadata={"path": self._path_text(item), "ruleId": detection.rule_id},
        )
        return issued.token

    def _written(self, item: Item, segment: str) -> str:
        """The replacement of ``segment`` under any action but a vaulted ``tokenize``."""
        detection = item.detection
        action = item.action
        if action == "redact":
            return redact_marker(detection.type)
        if action == "mask":
            return mask(segment)
        if action == "tokenize":
            return unvaulted_token_marker(detection.type, segment)
        if action == "encrypt":
            aad = {
                "context": self._bound(),
                "path": self._path_text(item),
                "type": detection.type,
                "ruleId": detection.rule_id,
            }
            return encrypt_marker(self._crypto.encrypt(segment, aad))
        return segment

    async def transform_text(self, text: str, items: Sequence[Item]) -> str:
        """Rewrite every span of ``items`` in ``text``; allow and block leave text alone."""
        return (await self.transform_texts([(text, items)]))[0]

    async def transform_texts(self, texts: Sequence[tuple[str, Sequence[Item]]]) -> list[str]:
        """:meth:`transform_text` of each ``(text, items)``, their values stored together."""
        plans = [_spans(text, items) for text, items in texts]
        wanted = [
            (item, text[start:end])
            for (text, _), plan in zip(texts, plans, strict=True)
            for start, end, item in plan
        ]
        if not wanted:
            return [text for text, _ in texts]
        replaced = iter(await self._replacements(wanted))
        rewritten: list[str] = []
        for (text, _), plan in zip(texts, plans, strict=True):
            parts: list[str] = []
            cursor = 0
            for start, end, _item in plan:
                parts.append(text[cursor:start])
                parts.append(next(replaced))
                cursor = end
            parts.append(text[cursor:])
            rewritten.append("".join(parts) if plan else text)
        return rewritten


def _rank(action: Action) -> tuple[int, bool]:
    """How an action ranks for a merged span: by strength, and between equals ``mask`` last.

    ``mask`` and ``redact`` are equally strong, but a mask keeps the first and last two
    characters of what it covers: written over a span merged with a finding to redact, it
    would keep characters of that finding (``+8****...om`` for a phone number running into
    an address).
    """
    return ACTION_STRENGTH[action], action != "mask"


def _spans(text: str, items: Sequence[Item]) -> list[tuple[int, int, Item]]:
    """The spans of ``text`` to rewrite, in order: overlapping spans merged into one, under
    the strongest action among them (allow and block rewrite nothing; see :func:`_rank`)."""
    active = sorted(
        (
            item
            for item in items
            if item.action not in _UNCHANGED and item.detection.end > item.detection.start
        ),
        key=lambda item: (item.detection.start, -item.detection.end),
    )
    spans: list[tuple[int, int, Item]] = []
    index = 0
    while index < len(active):
        start = active[index].detection.start
        end = active[index].detection.end
        winner = active[index]
        index += 1
        while index < len(active) and active[index].detection.start < end:
            candidate = active[index]
            end = max(end, candidate.detection.end)
            if _rank(candidate.action) > _rank(winner.action):
                winner = candidate
            index += 1
        spans.append((start, end, winner))
    return spans


async def transform_payload(payload: Any, items: Sequence[Item], transformer: Transformer) -> Any:
    """Return ``payload`` with every item's span rewritten (the input is not modified)."""
    transformer.withhold_keys(items)
    leaves: dict[tuple[PathSegment, ...], list[Item]] = {}
    keys: dict[tuple[PathSegment, ...], list[Item]] = {}
    for item in items:
        if item.action in _UNCHANGED:
            continue
        target = keys if item.detection.kind == "key" else leaves
        target.setdefault(item.detection.path, []).append(item)
    if not leaves and not keys:
        return payload
    new_leaves: dict[tuple[PathSegment, ...], str] = {}
    new_keys: dict[tuple[PathSegment, ...], str] = {}
    targets: list[tuple[tuple[PathSegment, ...], dict[tuple[PathSegment, ...], str]]] = []
    texts: list[tuple[str, Sequence[Item]]] = []
    for path, group in leaves.items():
        targets.append((path, new_leaves))
        texts.append((_leaf_text(_lookup(payload, path)), group))
    for path, group in keys.items():
        original_key = path[-1]
        assert isinstance(original_key, str)  # key entries always end in their key
        targets.append((path, new_keys))
        texts.append((original_key, group))
    rewritten = await transformer.transform_texts(texts)
    for (path, rewrites), (original, _), text in zip(targets, texts, rewritten, strict=True):
        if text != original:
            rewrites[path] = text
    return apply_rewrites(payload, new_leaves, new_keys)


def _lookup(payload: Any, path: tuple[PathSegment, ...]) -> Any:
    node = payload
    for segment in path:
        node = node[segment]
    return node


def _leaf_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    text = number_text(value)
    if text is None:  # pragma: no cover - the walk never yields entries for these
        raise TypeError("not an inspectable leaf")
    return text


class _CopyOnWrite:
    """Shallow copies of the containers on the way to a change, keyed by original path."""

    __slots__ = ("copies", "root")

    def __init__(self, payload: Any) -> None:
        self.root = _shallow(payload)
        self.copies: dict[tuple[PathSegment, ...], Any] = {(): self.root}

    def container(self, path: tuple[PathSegment, ...]) -> Any:
        depth = len(path)
        while path[:depth] not in self.copies:
            depth -= 1
        node = self.copies[path[:depth]]
        for index in range(depth, len(path)):
            segment = path[index]
            child = _shallow(node[segment])
            node[segment] = child
            self.copies[path[: index + 1]] = child
            node = child
        return node


def _shallow(container: Any) -> Any:
    if isinstance(container, dict):
        return dict(container)
    return list(container)


def apply_rewrites(
    payload: Any,
    leaves: Mapping[tuple[PathSegment, ...], str],
    keys: Mapping[tuple[PathSegment, ...], str],
) -> Any:
    """Return ``payload`` with the leaves at ``leaves``' paths replaced by their text and
    the keys at ``keys``' paths renamed (deepest first; ``#2``, ``#3``... on collisions).

    Paths are those of the original payload. Only containers on the way to a change are
    copied; the input is not modified.
    """
    if () in leaves:
        return leaves[()]
    if not leaves and not keys:
        return payload
    tree = _CopyOnWrite(payload)
    for path, text in leaves.items():
        tree.container(path[:-1])[path[-1]] = text
    renames: dict[tuple[PathSegment, ...], dict[str, str]] = {}
    for path, new_key in keys.items():
        old_key = path[-1]
        assert isinstance(old_key, str)
        renames.setdefault(path[:-1], {})[old_key] = new_key
    for container_path in sorted(renames, key=len, reverse=True):
        _rename_keys(tree.container(container_path), renames[container_path])
    return tree.root


def _rename_keys(container: dict[str, Any], renames: Mapping[str, str]) -> None:
    """Rename keys in place, keeping their positions; a taken name gets ``#2``, ``#3``..."""
    in_use = set(container)
    final: dict[str, str] = {}
    for old_key in container:
        wanted = renames.get(old_key)
        if wanted is None:
            continue
        in_use.discard(old_key)
        candidate = wanted
        suffix = 2
        while candidate in in_use:
            candidate = f"{wanted}#{suffix}"
            suffix += 1
        in_use.add(candidate)
        final[old_key] = candidate
    items = [(final.get(key, key), value) for key, value in container.items()]
    container.clear()
    container.update(items)
