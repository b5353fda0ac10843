# SPDX-License-Identifier: Apache-2.0
"""How many JSON strings deep a point of JSON source lies, read piece by piece.

A value restored into JSON source must be escaped once for every string it sits in. A tool
call's arguments are JSON in a string; a string of theirs can hold JSON again (a payload
passed on to another tool), whose strings can hold JSON once more. Escaped for one level
only, a quote or backslash of a value two strings deep ends the inner string early: the inner
document breaks, or gains members nobody wrote.

:class:`StringNesting` follows the text the way a reader decoding it level by level would:
the content of each string (its escapes decoded) is JSON source again when it begins as a
JSON object or array (:func:`~haechi._documents.begins_json_container`, the rule that
decides whether a string is JSON source at all), and is then followed the same way. A point
outside every string of the innermost JSON source, or after an escape that JSON does not
have, has no depth a value could be escaped for: :meth:`StringNesting.depth` says ``None``
and the caller leaves the marker there as it is.
"""

from __future__ import annotations

import json
import re
from typing import Final

from haechi._documents import begins_json_container

__all__ = ["StringNesting"]

#: A run of string content with whole, valid escapes only.
_TEXT_RUN: Final = re.compile(r'(?:[^"\\]+|\\["\\/bfnrt]|\\u[0-9A-Fa-f]{4})*')
_HEX4: Final = re.compile(r"[0-9A-Fa-f]{4}")
#: Decodes a string of whole escapes; raw control characters are content here, as the
#: reading follows where strings end, not whether the source is valid.
_STRING: Final = json.JSONDecoder(strict=False)
#: JSON's one-character escapes and what they stand for.
_ESCAPES: Final = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
#: What a marker (``[TOKEN:...]``) written at a point begins with.
_MARKER_START: Final = "[T"


class _Content:
    """The decoded content of one string: JSON source to follow, or text."""

    __slots__ = ("inner", "source", "start")

    def __init__(self) -> None:
        #: Whether the content is JSON source; ``None`` while its start cannot tell.
        self.source: bool | None = None
        #: The start read while undecided (white space, and ``[`` at most).
        self.start = ""
        #: The JSON source the content is, once it is decided to be.
        self.inner: _Source | None = None

    def feed(self, text: str) -> None:
        if self.inner is not None:
            self.inner.feed(text)
            return
        if self.source is not None:
            return
        start = self.start + text
        self.source = begins_json_container(start)
        if self.source is None:
            # Only white space and one "[" so far: nothing else of it matters later.
            self.start = "[" if "[" in start else ""
        elif self.source:
            self.inner = _Source()
            self.inner.feed(start)

    def takes_marker_as_text(self) -> bool:
        """Whether a marker written next is this content's text (``False``: it would be
        the structure of the JSON source the content is or becomes)."""
        if self.source is None:
            return begins_json_container(self.start + _MARKER_START) is False
        return not self.source


class _Source:
    """JSON source: which string of it, if any, a point lies in."""

    __slots__ = ("broken", "content", "escape")

    def __init__(self) -> None:
        self.broken = False
        #: The string the point is in (``None`` outside strings).
        self.content: _Content | None = None
        #: The escape being read (``"\\"`` after a backslash, ``"\\u12"`` part way).
        self.escape = ""

    def feed(self, text: str) -> None:
        at, end = 0, len(text)
        while at < end and not self.broken:
            content = self.content
            if content is None:
                quote = text.find('"', at)
                if quote == -1:
                    return
                self.content, at = _Content(), quote + 1
            elif self.escape:
                at = self._read_escape(text, at, content)
            else:
                # Up to the string's end, or an escape cut off or not JSON's: read by
                # escape otherwise, escape-packed source cost a Python call a character.
                run = _TEXT_RUN.match(text, at)
                until = at if run is None else run.end()
                if until > at and content.source is not False:
                    # (Text: what it decodes to no longer matters, only where it ends.)
                    chunk = text[at:until]
                    content.feed(_STRING.decode(f'"{chunk}"') if "\\" in chunk else chunk)
                if until == end:
                    return
                if text[until] == '"':
                    self.content = None
                else:
                    self.escape = "\\"
                at = until + 1

    def _read_escape(self, text: str, at: int, content: _Content) -> int:
        """Read on from ``at`` in the escape begun; return where reading goes on."""
        if self.escape == "\\":
            char = text[at]
            if char == "u":
                self.escape = "\\u"
                return at + 1
            decoded = _ESCAPES.get(char)
            if decoded is None:
                self.broken = True
            else:
                self.escape = ""
                content.feed(decoded)
            return at + 1
        taken = text[at : at + 6 - len(self.escape)]
        self.escape += taken
        if len(self.escape) == 6:
            digits = self.escape[2:]
            self.escape = ""
            if _HEX4.fullmatch(digits) is None:
                self.broken = True
            else:
                content.feed(chr(int(digits, 16)))
        return at + len(taken)


class StringNesting:
    """Follows JSON source given piece by piece (:meth:`feed`) and tells how many strings
    deep a marker written after what it has read would lie (:meth:`depth`)."""

    __slots__ = ("_source",)

    def __init__(self) -> None:
        self._source = _Source()

    def feed(self, text: str) -> None:
        """Read ``text``, the piece of the source that follows what was read."""
        self._source.feed(text)

    def depth(self) -> int | None:
        """How many strings a marker written next lies in: escaped that many times, a value
        in its place is read back as it is by decoding every level. ``None`` when that
        cannot be told: outside the strings of the innermost JSON source (where a value
        would be structure, not content), inside an escape, or after a broken escape."""
        source, depth = self._source, 0
        while True:
            content = source.content
            if source.broken or content is None or source.escape:
                return None
            depth += 1
            if content.inner is None:
                return depth if content.takes_marker_as_text() else None
            source = content.inner
