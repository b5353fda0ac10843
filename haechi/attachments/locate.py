# SPDX-License-Identifier: Apache-2.0
"""Where a walked payload carries attachments declared as text, decoded.

Three shapes are recognised, the first two wherever they sit in the payload:

- **A media type beside base64 data**: an object with a string ``mimeType`` or
  ``mime_type`` (Gemini's ``inlineData`` / ``inline_data``, MCP content) or ``media_type``
  (an Anthropic ``base64`` source) declaring text, and string ``data`` or ``blob`` (MCP's
  embedded resource) beside it, each decoded when both are there (a reader takes the one
  its schema names). In an object whose ``type`` is ``"text"`` and whose media type is a
  ``media_type``, ``data`` is the text itself (an Anthropic plain-text source), scanned as
  any string; a ``blob`` there is still base64 (an MCP client reads a resource's ``blob``
  whatever else it holds). Of two declarations on one object (``mimeType`` and
  ``mime_type``), one the data does not decode as makes it undecodable. Member names are
  matched as a case-insensitive decoder binds them
  (:func:`~haechi.protocols.member_names.named_like`: ``MimeType``, ``MEDIA_TYPE``,
  ``Data``): a proxy decoding the body so (Go's ``encoding/json``) sends the attachment on
  under the names the API reads.
- **A data URL** declaring text (OpenAI chat ``file.file_data``, Responses ``input_file``),
  base64 or percent-encoded. A data URL that is a piece of a text cut into pieces (see
  :mod:`haechi.pieces`) is not decoded: the model reads it as written, and it is scanned
  as written with the other pieces. One under a member whose text the model reads as
  written (:data:`WRITTEN_TEXT_MEMBERS`: a message's ``content``, a part's ``text``, a
  ``prompt``...) that does not decode is such text too ("data:text/plain;base64,SGk= is
  what?"), not an attachment to refuse. One that decodes is read both ways, as written and
  decoded (:attr:`TextAttachment.written`), unless it is under a member that readers fetch
  or decode as a file (:data:`FILE_MEMBERS`: ``file_data``, ``image_url``, ``url``...),
  whose written form no model reads: elsewhere (a tool's result, any field of a
  function's response) the model reads the string as written.
- **Base64 file fields**, where the protocol says a string is a file's base64 content
  with no media type beside it: the ``file_data`` of an OpenAI chat ``file`` part or of
  a Responses ``input_file`` (when it is not a data URL), the ``images`` of an Ollama
  request, of one of its ``messages`` or of the ``message`` of its answer, and the
  ``source.bytes`` of a Bedrock Converse ``document``, ``image`` or ``video``, and the
  ``blob`` of an MCP resource's contents (an object with a ``uri`` in a ``contents``
  array or under the ``resource`` of an embedded resource) that declares no media type,
  which MCP leaves optional (Anthropic's MCP helpers read such a blob as UTF-8 text and
  hand it to the model). Such a field must be standard base64 (one that
  is not, URL-safe base64 included, cannot be inspected, as a lenient decoder upstream
  may still read text in it). Readers take a file without a media type by its name (an
  OpenAI ``filename``'s extension, a Bedrock ``format``, an MCP ``uri``'s extension) or
  by its content, so the content is text when its name says text (and must then be
  UTF-8, as for a data URL of that type) and when its bytes are UTF-8; content sniffed
  as text in another character set (:func:`_sniffed_as_text`) must be UTF-8 too, and
  anything else is binary. The ``input_audio.data`` of an OpenAI ``input_audio`` part is
  such a field too, always binary: a reader hears it, whatever its bytes are; so are the
  ``audio.data`` of an OpenAI chat answer's ``message`` (or of a streamed ``delta``) and
  the ``result`` of a Responses ``image_generation_call``.

An attachment declared binary (a media type or data URL type that is not text, beside
data or under a member readers decode as a file) and a base64 file field whose content is
binary are :class:`BinaryAttachment`: detection cannot read them. They are forwarded as
sent unless ``block_binary`` (``filters.binaryAttachments: block``), and then block;
:func:`_keep` is the one place deciding which. A base64-looking string anywhere else is no
attachment and is scanned as written either way.

Most payloads carry none, so :func:`locate_text_attachments` first asks, in a few C-level
passes over the walked entries, whether any key is a media-type key or names a base64 file
field, or any string starts like a data URL, and returns at once when none does.
"""

from __future__ import annotations

import codecs
import dataclasses
import mimetypes
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from haechi.attachments.codec import (
    Base64Form,
    DataUrl,
    decode_base64,
    decode_percent,
    encode_percent,
    parse_data_url,
)
from haechi.attachments.media import MediaType, parse_media_type
from haechi.models import Entry, PathSegment
from haechi.pieces import PieceRun
from haechi.protocols.member_names import members_named, named_like

__all__ = [
    "DATA_MEMBERS",
    "FILE_MEMBERS",
    "MEDIA_TYPE_KEYS",
    "SEPARATOR",
    "WRITTEN_TEXT_MEMBERS",
    "BinaryAttachment",
    "BinaryKind",
    "TextAttachment",
    "UndecodableAttachment",
    "locate_text_attachments",
]

Path = tuple[PathSegment, ...]

#: Object members declaring the media type of the data beside them.
MEDIA_TYPE_KEYS: Final = frozenset({"mimeType", "mime_type", "media_type"})
#: Object members holding base64 data.
DATA_MEMBERS: Final = ("data", "blob")
#: Those of an object whose ``type`` is ``"text"``, whose ``data`` is the text itself.
_PLAIN_DATA_MEMBERS: Final = ("blob",)
#: Written between a data URL's header and its decoded text in what is scanned, so that no
#: match runs from one into the other.
SEPARATOR: Final = "\n"

#: Members whose data URL readers fetch or decode as a file (OpenAI's ``file_data``,
#: ``file_url`` and ``image_url``, vLLM's ``audio_url`` and ``video_url``, Mistral's
#: ``document_url``, Gemini's ``fileUri``, an Anthropic source's ``url``, an MCP ``uri``):
#: the model reads what they decode to, never the string.
FILE_MEMBERS: Final = frozenset(
    {
        "audio_url",
        "document_url",
        "fileUri",
        "file_data",
        "file_uri",
        "file_url",
        "image_url",
        "uri",
        "url",
        "video_url",
    }
)
#: Members whose string a model reads as written (message contents, text parts, prompts):
#: a data URL there is decoded when it decodes, and otherwise is text that merely starts
#: like one, not an attachment to refuse.
WRITTEN_TEXT_MEMBERS: Final = frozenset(
    {"content", "input", "instructions", "prompt", "system", "text", "thinking"}
)
#: The spellings a case-insensitive decoder may bind to a media-type key (a superset of
#: :func:`named_like`'s matches: the only letters outside ASCII that fold into these names
#: are the dotted and dotless i), as one key and between the separators the quick check
#: joins strings by: one C-level test before the exact one.
_MEDIA_TYPE_SPELLING: Final = r"(?:mime_?type|media_?type)"
_MEDIA_TYPE_KEY: Final = re.compile(_MEDIA_TYPE_SPELLING, re.IGNORECASE)
_MEDIA_TYPE_NAME: Final = re.compile(rf"\x00{_MEDIA_TYPE_SPELLING}\x00", re.IGNORECASE)
#: A string starting like a data URL, after the separator the quick check joins strings by
#: (tabs and line breaks within ``data:`` are removed by the URL parser).
_DATA_URL_START: Final = re.compile(
    r"\x00[\x00-\x20]*[dD][\t\n\r]*[aA][\t\n\r]*[tT][\t\n\r]*[aA][\t\n\r]*:"
)
#: The names of the base64 file fields (see the module documentation), after the separator
#: the quick check joins strings by: ``file_data``, ``images``, ``bytes`` and ``blob`` in
#: the spellings a case-insensitive decoder may bind (a superset, as for the media-type keys).
_FILE_FIELD_NAME: Final = re.compile(
    r"\x00(?:file_?data|images|bytes|blob|input_?audio|audio|image_generation_call)\x00",
    re.IGNORECASE,
)
#: Bedrock Converse blocks whose ``source.bytes`` is a file's base64 content, and the
#: ``format`` values of their text documents.
_BEDROCK_BLOCKS: Final = ("document", "image", "video")
_BEDROCK_TEXT_FORMATS: Final = frozenset({"csv", "html", "md", "txt"})
#: Bytes that appear in text, as file(1) tells text in an 8-bit character set from data:
#: all but the C0 controls other than BEL, BS, tab, line breaks, VT, FF and ESC, and DEL.
_TEXT_BYTES: Final = bytes(
    byte for byte in range(256) if byte in b"\a\b\t\n\v\f\r\x1b" or 0x20 <= byte != 0x7F
)
#: The byte order marks of UTF-16 and UTF-32 (UTF-32LE's starts like UTF-16LE's).
_WIDE_BYTE_ORDER_MARKS: Final = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)
#: Extensions to media types, from Python's own table only (the system's differs from one
#: machine to the next): which file names declare text.
_FILE_TYPES: Final = mimetypes.MimeTypes()
#: ``type`` of an object whose ``data`` is plain text (Anthropic's plain-text source), and
#: the member that source declares its media type with.
_PLAIN_DATA_TYPE: Final = "text"
_PLAIN_MEDIA_TYPE_KEY: Final = "media_type"

#: What a data URL whose type does not parse is (``text/plain;charset=US-ASCII``).
_PLAIN_TEXT: Final = MediaType("text/plain", ("us-ascii",))
#: What many readers split a data URL at, taking what is before it as the media type and what
#: is after it as base64, wherever it lies.
_SPLIT_MARKER: Final = re.compile(";base64,", re.IGNORECASE)

UndecodableReason = Literal[
    "invalid-base64",
    "invalid-utf8",
    "unsupported-charset",
    "ambiguous-line-breaks",
    "ambiguous-base64-marker",
]
#: Where a binary attachment is: a data URL, data beside a media type (Gemini
#: ``inlineData``, an Anthropic ``base64`` source, MCP image, audio and resource content), or
#: one of the base64 file fields.
BinaryKind = Literal[
    "data-url",
    "inline-data",
    "file-data",
    "images",
    "bytes",
    "blob",
    "input-audio",
    "audio",
    "image-generation",
]
#: How a reader takes a base64 file field's content: as text (its name says so: the bytes
#: must be UTF-8), by its content (text when its bytes are UTF-8), or as binary whatever
#: it is (audio).
_Reading = Literal["text", "content", "binary"]
_FileField = tuple[BinaryKind, _Reading]
#: The members that may be base64 file fields (Ollama's ``images`` are array elements).
_FILE_FIELDS: Final = ("file_data", "bytes", "blob", "data", "result")


@dataclass(frozen=True, slots=True)
class TextAttachment:
    """A declared-text attachment and its decoded text.

    Attributes:
        path: the string holding the encoded data.
        leaf: that string as sent.
        header: a data URL's header up to and including its ``,`` (``""`` for base64 data
            beside a media type): scanned with the text, as it was scanned before.
        parameters: where its media type's parameters lie in ``header`` (see
            :class:`~haechi.attachments.codec.DataUrl`): the only part of it rewritten, so
            that what goes upstream is a data URL of the declared type and encoding.
        text: the decoded text.
        form: how the data was base64-encoded, or ``None`` for a percent-encoded data URL.
        written: whether a model also reads the leaf as written (a data URL in a message's
            text, where ``data:,4111111111111111%32`` shows a card its decoded reading
            does not): the leaf is then scanned too, ahead of the decoded reading.
    """

    path: Path
    leaf: str
    header: str
    parameters: tuple[int, int]
    text: str
    form: Base64Form | None
    written: bool = False

    @property
    def reading_start(self) -> int:
        """Where the decoded reading (the header, then the text) starts in
        :attr:`scan_text`: after the leaf as written, when that is read too."""
        return len(self.leaf) + len(SEPARATOR) if self.written else 0

    @property
    def body_start(self) -> int:
        """Where :attr:`text` starts in :attr:`scan_text`."""
        header = len(self.header) + len(SEPARATOR) if self.header else 0
        return self.reading_start + header

    @property
    def scan_text(self) -> str:
        """What detection reads in place of the leaf."""
        reading = f"{self.header}{SEPARATOR}{self.text}" if self.header else self.text
        return f"{self.leaf}{SEPARATOR}{reading}" if self.written else reading

    def encode(self, header: str, text: str) -> str:
        """The leaf carrying ``text`` (under ``header``), encoded as the data was."""
        if self.form is None:
            return header + encode_percent(text)
        return header + self.form.encode(text.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class UndecodableAttachment:
    """A declared-text attachment whose data does not decode as declared."""

    path: Path
    leaf: str
    reason: UndecodableReason


@dataclass(frozen=True, slots=True)
class BinaryAttachment:
    """An attachment whose content is binary, which detection cannot read."""

    path: Path
    leaf: str
    kind: BinaryKind


Located = TextAttachment | UndecodableAttachment | BinaryAttachment


def locate_text_attachments(
    payload: Any, entries: Sequence[Entry], runs: Iterable[PieceRun], *, block_binary: bool = False
) -> list[Located]:
    """Every declared-text attachment of ``payload`` (whose walk is ``entries``), in
    document order, and every binary one when ``block_binary``; ``runs`` are its texts cut
    into pieces."""
    joined = "\x00" + "\x00".join([entry.value for entry in entries]) + "\x00"
    files = _FILE_FIELD_NAME.search(joined) is not None
    if not files and not _MEDIA_TYPE_NAME.search(joined) and not _DATA_URL_START.search(joined):
        return []
    found: dict[Path, Located] = {}
    shapes: dict[tuple[Path, str], _FileField | None] = {}
    declaring: set[Path] = set()  # the objects with a media-type key, read once each
    pieces: frozenset[Path] | None = None
    for entry in entries:
        if entry.kind == "key":
            owner = entry.path[:-1]
            if owner not in declaring and _declares_media_type(entry.value):
                declaring.add(owner)
                # The declared object wins over a data URL reading of the same string.
                for beside in _beside_media_types(payload, owner):
                    _keep(found, beside, block_binary=block_binary)
        elif entry.kind == "value" and entry.path not in found:
            field = _file_field(payload, entry.path, shapes) if files else None
            if field is not None and parse_data_url(entry.value) is None:
                file = _base64_file(entry.path, entry.value, *field)
                _keep(found, file, block_binary=block_binary)
                continue
            named_text = field is not None and field[1] == "text"
            url = _data_url(payload, entry.path, entry.value, named_text=named_text)
            if url is not None:
                if pieces is None:
                    pieces = _piece_leaves(runs)
                if entry.path not in pieces:
                    _keep(found, url, block_binary=block_binary)
    return list(found.values())


def _keep(found: dict[Path, Located], located: Located, *, block_binary: bool) -> None:
    """Record ``located``: the one place deciding that a binary attachment is forwarded as
    sent (not recorded) unless ``block_binary``. A reading that blocks is never replaced by
    another: a reader may take either declaration, and one that cannot be inspected must
    block."""
    if isinstance(located, BinaryAttachment) and not block_binary:
        return
    if not isinstance(found.get(located.path), UndecodableAttachment | BinaryAttachment):
        found[located.path] = located


def _beside_media_types(payload: Any, owner: Path) -> list[Located]:
    """The attachments of the object at ``owner``, which has a media-type key: each of its
    data members read under each declaration, in the order declared.

    The object is read once, and each member once per kind of declaration (binary, UTF-8
    text, text in another character set; Anthropic's plain-text source or not), which is
    all a reading depends on: an object declaring its type in hundreds of spellings beside
    large data costs what one declaration does, not hundreds of decodings."""
    holder = _lookup(payload, owner)
    # Plain text only as Anthropic's source declares it (a ``media_type``): Gemini's
    # ``inlineData`` has no ``type``, and a reader that drops one it does not know decodes
    # ``data``.
    typed_text = _typed(holder, _PLAIN_DATA_TYPE)
    kinds: dict[tuple[bool, bool, bool], MediaType] = {}
    for key in holder:
        declared = holder[key]
        if isinstance(declared, str) and _declares_media_type(key):
            media = parse_media_type(declared)
            plain = typed_text and named_like(key, _PLAIN_MEDIA_TYPE_KEY)
            kinds.setdefault((plain, media.is_text, media.is_utf8), media)
    data = [
        member
        for member in holder
        if isinstance(holder[member], str) and _named_like_any(member, DATA_MEMBERS)
    ]
    return [
        _inline_data((*owner, member), holder[member], media)
        for (plain, _, _), media in kinds.items()
        for member in data
        if _named_like_any(member, _PLAIN_DATA_MEMBERS if plain else DATA_MEMBERS)
    ]


def _declares_media_type(key: str) -> bool:
    """Whether a case-insensitive decoder may bind the member ``key`` to a media-type key
    (a C-level test first: most keys are not)."""
    return _MEDIA_TYPE_KEY.fullmatch(key) is not None and _named_like_any(key, MEDIA_TYPE_KEYS)


def _inline_data(path: Path, data: str, media: MediaType) -> Located:
    """The attachment of the base64 ``data`` at ``path``, declared as ``media``."""
    if not media.is_text:
        return BinaryAttachment(path, data, "inline-data")
    decoded = decode_base64(data)
    if decoded is None:
        return UndecodableAttachment(path, data, "invalid-base64")
    raw, form = decoded
    return _decoded(path, data, None, raw, form, utf8=media.is_utf8)


def _typed(holder: Any, kind: str) -> bool:
    """Whether every member of ``holder`` a decoder may take for ``type`` says ``kind``
    (and there is one)."""
    kinds = [holder[name] for name in members_named(holder, "type")]
    return bool(kinds) and all(each == kind for each in kinds)


def _maybe_typed(holder: Any, kind: str) -> bool:
    """Whether some member of ``holder`` a decoder may take for ``type`` says ``kind``.

    A file part is one to any reader that takes it so: a strict decoder reads ``"type":
    "file"`` and drops a ``"Type": "text"`` beside it that a case-insensitive one binds, so
    one member saying ``kind`` is enough."""
    return any(holder[name] == kind for name in members_named(holder, "type"))


def _file_field(
    payload: Any, path: Path, shapes: dict[tuple[Path, str], _FileField | None]
) -> _FileField | None:
    """Which base64 file field (see the module documentation) the string at ``path`` is in,
    and how a reader takes its content; ``None`` when it is in no such field.

    Whether it is depends on the object or array holding the string, so the answer is kept
    in ``shapes`` by that holder's path and the field: matching reads the holder's members
    (and those of the request for Ollama's ``images``), and doing so again for each of many
    siblings would take time quadratic in the request's size."""
    if len(path) < 2:
        return None
    field = _field_named(path[-1])
    if field is None:
        return None
    holder = (path[:-1], field)
    if holder not in shapes:
        shapes[holder] = _held_file_field(payload, path, field)
    return shapes[holder]


def _field_named(key: PathSegment) -> str | None:
    """The base64 file field the member ``key`` may be (an index: an element of Ollama's
    ``images``), or ``None``."""
    if isinstance(key, int):
        return "images"
    return next((field for field in _FILE_FIELDS if named_like(key, field)), None)


def _held_file_field(payload: Any, path: Path, field: str) -> _FileField | None:
    """:func:`_file_field` for the string at ``path``, a member or element named ``field``.

    The shapes are matched whole (an OpenAI part's ``type``, Ollama's request or message,
    Bedrock's block and its ``source``), so that a tool's argument or any other member that
    merely shares the name is left to be scanned as written."""
    if field == "images":
        parent = path[-2]
        images = isinstance(parent, str) and named_like(parent, "images")
        return ("images", "content") if images and _ollama_images(payload, path[:-2]) else None
    if field == "file_data":
        holder = _openai_file(payload, path)
        return None if holder is None else ("file-data", _by_name(_named_as_text(holder)))
    if field == "blob":
        holder = _lookup(payload, path[:-1])
        if not _mcp_resource(payload, path) or not _undeclared_blob(holder):
            return None
        return ("blob", _by_name(_named_as_text(holder, "uri")))
    if field == "bytes":
        block = _bedrock_block(payload, path)
        return None if block is None else ("bytes", _by_name(_formatted_as_text(block)))
    if field == "result":
        holder = _lookup(payload, path[:-1])
        generated = _maybe_typed(holder, "image_generation_call")
        return ("image-generation", "binary") if generated else None
    if _answer_audio(path):
        return ("audio", "binary")
    return ("input-audio", "binary") if _openai_audio(payload, path) else None


def _by_name(named_text: bool) -> _Reading:
    """How a reader takes a file named as text (``named_text``) or not."""
    return "text" if named_text else "content"


def _openai_audio(payload: Any, path: Path) -> bool:
    """Whether the ``data`` at ``path`` is the audio of an OpenAI ``input_audio`` part."""
    parent = path[-2]
    audio = isinstance(parent, str) and named_like(parent, "input_audio")
    return audio and _maybe_typed(_lookup(payload, path[:-2]), "input_audio")


def _answer_audio(path: Path) -> bool:
    """Whether the ``data`` at ``path`` is the audio of an OpenAI chat answer (its
    ``message.audio``, or a streamed piece of it in ``delta.audio``): always binary, its
    words are in the ``transcript`` beside it, which is scanned as written."""
    if len(path) < 3 or not isinstance(path[-2], str) or not isinstance(path[-3], str):
        return False
    answer = named_like(path[-3], "message") or named_like(path[-3], "delta")
    return answer and named_like(path[-2], "audio")


#: The members of an Ollama ``/api/generate`` request with which it runs the model.
_OLLAMA_GENERATE_TEXTS: Final = ("prompt", "system", "template")


def _ollama_images(payload: Any, owner: Path) -> bool:
    """Whether the ``images`` of the object at ``owner`` are Ollama's: those of a request
    with a ``prompt``, ``system`` or ``template`` (``/api/generate``: with any of them, and
    not only a prompt, it runs the model on the images rather than only loading it), of one
    of its ``messages`` (``/api/chat``) or of the ``message`` of a chat answer or of a piece
    of one streamed (the same type, which carries images both ways)."""
    if not owner:
        return any(members_named(payload, field) for field in _OLLAMA_GENERATE_TEXTS)
    first = owner[0]
    if not isinstance(first, str):
        return False
    if len(owner) == 1:
        return named_like(first, "message")
    return len(owner) == 2 and named_like(first, "messages")


def _openai_file(payload: Any, path: Path) -> Any:
    """The object holding the ``file_data`` at ``path`` when it is a Responses
    ``input_file`` or the ``file`` of a chat ``file`` part, else ``None``."""
    holder = _lookup(payload, path[:-1])
    if _maybe_typed(holder, "input_file"):
        return holder
    part = isinstance(path[-2], str) and named_like(path[-2], "file")
    return holder if part and _maybe_typed(_lookup(payload, path[:-2]), "file") else None


def _bedrock_block(payload: Any, path: Path) -> Any:
    """The Bedrock Converse ``document``, ``image`` or ``video`` block (one with a
    ``format``) whose ``source.bytes`` is at ``path``, else ``None``."""
    if len(path) < 3:
        return None
    kind, source = path[-3], path[-2]
    if not isinstance(kind, str) or not _named_like_any(kind, _BEDROCK_BLOCKS):
        return None
    if not isinstance(source, str) or not named_like(source, "source"):
        return None
    block = _lookup(payload, path[:-2])
    return block if members_named(block, "format") else None


def _base64_file(path: Path, leaf: str, kind: BinaryKind, reading: _Reading) -> Located:
    """The attachment of the ``leaf`` of a base64 file field of ``kind``, which is binary
    when a reader takes it as such, or by its content and that is not UTF-8.

    These fields are standard base64 by protocol, so one in the URL-safe alphabet cannot be
    inspected: a decoder that skips characters outside its alphabet (Python's by default)
    drops the ``-`` and ``_`` and reads other bytes than the URL-safe reading, text
    where that reading is binary."""
    if reading == "binary":
        return BinaryAttachment(path, leaf, kind)
    decoded = decode_base64(leaf)
    if decoded is None or decoded[1].urlsafe:
        return UndecodableAttachment(path, leaf, "invalid-base64")
    raw, form = decoded
    located = _decoded(path, leaf, None, raw, form, utf8=True)
    if isinstance(located, UndecodableAttachment) and reading == "content":
        return located if _sniffed_as_text(raw) else BinaryAttachment(path, leaf, kind)
    return located


def _sniffed_as_text(raw: bytes) -> bool:
    """Whether a reader taking a file by its content (or by an extension outside Python's
    table: ``.md``, ``.log``, ``.go``) reads ``raw`` as text in some character set, as
    file(1) does: it starts with a UTF-16 or UTF-32 byte order mark, or holds no byte that
    never appears in text (Latin-1 or Windows-1252 text). Its ASCII letters are then read
    as written, an address or a key among them, so text that is not UTF-8 must block
    rather than go on as binary; an image or compressed data holds such bytes."""
    return raw.startswith(_WIDE_BYTE_ORDER_MARKS) or not raw.translate(None, _TEXT_BYTES)


def _mcp_resource(payload: Any, path: Path) -> bool:
    """Whether the ``blob`` at ``path`` is in an MCP resource's contents: an element of a
    ``contents`` array (a ``resources/read`` result) or the ``resource`` of an embedded
    resource (an object whose ``type`` is ``"resource"``: tool results, prompt messages)."""
    parent = path[-2]
    if isinstance(parent, int):
        return len(path) > 2 and isinstance(path[-3], str) and named_like(path[-3], "contents")
    embedded = isinstance(parent, str) and named_like(parent, "resource")
    return embedded and _maybe_typed(_lookup(payload, path[:-2]), "resource")


def _undeclared_blob(holder: Any) -> bool:
    """Whether ``holder`` is an MCP resource's contents (it has a string ``uri``) declaring
    no media type (no string under a media-type key): its ``blob`` is then a file a reader
    takes by its ``uri`` or by its content. One that declares a type is read under it (see
    :func:`_beside_media_types`)."""
    located = any(isinstance(holder[name], str) for name in members_named(holder, "uri"))
    declared = any(isinstance(holder[name], str) and _declares_media_type(name) for name in holder)
    return located and not declared


def _named_as_text(holder: Any, member: str = "filename") -> bool:
    """Whether a ``member`` (a ``filename``, an MCP ``uri``) of ``holder`` has the extension
    of a text type (a compression suffix, ``.txt.gz``, makes it binary), which a reader then
    reads as text whatever its bytes are: they must be UTF-8, as for a data URL of that
    type."""
    for name in members_named(holder, member):
        filename = holder[name]
        if isinstance(filename, str):
            media, encoding = _FILE_TYPES.guess_type(filename)
            if media is not None and encoding is None and parse_media_type(media).is_text:
                return True
    return False


def _formatted_as_text(block: Any) -> bool:
    """Whether a ``format`` of a Bedrock block names a text document format (its bytes must
    then be UTF-8, as for :func:`_named_as_text`)."""
    formats = [block[name] for name in members_named(block, "format")]
    return any(isinstance(each, str) and each.lower() in _BEDROCK_TEXT_FORMATS for each in formats)


def _plain_source(holder: Any) -> bool:
    """Whether ``holder`` is Anthropic's plain-text source, whose ``data`` is the text."""
    return (
        isinstance(holder, dict)
        and any(named_like(name, _PLAIN_MEDIA_TYPE_KEY) for name in holder)
        and _typed(holder, _PLAIN_DATA_TYPE)
    )


def _named_like_any(name: str, fields: Iterable[str]) -> bool:
    """Whether a case-insensitive decoder may bind the member ``name`` to one of ``fields``."""
    return any(named_like(name, field) for field in fields)


def _data_url(payload: Any, path: Path, leaf: str, *, named_text: bool) -> Located | None:
    """The attachment of the data URL ``leaf``, or ``None`` when it is none; ``named_text``
    when the file it is the content of is named as text (see :func:`_named_as_text`)."""
    url = parse_data_url(leaf)
    if url is None:
        return None
    media = parse_media_type(url.media_type)
    if (url.base64 and not media.is_valid) or (named_text and not media.is_text):
        # The data URL processor reads a type its MIME parser refuses as text/plain
        # (data:foo;base64,... is text); its parameters, a charset included, are dropped.
        # Only when marked base64: prose starting "Data: a, b" is no attachment, and as
        # percent-encoded text such data is read as written anyway. A reader taking a file
        # by its name reads one named notes.txt as text whatever type its data URL says.
        media = _PLAIN_TEXT
    if not media.is_text:
        # Binary to a reader splitting elsewhere too (it reads the type up to its ; or ,).
        located: Located = BinaryAttachment(path, leaf, "data-url")
    elif not url.base64 and _SPLIT_MARKER.search(url.url) is not None:
        # Not base64 to the URL standard, which ends the media type at the first comma, but
        # to a reader splitting at ";base64," (data:text/plain,x;base64,<data>), whose
        # base64 reading is never inspected here.
        located = UndecodableAttachment(path, leaf, "ambiguous-base64-marker")
    elif url.base64:
        decoded = decode_base64(url.data)
        if decoded is None:
            located = UndecodableAttachment(path, leaf, "invalid-base64")
        else:
            raw, form = decoded
            located = _decoded(path, leaf, url, raw, form, utf8=media.is_utf8)
    elif url.stripped:
        # The URL standard reads the text without its tabs and line breaks, other readers
        # with them: "4111111111111111<LF>2" is a card to one and seventeen digits to the other.
        located = UndecodableAttachment(path, leaf, "ambiguous-line-breaks")
    else:
        located = _decoded(path, leaf, url, decode_percent(url.data), None, utf8=media.is_utf8)
    if not isinstance(located, TextAttachment):
        # Under a member read as written, text that merely starts like a data URL.
        return None if _written_text(payload, path) else located
    if _nearest_key_named_like(path, FILE_MEMBERS):
        return located
    return dataclasses.replace(located, written=True)


def _written_text(payload: Any, path: Path) -> bool:
    """Whether the string at ``path`` of ``payload`` is text a model reads as written: its
    nearest key is named like one of :data:`WRITTEN_TEXT_MEMBERS` (as a case-insensitive
    decoder binds ``"Content"`` to ``content``), or it is the ``data`` of Anthropic's
    plain-text source."""
    if _nearest_key_named_like(path, WRITTEN_TEXT_MEMBERS):
        return True
    key = path[-1] if path else None
    return (
        isinstance(key, str)
        and named_like(key, "data")
        and _plain_source(_lookup(payload, path[:-1]))
    )


def _nearest_key_named_like(path: Path, fields: Iterable[str]) -> bool:
    """Whether the nearest key of ``path`` is named like one of ``fields``."""
    key = next((segment for segment in reversed(path) if isinstance(segment, str)), None)
    return key is not None and _named_like_any(key, fields)


def _decoded(
    path: Path, leaf: str, url: DataUrl | None, raw: bytes, form: Base64Form | None, *, utf8: bool
) -> Located:
    """The attachment of ``raw`` (the data of ``url``, or of an object when ``None``)."""
    if not utf8:
        return UndecodableAttachment(path, leaf, "unsupported-charset")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return UndecodableAttachment(path, leaf, "invalid-utf8")
    if url is None:
        return TextAttachment(path, leaf, "", (0, 0), text, form)
    return TextAttachment(path, leaf, url.header, url.parameters, text, form)


def _piece_leaves(runs: Iterable[PieceRun]) -> frozenset[Path]:
    return frozenset(run.leaf(index) for run in runs for index in range(len(run.pieces)))


def _lookup(payload: Any, path: Path) -> Any:
    node = payload
    for segment in path:
        node = node[segment]
    return node
