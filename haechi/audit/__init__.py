# SPDX-License-Identifier: Apache-2.0
"""The tamper-evident audit log.

Every decision haechi takes is written as one JSON event, sanitized so that no inspected
value can enter it, and chained to the previous record by a SHA-256 hash, so that any edit,
deletion or reordering is detectable (and truncation too, against an anchor)::

    from haechi.audit import AuditSink, FileAuditStore, protect_event, verify_chain

    sink = AuditSink(FileAuditStore(".haechi/audit.jsonl"))
    record = await sink.record(protect_event(mode="enforce", blocked=False, payload=payload,
                                             findings=findings, summary=summary))
    verify_chain(".haechi/audit.jsonl").valid

Modules: :mod:`~haechi.audit.events` (event builders), :mod:`~haechi.audit.sanitize`
(what may be hashed), :mod:`~haechi.audit.chain` (stamping and verification),
:mod:`~haechi.audit.stores` (file and memory stores), :mod:`~haechi.audit.sink` (the writer
with anchors), :mod:`~haechi.audit.summary` (totals for reports).
"""

from __future__ import annotations

from haechi.audit.chain import (
    ALG,
    CANONICALIZATION,
    AnchorCoverage,
    ChainVerifier,
    VerifyResult,
    build_integrity_record,
    event_hash,
    integrity_of,
    verify_chain,
    verify_records,
    verify_store,
)
from haechi.audit.events import (
    PATH_HASH_DOMAIN,
    PROXY_DECISIONS,
    SCHEMA_VERSION,
    AuthTokenChange,
    VaultOperation,
    auth_token_event,
    iso_timestamp,
    keyed_path_hash,
    payload_shape_hash,
    protect_event,
    proxy_decision_event,
    stream_event,
    vault_event,
)
from haechi.audit.sanitize import COUNT_MAP_KEYS, FORBIDDEN_KEYS, MAX_EVENT_DEPTH, sanitize_event
from haechi.audit.sink import ANCHOR_MODES, AnchorMode, AuditSink
from haechi.audit.stores import FileAuditStore, MemoryAuditStore
from haechi.audit.summary import read_summary

__all__ = [
    "ALG",
    "ANCHOR_MODES",
    "CANONICALIZATION",
    "COUNT_MAP_KEYS",
    "FORBIDDEN_KEYS",
    "MAX_EVENT_DEPTH",
    "PATH_HASH_DOMAIN",
    "PROXY_DECISIONS",
    "SCHEMA_VERSION",
    "AnchorCoverage",
    "AnchorMode",
    "AuditSink",
    "AuthTokenChange",
    "ChainVerifier",
    "FileAuditStore",
    "MemoryAuditStore",
    "VaultOperation",
    "VerifyResult",
    "auth_token_event",
    "build_integrity_record",
    "event_hash",
    "integrity_of",
    "iso_timestamp",
    "keyed_path_hash",
    "payload_shape_hash",
    "protect_event",
    "proxy_decision_event",
    "read_summary",
    "sanitize_event",
    "stream_event",
    "vault_event",
    "verify_chain",
    "verify_records",
    "verify_store",
]
