# SPDX-License-Identifier: Apache-2.0
"""The token vault: reversible tokenization with retention, reveal governance and audit.

The vault owns everything the store must not know: ids, encryption, retention, the reveal
policy and audit events. A record holds the envelope of the value (never the value), bound
to the AAD ``{"purpose": "token-vault", "token", "type", "context"}`` that is stored beside
it, and carries an expiry that the envelope repeats, so a record and its ciphertext expire
together.

Deterministic tokens are re-encrypted whenever they are reused: extending only the record's
expiry (as the reference system does) leaves a ciphertext that stops decrypting at the first
expiry although the record promises more.

Reveal is governed: with ``reveal_policy="disabled"`` (the default) it is denied and audited
before the store is touched. Messages are fixed texts that never echo the argument, and the
audit log records a non-token argument only as a keyed hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, Self, get_args

from haechi.audit.events import VaultOperation, vault_event
from haechi.crypto._codec import format_timestamp, utc_now
from haechi.errors import ConfigError, CryptoError, VaultError
from haechi.providers import CryptoProvider, TokenRecord, TokenStore
from haechi.vault._records import is_expired, json_copy, sanitize_metadata
from haechi.vault._results import (
    AuditRecorder,
    ExportedToken,
    IssuedToken,
    PurgeExpiredResult,
    PurgeResult,
    RevealedToken,
)
from haechi.vault._tokens import (
    audit_token_field,
    deterministic_token,
    is_token,
    random_token,
)

if TYPE_CHECKING:
    from haechi.config import HaechiConfig

__all__ = ["REVEAL_POLICIES", "RevealPolicy", "TokenVault"]

RevealPolicy = Literal["disabled", "local-dev"]
REVEAL_POLICIES: Final[tuple[RevealPolicy, ...]] = get_args(RevealPolicy)

_PURPOSE: Final = "token-vault"
_PRUNE_EVERY: Final = timedelta(minutes=1)
_RANDOM_ATTEMPTS: Final = 8


_UNKNOWN = ("Unknown token", "unknown_token")
_EXPIRED = ("Token expired", "token_expired")
_UNDECRYPTABLE = ("Token decrypt failed", "decrypt_failed")
_FAILED = ("Token reveal failed", "reveal_error")
_DISABLED = ("Token reveal is disabled by tokenVault.revealPolicy", "reveal_policy_disabled")


def _refusal(kind: tuple[str, str]) -> VaultError:
    return VaultError(*kind)


def _aad(token: str, token_type: str, context: Any) -> dict[str, Any]:
    return {"purpose": _PURPOSE, "token": token, "type": token_type, "context": context}


def _listable(token: str, record: Any) -> bool:
    """Whether ``record`` under ``token`` has what an export lists: a token id, and a
    type, creation and expiry that are strings."""
    return (
        is_token(token)
        and isinstance(record, dict)
        and all(isinstance(record.get(key), str) for key in ("type", "createdAt", "expiresAt"))
    )


def _retention(days: float) -> timedelta:
    """``days`` as a retention period, refused unless an expiry it sets is a date.

    Every issue writes ``now + retention`` into the record and its envelope: a period
    reaching past the year 9999 (or an infinite one) would make every tokenization fail,
    so it is a configuration error at start rather than a failure on each request.
    """
    try:
        retention = timedelta(days=days)
        utc_now() + retention
        utc_now() - abs(retention)
    except (OverflowError, ValueError):
        raise ConfigError(
            "tokenVault.retentionDays must set expiries within the years 1 to 9999"
        ) from None
    return retention


class TokenVault:
    """Issues, reveals, restores, purges and lists tokens.

    Args:
        store: where records live (any :class:`~haechi.providers.TokenStore`).
        crypto: encrypts values; its ``hmac`` makes deterministic ids and audit stand-ins.
        reveal_policy: ``"disabled"`` (default) or ``"local-dev"``.
        retention_days: how long a token stays redeemable; reuse extends it.
        deterministic: issue the same id for the same (type, value).
        deterministic_types: the types that are deterministic; ``None`` means all.
        audit: receives reveal, detokenize and purge events.
        clock: the time source (timezone-aware); defaults to the system clock.

    Raises:
        ConfigError: an unknown reveal policy, or ``deterministic`` without ``crypto.hmac``.
    """

    def __init__(
        self,
        store: TokenStore,
        crypto: CryptoProvider,
        *,
        reveal_policy: RevealPolicy = "disabled",
        retention_days: float = 30,
        deterministic: bool = False,
        deterministic_types: Iterable[str] | None = None,
        audit: AuditRecorder | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if reveal_policy not in REVEAL_POLICIES:
            raise ConfigError("tokenVault.revealPolicy must be disabled or local-dev")
        if isinstance(retention_days, bool) or not isinstance(retention_days, int | float):
            raise TypeError("retention_days must be a number")
        retention = _retention(retention_days)
        if deterministic and not callable(getattr(crypto, "hmac", None)):
            raise ConfigError("tokenVault.deterministic needs a crypto provider with hmac")
        self._store = store
        self._crypto = crypto
        self._reveal_policy: RevealPolicy = reveal_policy
        self._retention = retention
        self._deterministic = deterministic
        self._deterministic_types = (
            None if deterministic_types is None else frozenset(deterministic_types)
        )
        self._audit_sink = audit
        self._clock = clock or utc_now
        self._last_prune: datetime | None = None

    @classmethod
    def from_config(
        cls,
        config: HaechiConfig,
        *,
        store: TokenStore,
        crypto: CryptoProvider,
        audit: AuditRecorder | None = None,
    ) -> Self:
        """A vault with the settings of ``config.token_vault``."""
        settings = config.token_vault
        return cls(
            store,
            crypto,
            reveal_policy=settings.reveal_policy,
            retention_days=settings.retention_days,
            deterministic=settings.deterministic,
            deterministic_types=settings.deterministic_types,
            audit=audit,
        )

    @property
    def reveal_policy(self) -> RevealPolicy:
        """The reveal policy in force."""
        return self._reveal_policy

    @property
    def store(self) -> TokenStore:
        """The store records are kept in."""
        return self._store

    # --- issuing --------------------------------------------------------------------------

    def _is_deterministic(self, token_type: str) -> bool:
        if not self._deterministic:
            return False
        return self._deterministic_types is None or token_type in self._deterministic_types

    def _record(
        self,
        token: str,
        plaintext: str,
        token_type: str,
        context: Any,
        metadata: dict[str, Any],
        now: datetime,
    ) -> TokenRecord:
        expires = now + self._retention
        aad = _aad(token, token_type, context)
        return {
            "type": token_type,
            "createdAt": format_timestamp(now),
            "expiresAt": format_timestamp(expires),
            "metadata": metadata,
            "envelope": self._crypto.encrypt(plaintext, aad, expires_at=expires),
            "aad": aad,
        }

    async def _prune(self, now: datetime) -> None:
        # Expired records are dropped as tokens are issued (at most once a minute per vault),
        # so a vault that is never purged by hand still stays bounded.
        if self._last_prune is None or not (
            self._last_prune <= now < self._last_prune + _PRUNE_EVERY
        ):
            self._last_prune = now
            await self._store.delete_expired(now)

    async def tokenize(
        self,
        plaintext: str,
        type: str,
        *,
        context: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
    ) -> IssuedToken:
        """Store ``plaintext`` encrypted and return the token that stands for it.

        ``context`` (a JSON object, bound into the AAD) says where the value was seen;
        ``metadata`` is kept in clear for export, minus any ``value``/``plaintext``/
        ``payload`` keys.

        Raises:
            CryptoError: encryption was refused (for example the key budget is spent).
            VaultError: no unique id could be allocated.
            TypeError: arguments are not strings / JSON.
        """
        if not isinstance(plaintext, str) or not isinstance(type, str):
            raise TypeError("plaintext and type must be str")
        now = self._clock()
        context_copy = json_copy(context)
        clean_metadata = sanitize_metadata(metadata)
        await self._prune(now)
        if self._is_deterministic(type):
            token = deterministic_token(self._crypto, type, plaintext)
            return await self._issue_deterministic(
                token, plaintext, type, context_copy, clean_metadata, now
            )
        for _ in range(_RANDOM_ATTEMPTS):
            token = random_token(type)
            record = self._record(token, plaintext, type, context_copy, clean_metadata, now)
            if await self._store.put(token, record, only_if_absent=True):
                return IssuedToken(token, type)
        raise VaultError("could not allocate a unique token id", "vault_error")

    async def _issue_deterministic(
        self,
        token: str,
        plaintext: str,
        token_type: str,
        context: Any,
        metadata: dict[str, Any],
        now: datetime,
    ) -> IssuedToken:
        existing = await self._store.get(token)
        if existing is None:
            record = self._record(token, plaintext, token_type, context, metadata, now)
            if await self._store.put(token, record, only_if_absent=True):
                return IssuedToken(token, token_type)
            existing = await self._store.get(token)
        if existing is None or is_expired(existing, now):
            record = self._record(token, plaintext, token_type, context, metadata, now)
            await self._store.put(token, record)
            return IssuedToken(token, token_type)
        # Reuse: extend the retention and re-encrypt, so the ciphertext lives as long as the
        # record. The first sighting's context, metadata and creation time are kept.
        expires = now + self._retention
        stored_aad = existing.get("aad")
        stored_context = stored_aad.get("context") if isinstance(stored_aad, dict) else context
        aad = _aad(token, token_type, stored_context)
        updated: TokenRecord = {
            **existing,
            "expiresAt": format_timestamp(expires),
            "envelope": self._crypto.encrypt(plaintext, aad, expires_at=expires),
            "aad": aad,
        }
        await self._store.put(token, updated)
        return IssuedToken(token, token_type, reused=True)

    # --- reading back ---------------------------------------------------------------------

    async def _audit(
        self,
        operation: VaultOperation,
        decision: str,
        *,
        reason: str | None = None,
        token: str | None = None,
        token_type: str | None = None,
        count: int | None = None,
        override: bool = False,
    ) -> None:
        if self._audit_sink is None:
            return
        await self._audit_sink.record(
            vault_event(
                operation=operation,
                decision=decision,
                reason=reason,
                token=token,
                token_type=token_type,
                count=count,
                reveal_policy="local-dev" if override else self._reveal_policy,
                reveal_override=True if override else None,
            )
        )

    def _decrypt(self, token: str, record: TokenRecord, context: Any = None) -> str:
        """Decrypt the record stored under ``token`` with its stored AAD (``context``
        replaced when given).

        The AAD lies in clear beside the envelope, so it binds the envelope to ``token``
        only once checked to name it: a record copied whole under another id would
        otherwise decrypt, and one token's marker would be restored to another's value.
        Its type must be the record's, which a reveal reports.
        """
        aad = record.get("aad")
        envelope = record.get("envelope")
        if not isinstance(aad, dict) or not isinstance(envelope, dict):
            raise CryptoError("vault record is malformed")
        if (aad.get("purpose"), aad.get("token")) != (_PURPOSE, token) or not (
            isinstance(record.get("type"), str) and aad.get("type") == record["type"]
        ):
            raise CryptoError("vault record belongs to another token")
        if context is not None:
            aad = {**aad, "context": context}
        return self._crypto.decrypt(envelope, aad)

    async def reveal(
        self,
        token: str,
        *,
        context: Mapping[str, Any] | None = None,
        dev_override: bool = False,
    ) -> RevealedToken:
        """Return the plaintext behind ``token`` if the reveal policy allows it.

        Every outcome is audited: ``reveal_denied`` (policy, before any store read),
        ``reveal_failed`` (``unknown_token``, ``token_expired``, ``decrypt_failed``,
        ``reveal_error``) or ``reveal_allowed``. ``context`` replaces the stored AAD context.
        ``dev_override`` (``token-reveal --allow-dev-reveal``) reveals under ``local-dev``
        whatever the policy; when that overrides ``disabled``, each event of the call says
        so (``revealOverride: true``), so an auditor tells a one-off override from a
        configured ``local-dev``.

        Raises:
            VaultError: with a fixed message and the stable ``reason`` code.
            AuditError: the decision could not be audited (nothing is revealed).
        """
        audit_token = audit_token_field(self._crypto, token)
        override = dev_override and self._reveal_policy == "disabled"
        if self._reveal_policy == "disabled" and not override:
            await self._audit("reveal", "reveal_denied", reason=_DISABLED[1], token=audit_token)
            raise _refusal(_DISABLED)
        record: TokenRecord | None = None
        try:
            if not is_token(token):
                raise _refusal(_UNKNOWN)
            try:
                record = await self._store.get(token)
            except Exception as exc:
                raise _refusal(_FAILED) from exc
            if record is None:
                raise _refusal(_UNKNOWN)
            if not isinstance(record, dict):
                raise _refusal(_UNDECRYPTABLE)
            if is_expired(record, self._clock()):
                raise _refusal(_EXPIRED)
            try:
                plaintext = self._decrypt(
                    token, record, None if context is None else json_copy(context)
                )
            except CryptoError:
                raise _refusal(_UNDECRYPTABLE) from None
        except VaultError as exc:
            await self._audit(
                "reveal",
                "reveal_failed",
                reason=exc.reason,
                token=audit_token,
                token_type=record.get("type") if isinstance(record, dict) else None,
                override=override,
            )
            raise
        await self._audit(
            "reveal",
            "reveal_allowed",
            token=audit_token,
            token_type=record["type"],
            override=override,
        )
        return RevealedToken(token, record["type"], plaintext)

    async def detokenize(self, tokens: Iterable[str]) -> dict[str, str]:
        """Restore the tokens that can be restored; skip unknown, expired or undecryptable ones.

        Not governed by the reveal policy: it serves the gateway restoring the tokens it issued
        for the same request. One ``detokenize`` event records how many were restored and how
        many were not. An empty request does nothing and records nothing.

        Raises:
            VaultError: the store failed (``store_error``); nothing is returned. The failure
                is audited first (``detokenize_failed``), so a response refused for it
                leaves a record.
            AuditError: the outcome could not be audited; nothing is returned.
        """
        wanted = list(dict.fromkeys(tokens))
        if not wanted:
            return {}
        now = self._clock()
        restored: dict[str, str] = {}
        for token in wanted:
            if not isinstance(token, str) or not is_token(token):
                continue
            try:
                record = await self._store.get(token)
            except Exception as exc:
                failure = VaultError("Token store failed", "store_error")
                await self._audit("detokenize", "detokenize_failed", reason=failure.reason, count=0)
                raise failure from exc
            if record is None or is_expired(record, now):
                continue
            try:
                restored[token] = self._decrypt(token, record)
            except CryptoError:
                continue
        missing = len(wanted) - len(restored)
        await self._audit(
            "detokenize",
            "detokenize",
            reason=f"{missing} tokens not restored" if missing else None,
            count=len(restored),
        )
        return restored

    # --- housekeeping ---------------------------------------------------------------------

    async def purge(self, token: str) -> PurgeResult:
        """Delete one token (audited ``purge``); ``purged`` says whether it existed."""
        purged = is_token(token) and await self._store.delete(token)
        await self._audit(
            "purge",
            "purge",
            reason=None if purged else _UNKNOWN[1],
            token=audit_token_field(self._crypto, token),
            count=int(purged),
        )
        return {"token": token, "purged": purged, "purgedAt": format_timestamp(self._clock())}

    async def purge_expired(self) -> PurgeExpiredResult:
        """Delete every expired token (audited ``purge_expired`` with the count)."""
        now = self._clock()
        count = await self._store.delete_expired(now)
        await self._audit("purge-expired", "purge_expired", count=count)
        return {"purged": count, "purgedAt": format_timestamp(now)}

    async def export_metadata(
        self,
        type: str | None = None,
    ) -> list[ExportedToken]:
        """List tokens (optionally of one type) with their metadata, never their values.

        An entry that is not a record under a token id (a damaged vault file) is left out:
        it can never be restored, and its key need not be a token id at all.
        """
        exported: list[ExportedToken] = []
        async for token, record in self._store.items():
            if not _listable(token, record):
                continue
            if type is not None and record.get("type") != type:
                continue
            exported.append(
                {
                    "token": token,
                    "type": record["type"],
                    "createdAt": record["createdAt"],
                    "expiresAt": record["expiresAt"],
                    "metadata": record.get("metadata", {}),
                }
            )
        exported.sort(key=lambda item: (item["createdAt"], item["token"]))
        return exported
