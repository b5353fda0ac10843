# SPDX-License-Identifier: Apache-2.0
"""An event made ready for the chain: sanitized once, serialised once each way.

A record is written as two JSON texts: the canonical text whose hash is ``eventHash`` (keys
sorted, ``auditIntegrity`` without ``eventHash`` among them) and the line the store keeps (keys
in insertion order, ``auditIntegrity`` last). Only the integrity block depends on the head a
store hands to ``build``; the rest of both texts depends on the event alone. So the sink
prepares each event before it queues for the store: :class:`PreparedEvent` sanitizes it and
encodes its members both ways, and stamping a head is then a matter of writing the small block
into both texts, hashing and joining. The work left inside a store's exclusive section is
small, and it is done once per record even when a store builds twice.

The texts are those of :func:`haechi._canonical.canonical_json` and
:func:`haechi.audit._lines.encode_line` for the same record, byte for byte: the event part
is encoded by :func:`~haechi._canonical.plain_json_encoder` (sorted for one, in order for the
other), which is exact for a *plain* event (see
:func:`~haechi.audit.sanitize.sanitize_for_chain`), and the block is written by hand in the
one form both encoders give it. Both texts are kept as UTF-8 bytes, which is what is hashed
and written. An event that is not plain, or a head of an unexpected type, takes the general
path (:func:`build_integrity_record`, then :func:`encode_line`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring  # the C encoder's own string encoder
from typing import Any, Final

from haechi._canonical import plain_json_encoder
from haechi.audit._lines import encode_line
from haechi.audit.chain import ALG, CANONICALIZATION, build_integrity_record, hash_canonical_bytes
from haechi.audit.sanitize import sanitize_for_chain
from haechi.providers import AuditIntegrity

__all__ = ["PreparedEvent", "build_with_line"]

_BLOCK_KEY: Final = "auditIntegrity"
_SORTED: Final = plain_json_encoder(sort_keys=True)
_IN_ORDER: Final = plain_json_encoder(sort_keys=False)
#: The block's constant members, as both encoders write them.
_CONSTANTS: Final = (
    f'"alg":{encode_basestring(ALG)},"canonicalization":{encode_basestring(CANONICALIZATION)}'
).encode()
#: The block's opening in the canonical text and in the line.
_CANONICAL_BLOCK: Final = b'"auditIntegrity":{' + _CONSTANTS + b',"previousHash":'
_LINE_BLOCK: Final = b'"auditIntegrity":{' + _CONSTANTS + b',"sequence":'
#: An ``eventHash`` as every store writes it: a link both encoders write as it is.
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
#: The lowest byte that follows ``{"`` when a canonical text's first key sorts after
#: ``auditIntegrity`` for certain (an escape starts with a backslash, below ``a``).
_AFTER_A: Final = ord("a")


class PreparedEvent:
    """A sanitized event with both of its texts, and the ``build`` of one append.

    Construction sanitizes ``event`` (raising :class:`~haechi.errors.AuditError` as
    :func:`~haechi.audit.sanitize_event` does). Calling the instance with a head returns the
    record, as any :class:`~haechi.providers.AuditStore` expects of ``build``;
    :meth:`stamp` also returns the record's line for stores that write it.
    """

    __slots__ = ("_after", "_before", "_event", "_line_head")

    def __init__(self, event: Mapping[str, Any]) -> None:
        clean, plain = sanitize_for_chain(event)
        self._event = clean
        self._line_head: bytes | None = None
        self._before = self._after = b""
        if not plain:
            return
        if clean:
            self._split(clean)
        self._line_head = _IN_ORDER(clean)[:-1] + b"," if clean else b"{"

    def _split(self, clean: dict[str, Any]) -> None:
        """Encode the canonical members sorted before and after ``auditIntegrity``.

        Plain keys sort alike by code point and by UTF-16 unit, so Python's order is the
        canonical one. The sorted text starts with the smallest key; when its first
        character is above ``a`` (an escape starts with a backslash, below ``a``), every key
        sorts after ``auditIntegrity``, as those of haechi's own events do.
        """
        text = _SORTED(clean)
        if text[2] > _AFTER_A:
            self._after = b"," + text[1:-1]
            return
        before = {key: value for key, value in clean.items() if key < _BLOCK_KEY}
        after = {key: value for key, value in clean.items() if key > _BLOCK_KEY}
        self._before = _SORTED(before)[1:-1] + b"," if before else b""
        self._after = b"," + _SORTED(after)[1:-1] if after else b""

    def __call__(self, previous: AuditIntegrity | None) -> dict[str, Any]:
        """The record that follows ``previous`` (``None``: the first one)."""
        return self.stamp(previous)[0]

    def stamp(self, previous: AuditIntegrity | None) -> tuple[dict[str, Any], bytes]:
        """The record that follows ``previous``, and its line (UTF-8, newline-terminated)."""
        sequence = 1 if previous is None else previous["sequence"] + 1
        link = None if previous is None else previous["eventHash"]
        head = self._line_head
        if head is None or type(sequence) is not int or not (link is None or _plain(link)):
            record = build_integrity_record(previous, self._event)
            return record, encode_line(record)
        link_text = b"null" if link is None else b'"' + link.encode() + b'"'
        number = str(sequence).encode()
        canonical = [b"{", self._before, _CANONICAL_BLOCK, link_text, b',"sequence":', number]
        canonical += [b"}", self._after, b"}"]
        digest = hash_canonical_bytes(b"".join(canonical))
        line = [head, _LINE_BLOCK, number, b',"previousHash":', link_text, b',"eventHash":"']
        line += [digest.encode(), b'"}}\n']
        record = dict(self._event)
        record[_BLOCK_KEY] = {
            "alg": ALG,
            "canonicalization": CANONICALIZATION,
            "sequence": sequence,
            "previousHash": link,
            "eventHash": digest,
        }
        return record, b"".join(line)


def _plain(link: Any) -> bool:
    # Base64url text, as every eventHash is: written as is by both encoders.
    return type(link) is str and _BASE64URL.fullmatch(link) is not None


def build_with_line(
    build: Callable[[AuditIntegrity | None], dict[str, Any]], previous: AuditIntegrity | None
) -> tuple[dict[str, Any], bytes]:
    """Call ``build`` with ``previous``; return the record and its line.

    A :class:`PreparedEvent` hands over the line it wrote; for any other ``build`` the record
    is encoded here.
    """
    if type(build) is PreparedEvent:
        return build.stamp(previous)
    record = build(previous)
    return record, encode_line(record)
