# SPDX-License-Identifier: Apache-2.0
"""Built-in bearer-token authentication for the gateway (``auth.provider: "bearer"``).

Tokens live in the ``auth.store`` file (default ``.haechi/auth.json``)::

    {"version": 1, "tokens": [{"id", "tokenHash", "type", "scopes", "labels",
                               "createdAt", "disabled"}]}

A request presents ``Authorization: Bearer <token>``: the scheme in any letter case, spaces
or tabs between it and the token and around them, nothing else (a Unicode space there is part
of another credential, not a separator).

Only a keyed hash of each token is stored (``crypto.hmac(token, "haechi:auth:token:v1")``);
the plaintext is shown once, when the token is created. Authenticating hashes the presented
token and compares it with *every* enabled record in constant time, without stopping at a
match, so timing says nothing about which record (if any) is close. A token issued before
the key was rotated (``haechi init --force``) is hashed under the key that was active then:
when the active key's hash matches nothing, the hashes under the retired keys are compared
too (``retired_hmacs`` of the local crypto provider), so rotating the key does not end the
tokens; ``token-revoke`` does.

Revocation is immediate: every call checks the store file and re-reads it whenever it was
replaced (writers replace it atomically, so a change always shows up as a new file). A
revoked token is refused whatever other record holds its hash, and two tokens given one id
(a merged store) are both refused: the id is the caller's identity.

Identities are PII-safe by construction: the record id, the type, keyed hashes of the
subject and issuer, and the scopes and labels that select a policy profile. A label is read
under the ``auth.allowedLabelKeys`` in force, not the one a token was issued under: a record
carrying a label key the configuration does not allow (any more) authenticates nothing, as a
plugin's claims with such a key do.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import os
import re
import secrets
import stat
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Self

from haechi._filelock import atomic_write, locked
from haechi._json_once import RepeatedKey, members_once
from haechi.errors import ConfigError, ProviderError
from haechi.models import Identity
from haechi.providers import CryptoProvider, ProviderContext

__all__ = [
    "IDENTITY_HASH_DOMAIN",
    "TOKEN_HASH_DOMAIN",
    "TOKEN_TYPES",
    "BearerAuthProvider",
    "ChangeRecorder",
    "add_token",
    "build_identity",
    "is_label_value",
    "is_token_id",
    "list_tokens",
    "read_auth_store",
    "revoke_token",
]

TOKEN_HASH_DOMAIN: Final = "haechi:auth:token:v1"  # noqa: S105 - an HMAC domain label
IDENTITY_HASH_DOMAIN: Final = "haechi:identity:hash:v1"
TOKEN_TYPES: Final = ("user", "service", "agent")
_ISSUER: Final = "bearer-local"
#: ``Bearer``, spaces or tabs, the token (RFC 6750 ``b64token``), with spaces or tabs around.
#: ASCII only: a no-break space, a next-line byte or any other Unicode space is part of a
#: credential that is not the token, never a separator to skip.
_BEARER = re.compile(r"[ \t]*Bearer[ \t]+([A-Za-z0-9\-._~+/]+=*)[ \t]*", re.IGNORECASE | re.ASCII)
_MAX_LABEL_VALUE = 64
#: ``auth.allowedLabelKeys`` when none is given (the configuration's default).
_DEFAULT_LABEL_KEYS: Final = ("team", "env", "tier", "role")
#: What a token id looks like; only such an argument is named back in an error (anything
#: else may be a token or another secret pasted where its id belongs).
_TOKEN_ID = re.compile(r"tok_auth_[0-9a-f]{1,32}")

#: Records one change to the store, given the public record of the token changed (the
#: first one, when a revoked id names several). It is called with the store written and its
#: lock held, so that no other writer's change is undone with an addition it fails. Writing
#: the record first instead would leave, should the store write fail or the process die
#: after it, a log saying a token was revoked while it still works; this order leaves at
#: worst a token that is disabled, or added but never shown to anyone, without its record.
#: Raising undoes an addition (nobody holds that token) but never a revocation: a recorder
#: can fail after its record is written (the record is in the log, its anchor could not be
#: appended), and a revocation undone then would be that log of a token revoked while it
#: works; a token asked to be revoked must not work again for want of a record anyway.
ChangeRecorder = Callable[[Mapping[str, Any]], object]


def is_token_id(value: object) -> bool:
    """Whether ``value`` has the form of the ids ``token-add`` gives: ``tok_auth_`` and 1 to
    32 hex digits. Only such an id is written out as it is (in an error, in the audit log):
    anything else may be a token, a name or another secret put where an id belongs."""
    return isinstance(value, str) and _TOKEN_ID.fullmatch(value) is not None


def read_auth_store(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Return the token records of the store (an absent file is an empty store)."""
    try:
        text = _read_store_text(Path(path))
    except FileNotFoundError:
        return []
    return _parse_store(text)


def _read_store_text(path: Path) -> str:
    """The store's text. It is opened without waiting and must be a regular file: a named
    pipe in its place would block the read until something wrote to it, and with it the
    gateway's event loop (every request, health checks included) or a command holding the
    store lock."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ProviderError("auth store is not a regular file")
        data = handle.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProviderError("auth store is not UTF-8 text") from None


def _parse_store(text: str) -> list[dict[str, Any]]:
    """The token records of the store's ``text``. A store giving a key twice in one object
    is refused as a whole: the last value would count, so a ``"disabled": true`` written
    above a record's ``"disabled": false`` (a revocation by hand) would leave the token
    working, and another reader of the file could take the other value. The key is not
    named: in a record edited by hand it may be a label value or a token."""
    try:
        document = json.loads(text, object_pairs_hook=members_once)
    except RepeatedKey:
        raise ProviderError("auth store gives a key twice in one object") from None
    except (ValueError, RecursionError):  # RecursionError: nested past the interpreter's limit
        raise ProviderError("auth store is not valid JSON") from None
    tokens = document.get("tokens") if isinstance(document, dict) else None
    if not isinstance(tokens, list) or not all(isinstance(t, dict) for t in tokens):
        raise ProviderError("auth store has no valid tokens list")
    return tokens


def _write_store(path: Path, tokens: list[dict[str, Any]]) -> None:
    document = {"version": 1, "tokens": tokens}
    atomic_write(path, (json.dumps(document, indent=2) + "\n").encode(), mode=0o600)


def _public(record: Mapping[str, Any]) -> dict[str, Any]:
    """What ``token-list`` shows of a record. Scopes and labels are shown as stored: one
    edited by hand into another shape (which authenticates nothing) is shown as it is, not
    split into characters or refused along with the whole listing."""
    return {
        "id": record.get("id"),
        "type": record.get("type"),
        "scopes": record.get("scopes") or [],
        "labels": record.get("labels") or {},
        "createdAt": record.get("createdAt"),
        "disabled": bool(record.get("disabled")),
    }


def _validate(
    token_type: str, scopes: Sequence[str], labels: Mapping[str, str], allowed: Sequence[str]
) -> None:
    if token_type not in TOKEN_TYPES:
        raise ConfigError(f"token type must be one of {', '.join(TOKEN_TYPES)}")
    for scope in scopes:
        if not isinstance(scope, str) or not scope.strip():
            raise ConfigError("scopes must be non-blank strings")
    for key, value in labels.items():
        if key not in allowed:
            # The key is not named: it may be a value typed where a key belongs.
            raise ConfigError(f"a label key is not in auth.allowedLabelKeys ({', '.join(allowed)})")
        if not is_label_value(value):
            raise ConfigError(f"label {key!r} needs a value of 1 to 64 characters")


def is_label_value(value: object) -> bool:
    """Whether ``value`` is a label value ``token-add`` writes: 1 to 64 characters (what an
    external provider's labels are held to as well)."""
    return isinstance(value, str) and 0 < len(value) <= _MAX_LABEL_VALUE


def add_token(
    path: str | os.PathLike[str],
    crypto: CryptoProvider,
    *,
    token_type: str,
    scopes: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    allowed_label_keys: Sequence[str] = _DEFAULT_LABEL_KEYS,
    audit: ChangeRecorder | None = None,
) -> tuple[dict[str, Any], str]:
    """Create a token; return its public record and the plaintext (shown once, never stored).

    ``audit`` records the change (see :data:`ChangeRecorder`): when it raises, the token is
    taken out of the store again and the error propagates.
    """
    labels = dict(labels or {})
    _validate(token_type, scopes, labels, allowed_label_keys)
    token = "hae_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    record = {
        "id": "",
        "tokenHash": crypto.hmac(token, TOKEN_HASH_DOMAIN),
        "type": token_type,
        "scopes": list(scopes),
        "labels": labels,
        "createdAt": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "disabled": False,
    }
    store = Path(path)
    with locked(store):
        tokens = read_auth_store(store)
        taken = {existing.get("id") for existing in tokens}
        # Ids are short: one already in the store is drawn again, so that an id always
        # names one token (to revoke, and to count against the rate limit).
        while not record["id"] or record["id"] in taken:
            record["id"] = f"tok_auth_{uuid.uuid4().hex[:8]}"
        _change(store, [*tokens, record], _public(record), audit, undo=tokens)
    return _public(record), token


def list_tokens(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Public projections of every record: never the token or its hash."""
    return [_public(record) for record in read_auth_store(path)]


def revoke_token(
    path: str | os.PathLike[str], token_id: str, *, audit: ChangeRecorder | None = None
) -> dict[str, Any]:
    """Disable a token; ``revoked`` is False when it already was. Unknown ids are errors.

    Every record with that id is disabled: a store merged or edited by hand may hold one id
    twice, and revoking it must not leave one of its tokens working. ``audit`` records the
    change, if there is one (see :data:`ChangeRecorder`): when it raises, the token stays
    revoked and the error propagates.
    """
    store = Path(path)
    with locked(store):
        tokens = read_auth_store(store)
        matching = [record for record in tokens if record.get("id") == token_id]
        if matching:
            changed = any(not record.get("disabled") for record in matching)
            if changed:
                for record in matching:
                    record["disabled"] = True
                _change(store, tokens, _public(matching[0]), audit, undo=None)
            return {"id": token_id, "revoked": changed}
    if is_token_id(token_id):
        raise ConfigError(f"unknown token id: {token_id}")
    raise ConfigError("unknown token id (the argument is not shown: ids look like tok_auth_<hex>)")


def _change(
    store: Path,
    tokens: list[dict[str, Any]],
    public: dict[str, Any],
    audit: ChangeRecorder | None,
    *,
    undo: list[dict[str, Any]] | None,
) -> None:
    """Write ``tokens`` to ``store``, then have ``audit`` record the change; when it cannot,
    write ``undo`` back, if given (see :data:`ChangeRecorder`). The caller holds the store
    lock throughout, so nothing written in between is undone."""
    _write_store(store, tokens)
    if audit is None:
        return
    try:
        audit(public)
    except Exception:
        if undo is not None:
            _write_store(store, undo)
        raise


def build_identity(record: Mapping[str, Any], crypto: CryptoProvider) -> Identity:
    """The PII-safe identity of a bearer token record."""
    return Identity(
        id=str(record["id"]),
        type=str(record.get("type", "user")),
        subject_hash=crypto.hmac(str(record["id"]), IDENTITY_HASH_DOMAIN),
        issuer_hash=crypto.hmac(_ISSUER, IDENTITY_HASH_DOMAIN),
        provider="bearer",
        scopes=tuple(str(s) for s in record.get("scopes") or ()),
        labels={str(k): str(v) for k, v in (record.get("labels") or {}).items()},
    )


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One parsed version of the store file: enabled token hashes (as the bytes compared on
    every request) and their identities."""

    stamp: tuple[int, int, int]
    hashes: tuple[bytes, ...]
    identities: tuple[Identity, ...]


class BearerAuthProvider:
    """Authenticates ``Authorization: Bearer <token>`` against the token store."""

    name: ClassVar[str] = "bearer"

    def __init__(
        self,
        store: str | os.PathLike[str],
        crypto: CryptoProvider,
        *,
        allowed_label_keys: Sequence[str] = _DEFAULT_LABEL_KEYS,
    ) -> None:
        self._store = Path(store)
        self._crypto = crypto
        self._allowed_label_keys = frozenset(allowed_label_keys)
        self._snapshot: _Snapshot | None = None

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        """Build over ``auth.store`` and ``auth.allowedLabelKeys``; needs the crypto
        provider's HMAC."""
        if context.crypto is None:
            raise ConfigError("auth.provider bearer needs a crypto provider with hmac")
        auth = context.config.auth
        return cls(auth.store, context.crypto, allowed_label_keys=auth.allowed_label_keys)

    def _current(self) -> _Snapshot:
        try:
            status = self._store.stat()
        except FileNotFoundError:
            return _Snapshot((0, 0, 0), (), ())
        stamp = (status.st_ino, status.st_mtime_ns, status.st_size)
        snapshot = self._snapshot
        if snapshot is not None and snapshot.stamp == stamp:
            return snapshot
        records = _parse_store(_read_store_text(self._store))
        allowed = self._allowed_label_keys
        # A token revoked under one id stays revoked under every other: a record copied by
        # hand (to give the token other labels) or a merged store can hold its hash twice.
        revoked = {
            r["tokenHash"]
            for r in records
            if r.get("disabled") and isinstance(r.get("tokenHash"), str)
        }
        enabled = [
            r
            for r in records
            if not r.get("disabled") and _usable(r, allowed) and r["tokenHash"] not in revoked
        ]
        # One id naming two tokens (a merged store) would make two callers one identity:
        # one line of audit, one rate budget, each other's MCP sessions. Neither is used.
        hashes: dict[str, set[str]] = {}
        for record in enabled:
            hashes.setdefault(record["id"], set()).add(record["tokenHash"])
        enabled = [r for r in enabled if len(hashes[r["id"]]) == 1]
        snapshot = _Snapshot(
            stamp,
            tuple(str(r.get("tokenHash", "")).encode() for r in enabled),
            tuple(build_identity(r, self._crypto) for r in enabled),
        )
        self._snapshot = snapshot
        return snapshot

    async def authenticate(self, headers: Mapping[str, str]) -> Identity | None:
        """The identity of the presented bearer token, or ``None``."""
        header = headers.get("authorization")
        if not header:
            return None
        match = _BEARER.fullmatch(header)
        if match is None:
            return None
        token = match.group(1)
        snapshot = self._current()
        found = _match(snapshot, self._crypto.hmac(token, TOKEN_HASH_DOMAIN))
        retired = getattr(self._crypto, "retired_hmacs", None)
        if found is None and retired is not None:
            # A token issued before the key was rotated (its hash is under a retired key).
            for hashed in retired(token, TOKEN_HASH_DOMAIN):
                found = found or _match(snapshot, hashed)
        return found


def _usable(record: Mapping[str, Any], allowed_label_keys: frozenset[str]) -> bool:
    """Whether a record has the shape ``token-add`` writes under the configuration in force,
    so that its identity is the one written. A record edited by hand into another shape
    authenticates nothing rather than being read loosely: scopes written as one string were
    one scope per character (another profile than the one meant), labels written as a list
    failed every token of the store, and an id other than ``tok_auth_<hex>`` (a name, an
    address) went into every audit record of the caller. A label whose key
    ``auth.allowedLabelKeys`` does not hold (written by hand, or allowed when the token was
    issued and taken out since) kept selecting the profile ``byLabel`` maps it to, which the
    operator had taken away from it."""
    scopes = record.get("scopes")
    labels = record.get("labels")
    return (
        is_token_id(record.get("id"))
        and isinstance(record.get("tokenHash"), str)
        and record.get("type", "user") in TOKEN_TYPES
        and (scopes is None or isinstance(scopes, list))
        and all(isinstance(scope, str) for scope in scopes or ())
        and (labels is None or isinstance(labels, dict))
        and all(k in allowed_label_keys and is_label_value(v) for k, v in (labels or {}).items())
    )


def _match(snapshot: _Snapshot, hashed: str) -> Identity | None:
    """The identity whose stored hash is ``hashed``. No early exit: every record costs the
    same, match or not."""
    presented = hashed.encode()
    found: Identity | None = None
    for stored, identity in zip(snapshot.hashes, snapshot.identities, strict=True):
        if hmac.compare_digest(presented, stored) and found is None:
            found = identity
    return found
