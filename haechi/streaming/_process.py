# SPDX-License-Identifier: Apache-2.0
"""Frame by frame protection of one stream: the state that lives as long as the stream.

One :class:`FrameProcessor` exists per stream. It holds the parser's partial frame, the
protector's window, the template of the last content frame (for the tail) and a few clean
field lines; the inspector drops it the moment the stream ends, so nothing of a stream
outlives it.

How a frame is handled:

- A frame without data (comments, ``event:``-only) is a control frame: its lines pass.
- ``data: [DONE]`` ends an SSE stream: the held tail is sent first, then ``[DONE]``.
- A JSON object or array is protected leaf by leaf (``protect_frame``); the text at the
  route's delta path is taken out first and sent through the cross-frame window instead.
- Any other data (text, a JSON string, a bare number) is content text: it goes through the
  same window, so a value split across two text frames is still found.
- Before a frame whose ``type`` is a flush type, and before a terminal frame, the held tail
  is sent as a copy of the last content frame; a terminal frame that carries delta text
  (Ollama's ``done: true``) takes the tail itself. Nothing is ever sent after the terminal
  frame, and the tail is never sent twice.
- The other lines of a frame (``event:``, ``id:``, comments) are inspected as text too, so
  every byte the client receives has been inspected.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Final

from haechi.models import PathSegment
from haechi.protocols.types import StreamDescriptor
from haechi.stream_window import TextStreamProtector
from haechi.streaming._json import dumps
from haechi.streaming._lines import Frame
from haechi.streaming.detokenize import StreamDetokenizer
from haechi.streaming.ndjson import NdjsonParser, encode_ndjson
from haechi.streaming.sse import SseParser, encode_sse

__all__ = ["Blocked", "FrameProcessor"]

Path = tuple[PathSegment, ...]

#: Field lines without findings remembered per stream (``event: content_block_delta``
#: repeats on every frame); only a few short lines, so the memory stays small and bounded.
_FIELD_CACHE_ENTRIES: Final = 32
_FIELD_CACHE_LINE: Final = 256
#: Untouched delta frames remembered per stream (by their text-less JSON), and how long
#: such a frame may be; both bound the memory a stream holds.
_CLEAN_FRAMES: Final = 8
_CLEAN_FRAME_CHARS: Final = 4096


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
    """How to send held text: as a copy of the last content frame.

    ``frame`` is that frame after protection (``None`` for a text frame); ``quoted`` says a
    text frame was a JSON string.
    """

    events: tuple[str, ...]
    frame: Any
    path: Path
    quoted: bool

    def render(self, text: str) -> tuple[str, bool]:
        """The data of a frame carrying ``text``, and whether that data is JSON."""
        if self.frame is not None:
            return dumps(_spine(self.frame, self.path, text)), True
        if self.quoted:
            return dumps(text), True
        return text, False


class FrameProcessor:
    """Parses, protects and re-writes the frames of one stream.

    Output accumulates in :attr:`out` until the caller takes it, so that frames completed
    before a block are still sent and nothing of the blocking frame is.
    """

    __slots__ = (
        "_clean",
        "_descriptor",
        "_detokenizer",
        "_fields",
        "_parser",
        "_path",
        "_protector",
        "_sentinel",
        "_sse",
        "_template",
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
    ) -> None:
        self._protector = protector
        self._descriptor = descriptor
        self._path = descriptor.delta_path
        self._sse = descriptor.format == "sse"
        self._parser: SseParser | NdjsonParser = (
            SseParser(max_frame_bytes) if self._sse else NdjsonParser(max_frame_bytes)
        )
        self._detokenizer = detokenizer
        self._template: _Template | None = None
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
        """Handle the frames ``chunk`` completes."""
        for frame in self._parser.feed(chunk):
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
        meta = await self._fields_of(frame.meta)
        data = frame.data
        if data is None:
            self.out.append(encode_sse(meta, None))
            return
        if self._sse and data.strip() == "[DONE]":
            await self._flush()
            self.out.append(encode_sse(meta, "[DONE]"))
            self.finished = True
            return
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            await self._text(meta, data, quoted=False)
            return
        if isinstance(value, dict | list):
            await self._json(meta, value)
        elif isinstance(value, str):
            await self._text(meta, value, quoted=True)
        else:
            await self._text(meta, data, quoted=False)

    async def _json(self, meta: tuple[str, ...], frame: dict[str, Any] | list[Any]) -> None:
        descriptor = self._descriptor
        path = self._path
        kind = frame.get("type") if isinstance(frame, dict) else None
        kind = kind if isinstance(kind, str) else None
        done = descriptor.done_field
        terminal = kind in descriptor.terminal_types or (
            done is not None and isinstance(frame, dict) and frame.get(done) is True
        )
        delta = _text_at(frame, path) if path is not None else None
        if kind in descriptor.flush_on_types or (terminal and delta is None):
            await self._flush()
        if path is not None and delta is not None:
            await self._delta_frame(meta, frame, path, delta, terminal=terminal)
        else:
            protected = await self._protector.protect_frame(frame)
            if protected is None:
                raise Blocked
            await self._send(meta, dumps(protected), json_data=True)
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
        key = dumps(frame)
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
        text = self._release(text, final=terminal)
        self._template = _Template(_events(meta), slotted.frame, path, quoted=False)
        await self._send(meta, slotted.render(text), json_data=True)

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
        if self._path is None:
            protected = await self._protector.protect_text(text)
            if protected is None:
                raise Blocked
        else:
            protected = self._release(await self._push(text), final=False)
            self._template = _Template(_events(meta), None, self._path, quoted=quoted)
        await self._send(meta, dumps(protected) if quoted else protected, json_data=quoted)

    async def _flush(self) -> None:
        """Send the held tail as a copy of the last content frame."""
        if self._path is None:
            return
        tail = self._release(await self._tail(), final=True)
        if not tail:
            return
        template = self._template
        if template is None:
            raise RuntimeError("stream text was held without a content frame to carry it")
        data, json_data = template.render(tail)
        await self._send(template.events, data, json_data=json_data)

    # -- helpers -------------------------------------------------------------------------

    async def _push(self, text: str) -> str:
        released = await self._protector.push(text)
        if self._protector.blocked:
            raise Blocked
        return released

    async def _tail(self) -> str:
        released = await self._protector.flush()
        if self._protector.blocked:
            raise Blocked
        return released

    def _release(self, text: str, *, final: bool) -> str:
        detokenizer = self._detokenizer
        if detokenizer is None:
            return text
        return detokenizer.drain(text) if final else detokenizer.hold(text)

    async def _send(self, meta: tuple[str, ...], data: str, *, json_data: bool) -> None:
        if self._detokenizer is not None:
            data = await self._detokenizer.restore(data, json_string=json_data)
        self.out.append(encode_sse(meta, data) if self._sse else encode_ndjson(data))

    async def _fields_of(self, meta: tuple[str, ...]) -> tuple[str, ...]:
        """Inspect a frame's field lines; short lines without findings are remembered."""
        if not meta:
            return meta
        known = self._fields
        protector = self._protector
        protected_lines: list[str] = []
        for line in meta:
            protected = known.get(line)
            if protected is None:
                before = protector.summary()
                protected = await protector.protect_text(line)
                if protected is None:
                    raise Blocked
                if (
                    len(known) < _FIELD_CACHE_ENTRIES
                    and len(line) <= _FIELD_CACHE_LINE
                    and protector.summary() == before
                ):
                    known[line] = protected
            protected_lines.append(protected)
        return tuple(protected_lines)


def _events(meta: tuple[str, ...]) -> tuple[str, ...]:
    """The lines a copy of a frame keeps: its event name, not its id or retry."""
    return tuple(line for line in meta if line.startswith("event:"))


def _text_at(node: Any, path: Path) -> str | None:
    for segment in path:
        if isinstance(node, dict) and isinstance(segment, str):
            node = node.get(segment)
        elif isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node):
            node = node[segment]
        else:
            return None
    return node if isinstance(node, str) else None


def _put(node: Any, path: Path, value: str) -> None:
    for segment in path[:-1]:
        node = node[segment]
    node[path[-1]] = value


def _spine(node: Any, path: Path, text: str) -> Any:
    """A copy of ``node`` reduced to the delta path, carrying ``text``.

    Scalars beside the path are kept (ids, model, ``type``, ``index``); other containers are
    dropped, so the copy repeats no tool-call argument and no other choice. In a list only
    the element on the path is kept.
    """
    if not path:
        return text
    segment, rest = path[0], path[1:]
    if isinstance(node, list) and isinstance(segment, int):
        return [_spine(node[segment], rest, text)]
    copy = {
        key: value
        for key, value in node.items()
        if key == segment or not isinstance(value, dict | list)
    }
    copy[segment] = _spine(node[segment], rest, text)
    return copy
