# SPDX-License-Identifier: Apache-2.0
"""How the protect pipeline treats the text attachments of one payload.

The pipeline never builds a decoded copy of the payload. It scans each attachment's decoded
text in place of its encoded leaf (:meth:`TextAttachments.entries`), so findings carry the
leaf's path and offsets into what was scanned, and are screened, decided, counted and
audited like any others. An attachment that does not decode as declared cannot be
inspected, nor can a binary one (located only under ``filters.binaryAttachments: block``):
each adds a ``block`` decision that no policy, allowlist or confidence floor can change
(:meth:`TextAttachments.blocks`), so an enforced call blocks and a dry run reports it.
When enforced, the findings inside an attachment are applied to its decoded text and the
text encoded back as it came (:meth:`TextAttachments.rewrite`); every other finding is left
to the ordinary leaf transform.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, Final

from haechi.actions import Item, Transformer, apply_rewrites
from haechi.attachments.locate import (
    BinaryAttachment,
    Path,
    TextAttachment,
    UndecodableAttachment,
    locate_text_attachments,
)
from haechi.models import Detection, Entry
from haechi.pieces import PieceRun

__all__ = ["UNDECODABLE_TYPE", "UNINSPECTABLE_TYPE", "TextAttachments"]

#: The type of the decision an undecodable attachment adds; its rule id names the reason
#: (``attachment-invalid-base64``, ``attachment-invalid-utf8``,
#: ``attachment-unsupported-charset``, ``attachment-ambiguous-line-breaks``,
#: ``attachment-ambiguous-base64-marker``).
UNDECODABLE_TYPE: Final = "undecodable_attachment"
#: The type of the decision a binary attachment adds when binary attachments block; its
#: rule id names where it is (``attachment-binary-data-url``, ``-inline-data``,
#: ``-file-data``, ``-images``, ``-bytes``, ``-blob``, ``-input-audio``, ``-audio``,
#: ``-image-generation``), never what it holds.
UNINSPECTABLE_TYPE: Final = "uninspectable_attachment"

Blocking = UndecodableAttachment | BinaryAttachment


class TextAttachments:
    """The declared-text attachments of one payload (see the module documentation)."""

    __slots__ = ("_blocking", "_decoded")

    def __init__(self, decoded: Sequence[TextAttachment], blocking: Sequence[Blocking]) -> None:
        self._decoded = {attachment.path: attachment for attachment in decoded}
        self._blocking = tuple(blocking)

    @classmethod
    def find(
        cls,
        payload: Any,
        entries: Sequence[Entry],
        runs: Iterable[PieceRun],
        *,
        block_binary: bool = False,
    ) -> TextAttachments | None:
        """The attachments of ``payload`` (walked as ``entries``, cut into ``runs``), binary
        ones too when ``block_binary``, or ``None`` when it has none (most payloads; the
        check costs little)."""
        located = locate_text_attachments(payload, entries, runs, block_binary=block_binary)
        if not located:
            return None
        decoded = [each for each in located if isinstance(each, TextAttachment)]
        blocking = [each for each in located if not isinstance(each, TextAttachment)]
        return cls(decoded, blocking)

    def entries(self, entries: Sequence[Entry]) -> list[Entry]:
        """``entries`` with each attachment's leaf read as its decoded text."""
        decoded = self._decoded
        return [
            Entry(entry.path, decoded[entry.path].scan_text)
            if entry.kind == "value" and entry.path in decoded
            else entry
            for entry in entries
        ]

    def blocks(self) -> tuple[Item, ...]:
        """A ``block`` decision for every attachment that cannot be inspected."""
        return tuple(
            Item(
                Detection(
                    type=_finding_type(attachment),
                    rule_id=_rule_id(attachment),
                    path=attachment.path,
                    kind="value",
                    start=0,
                    end=len(attachment.leaf),
                    confidence=1.0,
                    value="",
                    hard_block=True,
                ),
                "block",
            )
            for attachment in self._blocking
        )

    async def rewrite(
        self, payload: Any, items: Sequence[Item], transformer: Transformer
    ) -> tuple[Any, list[Item]]:
        """Apply the items found inside attachments, and return the payload with those
        attachments re-encoded (the input is not modified) and the other items."""
        inside: dict[Path, list[Item]] = {}
        others: list[Item] = []
        for item in items:
            found = item.detection
            if found.kind == "value" and found.path in self._decoded:
                inside.setdefault(found.path, []).append(item)
            else:
                others.append(item)
        leaves: dict[Path, str] = {}
        for path, group in inside.items():
            attachment = self._decoded[path]
            leaf = await _rewritten(attachment, group, transformer)
            if leaf != attachment.leaf:
                leaves[path] = leaf
        return apply_rewrites(payload, leaves, {}), others


def _finding_type(attachment: Blocking) -> str:
    """The type of the decision ``attachment`` adds."""
    return UNINSPECTABLE_TYPE if isinstance(attachment, BinaryAttachment) else UNDECODABLE_TYPE


def _rule_id(attachment: Blocking) -> str:
    """The rule id of the decision ``attachment`` adds: why it cannot be inspected."""
    if isinstance(attachment, BinaryAttachment):
        return f"attachment-binary-{attachment.kind}"
    return f"attachment-{attachment.reason}"


async def _rewritten(
    attachment: TextAttachment, items: Sequence[Item], transformer: Transformer
) -> str:
    """The attachment's leaf with ``items`` (offsets into its scan text) applied to its
    text and to its header's parameters separately, so that the result is always a data
    URL of the declared type and encoding: a finding across both (as a whole-leaf finding
    of folded text is) is cut in two, and what it covers of the rest of the header stays.
    A finding wholly inside the header is a value written there (``data:text/<address>,``),
    which goes upstream with the header: it is rewritten wherever it lies.

    A leaf also read as written with a finding in that reading is rewritten as the text it
    is to the model, and every finding of its decoded reading covers all of it: where a
    value of one reading lies in the other is not known."""
    leaf = attachment.leaf
    reading = attachment.reading_start
    written = _within(items, 0, len(leaf)) if reading else []
    if written:
        whole = [
            Item(dataclasses.replace(item.detection, start=0, end=len(leaf)), item.action)
            for item in items
            if item.detection.end > reading
        ]
        return await transformer.transform_text(leaf, written + whole)
    header = attachment.header
    if header:
        after = reading + len(header)
        inside: list[Item] = []
        across: list[Item] = []
        for item in items:
            found = item.detection
            (inside if reading <= found.start and found.end <= after else across).append(item)
        start, end = attachment.parameters
        in_header = _within(inside, reading, after)
        in_header += _within(across, reading + start, reading + end, reading)
        header = await transformer.transform_text(header, in_header)
    start = attachment.body_start
    text = await transformer.transform_text(
        attachment.text, _within(items, start, start + len(attachment.text))
    )
    if header == attachment.header and text == attachment.text:
        return attachment.leaf
    return attachment.encode(header, text)


def _within(items: Sequence[Item], start: int, end: int, origin: int | None = None) -> list[Item]:
    """The parts of ``items`` between ``start`` and ``end``, counted from ``origin``
    (``start`` when not given)."""
    origin = start if origin is None else origin
    return [
        Item(
            dataclasses.replace(
                item.detection,
                start=max(item.detection.start, start) - origin,
                end=min(item.detection.end, end) - origin,
            ),
            item.action,
        )
        for item in items
        if item.detection.start < end and item.detection.end > start
    ]
