# SPDX-License-Identifier: Apache-2.0
"""Which declared media types say an attachment is text, and in which character set.

The sender's declaration decides: a model reads an attachment declared as text as text, so
its content must be inspected like any other text. The list is deliberately closed (types
outside it, such as images, audio and PDF, are binary formats detection cannot read):

- every ``text/*`` type;
- the ``application/`` types of text formats in :data:`TEXT_APPLICATION_TYPES`;
- an e-mail message, :data:`TEXT_MESSAGE_TYPES` (its header fields name people, and a model
  given an ``.eml`` file reads them as text);
- any type with a ``+json`` or ``+xml`` structured-syntax suffix (``application/ld+json``,
  ``image/svg+xml``).

Names and parameters are compared case-insensitively and without surrounding whitespace, as
media types are. Only UTF-8 is decoded (US-ASCII is a subset of it): a ``charset`` parameter
naming anything else makes the attachment undecodable, not binary. Readers disagree on which
of several ``charset`` parameters counts (the WHATWG MIME parser and Python's ``email`` take
the first), on a ``;`` inside a quoted value and on RFC 2231's ``charset*``, so every one
of them, in every reading, must name UTF-8: parameters are cut at each ``;`` or ``,`` (as
the gateway reads an answer's ``Content-Type``), quotes or not, and a ``charset*`` counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "TEXT_APPLICATION_TYPES",
    "TEXT_MESSAGE_TYPES",
    "TEXT_SUFFIXES",
    "MediaType",
    "parse_media_type",
]

#: ``application/`` media types that are text formats.
TEXT_APPLICATION_TYPES: Final = frozenset(
    {
        "application/csv",
        "application/ecmascript",
        "application/javascript",
        "application/json",
        "application/ndjson",
        "application/rtf",
        "application/sql",
        "application/toml",
        "application/x-javascript",
        "application/x-ndjson",
        "application/x-python",
        "application/x-python-code",
        "application/x-sh",
        "application/typescript",
        "application/x-typescript",
        "application/x-yaml",
        "application/xml",
        "application/yaml",
    }
)

#: ``message/`` media types of e-mail messages: text (RFC 5322; ``message/global``, RFC 6532,
#: in UTF-8), header fields and all. Python's table names ``.eml`` and ``.mht`` files so.
TEXT_MESSAGE_TYPES: Final = frozenset({"message/rfc822", "message/global"})

#: Structured-syntax suffixes of text formats (RFC 6839).
TEXT_SUFFIXES: Final = ("+json", "+xml")

#: ``charset`` values that name UTF-8 or a subset of it.
_UTF8_CHARSETS: Final = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
#: A ``type/subtype`` of HTTP token characters (lower case, as essences are kept).
_VALID_ESSENCE: Final = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+")
#: What cuts a media type into its essence and parameters (see the module documentation).
_SEPARATORS: Final = re.compile(r"[;,]")


@dataclass(frozen=True, slots=True)
class MediaType:
    """A declared media type: its essence (``type/subtype``, lower case) and the values of
    its ``charset`` parameters, in order (lower case, unquoted)."""

    essence: str
    charsets: tuple[str, ...] = ()

    @property
    def is_text(self) -> bool:
        """Whether the type declares text (see the module documentation for the list)."""
        essence = self.essence
        return (
            essence.startswith("text/")
            or essence in TEXT_APPLICATION_TYPES
            or essence in TEXT_MESSAGE_TYPES
            or essence.endswith(TEXT_SUFFIXES)
        )

    @property
    def is_valid(self) -> bool:
        """Whether the essence is a ``type/subtype`` of HTTP token characters, as the WHATWG
        MIME type parser requires: a data URL's type that is not reads as ``text/plain``."""
        return _VALID_ESSENCE.fullmatch(self.essence) is not None

    @property
    def is_utf8(self) -> bool:
        """Whether its content is UTF-8 whichever ``charset`` a reader takes: none, or each
        naming UTF-8 or US-ASCII."""
        return all(charset in _UTF8_CHARSETS for charset in self.charsets)


def parse_media_type(declared: str) -> MediaType:
    """Read ``type/subtype; name=value; ...`` as declared (never fails: an unknown or
    malformed type is simply not text)."""
    essence, *parameters = _SEPARATORS.split(declared)
    charsets = []
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        # ``charset*`` and its sections ``charset*0``... (RFC 2231) name the charset too.
        if name.strip().lower().partition("*")[0] == "charset":
            charsets.append(value.strip().strip('"').lower())
    return MediaType(essence.strip().lower(), tuple(charsets))
