# SPDX-License-Identifier: Apache-2.0
"""Encryption for haechi: the built-in ``local`` AES-256-GCM provider and its key file.

* :class:`LocalCryptoProvider` encrypts to JSON envelopes bound to a canonical AAD and
  computes domain-separated HMACs (token ids, audit ids, identity hashes).
* :func:`init_key_file` creates or rotates the key file; :func:`read_nonce_budget` reports
  how much of the active key's 2^32 encryption budget is used.
* :func:`canonical_aad` is the AAD byte form every provider should authenticate, so that
  AADs compare the same across providers.
* :func:`assert_crypto_conformance` checks any provider before it is trusted (the runtime
  runs it on every provider but the local one when it is composed).

Every refusal is a :class:`haechi.errors.CryptoError` whose message never carries key
material, plaintext or AAD values.
"""

from __future__ import annotations

from haechi.crypto._aad import AAD_ENCODING, canonical_aad
from haechi.crypto._conformance import assert_crypto_conformance
from haechi.crypto._keyfile import (
    NONCE_LIMIT,
    NONCE_WINDOW,
    KeyFileStatus,
    NonceBudget,
    init_key_file,
    read_nonce_budget,
)
from haechi.crypto._local import LocalCryptoProvider
from haechi.crypto._nonce import NonceBudgetWarning

__all__ = [
    "AAD_ENCODING",
    "NONCE_LIMIT",
    "NONCE_WINDOW",
    "KeyFileStatus",
    "LocalCryptoProvider",
    "NonceBudget",
    "NonceBudgetWarning",
    "assert_crypto_conformance",
    "canonical_aad",
    "init_key_file",
    "read_nonce_budget",
]
