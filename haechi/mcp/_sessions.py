# SPDX-License-Identifier: Apache-2.0
"""MCP sessions and event ids bound to the caller (``target.type: "mcp-http"``).

The gateway does not forward the caller's ``Authorization`` to the MCP server, so the server
cannot tell the gateway's callers apart: whoever presents a session id gets that session's
event stream and may post into it, and whoever presents an event id in ``Last-Event-ID`` may
get the events after it replayed (a server keeps one event store for all its sessions, and
replays from the stream the id belongs to, whoever asks). The gateway knows who each caller
is, so it never hands out the server's ids as they are. It hands out *bound* ids::

    hmcp1.<base64url of the server's session id>.<hex HMAC over the caller and that id>
    hevt1.<base64url of the server's event id>.<hex HMAC over the caller, session and id>

under the runtime's crypto provider (domains :data:`SESSION_DOMAIN` and
:data:`EVENT_DOMAIN`). An event id is bound to the session its stream belongs to as well,
so that it resumes nothing in another session of the same caller. The server's id is in
the bound id in the clear (it is no secret from the caller it was issued to), so the gateway
keeps no table: any process sharing the key file recognises the id, across
``proxy.workers`` and restarts. Only visible ASCII occurs, which both a header and an event
stream's ``id`` field carry.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Callable
from typing import Final

from haechi.models import Identity
from haechi.providers import CryptoProvider

__all__ = [
    "BOUND_PREFIX",
    "EVENT_DOMAIN",
    "EVENT_PREFIX",
    "SESSION_DOMAIN",
    "bind_event",
    "bind_session",
    "event_id_limit",
    "session_id_limit",
    "unbind_event",
    "unbind_session",
]

#: The start of every session id the gateway hands out.
BOUND_PREFIX: Final = b"hmcp1."
#: The start of every event id the gateway hands out.
EVENT_PREFIX: Final = b"hevt1."
#: The HMAC domain of session bindings (unlinkable to every other use of the key).
SESSION_DOMAIN: Final = "haechi:mcp-session:v1"
#: The HMAC domain of event id bindings.
EVENT_DOMAIN: Final = "haechi:mcp-event:v1"
#: The longest server event or session id the gateway binds, in bytes, whatever the head
#: limit: the server gets it back in its own ``Last-Event-ID`` or ``Mcp-Session-Id`` field
#: line, and common servers and proxies accept no more than 8 KiB in one field line, or
#: 16 KiB in a whole head.
MAX_EVENT_ID_BYTES: Final = 1024
#: Hex digits of the HMAC-SHA256 ending a bound id.
_MAC_HEX: Final = 64
_SESSION_ID: Final = re.compile(rb"hmcp1\.([A-Za-z0-9_-]*)\.([0-9a-f]{64})")
_EVENT_ID: Final = re.compile(rb"hevt1\.([A-Za-z0-9_-]*)\.([0-9a-f]{64})")


def _owner(identity: Identity | None) -> list[str]:
    """``identity`` as MAC input (``None``: the anonymous caller of a gateway without
    authentication)."""
    return ["anonymous"] if identity is None else ["identity", identity.provider, identity.id]


def _bind(prefix: bytes, value: bytes, mac: str) -> bytes:
    encoded = base64.urlsafe_b64encode(value).rstrip(b"=")
    return prefix + encoded + b"." + mac.encode("ascii")


def _unbind(shape: re.Pattern[bytes], bound: bytes, mac: Callable[[bytes], str]) -> bytes | None:
    """The server's id in ``bound`` when ``bound`` has the ``shape`` of a bound id and
    carries the ``mac`` of that id (compared in constant time), else ``None``."""
    match = shape.fullmatch(bound)
    if match is None:
        return None
    encoded, given = match.groups()
    try:
        value = base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None
    return value if hmac.compare_digest(mac(value).encode("ascii"), given) else None


def _session_mac(crypto: CryptoProvider, identity: Identity | None, session: bytes) -> str:
    """The MAC binding ``session`` to ``identity``. The fields are JSON-encoded, so that no
    pair of an owner and an id spells the same input as another."""
    fields = [*_owner(identity), session.decode("latin-1")]
    return crypto.hmac(json.dumps(fields), SESSION_DOMAIN)


def _event_mac(
    crypto: CryptoProvider, identity: Identity | None, session: bytes | None, event: bytes
) -> str:
    """The MAC binding ``event`` to ``identity`` and ``session`` (``None``: a server that
    keeps no sessions), JSON-encoded as for sessions."""
    where = None if session is None else session.decode("latin-1")
    fields = [*_owner(identity), where, event.decode("latin-1")]
    return crypto.hmac(json.dumps(fields), EVENT_DOMAIN)


def bind_session(crypto: CryptoProvider, identity: Identity | None, session: bytes) -> bytes:
    """The id to hand ``identity`` for the server's session id ``session``.

    Raises:
        CryptoError: the key cannot be used; the server's id must then not go out either.
    """
    return _bind(BOUND_PREFIX, session, _session_mac(crypto, identity, session))


def unbind_session(crypto: CryptoProvider, identity: Identity | None, bound: bytes) -> bytes | None:
    """The server's session id in ``bound``, or ``None`` when ``bound`` is not an id this
    gateway handed ``identity`` (not a bound id at all, another caller's, forged, or made
    under a key no longer active). The MACs are compared in constant time.

    Raises:
        CryptoError: the key cannot be used.
    """
    return _unbind(_SESSION_ID, bound, lambda session: _session_mac(crypto, identity, session))


def bind_event(
    crypto: CryptoProvider, identity: Identity | None, session: bytes | None, event: bytes
) -> bytes:
    """The event id to hand ``identity`` for the server's ``event`` id of a stream of
    ``session`` (the server's session id, ``None`` when there is none).

    Raises:
        CryptoError: the key cannot be used; the server's id must then not go out either.
    """
    return _bind(EVENT_PREFIX, event, _event_mac(crypto, identity, session, event))


def unbind_event(
    crypto: CryptoProvider, identity: Identity | None, session: bytes | None, bound: bytes
) -> bytes | None:
    """The server's event id in ``bound``, or ``None`` when ``bound`` is not an event id
    this gateway handed ``identity`` in ``session`` (see :func:`unbind_session`).

    Raises:
        CryptoError: the key cannot be used.
    """
    return _unbind(_EVENT_ID, bound, lambda event: _event_mac(crypto, identity, session, event))


def event_id_limit(max_header_bytes: int) -> int:
    """The longest server event id, in bytes, that a client can send back bound under a
    request head limit of ``max_header_bytes`` (``limits.maxHeaderBytes``).

    The ``Last-Event-ID`` field line holding the bound id takes at most a quarter of the
    head, which the request line, the credentials and the bound session id share, and the
    server's id at most :data:`MAX_EVENT_ID_BYTES`. A longer id is no id to resume from: the
    client's request would be refused (431) before the gateway got to unbind it.
    """
    return _carried_limit(max_header_bytes, b"last-event-id: ", EVENT_PREFIX)


def session_id_limit(max_header_bytes: int) -> int:
    """The longest server session id, in bytes, that a client can send back bound under a
    request head limit of ``max_header_bytes``: as :func:`event_id_limit`, for the
    ``Mcp-Session-Id`` field line every later request of the session carries."""
    return _carried_limit(max_header_bytes, b"mcp-session-id: ", BOUND_PREFIX)


def _carried_limit(max_header_bytes: int, name: bytes, prefix: bytes) -> int:
    line = max_header_bytes // 4
    # name + prefix + base64url (4 characters per 3 bytes, unpadded) + "." + MAC + CRLF.
    fixed = len(name) + len(prefix) + 1 + _MAC_HEX + 2
    return max(0, min(MAX_EVENT_ID_BYTES, 3 * (line - fixed) // 4))
