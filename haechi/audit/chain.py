# SPDX-License-Identifier: Apache-2.0
"""The hash chain: how a record is stamped, and how a chain is verified.

Every record is a sanitized event plus an ``auditIntegrity`` block::

    {"alg": "sha256", "canonicalization": "json-stable-v1",
     "sequence": n, "previousHash": <eventHash of record n-1, or null>, "eventHash": h}

``h`` is the unpadded base64url SHA-256 (43 characters) of the canonical JSON
(:func:`haechi._canonical.canonical_json`) of the record with ``auditIntegrity`` holding every
field but ``eventHash``. Sequences start at 1 and grow by one. Changing, removing, inserting
or reordering a record breaks a hash or a sequence from that point on; removing records at
the *end* is only visible against an anchor (a separate note of ``(sequence, eventHash)``
pairs, see :class:`haechi.audit.AuditSink`).

Verification reports the first failure with one of these reasons, which other haechi
implementations also use: ``missing auditIntegrity``, ``sequence mismatch``,
``previous hash mismatch``, ``event hash mismatch``, ``anchor hash mismatch at sequence N``,
``tail truncation: chain has X records but anchor attests sequence Y``; and
``key given twice at line N`` (``at anchor line N``) for a line of the log (of the anchor
file) read differently by readers keeping the first and the last value.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from haechi._canonical import canonical_json
from haechi._json_once import RepeatedKey
from haechi.audit._lines import iter_json_lines, numbered_lines, parse_object
from haechi.errors import AuditError, AuditRepeatedKey
from haechi.providers import AuditIntegrity

if TYPE_CHECKING:
    import os

    from haechi.providers import AuditStore

__all__ = [
    "ALG",
    "CANONICALIZATION",
    "AnchorCoverage",
    "ChainVerifier",
    "VerifyResult",
    "build_integrity_record",
    "event_hash",
    "hash_canonical",
    "hash_canonical_bytes",
    "integrity_of",
    "verify_chain",
    "verify_records",
    "verify_store",
]

ALG: Final = "sha256"
CANONICALIZATION: Final = "json-stable-v1"


_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")


def hash_canonical(canonical: str) -> str:
    """The ``eventHash`` of a record whose canonical text is ``canonical``: the unpadded
    base64url SHA-256 of its UTF-8 bytes."""
    return hash_canonical_bytes(canonical.encode("utf-8"))


def hash_canonical_bytes(canonical: bytes) -> str:
    """:func:`hash_canonical` of a canonical text already encoded as UTF-8."""
    digest = hashlib.sha256(canonical).digest()
    return binascii.b2a_base64(digest, newline=False).rstrip(b"=").translate(_URLSAFE).decode()


def event_hash(event: Mapping[str, Any], integrity: Mapping[str, Any]) -> str:
    """The ``eventHash`` of ``event`` stamped with ``integrity`` (minus any ``eventHash``).

    ``event`` must hold JSON values only (``TypeError`` otherwise); its own
    ``auditIntegrity``, if any, is replaced.
    """
    block = {key: value for key, value in integrity.items() if key != "eventHash"}
    body = {key: value for key, value in event.items() if key != "auditIntegrity"}
    body["auditIntegrity"] = block
    return hash_canonical(canonical_json(body))


def build_integrity_record(
    previous: AuditIntegrity | None, event: Mapping[str, Any]
) -> dict[str, Any]:
    """Return ``event`` as the record that follows ``previous`` (``None``: the first one).

    Pure: the same inputs give the same record, so an optimistic store may call it again on
    a newer head. ``event`` should already be sanitized (:func:`haechi.audit.sanitize_event`).
    """
    block: dict[str, Any] = {
        "alg": ALG,
        "canonicalization": CANONICALIZATION,
        "sequence": 1 if previous is None else previous["sequence"] + 1,
        "previousHash": None if previous is None else previous["eventHash"],
    }
    record = {key: value for key, value in event.items() if key != "auditIntegrity"}
    record["auditIntegrity"] = block
    record["auditIntegrity"] = {**block, "eventHash": hash_canonical(canonical_json(record))}
    return record


@dataclass(frozen=True, slots=True)
class AnchorCoverage:
    """How many anchors were read, and the highest sequence they attest (``None``: none)."""

    count: int
    last_sequence: int | None

    def to_json(self) -> dict[str, Any]:
        """``{"count", "lastSequence"}``."""
        return {"count": self.count, "lastSequence": self.last_sequence}


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of verifying a chain.

    ``records`` counts the records read: all of them when valid, up to and including the
    first bad one otherwise. ``head_hash`` is the last ``eventHash`` (``None`` for an empty
    chain or a failure). ``anchored`` is set when anchors were checked.
    """

    valid: bool
    records: int
    reason: str | None = None
    head_hash: str | None = None
    anchored: AnchorCoverage | None = None

    def to_json(self) -> dict[str, Any]:
        """``{valid, records, headHash[, anchored]}`` or ``{valid: false, records, reason}``."""
        if not self.valid:
            return {"valid": False, "records": self.records, "reason": self.reason}
        document: dict[str, Any] = {
            "valid": True,
            "records": self.records,
            "headHash": self.head_hash,
        }
        if self.anchored is not None:
            document["anchored"] = self.anchored.to_json()
        return document


def _anchor_entry(anchor: Any) -> tuple[int, str] | None:
    if type(anchor) is not dict and not isinstance(anchor, Mapping):
        return None
    sequence = anchor.get("sequence")
    digest = anchor.get("eventHash")
    if type(sequence) is not int or sequence < 1 or not isinstance(digest, str):
        return None
    return sequence, digest


def _is_number(value: Any, expected: int) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == expected


class ChainVerifier:
    """Incremental verifier: feed records in order with :meth:`add`, then ask :meth:`result`.

    ``anchors`` are ``{"sequence", "eventHash"}`` mappings; entries of any other shape are
    skipped (an anchor line torn by a crash must not make a sound chain fail). Pass
    ``None`` when no anchor source was given, and an empty iterable for an empty one.
    Anchors are read lazily, one at a time, by the first call to :meth:`result`, so call
    it once every record is added. Only the hash of each record is kept (less than the
    record itself), never the anchors: an anchor file without end cannot grow the process.
    """

    def __init__(self, anchors: Iterable[Any] | None = None) -> None:
        self._anchors: Iterable[Any] | None = anchors
        # eventHash of each good record, by sequence - 1; kept only when anchors are given.
        self._hashes: list[str] | None = None if anchors is None else []
        self._verdict: VerifyResult | None = None
        self._records = 0
        self._head: str | None = None
        self._reason: str | None = None

    @property
    def failed(self) -> bool:
        """Whether a failure was found (later records are then ignored)."""
        return self._reason is not None

    def add(self, record: Mapping[str, Any]) -> bool:
        """Check the next record; return ``False`` once the chain is known to be broken."""
        if self._reason is not None:
            return False
        self._records += 1
        self._reason = self._check(record)
        if self._reason is None and self._hashes is not None and self._head is not None:
            self._hashes.append(self._head)
        return self._reason is None

    def refuse(self, reason: str) -> None:
        """Count the next record as one that breaks the chain for ``reason`` (a line that
        cannot be taken as the record it claims to be, see
        :class:`~haechi.errors.AuditRepeatedKey`), unless the chain is already broken."""
        if self._reason is None:
            self._records += 1
            self._reason = reason

    def _check(self, record: Mapping[str, Any]) -> str | None:
        integrity = record.get("auditIntegrity")
        if not isinstance(integrity, Mapping):
            return "missing auditIntegrity"
        if not _is_number(integrity.get("sequence"), self._records):
            return "sequence mismatch"
        if "previousHash" not in integrity or integrity["previousHash"] != self._head:
            return "previous hash mismatch"
        claimed = integrity.get("eventHash")
        if (
            integrity.get("alg") != ALG
            or integrity.get("canonicalization") != CANONICALIZATION
            or not isinstance(claimed, str)
            or _hash_of(record, integrity) != claimed
        ):
            return "event hash mismatch"
        self._head = claimed
        return None

    def result(self) -> VerifyResult:
        """The verdict on everything added so far (the anchors are read on the first call)."""
        if self._verdict is None:
            anchors, self._anchors = self._anchors, None
            self._verdict = self._unanchored() if anchors is None else self._anchored(anchors)
        return self._verdict

    def _unanchored(self) -> VerifyResult:
        if self._reason is not None:
            return VerifyResult(valid=False, records=self._records, reason=self._reason)
        return VerifyResult(valid=True, records=self._records, head_hash=self._head)

    def _anchored(self, anchors: Iterable[Any]) -> VerifyResult:
        """:meth:`_against` ``anchors``, or the chain found broken at an anchor line giving a
        key twice (:class:`~haechi.errors.AuditRepeatedKey`, which the anchor source raises):
        the sequence such a line attests depends on its reader, so the records past the
        anchors read before it are vouched for by none. A chain already broken keeps its
        own failure, found earlier in record order."""
        try:
            return self._against(anchors)
        except AuditRepeatedKey as exc:
            if self._reason is not None:
                return self._unanchored()
            return VerifyResult(valid=False, records=self._records, reason=exc.reason)

    def _against(self, anchors: Iterable[Any]) -> VerifyResult:
        """Check each anchor against the hash of its record as it is read, and stop at the
        first one the chain contradicts or does not reach: past that point more anchors
        cannot make the chain sound, and an endless file of them must not be read forever.
        Anchors are written in sequence order, so the first one past the good records is
        also the first failure in record order."""
        hashes = self._hashes or []
        count, last = 0, 0
        for anchor in anchors:
            entry = _anchor_entry(anchor)
            if entry is None:
                continue
            sequence, digest = entry
            if sequence > len(hashes):
                return self._unanchored() if self._reason is not None else self._truncated(sequence)
            if hashes[sequence - 1] != digest:
                reason = f"anchor hash mismatch at sequence {sequence}"
                return VerifyResult(valid=False, records=sequence, reason=reason)
            count, last = count + 1, max(last, sequence)
        if self._reason is not None:
            return self._unanchored()
        coverage = AnchorCoverage(count=count, last_sequence=last or None)
        return VerifyResult(
            valid=True, records=self._records, head_hash=self._head, anchored=coverage
        )

    def _truncated(self, sequence: int) -> VerifyResult:
        reason = (
            f"tail truncation: chain has {self._records} records "
            f"but anchor attests sequence {sequence}"
        )
        return VerifyResult(valid=False, records=self._records, reason=reason)


def verify_records(
    records: Iterable[Mapping[str, Any]], *, anchors: Iterable[Any] | None = None
) -> VerifyResult:
    """Verify an in-order iterable of records, stopping at the first failure."""
    verifier = ChainVerifier(anchors)
    for record in records:
        if not verifier.add(record):
            break
    return verifier.result()


async def verify_store(store: AuditStore, *, anchors: Iterable[Any] | None = None) -> VerifyResult:
    """Verify every record an :class:`~haechi.providers.AuditStore` holds. A record the
    store reads as giving a key twice (:class:`~haechi.errors.AuditRepeatedKey`) breaks the
    chain there, as in :func:`verify_chain`; any other failure to read raises."""
    verifier = ChainVerifier(anchors)
    try:
        async for record in store.records():
            if not verifier.add(record):
                break
    except AuditRepeatedKey as exc:
        verifier.refuse(exc.reason)
    return verifier.result()


def _hash_of(record: Mapping[str, Any], integrity: Mapping[str, Any]) -> str | None:
    """The event hash of ``record``, ``None`` when it has none: a record no writer makes (a
    number out of a double's range, nesting past the recursion limit) was tampered with."""
    try:
        return event_hash(record, integrity)
    except (TypeError, ValueError, RecursionError):
        return None


def _read_anchors(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with path.open("rb") as handle:
            for number, line in numbered_lines(handle, f"anchor file {path}"):
                try:
                    anchor = parse_object(line)
                except RepeatedKey:
                    where = f"anchor line {number}"
                    raise AuditRepeatedKey(f"anchor file {path.name}", where) from None
                if anchor is not None:
                    yield anchor
    except FileNotFoundError:
        return
    except OSError as exc:
        raise AuditError(f"cannot read anchor file {path}: {exc.strerror}") from None


def verify_chain(
    path: str | os.PathLike[str], *, anchor_path: str | os.PathLike[str] | None = None
) -> VerifyResult:
    """Verify the JSONL audit file at ``path``, streaming it in constant memory.

    Blank lines are skipped; a line that is not a JSON object raises
    :class:`~haechi.errors.AuditError`, as does a missing or unreadable audit file. With
    ``anchor_path`` the anchors are read after the log, each checked against its record,
    and the chain must reach every anchored sequence (see :class:`ChainVerifier`);
    unparsable anchor lines are skipped and a missing anchor file counts as no anchors. A
    line of either file giving a key twice breaks the chain there (``key given twice at
    line N``, ``at anchor line N``).
    """
    audit = Path(path)
    anchors = None if anchor_path is None else _read_anchors(Path(anchor_path))
    verifier = ChainVerifier(anchors)
    try:
        for record in iter_json_lines(audit):
            if not verifier.add(record):
                break
    except AuditRepeatedKey as exc:
        verifier.refuse(exc.reason)
    except FileNotFoundError:
        raise AuditError(f"audit log not found: {audit}") from None
    except OSError as exc:
        raise AuditError(f"cannot read audit log {audit}: {exc.strerror}") from None
    return verifier.result()


def integrity_of(record: Mapping[str, Any]) -> AuditIntegrity:
    """The ``auditIntegrity`` block of a stored record, checked enough to chain onto.

    Stores call this on their last record: a head without an integer ``sequence`` or a
    string ``eventHash`` cannot be extended, and appending anyway would fork or restart the
    chain, so it raises :class:`~haechi.errors.AuditError` instead.
    """
    block = record.get("auditIntegrity")
    if (type(block) is dict or isinstance(block, Mapping)) and _anchor_entry(block) is not None:
        return cast(AuditIntegrity, dict(block))
    raise AuditError("the last audit record has no usable auditIntegrity; the log needs repair")
