# SPDX-License-Identifier: Apache-2.0
"""Texts that a payload carries cut into pieces, one JSON string each.

Detection reads one string at a time, so a value cut across strings is found in none of
them. Two shapes of LLM payloads cut a text that way, and a model reads it whole:

- **Token log-probabilities.** Asked for ``logprobs``, a model server returns beside the
  answer the same text as the vocabulary pieces the model produced (``" jane"``, ``".doe"``,
  ``"@example"``, ``".com"``), each with its UTF-8 ``bytes`` and the alternatives it
  considered. Recognised in answers: a list of objects that all carry a string ``token``
  (OpenAI chat ``logprobs.content``, Responses ``logprobs``, Ollama's and llama.cpp's lists,
  Gemini's ``chosenCandidates``), a list of objects that all carry a string ``content`` and
  a ``probs`` list (older llama.cpp), and a list of strings under ``tokens`` (the
  completions API). Lists beside one under ``top_logprobs`` or ``topCandidates`` hold,
  position by position, the alternatives of its pieces: they go with it. A ``top_logprobs``
  list of token objects with no list of pieces beside it is read as pieces itself. Every
  finding in the joined text counts.
- **Adjacent text parts.** A message's content can be a list of parts (OpenAI
  ``{"type": "text", "text": ...}``, Anthropic text blocks, Gemini ``parts``, the
  Responses API's ``input_text``); the model reads consecutive text parts as one text.
  Recognised in both directions: two or more consecutive objects with a string ``text``
  (or ``thinking``: Anthropic's thinking blocks) in a list. Each part is also scanned on
  its own; a finding of the joined text counts unless a part's own scan already has it
  (see :func:`merge_findings`).

:func:`find_piece_runs` finds them, :attr:`PieceRun.text` is what to scan,
:func:`merge_findings` adds what the joined texts show, :func:`plan_scrub` sorts the
decided findings, and :func:`scrub_piece_runs` rewrites the
pieces a finding covers.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from haechi.actions import Item, redact_marker
from haechi.models import Detection, PathSegment

__all__ = [
    "PieceRun",
    "drop_piece_runs",
    "find_piece_runs",
    "merge_findings",
    "plan_scrub",
    "scrub_piece_runs",
]

Path = tuple[PathSegment, ...]

#: Names of lists that hold, position by position, the alternatives of a run's pieces.
_ALTERNATIVES: Final = frozenset({"top_logprobs", "topCandidates"})
#: Fields holding the text of a message part.
_PART_FIELDS: Final = ("text", "thinking")
#: Members of one token object that hold its alternatives.
_ITEM_ALTERNATIVES: Final = ("top_logprobs", "probs")


@dataclass(frozen=True, slots=True)
class PieceRun:
    """Consecutive pieces of one text in one list.

    Attributes:
        path: where the list is in the document.
        start: the list index of the first piece.
        pieces: the pieces' texts, in order.
        field: the member holding each piece's text (``"token"``, ``"content"``,
            ``"text"``), or ``None`` when the list holds the strings themselves.
        alternatives: the lists beside it holding each position's alternatives.
    """

    path: Path
    start: int
    pieces: tuple[str, ...]
    field: str | None
    alternatives: tuple[Path, ...] = ()
    #: Where each piece starts in :attr:`text`, and where the last one ends.
    offsets: tuple[int, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        offsets = (0, *itertools.accumulate(map(len, self.pieces)))
        object.__setattr__(self, "offsets", offsets)

    @property
    def text(self) -> str:
        """The pieces joined: the text the model produces or reads."""
        return "".join(self.pieces)

    @property
    def where(self) -> Path:
        """Where findings in the joined text are reported: the first piece."""
        return (*self.path, self.start)

    def leaf(self, index: int) -> Path:
        """The path of piece ``index``'s string."""
        at = (*self.path, self.start + index)
        return at if self.field is None else (*at, self.field)

    def covered(self, start: int, end: int) -> range:
        """The indices of the pieces that ``start:end`` of :attr:`text` overlaps (found by
        bisection, so a payload of many pieces and many findings stays linear)."""
        ends = self.offsets
        first = bisect.bisect_right(ends, start, 1) - 1
        last = bisect.bisect_left(ends, end, 1) - 1
        return range(first, max(first, last) + 1)


def find_piece_runs(document: Any, *, answer: bool) -> list[PieceRun]:
    """Every run of pieces in ``document`` (in no particular order); token log-probabilities
    only when ``answer`` (a model's response)."""
    runs: list[PieceRun] = []
    stack: list[tuple[Any, Path]] = [(document, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            if len(node) > 1:
                runs.extend(_text_parts(node, path))
            stack.extend(
                (child, (*path, index))
                for index, child in enumerate(node)
                if isinstance(child, dict | list)
            )
            continue
        if not isinstance(node, dict):
            continue
        # Alternatives beside a list of pieces go with it; alone, they are pieces themselves.
        paired = answer and any(
            key not in _ALTERNATIVES and _token_run(key, value) is not None
            for key, value in node.items()
        )
        beside = tuple((*path, key) for key in _ALTERNATIVES if key in node) if paired else ()
        for key, value in node.items():
            if (paired and key in _ALTERNATIVES) or not isinstance(value, dict | list):
                continue
            found = _token_run(key, value) if answer else None
            if found is None:
                stack.append((value, (*path, key)))
            else:
                pieces, field = found
                runs.append(PieceRun((*path, key), 0, pieces, field, beside))
    return runs


def _token_run(key: str, value: Any) -> tuple[tuple[str, ...], str | None] | None:
    """The pieces of a list of token objects and the field holding their text (``"token"``,
    or ``"content"`` for older llama.cpp), or of a ``tokens`` list of strings (and
    ``None``); ``None`` for anything else."""
    if type(value) is not list or not value:
        return None
    if all(isinstance(item, dict) and isinstance(item.get("token"), str) for item in value):
        return tuple(item["token"] for item in value), "token"
    if all(
        isinstance(item, dict) and isinstance(item.get("content"), str) and "probs" in item
        for item in value
    ):
        return tuple(item["content"] for item in value), "content"
    if key == "tokens" and all(isinstance(item, str) for item in value):
        return tuple(value), None
    return None


def _text_parts(items: list[Any], path: Path) -> list[PieceRun]:
    """The runs of two or more consecutive objects in ``items`` with a string under the
    same text field (``text``; Anthropic's thinking blocks: ``thinking``)."""
    runs: list[PieceRun] = []
    start = 0
    for field, group in itertools.groupby(items, key=_part_field):
        parts = list(group)
        if field is not None and len(parts) > 1:
            runs.append(PieceRun(path, start, tuple(part[field] for part in parts), field))
        start += len(parts)
    return runs


def _part_field(item: Any) -> str | None:
    if isinstance(item, dict):
        for field in _PART_FIELDS:
            if isinstance(item.get(field), str):
                return field
    return None


Span = tuple[int, int, str]


def merge_findings(
    runs: Mapping[Path, PieceRun], leaves: Sequence[Detection], joined: Sequence[Detection]
) -> list[Detection]:
    """The findings of a payload: its strings' own (``leaves``) and those of its runs'
    joined texts (``joined``, reported at :attr:`PieceRun.where`), each value once.

    A finding of the joined text that lies inside one text part counts unless that part's
    own scan found it (a value complete in its part), and counts when it needs the other
    parts as context (``"password="`` in one part, the password in the next). A finding of
    a piece's own scan that lies inside a counted finding of the same type is the same value
    seen in part (``"e@example.com"`` of ``"jane.do" + "e@example.com"``), so it is left out
    rather than counted twice; the rewrite covers it anyway. A finding of another type is
    kept, whatever covers it, so no decision is lost.
    """
    own: dict[Path, list[Detection]] = {}
    for found in leaves:
        if found.kind != "key":
            own.setdefault(found.path, []).append(found)
    counted: list[Detection] = []
    inside: dict[Path, list[tuple[int, int, str]]] = {}
    for found in joined:
        run = runs[found.path]
        covered = run.covered(found.start, found.end)
        spans = [
            (run.leaf(index), found.start - run.offsets[index], found.end - run.offsets[index])
            for index in covered
        ]
        if run.field in _PART_FIELDS and len(spans) == 1:
            leaf, start, end = spans[0]
            if any(
                seen.type == found.type and seen.start <= start and end <= seen.end
                for seen in own.get(leaf, ())
            ):
                continue  # the part's own finding
        counted.append(found)
        for leaf, start, end in spans:
            inside.setdefault(leaf, []).append((start, end, found.type))
    if not counted:
        return list(leaves)
    kept = [
        found
        for found in leaves
        if found.kind == "key"
        or not any(
            start <= found.start and found.end <= end and kind == found.type
            for start, end, kind in inside.get(found.path, ())
        )
    ]
    return [*kept, *counted]


def plan_scrub(
    runs: Mapping[Path, PieceRun], items: Sequence[Item]
) -> tuple[list[Item], list[tuple[PieceRun, list[Span]]]]:
    """Split the decided findings of a payload into those the leaf transform applies and
    the spans :func:`scrub_piece_runs` rewrites.

    ``runs`` is keyed by :attr:`PieceRun.where`, where the findings of its joined text are
    reported. A piece that such a finding covers is rewritten from its original text, so
    the findings of that piece's own scan are rewritten with it (as redactions) instead of
    being transformed first and then written over. A token piece's own findings are always
    rewritten here, covered or not: its ``bytes`` must follow its text. ``allow`` findings
    change nothing.
    """
    spans: dict[Path, list[Span]] = {}
    for item in items:
        found = item.detection
        if found.path in runs and item.action != "allow":
            spans.setdefault(found.path, []).append(
                (found.start, found.end, redact_marker(found.type))
            )
    inside: dict[Path, tuple[Path, int]] = {}
    for where, run in runs.items():
        if run.field not in _PART_FIELDS:
            for index in range(len(run.pieces)):
                inside[run.leaf(index)] = (where, run.offsets[index])
    for where, run_spans in spans.items():
        run = runs[where]
        for span_start, span_end, _marker in run_spans:
            for index in run.covered(span_start, span_end):
                inside[run.leaf(index)] = (where, run.offsets[index])
    leaves: list[Item] = []
    for item in items:
        found = item.detection
        if found.path in runs:
            continue
        place = inside.get(found.path) if found.kind != "key" else None
        if place is None:
            leaves.append(item)
        elif item.action != "allow":
            where, offset = place
            spans.setdefault(where, []).append(
                (offset + found.start, offset + found.end, redact_marker(found.type))
            )
    return leaves, [(runs[where], run_spans) for where, run_spans in spans.items()]


def scrub_piece_runs(document: Any, spans: Sequence[tuple[PieceRun, Sequence[Span]]]) -> Any:
    """``document`` with the pieces under each ``(start, end, marker)`` span rewritten.

    A span (indices into :attr:`PieceRun.text`) is replaced by ``marker`` in the piece where
    it starts and removed from the other pieces it covers. A covered token's ``bytes`` are
    the UTF-8 of its new text. The alternatives of every position of a token run with a
    span (each token's ``top_logprobs``, the lists beside the run) are emptied, not only
    those of the covered pieces: the model weighs the value's pieces a position early or
    late too (``" jane"`` among the alternatives of ``" to"``). A covered text part loses
    the token lists it carries (a Responses ``output_text`` part's ``logprobs``): scanned on
    its own, a part's list shows only its piece of a value that crosses parts, or a value
    known by the part before. Containers on the way are copied; ``document`` itself is not
    changed.
    """
    # Token runs first: a text part covered later may carry one of them, and drops it whole.
    for run, run_spans in sorted(spans, key=lambda pair: pair[0].field in _PART_FIELDS):
        if not run_spans:
            continue
        texts, covered = _rewrite(run, run_spans)
        token_run = run.field not in _PART_FIELDS
        items = list(_value_at(document, run.path))
        for index in range(len(run.pieces)) if token_run else covered:
            at = run.start + index
            if run.field is None:
                items[at] = texts[index]
                continue
            item = dict(items[at]) if token_run else dict(drop_piece_runs(items[at]))
            item[run.field] = texts[index]
            if isinstance(item.get("bytes"), list):
                item["bytes"] = list(texts[index].encode("utf-8"))
            for alternatives in _ITEM_ALTERNATIVES:
                if alternatives in item:
                    item[alternatives] = _emptied(item[alternatives])
            items[at] = item
        document = _replace_at(document, run.path, items)
        for beside in run.alternatives:
            alternatives = _value_at(document, beside)
            if isinstance(alternatives, list):
                document = _replace_at(document, beside, [_emptied(a) for a in alternatives])
    return document


def drop_piece_runs(document: Any) -> Any:
    """``document`` with every list of token pieces, and the alternatives beside it,
    emptied (adjacent text parts are left alone).

    For a stream: a value split across frames is split across their piece lists too, and
    the pieces of a frame cannot follow the text the cross-frame window holds back, so an
    enforced stream carries none. Containers on the way are copied; ``document`` itself is
    not changed.
    """
    for run in find_piece_runs(document, answer=True):
        if run.field in _PART_FIELDS:
            continue
        document = _replace_at(document, run.path, [])
        for beside in run.alternatives:
            document = _replace_at(document, beside, [])
    return document


def _rewrite(run: PieceRun, spans: Sequence[Span]) -> tuple[list[str], list[int]]:
    """The pieces' new texts, and the indices of the pieces a span covers. Overlapping
    spans are merged first (the marker of the one that starts first stays)."""
    merged: list[list[Any]] = []
    for start, end, marker in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, marker])
    edits: dict[int, list[tuple[int, int, str]]] = {}
    for start, end, marker in merged:
        for index in run.covered(start, end):
            offset, limit = run.offsets[index], run.offsets[index + 1]
            local = (max(start, offset) - offset, min(end, limit) - offset)
            edits.setdefault(index, []).append((*local, marker if start >= offset else ""))
    texts = list(run.pieces)
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
