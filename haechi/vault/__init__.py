# SPDX-License-Identifier: Apache-2.0
"""The token vault and the built-in token stores.

* :class:`TokenVault` issues ``tok_<type>_<hex>`` tokens for values it keeps encrypted,
  restores them (``detokenize``), reveals them under a policy, purges and exports metadata,
  auditing every reveal, restore and purge.
* :class:`FileTokenStore` (``local``) keeps records in one JSON file shared safely between
  processes; :class:`MemoryTokenStore` (``memory``) keeps them in the process.
* :data:`TOKEN_PATTERN` is the token-id shape that marker recognition and audit rely on.
"""

from __future__ import annotations

from haechi.vault._file_store import FileTokenStore
from haechi.vault._memory_store import MemoryTokenStore
from haechi.vault._results import (
    AuditRecorder,
    ExportedToken,
    IssuedToken,
    PurgeExpiredResult,
    PurgeResult,
    RevealedToken,
)
from haechi.vault._tokens import TOKEN_PATTERN
from haechi.vault._vault import REVEAL_POLICIES, RevealPolicy, TokenVault

__all__ = [
    "REVEAL_POLICIES",
    "TOKEN_PATTERN",
    "AuditRecorder",
    "ExportedToken",
    "FileTokenStore",
    "IssuedToken",
    "MemoryTokenStore",
    "PurgeExpiredResult",
    "PurgeResult",
    "RevealPolicy",
    "RevealedToken",
    "TokenVault",
]
