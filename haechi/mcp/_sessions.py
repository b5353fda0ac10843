# SPDX-License-Identifier: Apache-2.0
"""MCP sessions bound to the caller that opened them (``target.type: "mcp-http"``).

The gateway does not forward the caller's ``Authorization`` to the MCP server, so the server
cannot tell the gateway's callers apart: whoever presents a session id gets that session's
event stream and may post into it. The gateway knows who each caller is, so it never hands
out the server's session id as it is. It hands out a *bound* id::

    hmcp1.<base64url of the server's id>.<hex HMAC over the caller and the server's id>

under the runtime's crypto provider (domain :data:`SESSION_DOMAIN`). The server's id is in
it in the clear (it is no secret from the caller it was issued to), so the gateway keeps no
table: any process sharing the key file recognises the id, across ``proxy.workers`` and
restarts. Only the characters the transport allows in a session id (visible ASCII) occur.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from typing import Final

from haechi.models import Identity
from haechi.providers import CryptoProvider

__all__ = ["BOUND_PREFIX", "SESSION_DOMAIN", "bind_session", "unbind_session"]

#: The start of every session id the gateway hands out.
BOUND_PREFIX: Final = b"hmcp1."
#: The HMAC domain of session bindings (unlinkable to every other use of the key).
SESSION_DOMAIN: Final = "haechi:mcp-session:v1"
_BOUND: Final = re.compile(rb"hmcp1\.([A-Za-z0-9_-]*)\.([0-9a-f]{64})")


def _mac(crypto: CryptoProvider, identity: Identity | None, session: bytes) -> str:
    """The MAC binding ``session`` to ``identity`` (``None``: the anonymous caller of a
    gateway without authentication). The fields are JSON-encoded, so that no pair of an
    owner and an id spells the same input as another."""
    owner = ["anonymous"] if identity is None else ["identity", identity.provider, identity.id]
    return crypto.hmac(json.dumps([*owner, session.decode("latin-1")]), SESSION_DOMAIN)


def bind_session(crypto: CryptoProvider, identity: Identity | None, session: bytes) -> bytes:
    """The id to hand ``identity`` for the server's session id ``session``.

    Raises:
        CryptoError: the key cannot be used; the server's id must then not go out either.
    """
    encoded = base64.urlsafe_b64encode(session).rstrip(b"=")
    return BOUND_PREFIX + encoded + b"." + _mac(crypto, identity, session).encode("ascii")


def unbind_session(crypto: CryptoProvider, identity: Identity | None, bound: bytes) -> bytes | None:
    """The server's session id in ``bound``, or ``None`` when ``bound`` is not an id this
    gateway handed ``identity`` (not a bound id at all, another caller's, forged, or made
    under a key no longer active). The MACs are compared in constant time.

    Raises:
        CryptoError: the key cannot be used.
    """
    match = _BOUND.fullmatch(bound)
    if match is None:
        return None
    encoded, given = match.groups()
    try:
        session = base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None
    expected = _mac(crypto, identity, session).encode("ascii")
    return session if hmac.compare_digest(expected, given) else None
