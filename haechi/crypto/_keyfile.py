# SPDX-License-Identifier: Apache-2.0
"""The local key file: parsing, validation, creation, rotation and the nonce budget view.

Format (shared with the reference system)::

    {"version": 1, "createdAt": "...",
     "keys": [{"kid": "local-<epoch ms>-<6 hex>", "kty": "oct", "alg": "AES-256-GCM",
               "status": "active" | "retired", "k": "<base64url of 32 bytes>",
               "usage": <encryptions reserved so far>}]}

Exactly the first ``active`` key encrypts; every listed key decrypts, so rotation keeps old
envelopes and tokens readable. A file giving a key twice in one object is refused: a
``"status": "retired"`` written by hand above a key's ``"status": "active"`` would be read
as ``active``, the key the operator meant to retire still encrypting. The file is written
with mode 0600, atomically, under the cross-process lock of :mod:`haechi._filelock`, both
taken where a link at the path points. Validation errors name the problem, never key
material.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from haechi._filelock import atomic_write, locked, make_directories
from haechi._json_once import RepeatedKey, members_once
from haechi.crypto._codec import b64url_decode, b64url_encode, format_timestamp, utc_now
from haechi.errors import CryptoError

__all__ = [
    "ALG",
    "NONCE_LIMIT",
    "NONCE_WARN_FRACTION",
    "NONCE_WINDOW",
    "KeyFileStatus",
    "LoadedKeys",
    "LocalKey",
    "NonceBudget",
    "init_key_file",
    "key_file_target",
    "load_key_file",
    "read_nonce_budget",
    "write_key_document",
]

ALG: Final = "AES-256-GCM"
#: Encryptions per key with random 96-bit IVs before the collision risk passes 2^-32
#: (NIST SP 800-38D, section 8.3).
NONCE_LIMIT: Final = 2**32
#: Encryptions reserved (and persisted) at a time, so a crash can only over-count.
NONCE_WINDOW: Final = 2**20
#: Fraction of the limit after which a rotation warning is issued.
NONCE_WARN_FRACTION: Final = 0.5

_KEY_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class LocalKey:
    """One key of the file; the secret stays out of ``repr``."""

    kid: str
    status: Literal["active", "retired"]
    usage: int
    secret: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class LoadedKeys:
    """A validated key file: its document (for rewriting), its keys and the active one."""

    document: dict[str, Any] = field(repr=False)
    keys: dict[str, LocalKey]
    active: LocalKey


@dataclass(frozen=True, slots=True)
class KeyFileStatus:
    """What :func:`init_key_file` did."""

    created: bool
    rotated: bool
    kid: str


@dataclass(frozen=True, slots=True)
class NonceBudget:
    """How much of the active key's encryption budget is used.

    ``used`` counts reserved encryptions (a crash between reservation and use over-counts, never
    under-counts). ``warn_threshold`` is the fraction of ``limit`` at which haechi warns.
    """

    kid: str
    used: int
    limit: int
    remaining: int
    used_fraction: float
    warn_threshold: float
    exhausted: bool


def _parse_key(entry: Any, where: str) -> LocalKey:
    if not isinstance(entry, dict):
        raise CryptoError(f"{where} must be an object")
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid:
        raise CryptoError(f"{where}.kid must be a non-empty string")
    if entry.get("kty", "oct") != "oct" or entry.get("alg", ALG) != ALG:
        raise CryptoError(f"{where} must be an oct {ALG} key")
    status = entry.get("status")
    if status not in ("active", "retired"):
        raise CryptoError(f"{where}.status must be active or retired")
    raw_k = entry.get("k")
    try:
        secret = b64url_decode(raw_k) if isinstance(raw_k, str) else b""
    except ValueError:
        secret = b""
    if len(secret) != _KEY_BYTES:
        raise CryptoError(f"{where}: AES-256-GCM local key must be 32 bytes")
    usage = entry.get("usage", 0)
    if isinstance(usage, bool) or not isinstance(usage, int) or not 0 <= usage <= NONCE_LIMIT:
        raise CryptoError(f"{where}.usage must be an integer from 0 to 2^32")
    return LocalKey(kid=kid, status=status, usage=usage, secret=secret)


def _parse_document(document: Any, path: Path) -> LoadedKeys:
    """The keys of a key file's JSON ``document``; errors name the file at ``path`` (the
    message of a gateway or command that cannot start must say which file to fix)."""
    if not isinstance(document, dict):
        raise CryptoError(f"key file {path} must be a JSON object")
    entries = document.get("keys")
    if not isinstance(entries, list) or not entries:
        raise CryptoError(f"key file {path} has no keys")
    keys: dict[str, LocalKey] = {}
    for index, entry in enumerate(entries):
        key = _parse_key(entry, f"key file {path} keys[{index}]")
        if key.kid in keys:
            raise CryptoError(f"key file {path} lists kid {key.kid} twice")
        keys[key.kid] = key
    active = next((key for key in keys.values() if key.status == "active"), None)
    if active is None:
        raise CryptoError(f"key file {path} has no active key; rotate with 'haechi init --force'")
    return LoadedKeys(document=document, keys=keys, active=active)


def load_key_file(path: str | os.PathLike[str]) -> LoadedKeys:
    """Read and validate a key file.

    Raises:
        CryptoError: the file is missing, unreadable, not JSON, or fails validation.
    """
    key_path = Path(path)
    try:
        data = _read_regular(key_path)
    except FileNotFoundError:
        raise CryptoError(f"key file {key_path} not found; run 'haechi init'") from None
    except OSError as exc:
        raise CryptoError(f"key file {key_path} cannot be read ({exc.strerror})") from None
    try:
        document = json.loads(data, object_pairs_hook=members_once)
    except RepeatedKey:
        # The key is not named: a line pasted in may be anything, a secret included.
        raise CryptoError(
            f"key file {key_path} gives a key twice in one object (only the last would count)"
        ) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CryptoError(f"key file {key_path} is not valid JSON") from None
    return _parse_document(document, key_path)


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path``, opened without waiting, if it is a regular file.

    A named pipe in its place would block the read until something wrote to it, holding the
    provider's lock, so every encryption (on the gateway's event loop) would wait with it;
    a device (a link to ``/dev/zero``) would be read without end.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CryptoError(f"key file {path} is not a regular file")
        return handle.read()


def key_file_target(path: str | os.PathLike[str]) -> Path:
    """The file that rewrites of the key file at ``path`` replace, and whose lock they take.

    A key file kept elsewhere (a secrets volume) and linked to: replacing the link itself
    would leave a copy of the keys beside it, no longer the file other processes share, and
    cut the process off from rotations made there. So a link to an existing file is
    followed; a dangling one is not (a file is never created where a link points, as the
    audit log never is).
    """
    target = Path(os.path.realpath(path))
    return target if target.is_file() else Path(path)


def write_key_document(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    """Atomically replace the key file with ``document`` (mode 0600); caller holds the lock
    of :func:`key_file_target`, which is the file replaced."""
    data = (json.dumps(document, indent=2) + "\n").encode("utf-8")
    atomic_write(key_file_target(path), data, mode=0o600)


def _new_key_entry() -> dict[str, Any]:
    kid = f"local-{int(time.time() * 1000)}-{secrets.token_hex(3)}"
    return {
        "kid": kid,
        "kty": "oct",
        "alg": ALG,
        "status": "active",
        "k": b64url_encode(secrets.token_bytes(_KEY_BYTES)),
    }


def init_key_file(path: str | os.PathLike[str], *, force: bool = False) -> KeyFileStatus:
    """Create the key file, or validate an existing one; with ``force`` rotate it.

    Without ``force`` an existing valid file is left byte-for-byte untouched. With ``force`` a
    new active key is added and every older key is kept as ``retired``, so envelopes and tokens
    written under them still decrypt. An existing file that does not validate is refused in
    both cases rather than replaced: replacing it would destroy keys that data depends on.

    Raises:
        CryptoError: the existing file is corrupted, has no active key or holds a key that is
            not 32 bytes.
    """
    key_path = Path(path)
    make_directories(key_path.parent, 0o700)
    with locked(key_file_target(key_path)):
        if not key_path.exists():
            entry = _new_key_entry()
            document: dict[str, Any] = {
                "version": 1,
                "createdAt": format_timestamp(utc_now()),
                "keys": [entry],
            }
            write_key_document(key_path, document)
            return KeyFileStatus(created=True, rotated=False, kid=entry["kid"])
        loaded = load_key_file(key_path)
        if not force:
            return KeyFileStatus(created=False, rotated=False, kid=loaded.active.kid)
        document = loaded.document
        for old in document["keys"]:
            old["status"] = "retired"
        entry = _new_key_entry()
        document["keys"].append(entry)
        write_key_document(key_path, document)
        return KeyFileStatus(created=True, rotated=True, kid=entry["kid"])


def read_nonce_budget(path: str | os.PathLike[str]) -> NonceBudget:
    """Report the active key's encryption budget without changing anything.

    Raises:
        CryptoError: the key file is missing or invalid.
    """
    active = load_key_file(path).active
    used = min(active.usage, NONCE_LIMIT)
    return NonceBudget(
        kid=active.kid,
        used=used,
        limit=NONCE_LIMIT,
        remaining=NONCE_LIMIT - used,
        used_fraction=used / NONCE_LIMIT,
        warn_threshold=NONCE_WARN_FRACTION,
        exhausted=used >= NONCE_LIMIT,
    )
