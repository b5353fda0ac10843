# SPDX-License-Identifier: Apache-2.0
"""Canonical bytes of an AAD (additional authenticated data).

The AAD is a JSON object describing where a ciphertext belongs (purpose, token, type,
request context). GCM authenticates it byte for byte, so it must serialise identically
everywhere. Two encodings exist:

``nfkc-json-v2`` (written today)
    Object keys and string values are NFKC-normalised, so a full-width or compatibility form of
    a context value authenticates the same as its ASCII spelling. Each object member is
    rendered as the text ``"key":value`` and the member texts are sorted by UTF-16 code units
    (the sort JavaScript applies to strings), which is *not* always the order of a plain key
    sort: ``"a!":1`` sorts before ``"a":1``. Two keys of one object that become equal under
    NFKC are refused, because one would silently overwrite the other.

legacy v1 (read only)
    json-stable-v1 over the raw AAD (:func:`haechi._canonical.canonical_json`), no NFKC.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping
from typing import Any

from haechi._canonical import canonical_json
from haechi.crypto._codec import b64url_encode
from haechi.errors import CryptoError

__all__ = ["AAD_ENCODING", "aad_hash", "canonical_aad", "legacy_aad"]

#: The ``aadEncoding`` value of every envelope written today.
AAD_ENCODING = "nfkc-json-v2"


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _sort_key(member: str) -> bytes:
    return member.encode("utf-16-be", "surrogatepass")


def _render(value: Any) -> str:
    if isinstance(value, str):
        return canonical_json(_nfkc(value))
    if isinstance(value, Mapping):
        members: list[str] = []
        seen: set[str] = set()
        for key, item in value.items():
            if not isinstance(key, str):
                raise CryptoError("crypto AAD keys must be strings")
            folded = _nfkc(key)
            if folded in seen:
                raise CryptoError("crypto AAD NFKC key collision")
            seen.add(folded)
            members.append(canonical_json(folded) + ":" + _render(item))
        members.sort(key=_sort_key)
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_render(item) for item in value) + "]"
    try:
        return canonical_json(value)
    except TypeError:
        raise CryptoError("crypto AAD must contain only JSON values") from None


def _utf8(text: str) -> bytes:
    # A lone surrogate can only sit inside a JSON string; JSON.stringify escapes it as
    # \udxxx, and backslashreplace writes exactly that escape.
    return text.encode("utf-8", "backslashreplace")


def canonical_aad(aad: Mapping[str, Any]) -> bytes:
    """Return the ``nfkc-json-v2`` bytes GCM authenticates for ``aad``.

    Raises:
        CryptoError: ``aad`` is not a JSON object of JSON values, or two of its keys
            collide after NFKC normalisation.
    """
    if not isinstance(aad, Mapping):
        raise CryptoError("crypto AAD must be a JSON object")
    return _utf8(_render(aad))


def legacy_aad(aad: Mapping[str, Any]) -> bytes:
    """Return the legacy v1 AAD bytes (json-stable-v1, no normalisation), for old envelopes."""
    if not isinstance(aad, Mapping):
        raise CryptoError("crypto AAD must be a JSON object")
    try:
        return _utf8(canonical_json(_plain(aad)))
    except TypeError:
        raise CryptoError("crypto AAD must contain only JSON values") from None


def _plain(value: Any) -> Any:
    # canonical_json accepts dict/list only; AADs may arrive as other mappings/sequences.
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def aad_hash(aad_bytes: bytes) -> str:
    """The envelope's ``aadHash``: unpadded base64url SHA-256 of the canonical AAD bytes."""
    return b64url_encode(hashlib.sha256(aad_bytes).digest())
