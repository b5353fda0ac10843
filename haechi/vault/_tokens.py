# SPDX-License-Identifier: Apache-2.0
"""Token ids: their shape, how they are minted, and how arguments appear in the audit log.

A token id is ``tok_<type>_<hex>``: 16 random hex digits, or 32 hex digits of a keyed HMAC for
deterministic tokens (the same type and value always give the same id under one key, and a
key rotation changes every id). The type segment is the detection type folded to
``[a-z0-9_]`` (or a short hash of it when nothing is left), so every id matches
:data:`TOKEN_PATTERN`, which marker recognition and the audit rule rely on.
"""

from __future__ import annotations

import re
import secrets
from typing import Final

from haechi._canonical import sha256_hex
from haechi.providers import CryptoProvider

__all__ = [
    "AUDIT_ID_DOMAIN",
    "DETERMINISTIC_DOMAIN",
    "TOKEN_PATTERN",
    "audit_token_field",
    "deterministic_token",
    "is_token",
    "random_token",
]

#: The shape of a token id (unanchored, for searching inside markers and text).
TOKEN_PATTERN: Final = re.compile(r"tok_[a-z0-9_]+_[0-9a-f]{16,}")
#: HMAC domain of deterministic token ids.
DETERMINISTIC_DOMAIN: Final = "haechi:token-vault:deterministic:v1"
#: HMAC domain of the audit stand-in for an argument that is not a token id.
AUDIT_ID_DOMAIN: Final = "haechi:token-vault:audit-id:v1"

_NOT_SEGMENT = re.compile(r"[^a-z0-9_]+")


def is_token(text: str) -> bool:
    """Whether ``text`` is exactly a token id."""
    return TOKEN_PATTERN.fullmatch(text) is not None


def _segment(token_type: str) -> str:
    segment = _NOT_SEGMENT.sub("_", token_type.lower()).strip("_")
    # A type with no ASCII letter or digit (a custom rule named in another script) still
    # needs a token-shaped, stable segment: a short hash of the type name.
    return segment or f"t{sha256_hex(token_type)[:8]}"


def random_token(token_type: str) -> str:
    """A fresh random id for ``token_type`` (64 random bits, independent of the value)."""
    return f"tok_{_segment(token_type)}_{secrets.token_hex(8)}"


def deterministic_token(crypto: CryptoProvider, token_type: str, plaintext: str) -> str:
    """The stable id of (``token_type``, ``plaintext``) under the crypto provider's key."""
    digest = crypto.hmac(f"{token_type}:{plaintext}", DETERMINISTIC_DOMAIN)
    return f"tok_{_segment(token_type)}_{digest[:32]}"


def audit_token_field(crypto: CryptoProvider, argument: str) -> str:
    """What the audit log records for a token argument.

    A token id is recorded as is. Anything else may be a secret pasted by mistake, so it is
    recorded as ``nontoken_<32 hex>`` of a keyed HMAC (correlatable, not reversible), or as
    ``[REDACTED:non-token]`` when the provider cannot compute one.
    """
    if is_token(argument):
        return argument
    try:
        return f"nontoken_{crypto.hmac(argument, AUDIT_ID_DOMAIN)[:32]}"
    except Exception:
        return "[REDACTED:non-token]"
