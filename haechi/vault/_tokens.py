# SPDX-License-Identifier: Apache-2.0
"""Token ids: their shape, how they are minted, and how arguments appear in the audit log.

A token id is ``tok_<type>_<hex>``: 16 random hex digits, or 32 hex digits of a keyed HMAC for
deterministic tokens (the same type and value always give the same id under one key, and a
key rotation changes every id). The type segment is the detection type folded to
``[a-z0-9_]`` (or a short hash of it when nothing is left), so every id matches
:data:`TOKEN_PATTERN`, which marker recognition and the audit rule rely on.

No id minted here holds more than :data:`MAX_DIGIT_RUN` decimal digits in a row. Detection
scans the inside of every token-shaped marker, so that a value glued into a fake marker is
caught; random hex holds, now and then, a run of nine or more digits that a national-id
checksum accepts (one random id in about 360 and one deterministic id in about 140 did, in
20,000 and 10,000 tries), and a genuine marker would then be mangled in
answers and follow-up requests. Ids with a longer run are drawn again (random ids) or derived
again under the next domain (deterministic ids), so a marker with one is never haechi's.
"""

from __future__ import annotations

import re
import secrets
from typing import Final

from haechi._canonical import sha256_hex
from haechi.errors import CryptoError
from haechi.providers import CryptoProvider

__all__ = [
    "AUDIT_ID_DOMAIN",
    "DETERMINISTIC_DOMAIN",
    "MAX_DIGIT_RUN",
    "TOKEN_PATTERN",
    "audit_token_field",
    "deterministic_token",
    "is_token",
    "random_token",
    "shown_as_is",
]

#: The shape of a token id (unanchored, for searching inside markers and text).
TOKEN_PATTERN: Final = re.compile(r"tok_[a-z0-9_]+_[0-9a-f]{16,}")
#: HMAC domain of deterministic token ids.
DETERMINISTIC_DOMAIN: Final = "haechi:token-vault:deterministic:v1"
#: HMAC domain of the audit stand-in for an argument that is not a token id.
AUDIT_ID_DOMAIN: Final = "haechi:token-vault:audit-id:v1"

_NOT_SEGMENT = re.compile(r"[^a-z0-9_]+")
#: The most decimal digits in a row a minted id holds (the catalogue's shortest number rule
#: that fires inside a token id needs nine).
MAX_DIGIT_RUN: Final = 5
_LONG_DIGIT_RUN: Final = re.compile(f"[0-9]{{{MAX_DIGIT_RUN + 1}}}")
#: Derivations tried for a deterministic id before giving up.
_DERIVATIONS: Final = 64


def is_token(text: str) -> bool:
    """Whether ``text`` is exactly a token id."""
    return TOKEN_PATTERN.fullmatch(text) is not None


def shown_as_is(argument: str) -> bool:
    """Whether a token argument may be audited and printed as it was given: a token id with
    no run of more than :data:`MAX_DIGIT_RUN` digits. No minted id has such a run, and
    ``tok_4111111111111111_0123456789abcdef`` carries a card number."""
    return is_token(argument) and _LONG_DIGIT_RUN.search(argument) is None


def _segment(token_type: str) -> str:
    segment = _NOT_SEGMENT.sub("_", token_type.lower()).strip("_")
    # A type with no ASCII letter or digit (a custom rule named in another script) still
    # needs a token-shaped, stable segment: a short hash of the type name.
    return segment or f"t{sha256_hex(token_type)[:8]}"


def random_token(token_type: str) -> str:
    """A fresh random id for ``token_type`` (16 random hex digits, without a long run of
    decimal digits; independent of the value)."""
    while True:
        digits = secrets.token_hex(8)
        if _LONG_DIGIT_RUN.search(digits) is None:
            return f"tok_{_segment(token_type)}_{digits}"


def deterministic_token(crypto: CryptoProvider, token_type: str, plaintext: str) -> str:
    """The stable id of (``token_type``, ``plaintext``) under the crypto provider's key: the
    first HMAC, under :data:`DETERMINISTIC_DOMAIN` and then numbered domains after it, whose
    first 32 hex digits have no long run of decimal digits."""
    data = f"{token_type}:{plaintext}"
    for attempt in range(_DERIVATIONS):
        domain = DETERMINISTIC_DOMAIN if attempt == 0 else f"{DETERMINISTIC_DOMAIN}#{attempt}"
        digits = crypto.hmac(data, domain)[:32]
        if _LONG_DIGIT_RUN.search(digits) is None:
            return f"tok_{_segment(token_type)}_{digits}"
    # About one derivation in two qualifies (0.47): never reached with a working HMAC.
    raise CryptoError("could not derive a token id without a long run of digits")


def audit_token_field(crypto: CryptoProvider, argument: str) -> str:
    """What the audit log records for a token argument.

    A token id is recorded as is. Anything else may be a secret pasted by mistake, so it is
    recorded as ``nontoken_<32 hex>`` of a keyed HMAC (correlatable, not reversible), or as
    ``[REDACTED:non-token]`` when the provider cannot compute one. So is a token-shaped
    argument that is not :func:`shown_as_is`.
    """
    if shown_as_is(argument):
        return argument
    try:
        return f"nontoken_{crypto.hmac(argument, AUDIT_ID_DOMAIN)[:32]}"
    except Exception:
        return "[REDACTED:non-token]"
