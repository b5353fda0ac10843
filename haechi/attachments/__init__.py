# SPDX-License-Identifier: Apache-2.0
"""Attachments declared as text: decoded, protected like any text, and encoded back.

LLM APIs take files as base64 data beside a media type (Gemini ``inlineData``, Anthropic
``base64`` sources) or as data URLs (OpenAI ``file_data``), and a model reads one declared
as text as text. Scanned as sent, such a leaf is base64 that detection cannot read (and
``filters.decodeAndRescan`` only lets a few rules fire on decoded noise), so its content
would reach the model uninspected. Here the sender *declares* that the content is text, so
it is decoded strictly and scanned with every rule; findings in it are decided, counted,
audited and applied like any others, and the protected text goes upstream encoded as it
came. An attachment that does not decode as declared cannot be inspected and blocks.

Some fields are a file's base64 content by protocol, with no media type beside them (an
OpenAI ``file_data`` that is not a data URL, Ollama's ``images``): a reader takes such a
file by its name or its content, so one whose bytes are UTF-8 is text, inspected the same
way, and one that is not base64 at all, or is text in another character set, blocks.

What is binary (a declared type that is not text, a file field's bytes that are not) is
forwarded as sent, or, under ``filters.binaryAttachments: block``, blocks: what cannot be
inspected is not sent.

:mod:`~haechi.attachments.media` says which media types are text,
:mod:`~haechi.attachments.codec` decodes and encodes,
:mod:`~haechi.attachments.locate` finds the attachments of a walked payload and
:mod:`~haechi.attachments.scan` is what the protect pipeline calls
(``filters.scanTextAttachments`` turns it all off).
"""

from __future__ import annotations

from haechi.attachments.locate import BinaryAttachment, TextAttachment, UndecodableAttachment
from haechi.attachments.media import MediaType, parse_media_type
from haechi.attachments.scan import UNDECODABLE_TYPE, UNINSPECTABLE_TYPE, TextAttachments

__all__ = [
    "UNDECODABLE_TYPE",
    "UNINSPECTABLE_TYPE",
    "BinaryAttachment",
    "MediaType",
    "TextAttachment",
    "TextAttachments",
    "UndecodableAttachment",
    "parse_media_type",
]
