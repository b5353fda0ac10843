# SPDX-License-Identifier: Apache-2.0
"""What the token vault returns, and what it needs from an audit sink."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

__all__ = [
    "AuditRecorder",
    "ExportedToken",
    "IssuedToken",
    "PurgeExpiredResult",
    "PurgeResult",
    "RevealedToken",
]


class AuditRecorder(Protocol):
    """Where vault events go (an :class:`haechi.audit.AuditSink` fits)."""

    async def record(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Persist one event; raise to make the vault fail closed."""
        ...


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token handed out by :meth:`TokenVault.tokenize`; ``reused`` for a deterministic hit."""

    token: str
    type: str
    reused: bool = False


@dataclass(frozen=True, slots=True)
class RevealedToken:
    """The result of a permitted reveal; the plaintext stays out of ``repr``."""

    token: str
    type: str
    plaintext: str = field(repr=False)


class PurgeResult(TypedDict):
    """Outcome of :meth:`TokenVault.purge`."""

    token: str
    purged: bool
    purgedAt: str


class PurgeExpiredResult(TypedDict):
    """Outcome of :meth:`TokenVault.purge_expired`."""

    purged: int
    purgedAt: str


class ExportedToken(TypedDict):
    """One entry of :meth:`TokenVault.export_metadata`: everything but the value."""

    token: str
    type: str
    createdAt: str
    expiresAt: str
    metadata: dict[str, Any]
