# SPDX-License-Identifier: Apache-2.0
"""Frame by frame protection of one stream: the state that lives as long as the stream.

One :class:`FrameProcessor` exists per stream. It holds the parser's partial frame, the
protector's window, the template of the last content frame (for the tail) and a few clean
field lines; the inspector drops it the moment the stream ends, so nothing of a stream
outlives it.

How a frame is handled:

- A frame without data (comments, ``event:``-only) is a control frame: its lines pass.
- ``data: [DONE]`` ends an SSE stream: the held tail is sent first, then ``[DONE]``.
- A frame that opens texts and already carries their first pieces (the descriptor's
  ``opening``: Anthropic's ``content_block_start`` with text, or ``message_start`` with
  content; a Responses API ``*.added`` event, or ``response.created``, with text in its
  part or item) is sent without them, followed by frames that continue the texts with them,
  which are handled like any other.
- A JSON object or array is protected leaf by leaf (``protect_frame``); the text at the
  route's delta path is taken out first and sent through the cross-frame window instead,
  and so is each piece of another named text (a tool call's streamed arguments, the
  model's reasoning, a Responses API ``*.delta``), through a window of its own per text
  (its *channel*), each with its own hold for a cut de-tokenization marker. Every other
  string of a chat delta (a tool call's id and name, any member a server adds), which the
  openai SDK joins across frames as well, is a text of its own whose window lends left
  context only: it holds nothing back, so the piece leaves in its frame.
- Any other data (text, a JSON string, a bare number) is content text: it goes through the
  same window, so a value split across two text frames is still found. Such a *text frame*
  is held until the window has released all of its text and then sent whole, so every text
  frame leaves with the upstream's own boundaries (a value replaced across frames is
  replaced in the frame where it starts, and the later frames lose the rest of it). Cutting
  text frames anywhere else would let an upstream choose cuts that turn its unparseable
  frames into JSON chunks a client parses and joins, unseen by the detector; for the same
  reason a text frame that protection turned into a JSON object or array stops the stream.
- Before a frame whose ``type`` is a flush type, and before a terminal frame, the held tail
  is sent as a copy of the last content frame; a terminal frame that carries delta text
  (Ollama's ``done: true``) takes the tail itself. Nothing is ever sent after the terminal
  frame, and the tail is never sent twice. The other channels' held texts are sent the
  same way (each as a copy of the last frame of its text). A frame that finishes choices
  (OpenAI's ``finish_reason``, Gemini's ``finishReason`` or ``finish_reason``, in any
  element of its ``choices``) is preceded by what those choices' channels hold; other
  choices' channels go on holding. A text that a terminal or finishing frame carries a
  piece of takes its held text in (the last of) its pieces there instead: sent before the
  frame, the held start of a value would leave before the window saw its end.
- A frame that names its text in a way the windows cannot follow as every client does stops
  the stream: a list of texts that is not a list, another answer than the first where the
  request asked for one (the usual loop reads ``choices[0]`` of every frame, whatever its
  ``index``), a content block that continues after a later one began (a client reads
  each block on its own as well as all blocks' text in arrival order), likewise a part
  of a text read across parts (a Responses output's text) after a later part began, and
  a frame of a stream read by event name (Anthropic's) whose ``event:`` line does not name
  its ``type`` (a client skipping it would join the text around it), or that holds text
  where its clients read none (a ``delta.text`` in a frame, or a delta, of another type:
  the descriptor's ``reads``); so does a frame of a content block that clients do not hold
  open (never opened, opened at another position than they add it at, or closed), and a
  delta of a kind that does not belong to its block (a ``text_delta`` in a tool-use block:
  ``text_stream`` prints it, ``get_final_message`` ignores it).
- Before the first piece of a later part of such a text (or of a later content block), what
  the windows hold is sent into the earlier one, so each keeps its own text.
- An event that repeats the whole text of such a part (the descriptor's ``finals``: a
  Responses ``.done`` event) gets, in place of that text, the text the part's pieces
  delivered, flushed tail included, before the event is protected; a part no piece named
  keeps its text. A client joining the repeated texts so reads what the window read joined,
  and a value sent only in the repeated text is not sent. In enforce mode only: the other
  modes pass the text unchanged.
- The other lines of a frame (``event:``, ``id:``, comments) are inspected as text too, so
  every byte the client receives has been inspected.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from haechi._documents import begins_json_container
from haechi._string_nesting import StringNesting
from haechi.models import PathSegment
from haechi.protocols.member_names import named_like
from haechi.protocols.token_ids import NO_TOKEN_IDS, TokenIdFields
from haechi.protocols.types import (
    EACH,
    EVERY,
    BlockKinds,
    FinalText,
    FragmentSpec,
    StreamDescriptor,
)
from haechi.stream_window import Run, TextStreamProtector
from haechi.streaming._json import dumps
from haechi.streaming._lines import SPACES, Frame, frame_too_large, reader_breaks
from haechi.streaming._names import AmbiguousName, position, reader
from haechi.streaming.detokenize import StreamDetokenizer
from haechi.streaming.ndjson import NdjsonParser, encode_ndjson
from haechi.streaming.sse import SseParser, encode_sse

__all__ = ["Blocked", "FrameProcessor"]

Path = tuple[PathSegment, ...]
#: A piece of a named text in a frame (tool-call arguments, a Responses API delta): its
#: channel, where it sits, its text, the part of its text it continues when the text is
#: read across parts (``FragmentSpec.joined``), and the other places of the frame that
#: carry the same piece under another name of the text (``FragmentSpec.also``).
_Piece = tuple[Hashable, Path, str, tuple[int, ...] | None, tuple[Path, ...]]
#: A part of a text read across parts: its channel and the positions naming the part.
_Part = tuple[Hashable, tuple[int, ...]]
#: Where events of one type repeat parts' texts: each ``FinalText`` with its spec's number
#: and how the event's ``names`` fields are read.
_Finals = list[tuple[int, FinalText, tuple[tuple[str, Callable[[Any], Any]], ...]]]
#: Field lines without findings remembered per stream (``event: content_block_delta``
#: repeats on every frame); only a few short lines, so the memory stays small and bounded.
_FIELD_CACHE_ENTRIES: Final = 32
_FIELD_CACHE_LINE: Final = 256
#: Untouched delta frames remembered per stream (by their text-less JSON), and how long
#: such a frame may be; both bound the memory a stream holds.
_CLEAN_FRAMES: Final = 8
_CLEAN_FRAME_CHARS: Final = 4096
#: Indexed lists (choices, a choice's tool calls, ...) one stream may name, and elements
#: each may hold: each is followed for the rest of the stream.
_MAX_LISTS: Final = 256
#: Parts whose delivered text a stream keeps at once (until the event that closes them):
#: real answers have a handful, and every kept part costs memory however short its text.
_MAX_PARTS: Final = 1024
#: Event types a stream may pair with their event names (real streams have a few dozen).
_MAX_EVENT_TYPES: Final = 256
#: A type not paired with an event name yet (``None`` pairs it with none).
_UNPAIRED: Final = object()
#: Member names a stream remembers as named like none of its ``folded`` names, and how long
#: such a name may be.
_PLAIN_NAMES: Final = 64
_PLAIN_NAME_CHARS: Final = 64
#: The line ends a text frame's data is written out at, one ``data:`` line each.
_LINE_ENDS: Final = re.compile(r"\r\n|\r|\n")
#: The fields of a frame's field lines that are sent on (comments are too).
_FIELDS: Final = frozenset({"event", "id", "retry"})
#: The start of the event names (the Assistants API's) whose frames the openai SDKs hand on
#: as ``{"event": ..., "data": ...}`` rather than as the chunk itself.
_WRAPPED_EVENTS: Final = "thread."
#: Writes a frame as the key it is remembered by. Unlike the frames sent, a key may hold
#: NaN or an infinity: protection may drop the member holding one (a log probability).
_KEY: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class Blocked(Exception):
    """The protector blocked: nothing more may be sent."""


@dataclass(frozen=True, slots=True)
class _Slotted:
    """A protected delta frame written out around its (empty) delta slot."""

    frame: Any
    head: str
    tail: str

    def render(self, text: str) -> str:
        """The frame's JSON with ``text`` in the slot."""
        return f"{self.head}{dumps(text)}{self.tail}"


@dataclass(frozen=True, slots=True)
class _Template:
    """How to send held text: as a copy of the last JSON content frame (``frame``, after
    protection) that carried it."""

    events: tuple[str, ...]
    frame: Any
    path: Path
    kept: frozenset[str]
    #: The other places of the frame carrying the text under another of its names.
    twins: tuple[Path, ...] = ()

    def render(self, text: str) -> str:
        """The JSON data of a frame carrying ``text`` (under each of its names)."""
        copy = _spine(self.frame, self.path, text, self.kept)
        for twin in self.twins:
            _put_in_spine(copy, twin, text)
        return dumps(copy)


@dataclass(slots=True)
class _Reading:
    """One way a client reads a windowed text, for restoring markers in it: as prose, or as
    JSON source (:func:`~haechi._documents.begins_json_container`, decided on the text's
    first characters: ``source`` is ``None`` while ``start`` cannot tell) followed through
    its strings by ``nesting``."""

    start: str = ""
    source: bool | None = None
    nesting: StringNesting | None = None

    def judge(self, text: str) -> None:
        """Read ``text``, the text that follows, as far as whether it is JSON source goes."""
        if self.source is not None:
            return
        start = self.start + text
        self.source = begins_json_container(start)
        if self.source is None:  # white space, or "[" and white space, so far
            self.start = "[" if "[" in start else ""
        elif self.source:
            self.nesting = StringNesting()


@dataclass(slots=True)
class _TextFrame:
    """A text frame whose text the answer's window still (partly) holds: its field lines,
    whether it was a JSON string, and its protected text released so far."""

    meta: tuple[str, ...]
    quoted: bool
    parts: list[str] = field(default_factory=list)


class FrameProcessor:
    """Parses, protects and re-writes the frames of one stream.

    Output accumulates in :attr:`out` until the caller takes it, so that frames completed
    before a block are still sent and nothing of the blocking frame is.
    """

    __slots__ = (
        "_answer_specs",
        "_begun",
        "_block",
        "_block_kind",
        "_choices",
        "_clean",
        "_closed",
        "_data_only",
        "_descriptor",
        "_detokenizer",
        "_fields",
        "_finals",
        "_finish",
        "_folded",
        "_fragments",
        "_gone",
        "_held",
        "_held_fields",
        "_indexed",
        "_kept",
        "_kinds",
        "_max_frame",
        "_name_types",
        "_named",
        "_one_choice",
        "_opened",
        "_parser",
        "_parts",
        "_path",
        "_plain",
        "_plain_lists",
        "_probes",
        "_protector",
        "_readers",
        "_readings",
        "_restated",
        "_said",
        "_said_size",
        "_sentinel",
        "_sse",
        "_template",
        "_templates",
        "_token_ids",
        "_type_names",
        "_typed",
        "_unheld",
        "_windowed",
        "finished",
        "out",
    )

    def __init__(
        self,
        protector: TextStreamProtector,
        descriptor: StreamDescriptor,
        *,
        max_frame_bytes: int,
        detokenizer: StreamDetokenizer | None = None,
        token_ids: TokenIdFields = NO_TOKEN_IDS,
        several_choices: bool = False,
        restate: bool = True,
    ) -> None:
        self._protector = protector
        self._token_ids = token_ids
        self._descriptor = descriptor
        self._path = descriptor.delta_path
        self._sse = descriptor.format == "sse"
        # Anthropic's streams are read by event name too, and so may be one that names its
        # texts by the type of its events (no delta path: the Responses API's); for such a
        # stream, the event name each type came with, and the type each name came with.
        self._named = self._sse and descriptor.named
        self._typed = self._sse and descriptor.delta_path is None and not self._named
        self._type_names: dict[str | None, str | None] = {}
        self._name_types: dict[str, str | None] = {}
        # Gemini's are read line by line, every line that is not data as JSON.
        self._data_only = self._sse and descriptor.data_only
        # Ollama's by a decoder that binds members whatever the case of their names: the
        # names it would bind to a windowed text, and names known to be named like none.
        self._folded = descriptor.folded
        self._plain: set[str] = set()
        self._parser: SseParser | NdjsonParser = (
            SseParser(max_frame_bytes) if self._sse else NdjsonParser(max_frame_bytes)
        )
        self._detokenizer = detokenizer
        #: How clients read each windowed text, for the markers restored in it: all of its
        #: pieces joined, then (once a later content block or part begins) the current
        #: block's or part's text on its own as well.
        self._readings: dict[Hashable, tuple[_Reading, ...]] = {}
        self._max_frame = max_frame_bytes
        # Text frames the answer's window holds, and the size of their field lines.
        self._held = 0
        self._held_fields = 0
        self._template: _Template | None = None
        self._fragments: tuple[FragmentSpec, ...] = descriptor.fragments
        # The quoted name of each spec's text field, as it appears in a frame that has it.
        self._probes = tuple(
            tuple(dumps(str(text[-1])) for text in (spec.text, *spec.also))
            for spec in self._fragments
        )
        # The places of a frame's windowed texts that no list holds (see ``_unread``).
        single = (spec.text for spec in self._fragments if spec.elements is None)
        self._windowed = frozenset(where for where in (self._path, *single) if where is not None)
        # Specs whose texts hold nothing back (``FragmentSpec.members``).
        self._unheld = frozenset(
            number for number, spec in enumerate(self._fragments) if spec.members
        )
        # Each spec's keys, with how their values name a text.
        self._readers = tuple(
            tuple((key, reader(spec, key)) for key in spec.keys) for spec in self._fragments
        )
        # Specs whose first element's text is the delta text (a later choice's answer).
        self._answer_specs = frozenset(
            number
            for number, spec in enumerate(self._fragments)
            if spec.exclude
            and spec.elements is not None
            and (*(0 if part in (EACH, EVERY) else part for part in spec.elements), *spec.text)
            == self._path
        )
        # Where events repeat parts' texts, by event type; the texts the parts still followed
        # delivered, and their length together; per text, the last part let go.
        self._finals = _finals(self._fragments) if restate else {}
        self._restated = frozenset(
            (number, final.kind) for finals in self._finals.values() for number, final, _ in finals
        )
        self._said: dict[_Part, list[str]] = {}
        self._said_size = 0
        self._gone: dict[Hashable, tuple[int, ...]] = {}
        self._kept = descriptor.kept_in_copies
        self._choices = descriptor.choices
        # The elements whose finish a frame may carry (every choice), when it may.
        self._finish: Path | None = (
            (descriptor.choices, EACH)
            if descriptor.choices is not None and descriptor.finish_fields
            else None
        )
        self._one_choice = not several_choices
        # Per indexed list (by its names), the index that filled each position of the
        # client's copy of it.
        self._indexed: dict[Path, list[int]] = {}
        # The lists that had an element without an index.
        self._plain_lists: set[Path] = set()
        # The content block the last block frame named (none yet), and the part each text
        # read across parts last continued.
        self._block = -1
        # In a stream of content blocks that have kinds, what they are (see BlockKinds);
        # the kinds of the blocks ``message_start`` brought (none before it), how many
        # blocks clients hold, the kind of the last one a ``content_block_start`` opened,
        # and the last block a ``content_block_stop`` closed.
        self._kinds = descriptor.block_kinds if self._named else None
        self._begun: tuple[str | None, ...] | None = None
        self._opened = 0
        self._block_kind: str | None = None
        self._closed = -1
        self._parts: dict[Hashable, tuple[int, ...]] = {}
        self._templates: dict[Hashable, _Template] = {}
        self._fields: dict[str, str] = {}
        self._clean: dict[str, _Slotted] = {}
        self._sentinel = f"\x00{secrets.token_hex(8)}\x00"
        self.out: list[str] = []
        self.finished = False

    @property
    def issued_tokens(self) -> tuple[str, ...]:
        """Vault tokens the protector minted in this stream."""
        return self._protector.issued_tokens

    def summary(self) -> dict[str, Any]:
        """The protector's tally so far."""
        return self._protector.summary()

    def take(self) -> bytes:
        """Return and forget the output so far."""
        text = "".join(self.out)
        self.out.clear()
        return text.encode("utf-8", "replace")

    async def feed(self, chunk: bytes) -> None:
        """Handle the frames ``chunk`` completes, up to the one that ends the stream: the
        bytes after it are never read."""
        for frame in self._parser.frames(chunk):
            await self._frame(frame)
            if self.finished:
                return

    async def finish(self) -> None:
        """Handle the end of the stream: its last frame, then the held tail."""
        for frame in self._parser.finish():
            await self._frame(frame)
            if self.finished:
                return
        await self._flush()
        self.finished = True

    # -- frames ------------------------------------------------------------------------

    async def _frame(self, frame: Frame) -> None:
        if self._data_only and frame.meta:
            # google-genai parses such a line as JSON once its braces balance: a chunk.
            raise AmbiguousName("a stream read line by line has a line that is not data")
        meta = await self._fields_of(frame.meta)
        data = frame.data
        if data is None:
            if meta:
                self.out.append(encode_sse(meta, None))
            return
        if self._sse and data.strip() == "[DONE]":
            await self._flush()
            self.out.append(encode_sse(meta, "[DONE]"))
            self.finished = True
            return
        _check_unwrapped(meta)
        try:
            value = json.loads(data)
        except json.JSONDecodeError:
            # Only data that is no JSON is text. JSON that Python refuses to read (nested
            # past its recursion limit, an integer past its 4300 digits) is a chunk to
            # JavaScript's and Go's parsers: it raises and the stream stops (fail closed).
            self._check_named(meta, None)
            await self._text(meta, data, quoted=False)
            return
        self._check_named(meta, value)
        opening = self._descriptor.opening
        continuations = opening(value) if opening is not None and isinstance(value, dict) else ()
        if continuations:
            # The opening frame's pieces of text go out in the frames that continue them.
            await self._json(meta, value, data)
            for continuation in continuations:
                if self.finished:
                    break
                named = f"event: {continuation['type']}"
                events = tuple(named for _line in _events(meta))
                await self._json(events, continuation, dumps(continuation))
        elif isinstance(value, dict | list):
            await self._json(meta, value, data)
        elif isinstance(value, str):
            await self._text(meta, value, quoted=True)
        else:
            await self._text(meta, data, quoted=False)

    def _check_order(self, choices: Any) -> None:
        """Stop the stream at an element of an indexed list in a choice (a delta's tool
        calls) that the openai SDK would add to an element of another ``index``.

        The SDK looks an element up at the position its ``index`` names and, past the end
        of its list, appends it: a first tool call with index 1 lands at position 0, where
        a later piece with index 0 is then added up with it, while the gateway windows the
        two apart by ``index``. The positions the SDK filled are followed per list (by the
        index that filled each); in a stream that names its elements in order, every
        position holds its own index.

        A list whose elements carry an index in one frame (or element) and lack it in
        another stops the stream too. The gateway names an element without one by its
        position, which the usual loop over a list reads it at, while the clients that add
        elements up keyed by ``index`` (openai-node's accumulator, a dict keyed by
        ``tool_call.index``) put every element without one apart, under ``undefined`` or
        ``None``: text the window released into such an element would be missing from the
        text of the index it shares a window with, which joins the text around it. Servers
        either index every element of such a list or none."""
        if not isinstance(choices, list):
            return
        filled = self._indexed
        places = (
            (where, index)
            for at, choice in enumerate(choices)
            if isinstance(choice, dict)
            for where, index in _indexed_elements(choice, (_element_name(choice, at),))
        )
        for where, index in places:
            if index is None:
                self._unindexed(where)
                continue
            if where in self._plain_lists:
                raise AmbiguousName("a list's elements carry an index only sometimes")
            positions = filled.get(where)
            if positions is None:
                if len(filled) >= _MAX_LISTS:
                    raise AmbiguousName("a stream names more lists than a stream may hold")
                positions = filled[where] = []
            if index < len(positions):
                if positions[index] != index:
                    raise AmbiguousName("a list element is added up with another index's")
            elif len(positions) >= _MAX_LISTS:
                raise AmbiguousName("a list holds more elements than a stream may hold")
            else:
                positions.append(index)

    def _unindexed(self, where: Path) -> None:
        """Follow a list (named ``where``) with an element without an index (see
        :meth:`_check_order`)."""
        if where in self._indexed:
            raise AmbiguousName("a list's elements carry an index only sometimes")
        if where not in self._plain_lists:
            if len(self._plain_lists) >= _MAX_LISTS:
                raise AmbiguousName("a stream names more lists than a stream may hold")
            self._plain_lists.add(where)

    def _check_folded(self, frame: dict[str, Any]) -> None:
        """Stop the stream at a frame with a member that a case-insensitive decoder (Go's,
        Ollama's own client) binds to a text the gateway reads under its exact name only
        (see ``StreamDescriptor.folded``): ``"Response"`` beside ``"response"`` is the
        answer to Go, which joins it across frames, while the gateway protects it within
        its frame. Names found plain are remembered, so a stream of usual frames costs a
        set lookup per member."""
        plain = self._plain
        for where, names in self._folded:
            node = _value_at(frame, where)
            if not isinstance(node, dict):
                continue
            for name in node:
                if name in names or name in plain:
                    continue
                if any(named_like(name, field) for field in names):
                    raise AmbiguousName("a member is named like a streamed text in another case")
                if len(plain) < _PLAIN_NAMES and len(name) <= _PLAIN_NAME_CHARS:
                    plain.add(name)

    def _check_named(self, meta: tuple[str, ...], value: Any) -> None:
        """Stop a stream read by event name at a data frame whose ``event:`` lines do not
        all name its JSON ``type`` (none, or no ``type``, included).

        Clients of such a stream read a frame by either name: the anthropic SDK skips a
        frame whose event is missing or ``ping`` (older SDKs and JavaScript clients
        dispatch on the event name, and the Python SDK takes it for a missing ``type``),
        while other clients read the ``type``. Text the window released into a frame only
        one of them reads would be missing for the other, which joins the text around it:
        a separator dropped that way joins the halves of a value the window saw apart. A
        stream whose texts are named by the type of their events is held to
        :meth:`_check_paired` instead."""
        kind = value.get("type") if isinstance(value, dict) else None
        names = [line.partition(":")[2].removeprefix(" ") for line in _events(meta)]
        if self._typed:
            self._check_paired(kind if isinstance(kind, str) else None, names)
        elif not self._named:
            return
        elif not isinstance(kind, str) or not names or any(name != kind for name in names):
            raise AmbiguousName("a frame's event line does not name its type")

    def _check_paired(self, kind: str | None, names: list[str]) -> None:
        """Stop a stream whose texts are named by the ``type`` of their events (the
        Responses API's) at a data frame whose event name and type are not paired as in the
        frames before: a type that came with another event name (or none), or a name that
        came with another type.

        The SDKs read such a frame by its ``type``, and the windows follow it; a reader
        dispatching on the event name (``if sse.event == "response.output_text.delta"``)
        reads the frames of that name instead. Each type always named alike, and no two
        types alike, both read the same frames: otherwise a separator the window released
        into a frame named otherwise would be dropped by that reader, which joins the text
        around it, and a piece of another text named like the answer's would be joined
        with it. The API names each event by its type (some servers by none)."""
        if len(set(names)) > 1:
            raise AmbiguousName("a frame names its event twice, differently")
        name = names[0] if names else None
        paired = self._type_names.get(kind, _UNPAIRED)
        if paired is _UNPAIRED:
            if name is not None and name in self._name_types:
                raise AmbiguousName("an event name came with two types")
            if len(self._type_names) >= _MAX_EVENT_TYPES:
                raise AmbiguousName("a stream names more event types than a stream may hold")
            self._type_names[kind] = name
            if name is not None:
                self._name_types[name] = kind
        elif paired != name:
            raise AmbiguousName("an event type came with two event names")

    async def _json(
        self, meta: tuple[str, ...], frame: dict[str, Any] | list[Any], data: str
    ) -> None:
        descriptor = self._descriptor
        path = self._path
        if self._folded and isinstance(frame, dict):
            self._check_folded(frame)
        if self._token_ids:
            self._token_ids.scrub(frame, data)
        kind = frame.get("type") if isinstance(frame, dict) else None
        kind = kind if isinstance(kind, str) else None
        _check_unwindowed(frame, descriptor.unwindowed)
        if self._choices is not None and isinstance(frame, dict):
            _check_choices(frame.get(self._choices), one=self._one_choice)
            self._check_order(frame.get(self._choices))
        if kind in descriptor.block_types:
            await self._enter_block(frame, kind)
        elif self._kinds is not None and isinstance(frame, dict):
            self._begin(self._kinds, frame)
        done = descriptor.done_field
        terminal = kind in descriptor.terminal_types or (
            done is not None and isinstance(frame, dict) and frame.get(done) is True
        )
        # A frame that ends the stream, or finishes choices: nothing held of what it ends
        # (every text, or those choices') may come after it.
        finishing = frozenset() if terminal else self._finishing(frame)

        def ends(channel: Hashable) -> bool:
            return terminal or self._choice_of(channel) in finishing

        unread = self._unread(frame)
        pieces = self._take_pieces(frame, data, unread) if self._fragments else []
        await self._enter_parts(pieces)
        delta = _text_of(frame, path) if path is not None and path not in unread else None
        if delta is not None and any(piece[1] == path for piece in pieces):
            delta = None  # a later choice's answer at the delta path: taken as its piece
        # A text this frame carries more of takes its held text itself: sent before the
        # frame, the held start of a value would leave before the window saw its end.
        carried = {piece[0] for piece in pieces}
        if delta is not None:
            carried.add(None)

        def before(channel: Hashable) -> bool:
            return ends(channel) and channel not in carried

        if kind in descriptor.flush_on_types:
            await self._flush()
        elif terminal or finishing:
            if before(None):
                await self._flush_answer()
            await self._flush_pieces(before)
        finals = self._finals.get(kind) if kind is not None and self._finals else None
        if finals:
            self._restate(frame, finals)
        if pieces:
            await self._pieces_frame(meta, frame, pieces, delta, ends)
        elif path is not None and delta is not None:
            await self._delta_frame(meta, frame, path, delta, terminal=ends(None))
        else:
            protected = await self._protector.protect_frame(frame)
            if protected is None:
                raise Blocked
            await self._send(meta, dumps(protected), json_data=True, event=protected)
        if terminal:
            self.finished = True

    async def _delta_frame(
        self, meta: tuple[str, ...], frame: Any, path: Path, delta: str, *, terminal: bool
    ) -> None:
        """A frame with delta text: the text goes through the window, the rest is protected
        within the frame.

        Delta frames of one stream usually differ only in their text (same id, model,
        index), so a frame that protection left untouched is remembered by its text-less
        form and not inspected again; a frame with any finding is never remembered, so
        every finding is counted each time it occurs.
        """
        _put(frame, path, "")
        key = _KEY.encode(frame)
        slotted = self._clean.get(key)
        if slotted is None:
            before = self._protector.summary()
            protected = await self._protector.protect_frame(frame)
            if protected is None:
                raise Blocked
            slotted = self._slotted(protected, path)
            if (
                len(self._clean) < _CLEAN_FRAMES
                and len(key) <= _CLEAN_FRAME_CHARS
                and self._protector.summary() == before
            ):
                self._clean[key] = slotted
        text = await self._push(delta)
        if terminal:
            text += await self._tail()
        text = await self._release(text, final=terminal)
        self._template = _Template(_events(meta), slotted.frame, path, self._kept)
        await self._send(meta, slotted.render(text), json_data=True)

    async def _pieces_frame(
        self,
        meta: tuple[str, ...],
        frame: Any,
        pieces: list[_Piece],
        delta: str | None,
        ends: Callable[[Hashable], bool],
    ) -> None:
        """A frame with pieces of named texts (taken out of it already), and maybe answer
        text: every piece goes through its channel's window and the answer text
        through the answer's, the rest is protected within the frame, and what the windows
        release is written back where it came from. A text this frame ``ends`` (the stream
        ends, or its choice finishes) is released whole into the last of its pieces here (a
        frame may name one choice twice), and a text that holds nothing back into each."""
        path = self._path
        if path is not None and delta is not None:
            _put(frame, path, "")
        protected = await self._protector.protect_frame(frame)
        if protected is None:
            raise Blocked
        events = _events(meta)
        last = {piece[0]: at for at, piece in enumerate(pieces)}
        if path is not None and delta is not None:
            closing = ends(None) and None not in last
            text = await self._push(delta)
            if closing:
                text += await self._tail()
            _put(protected, path, await self._release(text, final=closing))
            self._template = _Template(events, protected, path, self._kept)
        for at, (channel, where, piece, _part, twins) in enumerate(pieces):
            held = self._holds(channel)
            closing = (ends(channel) and last[channel] == at) or not held
            released = await self._push(piece, channel, hold=held)
            if closing:
                released += await self._tail(channel)
            released = await self._release(released, final=closing, channel=channel)
            self._record(channel, released)
            _put(protected, where, released)
            for twin in twins:
                _put(protected, twin, released)
            template = _Template(events, protected, where, self._kept, twins)
            if channel is None:
                self._template = template
            elif held:
                self._templates[channel] = template
        await self._send(meta, dumps(protected), json_data=True)

    def _unread(self, frame: dict[str, Any] | list[Any]) -> frozenset[Path]:
        """The windowed places of ``frame`` that its clients read no text from (see
        ``StreamDescriptor.reads``): none when they read every frame's.

        Text there stops the stream, as in :meth:`_check_named`: the window would release
        text into the frame, where clients that skip it drop it and join the text around it
        (a separator dropped that way joins the halves of a value the window saw apart).
        An empty text there is left in its frame, out of the windows.
        """
        reads = self._descriptor.reads
        if reads is None:
            return frozenset()
        read = reads(frame) if isinstance(frame, dict) else None
        unread = frozenset(where for where in self._windowed if where != read)
        if any(_text_at(frame, where) for where in unread):
            raise AmbiguousName("a frame holds text where its clients do not read any")
        return unread

    def _take_pieces(self, frame: Any, data: str, unread: frozenset[Path]) -> list[_Piece]:
        """Take the pieces of named texts (tool-call arguments, reasoning, later choices'
        answers, the Responses API's deltas) out of ``frame`` (parsed from ``data``), each
        place left ``""``; a piece of the answer found away from the delta path has the
        answer's channel (``None``).

        A spec whose text field's name is not in ``data`` is skipped without walking the
        frame, unless ``data`` escapes characters (a name could be written escaped). A text
        read across parts (``FragmentSpec.joined``) has one channel per kind, its positions
        naming the part the piece continues; a spec with such kinds takes pieces of those
        kinds only, and leaves the others to a later spec naming them otherwise (a
        Responses tool call's input, which clients add up by output alone). A place one
        spec took is not taken again by another, nor by a later ``members`` spec. A frame's
        ``unread`` places are not taken.
        """
        pieces: list[_Piece] = []
        probe = "\\u" not in data
        for number, spec in enumerate(self._fragments):
            if probe and not any(name in data for name in self._probes[number]):
                continue
            if spec.elements is None and spec.text in unread:
                continue
            if number in self._answer_specs and _only_first(frame, spec):
                continue  # one element, the first choice's: its text is the delta text
            readers = self._readers[number]
            taken = {where for piece in pieces for where in (piece[1], *piece[4])}
            if spec.members:
                pieces += self._member_pieces(number, spec, frame, taken)
                continue
            for prefix, element, qualifiers in _elements(frame, spec.elements):
                found = _named_text(element, spec)
                if found is None:
                    continue
                places, text = found
                where, *twins = ((*prefix, *at) for at in places)
                label = element.get("type") if spec.joined else None
                joined = isinstance(label, str) and label in spec.joined
                if where in taken or (spec.joined and not joined):
                    continue
                named = tuple(read(element.get(key)) for key, read in readers)
                name = (*qualifiers, *named)
                if not all(part is None or type(part) in (int, str, bool) for part in name):
                    continue  # not a piece of a named text: protected within the frame
                channel: Hashable = (number, *name)
                if joined:
                    part = tuple(
                        value
                        for (key, _read), value in zip(readers, named, strict=True)
                        if key in spec.positions and value is not None
                    )
                    _put(frame, where, "")
                    pieces.append(((number, label), where, text, part, ()))
                    continue
                if name in spec.exclude:
                    # The first choice's: its answer (wherever it sits in the frame).
                    if where == self._path:
                        continue  # at the delta path: taken there
                    channel = None
                _put(frame, where, "")
                for twin in twins:
                    _put(frame, twin, "")
                pieces.append((channel, where, text, None, tuple(twins)))
        return pieces

    def _member_pieces(
        self, number: int, spec: FragmentSpec, frame: Any, taken: set[Path]
    ) -> list[_Piece]:
        """Take every string of a ``members`` spec's objects (a chat choice's ``delta``) that
        no earlier spec took out of ``frame``, each a piece of its own text, named by the
        element and the members leading to it (see ``FragmentSpec.members``)."""
        pieces: list[_Piece] = []
        worded = {key for key, _words in spec.words}
        for prefix, element, qualifiers in _elements(frame, spec.elements):
            members = _value_at(element, spec.text)
            if not isinstance(members, dict):
                continue
            _check_words(members, spec.words)
            base = (*prefix, *spec.text)
            if _nothing_left(members, base, worded, taken, self._path):
                continue  # the usual delta: a role and the text another spec took
            for where, names, text in _strings(members, base, (), self._kept):
                if names[0] in worded or where in taken or where == self._path:
                    continue
                _put(frame, where, "")
                pieces.append(((number, *qualifiers, *names), where, text, None, ()))
        return pieces

    def _holds(self, channel: Hashable) -> bool:
        """Whether ``channel``'s window holds text back (all but ``members`` texts do)."""
        return not (isinstance(channel, tuple) and channel[0] in self._unheld)

    async def _enter_parts(self, pieces: list[_Piece]) -> None:
        """Follow the part each piece of a text read across parts continues. A part only
        ever follows the one before it: a piece of an earlier part stops the stream, since a
        client that reads the part alone would join text that the window, which reads the
        parts in arrival order, saw apart. Entering a later part first sends what the text's
        window holds, in a copy of the earlier part's last frame, so every part keeps its own
        text even when a server leaves out the events that close a part."""
        for channel, _where, _text, part, _twins in pieces:
            if part is None:
                continue
            last = self._parts.get(channel, part)
            if part < last:
                raise AmbiguousName("a part of a text continues after a later one began")
            if part > last:
                await self._flush_pieces({channel}.__contains__)
                self._new_texts((channel,))
            self._parts[channel] = part

    async def _enter_block(self, frame: Any, kind: str) -> None:
        """Follow the content block a block frame (of type ``kind``) names (by its ``index``,
        as clients read it). A block only ever follows the one before it: a frame of an
        earlier block stops the stream, since a client that reads the block alone would join
        text that the window, which reads the blocks' text in arrival order, saw apart.
        Entering a new block first sends what the windows hold, in copies of the earlier
        block's frames, so every block keeps its own text even when a server leaves out a
        ``content_block_stop``."""
        block = position(frame.get("index"))
        if block < self._block:
            raise AmbiguousName("a content block continues after a later one began")
        if self._kinds is not None:
            self._check_block(self._kinds, frame, kind, block)
        if block > self._block:
            self._block = block
            await self._flush()
            self._new_texts(tuple(self._readings))

    def _new_texts(self, channels: Iterable[Hashable]) -> None:
        """Read what ``channels`` carry from now on as new texts too: a client reads a
        content block's (or a part's) text as a document of its own, as well as all of them
        joined, so a marker is restored only where both readings put it at one level (a
        block of JSON after one of prose, or of prose inside a string the blocks' JSON left
        open, is at two). Called once the channels' held text is sent."""
        for channel in channels:
            readings = self._readings.get(channel)
            if readings is not None:
                self._readings[channel] = (readings[0], _Reading())

    def _check_block(self, kinds: BlockKinds, frame: dict[str, Any], kind: str, block: int) -> None:
        """Stop the stream at a block frame that clients do not all read as the API sends it:
        a ``content_block_start`` at another position than the one clients add its block
        at (the end of the message's content, whatever ``index`` the frame names), a
        ``content_block_delta`` or ``_stop`` of a block that is not open (none opened it,
        or a ``content_block_stop`` closed it), and a delta of a kind that does not belong
        to its block (``kinds.deltas``: a ``text_delta`` in a tool-use block). The SDK's
        ``text_stream`` prints the text of every ``text_delta`` whatever its block, while
        ``get_final_message`` ignores one in a block of another kind, and a loop adding
        deltas up by ``index`` joins a tool call's input with such a delta's text, which
        the windows read apart."""
        if kind == "content_block_delta":
            self._check_open(block)
            delta = frame.get("delta")
            sort = delta.get("type") if isinstance(delta, dict) else None
            blocks = kinds.deltas.get(sort) if isinstance(sort, str) else None
            if blocks is None:
                # No delta, or one of a kind the API may add later: its text at a windowed
                # place stops the stream already (see ``_unread``).
                return
            begun = self._begun or ()
            if (begun[block] if block < len(begun) else self._block_kind) not in blocks:
                raise AmbiguousName("a delta does not belong to the kind of its content block")
            return
        opened = kinds.opened(frame)
        if opened is None:  # a content_block_stop
            self._check_open(block)
            self._closed = block
        elif block != self._opened:
            raise AmbiguousName("a content block opens where clients do not put it")
        else:
            self._opened += 1
            self._block_kind = opened[0]

    def _check_open(self, block: int) -> None:
        """Stop the stream at a frame of a block clients do not hold open."""
        if block >= self._opened or block <= self._closed:
            raise AmbiguousName("a frame names a content block that is not open")

    def _begin(self, kinds: BlockKinds, frame: dict[str, Any]) -> None:
        """Take the kinds of the content blocks a ``message_start`` brings (clients add the
        blocks ``content_block_start`` opens after them). A message starts once, before any
        of its blocks: a later ``message_start`` stops the stream, since the SDK ignores it
        while the windows would take the blocks it brings."""
        opened = kinds.opened(frame)
        if opened is None:
            return
        if self._begun is not None or self._opened:
            raise AmbiguousName("a message starts again")
        self._begun = opened
        self._opened = len(opened)

    def _record(self, channel: Hashable, text: str) -> None:
        """Remember ``text`` as sent in the part ``channel`` is in, when events repeat that
        part's text.

        Memory stays bounded: a part that delivered no text is not kept (its repeated text
        is read like that of a part no piece streamed); the texts kept at once are bounded
        like a frame that repeats them (a part that would pass the bound is let go, so that
        repeating it stops the stream); and a stream keeping more than ``_MAX_PARTS`` parts
        at once stops."""
        if channel not in self._restated or not text:
            return
        key = (channel, self._parts[channel])
        said = self._said.get(key)
        if said is None:
            if self._gone_by(key):
                return  # let go: repeating it stops the stream
            if len(self._said) >= _MAX_PARTS:
                raise RuntimeError(f"a stream kept more than {_MAX_PARTS} parts open")
            said = self._said[key] = []
        if self._said_size + len(text) > self._max_frame:
            self._let_go(key)
            return
        said.append(text)
        self._said_size += len(text)

    def _let_go(self, key: _Part) -> None:
        """Forget a part's text, but not that it was streamed: the part is at or before the
        last part of its text let go, and repeating such a part stops the stream rather than
        send a text no window read. The parts of a text only ever follow one another, so one
        position per text remembers every part let go."""
        channel, part = key
        said = self._said.pop(key, None)
        self._said_size -= sum(map(len, said or ()))
        gone = self._gone.get(channel)
        self._gone[channel] = part if gone is None else max(gone, part)

    def _gone_by(self, key: _Part) -> bool:
        """Whether ``key``'s part is at or before the last part of its text let go."""
        channel, part = key
        gone = self._gone.get(channel)
        return gone is not None and part <= gone

    def _restate(self, frame: Any, finals: _Finals) -> None:
        """Replace each text ``frame`` repeats of a part that pieces named with the text they
        delivered (see :class:`~haechi.protocols.types.FinalText`)."""
        for number, final, readers in finals:
            values = (read(frame.get(key)) for key, read in readers)
            names = tuple(name for name in values if name is not None)
            for where, places in _places(frame, final.text):
                key = ((number, final.kind), (*names, *places))
                said = self._said.get(key)
                if said is None:
                    if self._gone_by(key):
                        raise AmbiguousName("a part's text is repeated after it was let go")
                    continue  # a part never streamed: protected within the frame
                _put(frame, where, "".join(said))
                if final.closes:
                    self._let_go(key)

    def _finishing(self, frame: Any) -> frozenset[int]:
        """The choices this frame finishes (OpenAI's ``finish_reason``, Gemini's
        ``finishReason`` or ``finish_reason``), by the name their pieces have (see
        :func:`_element_name`): every choice of the frame is read, as clients read each by
        its ``index``, not only the first of the list."""
        if self._finish is None:
            return frozenset()
        return frozenset(
            names[0]
            for _where, choice, names in _elements(frame, self._finish)
            if any(choice.get(field) is not None for field in self._descriptor.finish_fields)
        )

    def _choice_of(self, channel: Hashable) -> Any:
        """The choice a channel's text belongs to: the first for the answer, the choice's
        ``index`` for texts found in every choice (``elements`` starting with the list of
        choices)."""
        if channel is None or self._finish is None or not isinstance(channel, tuple):
            return 0
        spec = self._fragments[channel[0]]
        if spec.elements is not None and spec.elements[:2] == self._finish:
            return channel[1]
        return 0

    def _slotted(self, protected: Any, path: Path) -> _Slotted:
        """Serialise ``protected`` once, cut around its delta slot."""
        _put(protected, path, self._sentinel)
        data = dumps(protected)
        _put(protected, path, "")
        head, found, tail = data.partition(dumps(self._sentinel))
        if not found or dumps(self._sentinel) in tail:
            # The sentinel is random per stream; meeting it in a frame means the frame
            # cannot be written reliably, so the stream stops rather than guess.
            raise RuntimeError("delta slot of a frame could not be located")
        return _Slotted(protected, head, tail)

    async def _text(self, meta: tuple[str, ...], text: str, *, quoted: bool) -> None:
        """A text frame: through the answer's window, sent whole once all of it is out.

        A stream without delta text (the Responses API's) windows its text frames the same
        way, joined with each other: a value cut between two of them is found whole."""
        if not quoted and reader_breaks(text):
            # Sent raw, it would be cut into lines (frames) by some clients' line readers.
            raise RuntimeError("a text frame holds a character that line readers split at")
        held = _TextFrame(meta, quoted)
        fields = _size(meta)
        if self._held_fields + fields > self._max_frame:
            # Held frames' field lines count together, as one frame, against the limit.
            raise frame_too_large(self._max_frame)
        self._held += 1
        self._held_fields += fields
        await self._send_loose(await self._push(text, owner=held))

    async def _settle(self, runs: list[Run]) -> str:
        """Send the text frames that the answer's window released whole; return the answer
        text it released after the last of them, for the frame being built.

        Upstream order is kept: answer text released ahead of a text frame is sent before
        it, as a copy of the last JSON content frame. While a text frame is still held,
        nothing is left for the frame being built, which would carry it ahead of that frame.
        """
        loose: list[str] = []
        for run in runs:
            frame = run.owner
            if not isinstance(frame, _TextFrame):
                loose.append(run.text)
                continue
            frame.parts.append(run.text)
            if run.whole:
                await self._send_loose("".join(loose))
                loose.clear()
                self._held -= 1
                self._held_fields -= _size(frame.meta)
                await self._send_text(frame)
        if self._held:
            await self._send_loose("".join(loose))
            return ""
        return "".join(loose)

    async def _send_loose(self, text: str) -> None:
        """Send released answer text, and any marker start the detokenizer holds, as a copy
        of the last JSON content frame: a text frame or the end of the text follows."""
        text = await self._release(text, final=True)
        if text:
            await self._send_copy(self._template, text)

    async def _send_text(self, frame: _TextFrame) -> None:
        """Send a text frame with its protected text.

        A frame that was not JSON must not become a JSON object or array (a value replaced
        across frames takes a piece of the next frame along): a client would parse it as a
        chunk and join text the detector never saw joined. That fails closed.
        """
        text = await self._restored("".join(frame.parts))
        if frame.quoted:
            await self._send(frame.meta, dumps(text), json_data=True)
            return
        if _json_container(text):
            raise RuntimeError("protection turned a text frame into a JSON chunk")
        if _chunk_line(text):
            # Readers of data lines (google-genai, llama.cpp's) parse each line on its own.
            raise RuntimeError("a line of a text frame is a JSON chunk on its own")
        await self._send(frame.meta, text, json_data=False)

    async def _flush(self) -> None:
        """Send the held tail as a copy of the last content frame, then what every other
        channel holds."""
        await self._flush_answer()
        await self._flush_pieces()

    async def _flush_answer(self) -> None:
        tail = await self._release(await self._tail(), final=True)
        if tail:
            await self._send_copy(self._template, tail)

    async def _flush_pieces(self, which: Callable[[Hashable], bool] | None = None) -> None:
        """Send what each channel (``which`` of them, or all) other than the answer holds,
        each as a copy of the last frame of its text."""
        held = self._detokenizer.holding() if self._detokenizer is not None else ()
        for channel in dict.fromkeys((*self._protector.holding(), *held)):
            if channel is None or (which is not None and not which(channel)):
                continue
            tail = await self._release(await self._tail(channel), final=True, channel=channel)
            if tail:
                self._record(channel, tail)
                await self._send_copy(self._templates.get(channel), tail)

    async def _send_copy(self, template: _Template | None, text: str) -> None:
        if template is None:
            raise RuntimeError("stream text was held without a content frame to carry it")
        await self._send(template.events, template.render(text), json_data=True)

    # -- helpers -------------------------------------------------------------------------

    async def _push(
        self,
        text: str,
        channel: Hashable = None,
        *,
        owner: _TextFrame | None = None,
        hold: bool = True,
    ) -> str:
        """Push to ``channel``'s window; return what it released for the frame being built
        (the answer's text frames it released whole are sent on the way)."""
        runs = await self._protector.push_runs(text, channel, owner=owner, hold=hold)
        if self._protector.blocked:
            raise Blocked
        return await self._settle(runs) if channel is None else _joined(runs)

    async def _tail(self, channel: Hashable = None) -> str:
        """Release all that ``channel``'s window holds, like :meth:`_push`."""
        runs = await self._protector.flush_runs(channel)
        if self._protector.blocked:
            raise Blocked
        return await self._settle(runs) if channel is None else _joined(runs)

    async def _release(self, text: str, *, final: bool, channel: Hashable = None) -> str:
        """What of ``channel``'s text the detokenizer lets go now, its markers restored: in
        a text that is JSON source (a tool call's arguments, an answer in JSON mode: see
        :func:`~haechi._documents.begins_json_container`) each value escaped once for every
        string of the text it lies in, in any other as it is; the frame escapes it once
        more. Restored here, with the text's own state, and not when the frame is sent: a
        piece of prose that happens to begin like JSON is no JSON source."""
        detokenizer = self._detokenizer
        if detokenizer is None:
            return text
        readings = self._judged(text, channel)
        released = detokenizer.drain(text, channel) if final else detokenizer.hold(text, channel)
        if not released:
            return released
        return await detokenizer.restore_read(released, [r.nesting for r in readings])

    async def _restored(self, text: str) -> str:
        """``text``, the whole text of a text frame (a piece of the answer's text, which
        holds nothing back: a marker cut between text frames stays cut), with its markers
        restored as :meth:`_release` restores the answer's: clients join text frames, so
        whether it is JSON source is the answer's text's, not the frame's, to say."""
        detokenizer = self._detokenizer
        if detokenizer is None or not text:
            return text
        readings = self._judged(text, None)
        return await detokenizer.restore_read(text, [r.nesting for r in readings])

    def _judged(self, text: str, channel: Hashable) -> tuple[_Reading, ...]:
        """The readings of ``channel``'s text, having judged ``text``, which follows."""
        readings = self._readings.setdefault(channel, (_Reading(),))
        for reading in readings:
            reading.judge(text)
        return readings

    async def _send(
        self, meta: tuple[str, ...], data: str, *, json_data: bool, event: Any = None
    ) -> None:
        """Send a frame whose data is ``data`` (``event`` serialised, for an event without
        windowed text), its markers restored: in JSON data each value is escaped once for
        every string it lies in, so a string of the frame that is JSON source (a call's
        arguments sent as an object can hold one) gets it escaped within it. The windowed
        texts in it were restored as they were released (see :meth:`_release`)."""
        if self._detokenizer is not None:
            data = await (
                self._detokenizer.restore(data, json_string=json_data)
                if event is None
                else self._detokenizer.restore_event(data, event)
            )
        self.out.append(encode_sse(meta, data) if self._sse else encode_ndjson(data))

    async def _fields_of(self, meta: tuple[str, ...]) -> tuple[str, ...]:
        """Inspect a frame's field lines; short lines without findings are remembered.

        Only comments and the fields the SSE specification defines besides ``data`` are
        kept. Clients ignore any other field, except readers that take a field's name
        trimmed or in any case: to them ``data : {...}`` or ``Data: {...}`` is data, a chunk
        whose text no window read, joined with the answer's. Such lines are dropped; one
        that is a JSON object or array on its own (``{"choices": ...}``, which the parser
        reads as a field named ``{"choices"``) stops the stream, as no server sends it, and
        so does a line sent on whose value is one (``: {"choices": ...}``, a comment), which
        readers that take every line past its first colon for data read as a chunk."""
        meta = tuple(line for line in meta if _defined_field(line))
        if not meta:
            return meta
        known = self._fields
        protector = self._protector
        protected_lines: list[str] = []
        for line in meta:
            protected = known.get(line)
            if protected is None:
                if reader_breaks(line):
                    # Some clients' line readers would cut it into lines of their own.
                    raise RuntimeError("a field line holds a character that line readers split at")
                before = protector.summary()
                protected = await protector.protect_text(line)
                if protected is None:
                    raise Blocked
                if _json_container(protected.partition(":")[2]):
                    # Readers that parse every line past its first colon (``line.slice(
                    # line.indexOf(':') + 1)``, meant for ``data:`` lines) read it as a chunk.
                    raise RuntimeError("a field line holds a JSON chunk to readers of every line")
                if (
                    len(known) < _FIELD_CACHE_ENTRIES
                    and len(line) <= _FIELD_CACHE_LINE
                    and protector.summary() == before
                ):
                    known[line] = protected
            protected_lines.append(protected)
        return tuple(protected_lines)


def _defined_field(line: str) -> bool:
    """Whether a field line (as the parser normalised it) is a comment or one of the fields
    the SSE specification defines (``event``, ``id``, ``retry``; data is not a field line).
    A line that is a JSON chunk raises: readers that parse every line but its ``data: ``
    (the widely copied ``JSON.parse(line.replace(/^data: /, ""))``) read it as one."""
    if line.startswith(":") or line.partition(":")[0] in _FIELDS:
        return True
    if _json_container(line):
        raise RuntimeError("a field line is a JSON chunk to readers of every line")
    return False


def _check_unwrapped(meta: tuple[str, ...]) -> None:
    """Stop the stream at a data frame named as an event the openai SDKs read apart (one
    whose name starts with ``thread.``, whatever the API): both SDKs hand such a frame on
    as ``{"event": ..., "data": ...}``, a chunk without ``choices`` (or ``type``) to their
    callers. A loop that skips a chunk without choices (as it must for the usage chunk)
    drops the text the window released into the frame and joins the text around it: a
    separator released there would join the halves of a value the window saw apart."""
    for line in _events(meta):
        if line.partition(":")[2].lstrip(SPACES).startswith(_WRAPPED_EVENTS):
            raise AmbiguousName("a frame is named as an event its clients read apart")


def _events(meta: tuple[str, ...]) -> tuple[str, ...]:
    """The lines a copy of a frame keeps: its event name, not its id or retry."""
    return tuple(line for line in meta if line.startswith("event:"))


def _size(meta: tuple[str, ...]) -> int:
    """The characters of a frame's field lines, with their line ends."""
    return sum(len(line) + 1 for line in meta)


def _joined(runs: list[Run]) -> str:
    return "".join(run.text for run in runs)


def _json_container(text: str) -> bool:
    """Whether ``text`` parses as a JSON object or array once trimmed as clients trim a line
    (go-openai's ``bytes.TrimSpace``, JavaScript's ``trim()``: Unicode spaces and a byte
    order mark, which Python's parser refuses). JSON that Python refuses to read but other
    parsers read (too deep, too long an integer) raises, as in ``_frame``."""
    text = text.strip(SPACES)
    if not text.startswith(("{", "[")):
        return False
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(value, dict | list)


def _chunk_line(text: str) -> bool:
    """Whether ``text`` has several lines (as a frame writes them: one ``data:`` line each)
    one of which parses as a JSON object or array on its own."""
    if "\n" not in text and "\r" not in text:
        return False
    return any(map(_json_container, _LINE_ENDS.split(text)))


def _indexed_elements(node: Any, where: Path) -> Iterator[tuple[Path, int | None]]:
    """The elements of every list of objects in ``node`` (a choice: the lists in its delta)
    that clients add up by ``index``, each as the names of its list (``where``, then the
    members and indices above it) and its index as clients read it, in the order of the
    frame. An element without an index is ``None``, and so is a list of objects none of
    which has one (once)."""
    if isinstance(node, list):
        objects = [item for item in node if isinstance(item, dict)]
        if not any(item.get("index") is not None for item in objects):
            if objects:
                yield where, None
            return
        for item in objects:
            if item.get("index") is None:
                yield where, None
                continue
            index = position(item["index"])
            yield where, index
            for key, value in item.items():
                if isinstance(value, dict | list):
                    yield from _indexed_elements(value, (*where, index, key))
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict | list):
                yield from _indexed_elements(value, (*where, key))


def _check_unwindowed(frame: Any, places: tuple[Path, ...]) -> None:
    """Stop the stream at a frame holding pieces of a text no window follows (see
    ``StreamDescriptor.unwindowed``): anything but null or an empty list at one of
    ``places``. Protected within the frame alone, a value an upstream cuts between two such
    pieces would reach the client whole."""
    for path in places:
        for where, _positions in _places(frame, path):
            if _value_at(frame, where) != []:
                raise AmbiguousName("a frame streams a text that no window follows")


def _check_choices(choices: Any, *, one: bool) -> None:
    """Stop the stream at a frame whose answers (``choices``) no window reads as clients do:
    not a list (a JavaScript client reads ``choices[0]`` of an object too), or, when the
    request asked for ``one`` answer, a list naming another (more than one element, or an
    ``index`` other than 0), which the usual loop over ``choices[0]`` would join to the
    answer."""
    if choices is None:
        return
    if not isinstance(choices, list):
        raise AmbiguousName("a frame's choices are not a list")
    if one and choices and (len(choices) > 1 or _element_name(choices[0], 0) != 0):
        raise AmbiguousName("a frame names a choice the request did not ask for")


def _only_first(frame: Any, spec: FragmentSpec) -> bool:
    """Whether the list ``spec`` walks (``choices`` of ``choices[*]``) holds one element
    whose name is excluded (the first choice): the common frame of a one-answer stream."""
    elements = spec.elements
    if elements is None or len(elements) != 2 or elements[1] != EACH:
        return False
    items = frame.get(elements[0]) if isinstance(frame, dict) else None
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
        return False
    return (_element_name(items[0], 0),) in spec.exclude


def _element_name(element: Any, at: int) -> int:
    """The name an element of an :data:`EACH` list gives its texts: its ``index`` as clients
    read it (see :func:`~haechi.streaming._names.position`), or its position ``at`` when it
    has none."""
    index = element.get("index") if isinstance(element, dict) else None
    return at if index is None else position(index)


def _elements(
    frame: Any, path: tuple[PathSegment, ...] | None
) -> list[tuple[Path, dict[str, Any], tuple[int, ...]]]:
    """The objects at ``path`` in ``frame`` (the frame itself for ``None``), each with where
    it is and the names its :data:`EACH` segments give it (:func:`_element_name`); an
    :data:`EVERY` segment gives none.

    A value at an :data:`EACH` or :data:`EVERY` segment that is neither a list nor null
    raises :class:`AmbiguousName`: a JavaScript client indexes an object keyed ``"0"`` like
    a list, so the text in it would reach the client unwindowed."""
    if path is None:
        return [((), frame, ())] if isinstance(frame, dict) else []
    places: list[tuple[Path, Any, tuple[int, ...]]] = [((), frame, ())]
    for segment in path:
        following: list[tuple[Path, Any, tuple[int, ...]]] = []
        for where, node, names in places:
            if segment in (EACH, EVERY):
                if not isinstance(node, list):
                    raise AmbiguousName("a list of a frame's texts is not a list")
                following.extend(
                    (
                        (*where, at),
                        item,
                        names if segment == EVERY else (*names, _element_name(item, at)),
                    )
                    for at, item in enumerate(node)
                )
                continue
            if isinstance(node, dict):
                child = node.get(segment)
            elif isinstance(node, list) and type(segment) is int and 0 <= segment < len(node):
                child = node[segment]
            else:
                continue
            if child is not None:
                following.append(((*where, segment), child, names))
        places = following
    return [(where, node, names) for where, node, names in places if isinstance(node, dict)]


def _finals(fragments: tuple[FragmentSpec, ...]) -> dict[str, _Finals]:
    """The specs' ``finals`` by event type, with how each reads the event's names."""
    finals: dict[str, _Finals] = {}
    for number, spec in enumerate(fragments):
        for final in spec.finals:
            readers = tuple((name, reader(spec, name)) for name in final.names)
            finals.setdefault(final.event, []).append((number, final, readers))
    return finals


def _places(node: Any, path: Path) -> Iterator[tuple[Path, tuple[int, ...]]]:
    """The places of ``path`` in ``node`` that hold a value, each with the positions its
    :data:`EACH` segments take: a list element's position, as clients index the list. A
    value there that is neither a list nor null raises :class:`AmbiguousName`, as in
    :func:`_elements`."""
    if not path:
        if node is not None:
            yield (), ()
        return
    segment, rest = path[0], path[1:]
    if segment == EACH:
        if node is not None and not isinstance(node, list):
            raise AmbiguousName("a list of a frame's texts is not a list")
        for at, item in enumerate(node or ()):
            for where, positions in _places(item, rest):
                yield (at, *where), (at, *positions)
    elif isinstance(node, dict):
        for where, positions in _places(node.get(segment), rest):
            yield (segment, *where), positions


def _value_at(node: Any, path: Path) -> Any:
    for segment in path:
        if isinstance(node, dict) and isinstance(segment, str):
            node = node.get(segment)
        elif isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node):
            node = node[segment]
        else:
            return None
    return node


def _text_of(node: Any, path: Path) -> str | None:
    """The streamed text at ``path`` of ``node`` (``None`` for none), where clients add the
    pieces of a text up. A number, a boolean or a list there raises
    :class:`AmbiguousName`: a JavaScript client adds it to its text as what it spells
    (``text += 4111`` reads ``"4111"``, a list its elements), which no window read. An object
    spells nothing (``[object Object]``) and null is none: both are left in the frame."""
    value = _value_at(node, path)
    if isinstance(value, int | float | list):  # bool is an int
        raise AmbiguousName("a streamed text is a value clients join as its spelling")
    return value if isinstance(value, str) else None


def _named_text(element: Any, spec: FragmentSpec) -> tuple[tuple[Path, ...], str] | None:
    """Where in ``element`` the text of ``spec`` is, under each of its names (``text``, then
    ``also``) that carries it, and the text; ``None`` when it is under none. An empty text
    beside another is left in the frame: one window reads the text under every name, so
    nothing is joined there that it did not see. Two different texts raise
    :class:`AmbiguousName`: clients differ on which name they read, and the window can
    follow only one of them."""
    found = [
        (path, text)
        for path in (spec.text, *spec.also)
        if (text := _text_of(element, path)) is not None
    ]
    if not found:
        return None
    text = next((text for _path, text in found if text), "")
    if any(other and other != text for _path, other in found):
        raise AmbiguousName("a frame carries a text under two names with different texts")
    return tuple(path for path, other in found if other == text), text


def _text_at(node: Any, path: Path) -> str | None:
    value = _value_at(node, path)
    return value if isinstance(value, str) else None


def _put(node: Any, path: Path, value: str) -> None:
    """Write ``value`` at ``path``, which must be there: a member that protection renamed
    (a key holding a value) is not written back under its old name."""
    for segment in path[:-1]:
        node = node[segment]
    if isinstance(node, dict) and path[-1] not in node:
        raise RuntimeError("a streamed text's place is gone from its protected frame")
    node[path[-1]] = value


def _strings(
    node: Any, where: Path, names: tuple[Hashable, ...], replaced: frozenset[str]
) -> Iterator[tuple[Path, tuple[Hashable, ...], str]]:
    """The non-empty strings in ``node`` (at ``where``, named ``names``) that the openai SDK
    joins with those of other frames at the same names, each with its place and names: the
    members of an object but those in ``replaced``, and the objects of a list, named by
    their ``index`` as the SDK merges them (a list of scalars it extends instead)."""
    if isinstance(node, str):
        if node:
            yield where, names, node
    elif isinstance(node, dict):
        for key, value in node.items():
            if key not in replaced:
                yield from _strings(value, (*where, key), (*names, key), replaced)
    elif isinstance(node, list):
        for at, item in enumerate(node):
            if isinstance(item, dict):
                name = _element_name(item, at)
                yield from _strings(item, (*where, at), (*names, name), replaced)


def _nothing_left(
    members: dict[str, Any], base: Path, worded: set[str], taken: set[Path], path: Path | None
) -> bool:
    """Whether :func:`_strings` would find no string in ``members`` (at ``base``) that is
    neither worded, taken by another spec, nor at the delta ``path``: without walking
    it, for a delta of scalars (what almost every frame carries)."""
    for key, value in members.items():
        if key in worded or value is None or value == "":
            continue
        if type(value) is not str:
            if isinstance(value, dict | list):
                return False
            continue
        where = (*base, key)
        if where != path and where not in taken:
            return False
    return True


def _check_words(members: dict[str, Any], words: tuple[tuple[str, frozenset[str]], ...]) -> None:
    """Stop the stream at a member that should hold one of a few words and holds anything
    else: clients join it across frames like any string, and it is left in its frame."""
    for key, allowed in words:
        value = members.get(key)
        if value is not None and (type(value) is not str or value not in allowed):
            raise RuntimeError(f"a {key} is none of the words clients read there")


def _spine(node: Any, path: Path, text: str, kept: frozenset[str], *, top: bool = True) -> Any:
    """A copy of ``node`` reduced to ``path``, carrying ``text``.

    The scalars of the frame's top level are kept (ids, model, ``type``, ``index``), below
    it only those named in ``kept`` (the descriptor's ``kept_in_copies``: ``index`` and
    ``type``; Ollama's client also needs a message's ``role``). Clients add up a stream's
    deltas (the OpenAI SDK joins the strings it sees twice, and adds the numbers), so any
    other value repeated there (a role, a tool call's id or name) would be doubled. Nulls
    and empty containers are kept everywhere (they repeat nothing, and clients may expect
    the field); other containers are dropped, so the copy repeats no tool-call argument and
    no other choice. In a list only the element on the path is kept.
    """
    if not path:
        return text
    segment, rest = path[0], path[1:]
    if isinstance(node, list) and isinstance(segment, int):
        return [_spine(node[segment], rest, text, kept, top=False)]
    copy = {
        key: value
        for key, value in node.items()
        if key == segment
        or _empty(value)
        or (not isinstance(value, dict | list) and (top or key in kept))
    }
    copy[segment] = _spine(node[segment], rest, text, kept, top=False)
    return copy


def _put_in_spine(node: Any, path: Path, text: str) -> None:
    """Write ``text`` at ``path`` of a copy :func:`_spine` made along another path to the
    same object: a list there holds only the element on that path, at position 0."""
    for segment in path[:-1]:
        node = node[0] if isinstance(node, list) else node[segment]
    node[path[-1]] = text


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, dict | list) and not value)
