# SPDX-License-Identifier: Apache-2.0
"""Texts that a payload carries cut into pieces, one JSON string each.

Detection reads one string at a time, so a value cut across strings is found in none of
them. Five shapes of LLM payloads cut a text that way, and a model or its client reads it
whole:

- **Token log-probabilities.** Asked for ``logprobs``, a model server returns beside the
  answer the same text as the vocabulary pieces the model produced (``" jane"``, ``".doe"``,
  ``"@example"``, ``".com"``), each with its UTF-8 ``bytes`` and the alternatives it
  considered. Recognised in answers: a list of objects that all carry a string ``token``
  (OpenAI chat ``logprobs.content``, Responses ``logprobs``, Ollama's and llama.cpp's lists,
  Gemini's ``chosenCandidates``; named in any letter case, as Go's JSON decoder binds
  ``Token`` to it in Ollama's clients, the last such member of an object being its
  piece), a list of objects that all carry a string ``content`` and a ``probs`` list
  (older llama.cpp), and a list of strings under ``tokens`` (the completions API; a
  ``null`` among them is an empty piece, as JavaScript's ``join("")`` reads it). Lists
  beside one under ``top_logprobs`` or ``topCandidates`` hold, position by position, the
  alternatives of its pieces: they go with it. A ``top_logprobs`` list of token objects
  with no list of pieces beside it is read as pieces itself, and so is a completions
  ``top_logprobs`` list (objects keyed by the alternatives' texts) with no ``tokens``
  beside it: the first key of each position is its piece, and a finding empties every
  position. Every finding in the joined text counts. Some servers also name each piece's
  vocabulary entry (llama.cpp's ``id``, Gemini's ``tokenId``), which spells the piece for
  anyone holding the tokenizer.
- **Adjacent text parts.** A message's content can be a list of parts (OpenAI
  ``{"type": "text", "text": ...}``, Anthropic text blocks, Gemini ``parts``, the
  Responses API's ``input_text``); the model reads consecutive text parts as one text.
  Recognised in both directions: two or more consecutive objects with a string ``text``
  (or ``thinking``: Anthropic's thinking blocks) in a list. Each part is also scanned on
  its own; a finding of the joined text counts unless a part's own scan already has it
  (see :func:`merge_findings`). Parts of different lists are joined only as the next shape
  says; a ``refusal`` part (its text is under ``refusal``) joins nothing.
- **The text of a Gemini answer.** google-genai's ``response.text`` joins the string
  ``text`` of every part of an answer's ``parts`` that is not a thought (flagged
  ``"thought": true``), skipping the parts between them (thoughts, function calls), so a
  value can be cut around a thought. Recognised in answers: when that join is not one run
  of adjacent text parts, it is one run more, counted like them. Its parts are in the
  adjacent-parts runs too; a value both read is counted once, and the edits of both runs
  are made to a part together.
- **Output texts of a Responses answer.** The openai SDK's ``response.output_text`` joins,
  with no separator, the ``text`` of every ``output_text`` part of every ``message`` item of
  the answer's ``output`` list (skipping other items, such as reasoning), so a value can be
  cut between two items. Recognised in both directions, wherever a list named ``output``
  sits (the response a ``response.completed`` stream event carries has one): when those
  parts lie in two or more message items, they are one run, counted like adjacent text
  parts, and the adjacent-parts rule leaves them out of the content lists it joins, so no
  part is read in two runs (a lone message item's parts are joined by that rule alone).
  ``refusal`` parts are not in the run, as the SDK leaves them out of ``output_text``: a
  value cut between an output text and a refusal is found in neither.
- **Prompts given as pieces.** llama.cpp tokenizes a prompt given as a list (of strings,
  or strings mixed with token ids) as one text: the strings of a list inside a ``prompt``
  list, of its ``prompt_string`` and of its ``/infill`` ``input_prefix`` and
  ``input_suffix``; a list directly under ``prompt`` holding a token id is one prompt too.
  Recognised in requests: two or more consecutive strings of a list that is an element of
  a list, the value of one of those three members, or a ``prompt`` list with a number in
  it (a list of strings alone directly under ``prompt`` or ``input`` is a batch of separate
  prompts, and is not joined). llama.cpp's ``/infill`` also reads its ``prompt`` straight
  after ``input_prefix`` (its suffix comes after a special token): an object with a string
  ``prompt`` is one run of its prefix (a string, or the strings ending its list, which
  then leave that list's runs) and the prompt. Like token pieces, every finding in the
  joined text counts, and the pieces a finding covers are rewritten as redactions.

:func:`find_piece_runs` finds them, :attr:`PieceRun.text` is what to scan,
:func:`merge_findings` adds what the joined texts show, :func:`plan_scrub` sorts the
decided findings, and :func:`scrub_piece_runs` rewrites the
pieces a finding covers.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from haechi.actions import Item, redact_marker
from haechi.models import Detection, PathSegment
from haechi.protocols.member_names import members_named

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
#: The list of a completions answer's alternatives, one object per position keyed by their
#: texts.
_KEYED: Final = "top_logprobs"
#: Fields holding the text of a message part.
_PART_FIELDS: Final = ("text", "thinking")
#: Members of one token object that hold its alternatives (llama.cpp writes them under
#: ``top_probs`` when asked for ``post_sampling_probs``).
_ITEM_ALTERNATIVES: Final = ("top_logprobs", "top_probs", "probs")
#: Members of one token object that name its vocabulary entry: llama.cpp's ``id``, Gemini's
#: ``tokenId``.
_ITEM_IDS: Final = ("id", "tokenId")
#: Members whose list of strings llama.cpp reads as one prompt.
_PROMPT_PIECES: Final = frozenset({"prompt_string", "input_prefix", "input_suffix"})
#: llama.cpp's ``/infill`` members read as one text: the tokens of ``prompt`` go straight
#: after those of ``input_prefix`` (``format_prompt_infill``); ``input_suffix`` and
#: ``input_extra`` come after special tokens.
_INFILL_PREFIX: Final = "input_prefix"
_INFILL_PROMPT: Final = "prompt"
#: The list of a Gemini content's parts, whose text google-genai's ``response.text`` joins.
_PARTS: Final = "parts"
#: The list of a Responses answer's output items, and the part type its SDK joins.
_OUTPUT: Final = "output"
_OUTPUT_TEXT: Final = "output_text"


@dataclass(frozen=True, slots=True)
class PieceRun:
    """The pieces of one text: consecutive elements of one list, or pieces placed apart
    (the output texts of a Responses answer's message items, the text parts of a Gemini
    answer around its thoughts, an infill prompt after its prefix).

    Attributes:
        path: where the list is in the document (for pieces placed apart: the list of the
            items or parts holding them, or the first piece).
        start: the list index of the first piece (``0`` for pieces placed apart).
        pieces: the pieces' texts, in order.
        field: the member holding each piece's text (``"token"``, ``"content"``,
            ``"text"``), or ``None`` when the list holds the strings themselves.
        alternatives: the lists beside it holding each position's alternatives.
        places: the path of each piece (its object, or its string) when the pieces are
            placed apart; empty when they are elements of the list at ``path``.
    """

    path: Path
    start: int
    pieces: tuple[str, ...]
    field: str | None
    alternatives: tuple[Path, ...] = ()
    places: tuple[Path, ...] = ()
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
        """Where findings in the joined text are reported: the first piece, or for pieces
        placed apart :attr:`path` (the first part may start a run of its own list too, and
        the two must not share a key)."""
        return self.path if self.places else (*self.path, self.start)

    def place(self, index: int) -> Path:
        """The path of piece ``index``: its string, or the object holding it."""
        return self.places[index] if self.places else (*self.path, self.start + index)

    def leaf(self, index: int) -> Path:
        """The path of piece ``index``'s string."""
        at = self.place(index)
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
    only when ``answer`` (a model's response). A list of which only some elements are token
    objects is a run of token pieces too, the others' pieces empty: an odd element must not
    make the pieces around it be read one by one (a value cut across them would go unseen)."""
    runs: list[PieceRun] = []
    # The content lists (by identity) whose output texts a run of their output reads.
    joined: set[int] = set()
    # The infill prefix lists (by identity) whose last strings a run of their prompt reads,
    # and where those strings start.
    continued: dict[int, int] = {}
    stack: list[tuple[Any, Path]] = [(document, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            if len(node) > 1:
                field_of = _free_part_field if joined and id(node) in joined else _part_field
                runs.extend(_text_parts(node, path, field_of))
                if answer and path and path[-1] == _PARTS:
                    read = _answer_text(node, path)
                    runs.extend(() if read is None else (read,))
                if not answer and _read_as_one_prompt(node, path):
                    runs.extend(_string_runs(node[: continued.get(id(node))], path))
            stack.extend(
                (child, (*path, index))
                for index, child in enumerate(node)
                if isinstance(child, dict | list)
            )
            continue
        if not isinstance(node, dict):
            continue
        if _OUTPUT in node:
            outputs = _output_texts(node[_OUTPUT], (*path, _OUTPUT))
            if outputs is not None:
                run, contents = outputs
                runs.append(run)
                joined.update(map(id, contents))
        if not answer and _INFILL_PROMPT in node:
            infill = _infill(node, path)
            if infill is not None:
                runs.append(infill)
                prefix = node[_INFILL_PREFIX]
                if type(prefix) is list:
                    continued[id(prefix)] = len(prefix) + 1 - len(infill.pieces)
        # Alternatives beside a list of pieces go with it; alone, they are pieces themselves.
        token_runs = _token_runs(node) if answer else {}
        paired = any(key not in _ALTERNATIVES for key in token_runs)
        beside = tuple((*path, key) for key in _ALTERNATIVES if key in node) if paired else ()
        for key, value in node.items():
            if (paired and key in _ALTERNATIVES) or not isinstance(value, dict | list):
                continue
            found = token_runs.get(key)
            keyed = _keyed_pieces(key, value) if answer and found is None else None
            if found is not None:
                pieces, field = found
                runs.append(PieceRun((*path, key), 0, pieces, field, beside))
            elif keyed is not None:
                # Its positions are its own alternatives: a finding empties them all.
                runs.append(PieceRun((*path, key), 0, keyed, None, ((*path, key),)))
            else:
                stack.append((value, (*path, key)))
    return runs


def _token_runs(node: dict[str, Any]) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """The members of ``node`` that are runs of token pieces (see :func:`_token_run`), each
    read once: whether one sits beside the alternatives decides how those are read."""
    runs: dict[str, tuple[tuple[str, ...], str | None]] = {}
    for key, value in node.items():
        found = _token_run(key, value)
        if found is not None:
            runs[key] = found
    return runs


def _token_run(key: str, value: Any) -> tuple[tuple[str, ...], str | None] | None:
    """The pieces of a list of token objects and the field holding their text (``"token"``,
    or ``"content"`` for older llama.cpp), or of a ``tokens`` list of strings (and
    ``None``); ``None`` for anything else. A list with any token object among other
    elements is one too, the others' pieces empty; so is a ``null`` among the strings of
    ``tokens``, as JavaScript's ``join("")`` reads it."""
    if type(value) is not list or not value:
        return None
    texts = [_token_text(item) for item in value]
    if None in texts and all(map(_legacy_token, value)):
        return tuple(item["content"] for item in value), "content"
    if key == "tokens" and all(item is None or isinstance(item, str) for item in value):
        pieces = tuple(item or "" for item in value)
        return (pieces, None) if any(isinstance(item, str) for item in value) else None
    if any(text is not None for text in texts) or any(map(_legacy_token, value)):
        return tuple(text or "" for text in texts), "token"
    return None


def _keyed_pieces(key: str, value: Any) -> tuple[str, ...] | None:
    """The pieces of a completions ``top_logprobs`` list that no list of pieces sits beside
    (``tokens``): each position's object is keyed by its alternatives' texts, and its first
    key is the piece (vLLM writes the sampled token first, OpenAI the likeliest), as a
    client rebuilding the text from the alternatives reads it. Anything else at a position
    (``null``, at a prompt position of vLLM's ``echo``) is an empty piece. ``None`` when no
    position names a piece."""
    if key != _KEYED or type(value) is not list:
        return None
    pieces = tuple(next(iter(item), "") if isinstance(item, dict) else "" for item in value)
    return pieces if any(pieces) else None


def _token_text(item: Any) -> str | None:
    """The text of token object ``item``, ``None`` when it is none: its string under
    ``token`` in any letter case, which Go's JSON decoder (Ollama's clients) binds to its
    ``token`` field, the last such member winning as there."""
    if not isinstance(item, dict):
        return None
    texts = [item[name] for name in members_named(item, "token") if isinstance(item[name], str)]
    return texts[-1] if texts else None


def _legacy_token(item: Any) -> bool:
    """Whether ``item`` is a token object of older llama.cpp: a string ``content`` and
    ``probs``."""
    return isinstance(item, dict) and isinstance(item.get("content"), str) and "probs" in item


def _infill(node: dict[str, Any], path: Path) -> PieceRun | None:
    """The run of the infill request ``node`` (at ``path``) that llama.cpp reads as one
    text: its ``input_prefix`` (a string, or the strings ending its list) going on into its
    ``prompt``. ``None`` unless the prompt is a string and the prefix ends with one."""
    prefix, prompt = node.get(_INFILL_PREFIX), node[_INFILL_PROMPT]
    if type(prompt) is not str:
        return None
    at = (*path, _INFILL_PREFIX)
    if type(prefix) is str:
        places: tuple[Path, ...] = (at,)
        pieces: tuple[str, ...] = (prefix,)
    elif type(prefix) is list:
        start = len(prefix)
        while start and type(prefix[start - 1]) is str:
            start -= 1
        places = tuple((*at, index) for index in range(start, len(prefix)))
        pieces = tuple(prefix[start:])
    else:
        return None
    if not pieces:
        return None
    places = (*places, (*path, _INFILL_PROMPT))
    return PieceRun(places[0], 0, (*pieces, prompt), None, places=places)


def _answer_text(parts: list[Any], path: Path) -> PieceRun | None:
    """The run of the text of a Gemini answer's ``parts`` (at ``path``) as google-genai's
    ``response.text`` joins it: every part with a string ``text`` that is not a thought
    (``"thought": true``), the parts between them skipped (thoughts, function calls...).
    ``None`` when that is one run of adjacent text parts already, or fewer than two parts."""
    read = [
        index
        for index, part in enumerate(parts)
        if isinstance(part, dict)
        and isinstance(part.get("text"), str)
        and part.get("thought") is not True
    ]
    if len(read) < 2:
        return None
    first, last = read[0], read[-1]
    around = range(max(first - 1, 0), min(last + 2, len(parts)))
    if last - first + 1 == len(read) == sum(_part_field(parts[at]) == "text" for at in around):
        return None
    places = tuple((*path, index) for index in read)
    return PieceRun(path, 0, tuple(parts[index]["text"] for index in read), "text", places=places)


def _output_texts(items: Any, path: Path) -> tuple[PieceRun, list[list[Any]]] | None:
    """The run of the ``output_text`` parts of the message items in ``items`` (a Responses
    answer's ``output`` at ``path``), in the order the openai SDK joins them into
    ``output_text``, and the content lists holding them; ``None`` unless they lie in two or
    more items (one item's parts are joined by the adjacent-parts rule)."""
    if type(items) is not list or len(items) < 2:
        return None
    places: list[Path] = []
    pieces: list[str] = []
    contents: list[list[Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or item.get("type") != "message":
            continue
        content = item.get("content")
        if type(content) is not list:
            continue
        before = len(pieces)
        for position, part in enumerate(content):
            if _is_output_text(part):
                places.append((*path, index, "content", position))
                pieces.append(part["text"])
        if len(pieces) > before:
            contents.append(content)
    if len(contents) < 2:
        return None
    return PieceRun(path, 0, tuple(pieces), "text", places=tuple(places)), contents


def _is_output_text(part: Any) -> bool:
    return (
        isinstance(part, dict)
        and part.get("type") == _OUTPUT_TEXT
        and isinstance(part.get("text"), str)
    )


def _text_parts(
    items: list[Any], path: Path, field_of: Callable[[Any], str | None]
) -> list[PieceRun]:
    """The runs of two or more consecutive objects in ``items`` with a string under the
    same text field (``text``; Anthropic's thinking blocks: ``thinking``), as ``field_of``
    names it (``None``: not a part of a run here)."""
    runs: list[PieceRun] = []
    start = 0
    for field, group in itertools.groupby(items, key=field_of):
        parts = list(group)
        if field is not None and len(parts) > 1:
            runs.append(PieceRun(path, start, tuple(part[field] for part in parts), field))
        start += len(parts)
    return runs


def _read_as_one_prompt(items: list[Any], path: Path) -> bool:
    """Whether llama.cpp would read the strings of the request list ``items`` at ``path``
    as pieces of one prompt."""
    if not path:
        return False
    last = path[-1]
    if type(last) is int or last in _PROMPT_PIECES:
        return True
    return last == "prompt" and any(type(item) in (int, float) for item in items)


def _string_runs(items: list[Any], path: Path) -> list[PieceRun]:
    """The runs of two or more consecutive strings in ``items`` (a prompt given as pieces;
    token ids between them break a run)."""
    runs: list[PieceRun] = []
    start = 0
    for is_text, group in itertools.groupby(items, key=lambda item: type(item) is str):
        pieces = tuple(group)
        if is_text and len(pieces) > 1:
            runs.append(PieceRun(path, start, pieces, None))
        start += len(pieces)
    return runs


def _part_field(item: Any) -> str | None:
    if isinstance(item, dict):
        for field in _PART_FIELDS:
            if isinstance(item.get(field), str):
                return field
    return None


def _free_part_field(item: Any) -> str | None:
    """:func:`_part_field` for a content list whose output texts a run of their output
    reads: those parts break its runs instead, so no part is in two runs (two runs
    rewriting one part from its original text would undo each other's rewrites)."""
    return None if _is_output_text(item) else _part_field(item)


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
    kept, whatever covers it, so no decision is lost. Two runs may read the same pieces (the
    text parts of a Gemini answer, joined with and without its thoughts): a finding of the
    second covering the same stretches of them with the same type is the same value.
    """
    own: dict[Path, list[Detection]] = {}
    for found in leaves:
        if found.kind != "key":
            own.setdefault(found.path, []).append(found)
    counted: list[Detection] = []
    inside: dict[Path, list[tuple[int, int, str]]] = {}
    read: set[tuple[str, tuple[tuple[Path, int, int], ...]]] = set()
    for found in joined:
        run = runs[found.path]
        covered = run.covered(found.start, found.end)
        spans = tuple(
            (run.leaf(index), found.start - run.offsets[index], found.end - run.offsets[index])
            for index in covered
        )
        if (found.type, spans) in read:
            continue  # the value of another run's finding
        read.add((found.type, spans))
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
    span (each token's ``top_logprobs`` or ``top_probs``, the lists beside the run) are
    emptied, not only those of the covered pieces: the model weighs the value's pieces a
    position early or late too (``" jane"`` among the alternatives of ``" to"``). The tokens
    of such a run lose their ids (see :func:`_rewritten_token`). A covered text part loses
    the token lists it carries (a Responses ``output_text`` part's ``logprobs``): scanned on
    its own, a part's list shows only its piece of a value that crosses parts, or a value
    known by the part before. A ``null`` token piece stays ``null``. Containers on the way
    are copied; ``document`` itself is not changed.
    """
    # The edits of the covered pieces placed on their own (text parts, the pieces of runs
    # placed apart), by place: two runs may read one part, each from its original text.
    # They are made last: a text part may carry a token run, and drops it whole.
    placed: dict[Path, tuple[str | None, str, list[Span]]] = {}
    for run, run_spans in spans:
        if not run_spans:
            continue
        edits = _edits(run, run_spans)
        if run.places or run.field in _PART_FIELDS:
            for index, changes in edits.items():
                place = placed.setdefault(run.place(index), (run.field, run.pieces[index], []))
                place[2].extend(changes)
            continue
        items = list(_value_at(document, run.path))
        for index, piece in enumerate(run.pieces):
            text = _edited(piece, edits.get(index, ()))
            at = run.start + index
            if run.field is None:
                if isinstance(items[at], str):
                    items[at] = text
            elif isinstance(items[at], dict):  # not an odd element, which holds no piece
                items[at] = _rewritten_token(items[at], run.field, text)
        document = _replace_at(document, run.path, items)
        for beside in run.alternatives:
            alternatives = _value_at(document, beside)
            if isinstance(alternatives, list):
                document = _replace_at(document, beside, [_emptied(a) for a in alternatives])
    return _scrub_placed(document, placed)


def _scrub_placed(document: Any, placed: Mapping[Path, tuple[str | None, str, list[Span]]]) -> Any:
    """``document`` with each piece of ``placed`` (by its place: its string, or the object
    holding it under the field named) rewritten from its original text by its edits, a text
    part losing the token lists it carries. Each container holding some is copied once,
    the deepest first, so that copying one that holds another keeps the other's rewrite."""
    holders: dict[Path, list[PathSegment]] = {}
    for place in placed:
        holders.setdefault(place[:-1], []).append(place[-1])
    for parent in sorted(holders, key=len, reverse=True):
        node = _value_at(document, parent)
        copy: Any = dict(node) if isinstance(node, dict) else list(node)
        for position in holders[parent]:
            field, piece, edits = placed[(*parent, position)]
            text = _edited(piece, edits)
            copy[position] = (
                text if field is None else _rewritten(drop_piece_runs(copy[position]), field, text)
            )
        document = _replace_at(document, parent, copy)
    return document


def _rewritten(item: Mapping[str, Any], field: str, text: str) -> dict[str, Any]:
    """A copy of piece object ``item`` with ``text`` under ``field``: its ``bytes`` follow
    the new text and its alternatives are emptied (they would tell what it hid). Each is
    rewritten under every member Go's decoder binds to it (``Token``, ``BYTES``...)."""
    copy = dict(item)
    for name in members_named(copy, field) or (field,):
        copy[name] = text
    for name in members_named(copy, "bytes"):
        if isinstance(copy[name], list):
            copy[name] = list(text.encode("utf-8"))
    for alternatives in _ITEM_ALTERNATIVES:
        for name in members_named(copy, alternatives):
            copy[name] = _emptied(copy[name])
    return copy


def _rewritten_token(item: Mapping[str, Any], field: str, text: str) -> dict[str, Any]:
    """:func:`_rewritten` for a token object of a run with a finding, which also loses the id
    of its vocabulary entry: the id of a covered piece spells the value for anyone holding the
    tokenizer, and matches its text no more. Every token of the run loses it, like its
    alternatives, so the rule needs no telling which pieces a finding reached."""
    copy = _rewritten(item, field, text)
    for name in _ITEM_IDS:
        copy.pop(name, None)
    return copy


def drop_piece_runs(document: Any) -> Any:
    """``document`` with every list of token pieces, and the alternatives beside it,
    emptied (adjacent text parts are left alone).

    For a stream: a value split across frames is split across their piece lists too, and
    the pieces of a frame cannot follow the text the cross-frame window holds back, so an
    enforced stream carries none. A list of token objects is emptied even when some of its
    elements are not token objects (an upstream adding one odd element to keep its pieces
    from being recognised): a reader of the pieces still reads the others. Containers on
    the way are copied; ``document`` itself is not changed.
    """
    for run in find_piece_runs(document, answer=True):
        if run.field in _PART_FIELDS:
            continue
        document = _replace_at(document, run.path, [])
        for beside in run.alternatives:
            document = _replace_at(document, beside, [])
    return document


def _edits(run: PieceRun, spans: Sequence[Span]) -> dict[int, list[Span]]:
    """The edits of each piece of ``run`` a span covers, in the piece's own indices: the
    span's marker where it starts, nothing where it continues."""
    edits: dict[int, list[Span]] = {}
    for start, end, marker in _merged(spans):
        for index in run.covered(start, end):
            offset, limit = run.offsets[index], run.offsets[index + 1]
            local = (max(start, offset) - offset, min(end, limit) - offset)
            edits.setdefault(index, []).append((*local, marker if start >= offset else ""))
    return edits


def _edited(text: str, edits: Iterable[Span]) -> str:
    """``text`` with ``edits`` made."""
    for start, end, replacement in reversed(_merged(edits)):
        text = text[:start] + replacement + text[end:]
    return text


def _merged(spans: Iterable[Span]) -> list[Span]:
    """``spans`` in order, those that overlap merged into one (the marker of the one that
    starts first stays)."""
    merged: list[Span] = []
    for start, end, marker in sorted(spans):
        if merged and start < merged[-1][1]:
            first, last, kept = merged[-1]
            merged[-1] = (first, max(last, end), kept)
        else:
            merged.append((start, end, marker))
    return merged


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
