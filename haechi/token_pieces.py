# SPDX-License-Identifier: Apache-2.0
"""Token log-probabilities in model answers: the answer again, cut into vocabulary pieces.

Asked for ``logprobs``, model servers return beside the answer text the same text as the
list of pieces the model produced (``" jane"``, ``".doe"``, ``"@example"``, ``".com"``), each
with its UTF-8 bytes and the alternatives the model considered. Scanning each piece on its
own finds nothing there, so a value redacted in the answer would come back through its
pieces. This module finds those lists, gives their pieces joined as one text to scan, and
rewrites the pieces a finding covers.

Recognised lists (answers of OpenAI chat, completions and Responses, vLLM, llama.cpp,
Ollama and Gemini):

- a list of objects that all carry a string ``token`` (``logprobs.content``, Responses
  ``logprobs``, Ollama's and llama.cpp's ``logprobs``/``completion_probabilities``, Gemini's
  ``chosenCandidates``): each object's ``token`` is a piece; its ``bytes`` and
  ``top_logprobs`` go with it;
- a list of strings under ``tokens`` (the completions API's ``logprobs.tokens``).

Lists beside such a list under ``top_logprobs`` or ``topCandidates`` hold, position by
position, the alternatives of its pieces: they go with it (emptied where a piece is
rewritten). Such a list with no list of pieces beside it is read as pieces itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from haechi.models import PathSegment

__all__ = ["PieceRun", "drop_piece_runs", "find_piece_runs", "scrub_piece_runs"]

Path = tuple[PathSegment, ...]

#: Names of lists that hold, position by position, the alternatives of a run's pieces.
_ALTERNATIVES: Final = frozenset({"top_logprobs", "topCandidates"})


@dataclass(frozen=True, slots=True)
class PieceRun:
    """One list of pieces.

    Attributes:
        path: where the list is in the document.
        pieces: the pieces' texts, in order.
        keyed: the list holds ``{"token": ...}`` objects (else bare strings).
        alternatives: the lists beside it holding each position's alternatives.
    """

    path: Path
    pieces: tuple[str, ...]
    keyed: bool
    alternatives: tuple[Path, ...]

    @property
    def text(self) -> str:
        """The pieces joined: the text the model produced."""
        return "".join(self.pieces)


def find_piece_runs(document: Any) -> list[PieceRun]:
    """Every list of pieces in ``document`` (in no particular order)."""
    runs: list[PieceRun] = []
    stack: list[tuple[Any, Path]] = [(document, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            stack.extend(((child, (*path, index)) for index, child in enumerate(node)))
            continue
        if not isinstance(node, dict):
            continue
        # Alternatives beside a list of pieces go with it; alone, they are pieces themselves.
        paired = any(
            key not in _ALTERNATIVES and _run_kind(key, value) is not None
            for key, value in node.items()
        )
        beside = tuple((*path, key) for key in _ALTERNATIVES if key in node) if paired else ()
        for key, value in node.items():
            if paired and key in _ALTERNATIVES:
                continue
            keyed = _run_kind(key, value)
            if keyed is not None:
                pieces = tuple(item["token"] if keyed else item for item in value)
                runs.append(PieceRun((*path, key), pieces, keyed, beside))
            elif isinstance(value, dict | list):
                stack.append((value, (*path, key)))
    return runs


def _run_kind(key: str, value: Any) -> bool | None:
    """``True`` for a list of token objects, ``False`` for a ``tokens`` list of strings,
    ``None`` for anything else."""
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(item, dict) and isinstance(item.get("token"), str) for item in value):
        return True
    if key == "tokens" and all(isinstance(item, str) for item in value):
        return False
    return None


def scrub_piece_runs(
    document: Any, spans: Sequence[tuple[PieceRun, Sequence[tuple[int, int, str]]]]
) -> Any:
    """``document`` with the pieces under each ``(start, end, marker)`` span rewritten.

    A span (indices into :attr:`PieceRun.text`) is replaced by ``marker`` in the piece where
    it starts and removed from the other pieces it covers. A covered piece's ``bytes`` are
    the UTF-8 of its new text, and its alternatives (its ``top_logprobs``, its position in
    the lists beside the run) are emptied. Containers on the way are copied; ``document``
    itself is not changed.
    """
    for run, run_spans in spans:
        if not run_spans:
            continue
        texts, covered = _rewrite(run.pieces, run_spans)
        original = _value_at(document, run.path)
        items = list(original)
        for index in covered:
            if not run.keyed:
                items[index] = texts[index]
                continue
            item = dict(items[index])
            item["token"] = texts[index]
            if isinstance(item.get("bytes"), list):
                item["bytes"] = list(texts[index].encode("utf-8"))
            if "top_logprobs" in item:
                item["top_logprobs"] = _emptied(item["top_logprobs"])
            items[index] = item
        document = _replace_at(document, run.path, items)
        for beside in run.alternatives:
            alternatives = _value_at(document, beside)
            if not isinstance(alternatives, list):
                continue
            emptied = list(alternatives)
            for index in covered:
                if index < len(emptied):
                    emptied[index] = _emptied(emptied[index])
            document = _replace_at(document, beside, emptied)
    return document


def _rewrite(
    pieces: tuple[str, ...], spans: Sequence[tuple[int, int, str]]
) -> tuple[list[str], list[int]]:
    """The pieces' new texts, and the indices of the pieces a span covers."""
    edits: dict[int, list[tuple[int, int, str]]] = {}
    offset = 0
    for index, piece in enumerate(pieces):
        end_of_piece = offset + len(piece)
        for start, end, marker in spans:
            if start < end_of_piece and offset < end:
                local = (max(start, offset) - offset, min(end, end_of_piece) - offset)
                edits.setdefault(index, []).append((*local, marker if start >= offset else ""))
        offset = end_of_piece
    texts = list(pieces)
    for index, changes in edits.items():
        text = texts[index]
        for start, end, replacement in sorted(changes, reverse=True):
            text = text[:start] + replacement + text[end:]
        texts[index] = text
    return texts, sorted(edits)


def _emptied(value: Any) -> Any:
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return []
    return None


def _value_at(node: Any, path: Path) -> Any:
    for segment in path:
        node = node[segment]
    return node


def _replace_at(node: Any, path: Path, value: Any) -> Any:
    """A copy of ``node`` with ``value`` at ``path``, copying only the containers on it."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy: Any = dict(node) if isinstance(node, dict) else list(node)
    copy[head] = _replace_at(node[head], rest, value)
    return copy


def drop_piece_runs(document: Any) -> Any:
    """``document`` with every list of pieces, and the alternatives beside it, emptied.

    For a stream: a value split across frames is split across their piece lists too, and
    the pieces of a frame cannot follow the text the cross-frame window holds back, so an
    enforced stream carries none. Containers on the way are copied; ``document`` itself is
    not changed.
    """
    for run in find_piece_runs(document):
        document = _replace_at(document, run.path, [])
        for beside in run.alternatives:
            document = _replace_at(document, beside, [])
    return document
