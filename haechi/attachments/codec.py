# SPDX-License-Identifier: Apache-2.0
"""Strict decoding of attachment data, and encoding back in the form it came in.

Decoding is strict because a lenient decoder would read something other than what the
upstream reads: base64 is accepted only when re-encoding the decoded bytes gives back
exactly the text sent (one alphabet, standard ``+/`` or URL-safe ``-_``; with or without
``=`` padding; no whitespace; no stray bits in the last character). Anything else cannot be
inspected, and the caller fails closed. Protected text goes back in the same alphabet and
padding, so the upstream receives the shape it was sent.

Data URLs (RFC 2397, read as the URL standard reads them) are ``data:[<media
type>][;base64],<data>``: leading and trailing spaces and control characters are ignored,
and so are tabs and line breaks anywhere (the URL parser removes them before anything else,
so ``te<TAB>xt/plain`` is ``text/plain`` and a base64 text cut into lines is one text);
``data:`` is matched in any letter case, an omitted media type is ``text/plain``, and
``;base64`` may be written in any case with spaces before it and ASCII white space (a form
feed too) after it. Data not marked ``;base64`` is
percent-encoded; a ``%`` not followed by two hex digits stands for itself. Readers that do
not follow the URL standard (Python's ``urllib``) keep tabs and line breaks: base64 readers
skip them anyway, but percent-encoded data with them has two readings
(:attr:`DataUrl.stripped` tells).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote_to_bytes

__all__ = [
    "Base64Form",
    "DataUrl",
    "decode_base64",
    "decode_percent",
    "encode_percent",
    "parse_data_url",
]

#: What the URL standard strips from both ends of a URL: C0 controls and space.
_URL_PADDING: Final = "".join(map(chr, range(0x21)))
#: What it then removes wherever it is: ASCII tabs and line breaks.
_URL_REMOVED: Final = str.maketrans("", "", "\t\n\r")
#: ASCII white space, which the data URL processor strips from both ends of the media type
#: (a form feed included, which the URL parser keeps).
_ASCII_WHITESPACE: Final = "\t\n\x0c\r "
#: Characters left unescaped when percent-encoding data (the URL sub-delimiters and the
#: path characters but ``;``); everything else is written ``%XX``. A ``;`` is escaped so
#: that protected text never writes ``;base64,``, at which some readers split a data URL
#: and read what follows as base64 (text that escaped it as ``%3B`` would otherwise come
#: back with it unescaped).
_PERCENT_SAFE: Final = "!$&'()*+,=:@/?~"


@dataclass(frozen=True, slots=True)
class Base64Form:
    """The alphabet and padding of a base64 text, so text is encoded back the same way.

    ``padded`` is true unless the original visibly lacks padding: a text whose length is a
    multiple of four needs none, and its re-encoding may (standard decoders require it).
    """

    urlsafe: bool = False
    padded: bool = True

    def encode(self, raw: bytes) -> str:
        """``raw`` in this form."""
        encoded = (base64.urlsafe_b64encode if self.urlsafe else base64.b64encode)(raw)
        text = encoded.decode("ascii")
        return text if self.padded else text.rstrip("=")


def decode_base64(text: str) -> tuple[bytes, Base64Form] | None:
    """The bytes of ``text`` and its form, or ``None`` when it is not canonical base64."""
    body = text.rstrip("=")
    form = Base64Form(urlsafe="-" in body or "_" in body, padded=body != text or len(text) % 4 == 0)
    try:
        raw = base64.b64decode(
            body + "=" * (-len(body) % 4),
            altchars=b"-_" if form.urlsafe else None,
            validate=True,
        )
    except (binascii.Error, ValueError):  # ValueError: a non-ASCII character
        return None
    return (raw, form) if form.encode(raw) == text else None


def encode_percent(text: str) -> str:
    """``text`` percent-encoded as the data of a data URL (UTF-8, then ``%XX``)."""
    return quote(text, safe=_PERCENT_SAFE)


def decode_percent(data: str) -> bytes:
    """The bytes of percent-encoded data: each ``%XX`` one byte, the rest as UTF-8."""
    return unquote_to_bytes(data)


@dataclass(frozen=True, slots=True)
class DataUrl:
    """A data URL taken apart.

    Attributes:
        url: the URL as the URL parser reads it: leading and trailing padding, tabs and
            line breaks removed.
        header: everything up to and including the first ``,``.
        media_type: the declared media type with its parameters (``text/plain`` when none).
        base64: whether the data is marked ``;base64``.
        parameters: where the media type's parameters (after its first ``;``, before
            ``;base64``) lie in ``header``, as ``(start, end)``; empty when there are none.
        stripped: whether tabs or line breaks were removed from within the URL.
    """

    url: str
    header: str
    media_type: str
    base64: bool
    parameters: tuple[int, int]
    stripped: bool = False

    @property
    def data(self) -> str:
        """The encoded data after the header (copied on demand: an image's can be large,
        and only a text type's is read)."""
        return self.url[len(self.header) :]


def parse_data_url(text: str) -> DataUrl | None:
    """``text`` as a data URL, or ``None`` when it is not one."""
    url = text.strip(_URL_PADDING)
    stripped = "\t" in url or "\n" in url or "\r" in url  # an image's URL is large: no copy
    if stripped:
        url = url.translate(_URL_REMOVED)
    if url[:5].lower() != "data:":
        return None
    comma = url.find(",", 5)
    if comma < 0:
        return None
    declared = url[5:comma]
    # The media type is read without its ASCII white space at either end, then is base64
    # when it ends with ";", spaces and "base64".
    head, marker, tail = declared.rstrip(_ASCII_WHITESPACE).rpartition(";")
    is_base64 = bool(marker) and tail.lstrip(" ").lower() == "base64"
    typed = head if is_base64 else declared
    media_type = typed.strip()
    if not media_type or media_type.startswith(";"):
        media_type = "text/plain" + media_type
    first = typed.find(";")
    start = 5 + (len(typed) if first < 0 else first + 1)
    parameters = (start, 5 + len(typed))
    return DataUrl(url, url[: comma + 1], media_type, is_base64, parameters, stripped)
