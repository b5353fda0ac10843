# SPDX-License-Identifier: Apache-2.0
"""The provider SPI: what a crypto provider, store, rate limiter, metrics sink, auth provider
or detector must offer.

Providers do the work on the hot path; hooks (``haechi.hookspecs``) only register their
classes. Every provider class carries a ``name`` that configuration uses to select it, and a
``create(context)`` class method that builds it from the effective configuration.

Stores, audit and rate limiting are ``async`` (they may talk to Redis); crypto and detection
are synchronous CPU work. A provider that raises while haechi is inspecting makes haechi fail
closed: the caller wraps the error in :class:`haechi.errors.ProviderError`, blocks and audits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, TypedDict, runtime_checkable

from haechi.models import Identity

if TYPE_CHECKING:
    from haechi.config import HaechiConfig

__all__ = [
    "AuditIntegrity",
    "AuditStore",
    "AuthProvider",
    "CryptoProvider",
    "Detector",
    "Metrics",
    "ProviderContext",
    "RateLimiter",
    "ReadyState",
    "RetryAfterHint",
    "TokenRecord",
    "TokenStore",
]


@dataclass(frozen=True, slots=True)
class ReadyState:
    """Whether a provider can serve writes right now, and if not, a stable reason code."""

    ok: bool
    reason: str | None = None


@dataclass(slots=True)
class ProviderContext:
    """What a provider's ``create`` receives: the effective config and providers built before it.

    Crypto is built first (stores and auth need its HMAC); ``crypto`` is ``None`` only while
    the crypto provider itself is being created.
    """

    config: HaechiConfig
    crypto: CryptoProvider | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class _Provider(Protocol):
    name: ClassVar[str]

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        """Build the provider from the effective configuration."""
        ...


@runtime_checkable
class CryptoProvider(Protocol):
    """Authenticated encryption bound to an AAD, plus domain-separated keyed hashing.

    Envelopes are JSON-shaped dicts and must carry ``kid`` and ``aadHash`` (the response
    direction recognises genuine ``[HAECHI_ENC:...]`` markers by them).
    """

    name: ClassVar[str]

    def encrypt(
        self, plaintext: str, aad: Mapping[str, Any], *, expires_at: datetime | None = None
    ) -> dict[str, Any]:
        """Encrypt ``plaintext`` bound to ``aad``; raise ``CryptoError`` when refused."""
        ...

    def decrypt(self, envelope: Mapping[str, Any], aad: Mapping[str, Any]) -> str:
        """Return the plaintext, or raise ``CryptoError`` (tampered, expired, wrong AAD)."""
        ...

    def hmac(self, data: str, domain: str) -> str:
        """Hex HMAC of ``data`` under a key derived for ``domain`` (non-empty)."""
        ...


class TokenRecord(TypedDict):
    """One vault record as stored: no plaintext, only its envelope."""

    type: str
    createdAt: str
    expiresAt: str
    metadata: dict[str, Any]
    envelope: dict[str, Any]
    aad: dict[str, Any]


@runtime_checkable
class TokenStore(Protocol):
    """Persistence for token-vault records. Knows nothing of crypto, retention or audit.

    Every method is atomic with respect to other processes using the same store.
    """

    name: ClassVar[str]

    async def get(self, token: str) -> TokenRecord | None:
        """Return the record for ``token`` or ``None``."""
        ...

    async def put(self, token: str, record: TokenRecord, *, only_if_absent: bool = False) -> bool:
        """Store ``record``. With ``only_if_absent`` an existing record wins; return whether
        this call wrote."""
        ...

    async def delete(self, token: str) -> bool:
        """Remove ``token``; return whether it existed."""
        ...

    async def delete_expired(self, now: datetime) -> int:
        """Remove every record whose ``expiresAt`` is at or before ``now``; return the count."""
        ...

    def items(self) -> AsyncIterator[tuple[str, TokenRecord]]:
        """Iterate over a snapshot of all records."""
        ...

    async def ready(self) -> ReadyState:
        """Report whether the store is writable."""
        ...


class AuditIntegrity(TypedDict):
    """The integrity block stamped on every audit record."""

    alg: str
    canonicalization: str
    sequence: int
    previousHash: str | None
    eventHash: str


@runtime_checkable
class AuditStore(Protocol):
    """Append-only persistence for the hash-chained audit log.

    Chain math, sanitizing and anchoring stay in :mod:`haechi.audit`; a store only makes
    appends linear across every writer that shares it (threads, processes, replicas), so
    the chain never forks. ``haechi.testing.audit_store.AuditStoreContract`` checks this.
    """

    name: ClassVar[str]

    async def append(
        self,
        build: Callable[[AuditIntegrity | None], dict[str, Any]],
        *,
        committed: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """In one exclusive section: read the last record's integrity block (``None`` for
        an empty log), call ``build`` with it, durably persist the record it returns, call
        ``committed`` with that record, and return it.

        ``build`` is pure, so an optimistic store (compare-and-set on the head, as on Redis)
        may call it again on a newer head; only the record persisted is passed on.
        ``committed`` runs once, after persisting and before the section ends; if it
        raises, the error propagates (the record stays written)."""
        ...

    def records(self) -> AsyncIterator[dict[str, Any]]:
        """Iterate over every stored record in chain order."""
        ...

    async def ready(self) -> ReadyState:
        """Report whether a write would succeed, without writing an event."""
        ...


@runtime_checkable
class RateLimiter(Protocol):
    """Per-key request budgets (see also :class:`RetryAfterHint`, which a limiter may add).

    The gateway gives each call ``rateLimit.timeoutMs`` and cancels it past that; an ``allow``
    that raises or does not answer refuses the request (503), so a limiter need not catch its
    store's failures to fail closed.
    """

    name: ClassVar[str]

    async def allow(self, key: str, requests_per_minute: float) -> bool:
        """Count one request for ``key``; return False when it is over budget."""
        ...


@runtime_checkable
class RetryAfterHint(Protocol):
    """What a rate limiter may offer besides :class:`RateLimiter`: how long a refused key waits.

    Optional, so that a limiter that only answers allow/deny keeps working: the gateway asks
    only after ``allow`` refused (allowed requests pay nothing), and without it, or when it
    raises, does not answer within ``rateLimit.timeoutMs`` or answers anything but a finite
    number, the 429 says the whole window (60 s), as it does for a longer answer: a
    per-minute budget is back within the window.
    """

    async def retry_after(self, key: str, requests_per_minute: float) -> float:
        """Seconds until ``key`` may be allowed again (0 or less: now)."""
        ...


@runtime_checkable
class Metrics(Protocol):
    """Counters and histograms exposed on ``/__haechi/metrics``."""

    name: ClassVar[str]

    def increment(
        self, metric: str, labels: Mapping[str, str] | None = None, amount: float = 1
    ) -> None:
        """Add ``amount`` to a counter."""
        ...

    def observe(self, metric: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Record one histogram observation."""
        ...

    def render(self) -> tuple[bytes, str]:
        """Return the exposition body and its content type."""
        ...


@runtime_checkable
class AuthProvider(Protocol):
    """Turns request headers into an :class:`~haechi.models.Identity`.

    Returns ``None`` when no acceptable credential is present; raising is treated as a
    denial (``provider_error``). Only the header slice the provider needs is passed.
    """

    name: ClassVar[str]

    async def authenticate(self, headers: Mapping[str, str]) -> Identity | None:
        """Return the caller's identity, or ``None`` to deny."""
        ...


@runtime_checkable
class Detector(Protocol):
    """Contributes detection rules to the catalogue (see ``haechi.detect``)."""

    name: ClassVar[str]

    def rules(self) -> Sequence[Any]:
        """Return the ``haechi.detect.Rule`` objects this detector adds."""
        ...
