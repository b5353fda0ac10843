# SPDX-License-Identifier: Apache-2.0
"""What route classification returns: the route and, for streaming routes, how to read it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from haechi.models import PathSegment
from haechi.protocols.token_ids import NO_TOKEN_IDS, TokenIdFields

__all__ = [
    "EACH",
    "EVERY",
    "BlockKinds",
    "FinalText",
    "FragmentSpec",
    "Route",
    "StreamDescriptor",
]

#: A segment of :attr:`FragmentSpec.elements` standing for every element of a list.
EACH: Final = "*"
#: Like :data:`EACH`, but the element does not name the text: the pieces of every element
#: continue one text, in order (a Gemini candidate's parts, which clients join).
EVERY: Final = "**"


@dataclass(frozen=True, slots=True)
class FinalText:
    """Where an event repeats the whole text of a part of a text read across parts
    (``FragmentSpec.joined``) once the part is complete. A client may read it instead of the
    pieces (the openai SDK builds its final response from ``response.output_item.done``
    events), and protected within its event alone it would show a value cut between two
    parts whole; so the stream replaces it with the text the pieces of that part delivered.

    Attributes:
        event: the ``type`` of the event (``response.output_text.done``).
        kind: the ``joined`` label of the pieces whose part it repeats
            (``response.output_text.delta``).
        names: the event's fields naming the part, read like the pieces' ``positions``
            (``output_index``, ``content_index``).
        text: path of the text in the event; an :data:`EACH` segment stands for every
            element of a list, its position in the list naming the part further, as clients
            index the list (an output item's ``content[*].text``).
        closes: no later event repeats the parts it names (an output item's last word):
            their text is let go after it, and one repeated anyway stops the stream.
    """

    event: str
    kind: str
    names: tuple[str, ...]
    text: tuple[PathSegment, ...]
    closes: bool = False


@dataclass(frozen=True, slots=True)
class FragmentSpec:
    """Where frames carry the pieces of a streamed text other than the answer: the arguments
    of a tool call, or the model's reasoning, which a model streams a few characters per
    frame like its answer.

    Attributes:
        elements: path to the elements that each carry one piece, :data:`EACH` standing for
            every element of a list (OpenAI's ``choices[*].delta.tool_calls[*]``), or
            ``None`` when the frame itself is the element (Anthropic's
            ``content_block_delta``). Each :data:`EACH` adds the element's ``index`` (its
            position when it has none), read as a position (see ``positions``), to the name
            of the text; :data:`EVERY` adds nothing. A value there that is neither a list
            nor null stops the stream: a JavaScript client indexes an object keyed ``"0"``
            like a list, and no window follows the text in it.
        keys: the element's fields that further name the text a piece continues (Anthropic's
            ``index``; the Responses API's ``output_index``, ``content_index`` (or
            ``summary_index``) and ``type``; Gemini's ``thought`` flag). A missing field
            names the text too (the unnamed pieces of a spec share one window). A field that
            is neither a position nor a flag (a label, such as ``type``) is taken as written;
            an element whose label is not an integer, a string, a boolean or missing is
            protected within its frame. No names at all: the stream has one such text
            (Ollama's ``thinking``).
        text: path of the piece inside the element.
        exclude: names whose text is the route's answer, not a piece of its own (the first
            choice's), which goes through the answer's window wherever it sits in the frame.
        positions: the ``keys`` that are list positions to the clients that add the pieces
            up (an ``index``): each is named by the integer clients read (``0``, ``0.0`` and
            ``"0"`` are one text), and a spelling clients read differently stops the stream
            (see ``haechi.streaming._names``).
        flags: the ``keys`` that are booleans to clients (Gemini's ``thought``): named
            ``True`` or ``False`` (a missing one is ``False``); any other value stops the
            stream.
        required: the ``positions`` a piece must carry (a client reads a missing Anthropic
            block ``index`` as the first block); a piece without one stops the stream.
        joined: values of the element's ``type`` whose text clients read as one across its
            parts as well as part by part (the Responses API's output text: the usual loop
            prints every ``response.output_text.delta`` of every output, the SDK adds them
            up by output and content index). Such a text has one window whatever its
            ``positions``, which name its *part* instead (read in order, a missing one
            left out). Both readings agree only while the parts come one after another:
            a piece of an earlier part than one before it stops the stream, and before a
            piece of a later part, what the window holds is sent into the earlier part.
        finals: where events repeat the whole text of a ``joined`` part (see
            :class:`FinalText`).
        members: ``text`` is an object every string of which, at any depth, is a text of
            its own, as the openai SDK adds a chat delta up (``accumulate_delta`` joins
            every string it meets twice): each is named by its path of members, a list
            element by its ``index`` (its position when it has none). Left out are the
            places an earlier spec takes and the delta path, empty strings, strings in a
            list of scalars (which the SDK extends rather than joins), and members clients
            replace rather than add up (the descriptor's ``kept_in_copies``: ``index`` and
            ``type``). Such a text holds nothing back: each piece is inspected after the
            text its member delivered before and leaves in its own frame, since servers
            send a tool call's id and name whole in one frame and clients read them there;
            a value that a later piece completes is protected from that piece on.
        words: members of a ``members`` object whose value is one of a few words (a chat
            delta's ``role``), or null: left in their frame, as windowing would hold them
            back, while any other value there stops the stream (the SDK joins it too).
        also: other paths of ``text`` in the element: servers name the text either way and
            clients read whichever is set (``delta.reasoning_content or delta.reasoning``),
            so it has one window under all its names. A piece under several of them is taken
            once and released into each when they hold the same text; different texts stop
            the stream, as clients differ on which they read.
    """

    elements: tuple[PathSegment, ...] | None
    keys: tuple[str, ...]
    text: tuple[PathSegment, ...]
    exclude: frozenset[tuple[int | str | bool | None, ...]] = frozenset()
    positions: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    joined: frozenset[str] = frozenset()
    finals: tuple[FinalText, ...] = ()
    members: bool = False
    words: tuple[tuple[str, frozenset[str]], ...] = ()
    also: tuple[tuple[PathSegment, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class StreamDescriptor:
    """How a streamed response of one route is framed and where its text delta lives.

    Attributes:
        format: ``"sse"`` (blank-line separated events) or ``"ndjson"`` (one JSON per line).
        delta_path: path of the incremental text inside each JSON frame, or ``None`` when
            every frame is protected on its own (no cross-frame window).
        flush_on_types: values of a frame's ``type`` field before which the held tail is
            flushed (Anthropic's ``content_block_stop``, ``message_delta``, ``message_stop``).
        terminal_types: values of ``type`` that end the stream (``message_stop``).
        done_field: a boolean field that marks the final frame (Ollama's ``done``).
        fragments: where tool-call arguments and reasoning are streamed; each such text
            goes through a cross-frame window of its own.
        kept_in_copies: the fields below a frame's top level that a copy of the frame (which
            carries held text) keeps beside the path; see ``haechi.streaming``.
        finish_fields: the fields of an element of ``choices`` whose non-null value says
            that choice is finished (OpenAI's ``finish_reason``; Gemini's ``finishReason``
            and ``finish_reason``, as its API and google-genai read a field by its JSON
            name or its proto name: any of them finishes the candidate). What that choice's
            windows hold is sent before the frame, or in it when it carries more of that
            text (see ``haechi.streaming``), so no text of a choice follows its finish.
        choices: the top-level field of a frame that lists its answers, each named by its
            ``index`` (OpenAI's ``choices``, Gemini's ``candidates``); a value other than a
            list (or null) stops the stream, as no window follows the text in it that clients
            read. A request that did not ask for several answers (``choice_count``) gets one,
            at position 0, from any real server, while the usual client loop reads the first
            element of every frame's list whatever its ``index`` (``choices[0]``, the
            google-genai SDK's ``chunk.text``): in such a stream a frame whose list has more
            than one element, or an element whose ``index`` is not 0, stops the stream.
        choice_count: the request fields that ask for several answers, each a path of object
            keys from the top of the body (OpenAI's ``("n",)``; Gemini's
            ``("generationConfig", "candidateCount")``, in every spelling its REST API
            reads); see ``haechi.protocols.asks_several_choices``.
        block_types: the ``type`` of the frames that belong to one content block, named by
            their ``index`` (Anthropic's ``content_block_start``, ``_delta`` and ``_stop``).
            Real servers send the blocks one after another, and clients read a block's
            text both on its own and joined with the other blocks' in arrival order; both
            readings agree only while no block continues after a later one began, so a
            frame naming an earlier block than the one before it, or no readable block,
            stops the stream (see ``haechi.streaming``).
        opening: for a frame that opens texts and already carries their first pieces
            (Anthropic's ``content_block_start`` with text, or ``message_start`` with content),
            takes the pieces out of the frame (in place) and returns the frames that continue
            the texts with them, which then follow the opening frame; ``()`` for any other
            frame. The pieces so go through their texts' windows, rather than being protected
            within the frame alone. Raises :class:`ValueError` (the stream stops) for a frame
            whose list of texts is not a list, which clients may still index as one.
        reads: for a stream whose clients read text from some frames only, where they read
            it in ``frame``: the path of its windowed text they read (Anthropic's
            ``delta.text`` of a ``content_block_delta`` whose delta is a ``text_delta``), or
            ``None`` for a frame they read none from. Text at any other windowed place of a
            frame (the delta path, or the ``text`` of a spec without ``elements``) stops the
            stream: text the window released there would be dropped by the clients, which
            would join the text around it (see ``haechi.streaming``). ``None``: every
            windowed place of every frame is read.
        block_kinds: for a stream of content blocks that have kinds, which deltas belong
            in which blocks (see :class:`BlockKinds`); the blocks must also open in the
            order clients add them, and a frame of a block that is not open stops the
            stream. ``None``: blocks have no kinds.
        named: the stream's clients read a frame by its ``event:`` line as well as by its
            JSON ``type`` (the anthropic SDK skips a frame named ``ping`` or not named at
            all, whatever its ``type``): a data frame whose ``event:`` lines do not all name
            its ``type`` stops the stream, as text the window released into it would be
            dropped by one reading and not by the other (see ``haechi.streaming``).
        data_only: the stream's clients read every line but a ``data:`` line as (a piece
            of) a JSON chunk: google-genai buffers any other line until its braces balance
            and parses it, so a line the SSE parser takes for a field line (an unknown field
            such as ``{"candidates":``) would be a chunk to it that no window saw. The API
            sends ``data:`` lines only; a frame with any other line stops the stream.
        folded: members that clients bind whatever the case of their name (Go's
            ``encoding/json``, which Ollama's own client reads streams with: ``"Response"``
            is ``response`` to it, and of several the last wins), each as the path of the
            object holding them and their names. A member of such an object named like one
            of them under that folding (see :mod:`haechi.protocols.member_names`) but not
            spelled exactly so stops the stream: the gateway windows, ends the stream on and
            leaves out the exact names only.
        unwindowed: where frames may carry the pieces of a streamed text that no window
            follows (Gemini's streamed function-call arguments, ``functionCall.partialArgs``,
            whose ``stringValue`` pieces clients join per ``jsonPath``), each a path whose
            :data:`EACH` segments stand for every element of a list. A frame holding
            anything there but null or an empty list stops the stream: protected within its
            frame alone, a value cut between two pieces would reach the client whole.
    """

    format: Literal["sse", "ndjson"]
    delta_path: tuple[PathSegment, ...] | None
    flush_on_types: frozenset[str] = frozenset()
    terminal_types: frozenset[str] = frozenset()
    done_field: str | None = None
    fragments: tuple[FragmentSpec, ...] = ()
    finish_fields: tuple[str, ...] = ()
    kept_in_copies: frozenset[str] = frozenset({"index", "type"})
    choices: str | None = None
    choice_count: tuple[tuple[str, ...], ...] = ()
    block_types: frozenset[str] = frozenset()
    opening: Callable[[dict[str, Any]], tuple[dict[str, Any], ...]] | None = None
    reads: Callable[[dict[str, Any]], tuple[PathSegment, ...] | None] | None = None
    block_kinds: BlockKinds | None = None
    named: bool = False
    data_only: bool = False
    folded: tuple[tuple[tuple[PathSegment, ...], frozenset[str]], ...] = ()
    unwindowed: tuple[tuple[PathSegment, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class BlockKinds:
    """The kinds of a stream's content blocks, and the kinds of delta each kind takes
    (Anthropic's: a ``text_delta`` belongs in a ``text`` block).

    Attributes:
        deltas: for each kind of delta, the kinds of block the API streams it into. A
            client library adds a delta up only in a block of such a kind, while other
            readings (the SDK's ``text_stream``, a loop adding every delta up by ``index``)
            take it whatever its block: a delta in a block of another kind stops the
            stream. A kind of delta not listed belongs to any block.
        opened: the kinds of the content blocks a frame opens, in the order clients add
            them (``None`` for a block without a kind), or ``None`` for a frame that opens
            none; a frame whose ``type`` is not a block frame opens blocks only when it
            starts the message.
    """

    deltas: Mapping[str, frozenset[str]]
    opened: Callable[[dict[str, Any]], tuple[str | None, ...] | None]


@dataclass(frozen=True, slots=True)
class Route:
    """The classification of one request against the configured upstream protocol.

    ``streaming_by_default``: a body without ``"stream": false`` asks for a stream (Ollama).
    ``always_streaming``: the route answers with a stream whatever the body says (Gemini
    ``:streamGenerateContent`` has no ``stream`` field, so a ``"stream": false`` in its body
    must not send the answer down the non-streaming path).
    ``token_ids``: the fields, at any depth of the answer (or of a streamed frame), that
    restate it as token ids, which detection cannot read (Ollama's ``context``, vLLM's
    log-probabilities written as ids); an answer protected in enforce mode goes out without
    them (see :mod:`haechi.protocols.token_ids`).
    ``token_id_inputs``: top-level request fields that may hold token ids instead of text (a
    completions ``prompt``); such a request is refused unless ``target.tokenIdInput`` is
    ``relay``.
    ``embedding_inputs``: top-level request fields that carry the prompt as embeddings
    (vLLM's ``prompt_embeds``), which detection cannot read either: refused like token ids.
    ``manages_models``: the route changes which weights a model name serves (Ollama's
    create, copy, pull, push and delete); refused under a model allowlist.
    ``model_paths``: where else in the body the route names models (each request of an
    Anthropic message batch names its own).
    """

    adapter_id: str
    protocol: str
    route_id: str
    path: str
    operation: str
    protect_request: bool = True
    protect_response: bool = True
    streaming_by_default: bool = False
    always_streaming: bool = False
    streaming: StreamDescriptor | None = None
    token_ids: TokenIdFields = NO_TOKEN_IDS
    token_id_inputs: tuple[str, ...] = ()
    embedding_inputs: tuple[str, ...] = ()
    manages_models: bool = False
    model_paths: tuple[tuple[str | int, ...], ...] = ()
