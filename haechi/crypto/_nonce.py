# SPDX-License-Identifier: Apache-2.0
"""Per-key encryption counting (the nonce budget).

AES-GCM with random 96-bit IVs stays safe for at most 2^32 encryptions per key. The ledger
hands out encryption slots from a window of 2^20 that is first *persisted* as the key's
``usage`` in the key file (under the cross-process lock, after re-reading the file), so
several processes sharing one key file never count the same slot twice and a crash can only
over-count. At the limit it refuses: the caller must rotate.

A key file without write permission (no owner write bit, or the write fails) cannot persist
reservations; the ledger then counts in this process only, from the persisted usage up to the
limit, and says so once.
"""

from __future__ import annotations

import logging
import os
import stat
import warnings
from pathlib import Path
from typing import Any

from haechi._filelock import locked
from haechi.crypto._keyfile import (
    NONCE_LIMIT,
    NONCE_WARN_FRACTION,
    NONCE_WINDOW,
    key_file_target,
    load_key_file,
    write_key_document,
)
from haechi.errors import CryptoError

__all__ = ["NonceBudgetWarning", "NonceLedger"]

_log = logging.getLogger("haechi.crypto")
_WARN_AT = int(NONCE_LIMIT * NONCE_WARN_FRACTION)


class NonceBudgetWarning(RuntimeWarning):
    """The active key is past half its encryption budget, or its usage cannot be persisted."""


def _notify(code: str, text: str, depth: int) -> None:
    # Operators read the log; library users and tests see (and can filter) the warning,
    # attributed to whoever called encrypt (``depth`` frames above the caller of _notify).
    _log.warning("%s: %s", code, text)
    warnings.warn(f"{code}: {text}", NonceBudgetWarning, stacklevel=depth + 2)


def _exhausted(kid: str) -> CryptoError:
    return CryptoError(
        f"key {kid} reached its safe encryption limit (2^32); rotate with 'haechi init --force'"
    )


def _writable(path: Path) -> bool:
    # The owner write bit is checked as well as access(): root passes access() on a 0400
    # file, yet an operator who made the key file read-only did not ask for it to change.
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & stat.S_IWUSR) and os.access(path, os.W_OK)


class NonceLedger:
    """Counts encryptions of one key; not thread-safe (the provider holds its lock)."""

    def __init__(self, key_file: Path, kid: str) -> None:
        self._key_file = key_file
        self._kid = kid
        self._next = 0
        self._end = 0
        self._warned_half = False
        self._persist = True

    def take(self) -> None:
        """Claim one encryption slot or raise ``CryptoError`` when the budget is spent."""
        if self._next >= self._end:
            self._reserve()
        if self._next >= NONCE_LIMIT:
            raise _exhausted(self._kid)
        self._next += 1
        if self._next >= _WARN_AT and not self._warned_half:
            self._warned_half = True
            _notify(
                "HAECHI_NONCE_BUDGET",
                f"key {self._kid} used half of its 2^32 encryption budget; "
                "plan a rotation with 'haechi init --force'",
                depth=3,
            )

    def _reserve(self) -> None:
        if self._persist and _writable(self._key_file):
            try:
                self._reserve_persisted()
                return
            except OSError:
                pass
        self._reserve_in_process()

    def _reserve_persisted(self) -> None:
        with locked(key_file_target(self._key_file)):
            loaded = load_key_file(self._key_file)
            if self._kid not in loaded.keys:
                raise CryptoError(f"key {self._kid} is no longer in the key file")
            entries: list[dict[str, Any]] = loaded.document["keys"]
            entry = next(item for item in entries if item["kid"] == self._kid)
            # Never below what this ledger reserved already: a file put back from an older
            # copy (a restore, a redeploy of the key file) would hand out its slots again.
            used = max(loaded.keys[self._kid].usage, self._end)
            if used >= NONCE_LIMIT:
                raise _exhausted(self._kid)
            end = min(used + NONCE_WINDOW, NONCE_LIMIT)
            entry["usage"] = end
            write_key_document(self._key_file, loaded.document)
        self._next, self._end = used, end

    def _reserve_in_process(self) -> None:
        if self._persist:
            # The persisted usage is read before counting here is settled on: a file that
            # cannot be read now (missing for a moment) leaves the ledger as it was, to try
            # again, rather than counting from zero with the whole budget.
            loaded = load_key_file(self._key_file)
            if self._kid not in loaded.keys:
                raise CryptoError(f"key {self._kid} is no longer in the key file")
            self._persist = False
            self._next = max(self._next, loaded.keys[self._kid].usage)
            _notify(
                "HAECHI_NONCE_BUDGET_NOPERSIST",
                f"key file is not writable; the budget of key {self._kid} is counted "
                "in this process only",
                depth=5,
            )
        self._end = NONCE_LIMIT
