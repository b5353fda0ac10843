# SPDX-License-Identifier: Apache-2.0
"""Serving the gateway with uvicorn: bind guards, TLS, timeouts, drain, startup lines.

Binding: only loopback addresses unless ``--allow-remote-bind`` is given on the command
line (no config or environment key can unlock it), and a remote bind additionally needs TLS
material (``proxy.tls``) or ``proxy.trustForwardedProto`` — in which case every proxied
request must carry ``X-Forwarded-Proto: https``. TLS is chosen by material, not by host:
configured material means HTTPS, also on loopback.

Timeouts (what maps to what):

- ``limits.headersTimeoutMs``: time from a connection's (or a request's) first byte to the
  end of its headers; past it the connection is closed. Bytes that end an idle keep-alive
  connection's wait (also empty lines, which begin no request) start it too. Time the
  gateway itself reads nothing of the connection (a request waiting behind another), or
  answers a request read before the head, does not cut the head: run out then, the
  deadline starts again. Enforced by the gateway's HTTP
  protocol (uvicorn's ``httptools`` protocol, extended here). With TLS the handshake, which
  comes before any of it, must end within it too (with ``0``, within asyncio's 60 s).
  ``null`` is 60 s, ``0`` none.
- ``limits.requestTimeoutMs``: time to receive the whole body once the headers are in;
  past it the gateway answers 408 ``haechi_request_timeout``. ``null`` is 300 s, ``0`` none.
- ``limits.writeTimeoutMs``: how long a connection's writes may stay paused without the
  client taking any of what is queued (it reads nothing, the send buffer is full; an answer
  sent whole stays paused while a client reads it); past it the connection is cut, which
  ends its request as a client disconnect does: the in-flight slot is released and the
  upstream request cancelled. Enforced by the same protocol. A connection the gateway closes
  has as long, without a break, to take what it still holds, also when that is too little
  to pause the writes (under 64 KiB beyond what the kernel took). With TLS the writes pause
  once the TLS layer holds a record the socket cannot take (an answer sent whole too), and
  the close is bounded so (not by the TLS layer's 30 s from the close). ``null`` is 60 s,
  ``0`` none.
- Idle keep-alive connections are closed after 5 s (uvicorn's ``timeout_keep_alive``).

Sizes: a request head (request line and header fields) larger than
``limits.maxHeaderBytes`` is answered 431 ``haechi_request_headers_too_large`` and the
connection closed, before the gateway reads any more of it. Once the head is in, the
connection may carry at most twice ``limits.maxRequestBytes`` plus ``maxHeaderBytes`` more
bytes for that request (its body with chunk framing, and trailer fields, which the gateway
never reads): past that the connection is cut. Both are counted as bytes arrive, so no
client can make the parser hold more than one read beyond them; a head that arrives within
one read is measured once it is complete. A connection may have at most 16 requests
waiting behind the one being answered (pipelining): the next is refused 503
``haechi_overloaded`` and the connection closed. A refusal is never written inside the
answer to an earlier request of the same connection.
- ``limits.shutdownGraceMs``: on SIGTERM, SIGINT or SIGHUP the listener closes, idle connections are
  closed at once (and a TLS connection whose handshake ends after the signal as soon as it
  does), in-flight requests get this long to finish, then the rest are cut (one whose answer
  has not begun gets 500 ``haechi_proxy_error``). A connection is closed once its answer is
  out (requests waiting behind it are not started).

Closing: a TLS connection the gateway closes (the keep-alive or header timeout, a refusal, an
answer with ``connection: close``, a stream cut short, a stop) ends once its bytes are sent,
its close_notify last, without waiting for the client's reply, as a plain connection does;
the write timeout, not a limit from the close, bounds how long sending them may take.

Writes: an answer the gateway sends whole (its head, then its body at once) leaves in one
write, where uvicorn writes the head on its own first: that second system call, and the
second wake-up of a client reading the head before the body, cost more than the copy that
joins them. A streamed answer's head is written at once, before its first frame.

uvicorn runs on ``httptools`` and, where it exists (not on Windows), ``uvloop``; both are
dependencies of haechi.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import httptools
import uvicorn

import haechi
from haechi.config import DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_WRITE_TIMEOUT_MS
from haechi.errors import ConfigError
from haechi.proxy._asgi import BODY_FOLLOWS
from haechi.proxy._handoff import HandedConnections
from haechi.proxy._sockets import bind_socket
from haechi.proxy.app import GatewayApp
from haechi.proxy.errors import CATALOGUE, error_body
from haechi.proxy.logs import configure_logging, log_event
from haechi.proxy.pipeline import RAW_TARGET_KEY, new_correlation_id

__all__ = [
    "DEFAULT_PROXY_PORT",
    "ListenPlan",
    "is_loopback",
    "plan_listen",
    "run_proxy",
    "serve_socket",
    "tls_files",
    "uvicorn_options",
]

DEFAULT_PROXY_PORT: Final = 11016
_KEEP_ALIVE_S: Final = 5
#: Requests one connection may have waiting behind the one being answered (pipelining).
#: The parser reads every request of a read at once, and each waiting one is held whole:
#: unbounded, one read of small requests made the gateway hold about fifteen times its size.
_MAX_WAITING: Final = 16
_HAS_UVLOOP: Final = importlib.util.find_spec("uvloop") is not None
#: How often a connection whose writes are paused, or that the gateway closed, looks whether
#: the client took more of what it still holds (the write deadline starts again), and with
#: TLS after a close whether the TLS layer has sent all of it (then the connection ends
#: without waiting for the client's reply).
_WRITES_POLL_S: Final = 0.1
#: The TLS layer's own limit on a close (asyncio's is 30 s from the close, however the client
#: reads): it cut a slow reader off the end of its answer. The write timeout bounds a TLS
#: close instead, as it bounds a plain one; this only stands for "none" when it is off.
_TLS_SHUTDOWN_TIMEOUT_S: Final = 24 * 3600.0
#: A write longer than this goes to the TLS layer in two parts, these last bytes (one TLS
#: record) on their own (see :class:`_CycleTransport`); the TLS layer holding as much
#: pauses the writes.
_TLS_TAIL_BYTES: Final = 16 * 1024


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    text = host.strip().lower().removeprefix("[").removesuffix("]")
    if text == "localhost":
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.is_loopback and not (
        isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None
    )


@dataclass(frozen=True, slots=True)
class ListenPlan:
    """Where and how the gateway listens, after the bind guards accepted it."""

    host: str
    port: int
    tls: bool
    forwarded_proto_gate: bool

    @property
    def scheme(self) -> str:
        """``https`` with TLS material, else ``http``."""
        return "https" if self.tls else "http"


def plan_listen(config: Any, *, host: str, port: int, allow_remote_bind: bool) -> ListenPlan:
    """Apply the bind guards; raise :class:`ConfigError` when the bind is refused."""
    tls = config.proxy.tls is not None
    trust = bool(config.proxy.trust_forwarded_proto)
    loopback = is_loopback(host)
    if not loopback and not allow_remote_bind:
        raise ConfigError(
            f"Refusing to bind Haechi proxy to non-loopback host {host}. Use "
            "--allow-remote-bind only behind a trusted network boundary."
        )
    if not loopback and not tls and not trust:
        raise ConfigError(
            f"Refusing to bind Haechi proxy to non-loopback host {host} without TLS. Configure "
            "proxy.tls, or set proxy.trustForwardedProto when a TLS-terminating proxy is in "
            "front."
        )
    gate = not loopback and not tls and trust
    return ListenPlan(host=host, port=port, tls=tls, forwarded_proto_gate=gate)


@contextlib.contextmanager
def tls_files(config: Any) -> Iterator[dict[str, Any]]:
    """uvicorn TLS options for ``proxy.tls`` (empty without TLS).

    A PKCS#12 (``pfxFile``) bundle is converted to a PEM key and chain in a private temporary
    directory (mode 0700, files 0600) that is removed when the ``with`` block ends; uvicorn
    reads them while the server configuration is loaded.
    """
    tls = config.proxy.tls
    if tls is None:
        yield {}
        return
    if tls.pfx_file is None:
        _check_pem_pair(tls.key_file, tls.cert_file)
        yield {"ssl_keyfile": tls.key_file, "ssl_certfile": tls.cert_file}
        return
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    password = tls.passphrase.get_secret_value().encode() if tls.passphrase else None
    try:
        data = Path(tls.pfx_file).read_bytes()
        key, cert, chain = pkcs12.load_key_and_certificates(data, password)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"proxy.tls.pfxFile could not be loaded: {type(exc).__name__}") from None
    if key is None or cert is None:
        raise ConfigError("proxy.tls.pfxFile must hold a private key and a certificate")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [cert, *chain])
    with tempfile.TemporaryDirectory(prefix="haechi-tls-") as directory:
        paths = {}
        for name, data in (("key.pem", key_pem), ("cert.pem", cert_pem)):
            path = os.path.join(directory, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            paths[name] = path
        yield {"ssl_keyfile": paths["key.pem"], "ssl_certfile": paths["cert.pem"]}


class _EncryptedKey(Exception):
    """The PEM key asked for a passphrase, which ``proxy.tls`` has for a pfxFile only."""


def _no_passphrase() -> bytes:
    """OpenSSL's passphrase callback: refuse. Without one OpenSSL prompts on the terminal
    ("Enter PEM pass phrase:"), holding the start of a gateway run from a shell and failing
    with an unrelated OS error where there is no terminal."""
    raise _EncryptedKey


def _check_pem_pair(key_file: str, cert_file: str) -> None:
    """Load the key and certificate now, so that a missing or wrong file is a configuration
    error naming the key, not an OpenSSL message from inside uvicorn's startup."""
    for name, path in (("keyFile", key_file), ("certFile", cert_file)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(
                f"proxy.tls.{name} could not be loaded: {type(exc).__name__}"
            ) from None
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file, password=_no_passphrase)
    except _EncryptedKey:
        raise ConfigError(
            "proxy.tls.keyFile is encrypted; give an unencrypted PEM key, or a pfxFile with "
            "its passphrase"
        ) from None
    except ssl.SSLError:
        raise ConfigError(
            "proxy.tls: keyFile and certFile must be a PEM private key and the certificate "
            "chain that goes with it"
        ) from None


def _timeout_s(millis: int | None, default: int) -> float | None:
    """A connection timeout of ``limits``, in seconds; ``None`` when it is off (``0``).

    A ``None`` setting (the config loader resolves it, a limits object made without the
    loader may not) is ``default``, never "no limit": uvicorn has neither a header nor a
    write timeout of its own, so a client that never finishes its headers, or never reads
    its answer, would hold its connection forever.
    """
    if millis is None:
        millis = default
    return millis / 1000 if millis else None


class _Deadline:
    """A connection deadline: :meth:`arm` starts it (again, from now), :meth:`disarm` stops
    it, and once it passes ``expire`` runs.

    Armed only at the moments a connection can start to stall (a request begins, writes
    pause), never per write, so a connection that keeps up pays nothing on its fast path.
    """

    __slots__ = ("_expire", "_loop", "_seconds", "_timer")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, seconds: float | None, expire: Callable[[], None]
    ) -> None:
        self._loop = loop
        self._seconds = seconds
        self._expire = expire
        self._timer: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        """Start the deadline from now (nothing when its timeout is off)."""
        if self._seconds:
            self.disarm()
            self._timer = self._loop.call_later(self._seconds, self._passed)

    def disarm(self) -> None:
        """Stop the deadline, if it runs."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def running(self) -> bool:
        """Whether the deadline is armed and has not passed yet."""
        return self._timer is not None

    def _passed(self) -> None:
        self._timer = None
        self._expire()


class _Refused(Exception):
    """A request head the gateway refuses once it is complete, with the error ``code``.

    Raised from the parser's callback, which stops the parser; uvicorn then calls
    ``send_400_response``, which answers ``code``.
    """

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _refusal(code: str) -> bytes:
    """A whole HTTP answer refusing a request the parser stopped reading, closing the
    connection (nothing after the refused bytes can be framed)."""
    status, message = CATALOGUE[code]
    body = error_body(code, message)
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\ncache-control: no-store\r\n"
        "connection: close\r\n"
        f"x-haechi-correlation-id: {new_correlation_id()}\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _send_internal_error(cycle: Any) -> None:
    """The gateway's own 500 ``haechi_proxy_error`` on ``cycle`` (uvicorn's request cycle),
    closing the connection: every error answer is the gateway's JSON, with its headers."""
    status, message = CATALOGUE["haechi_proxy_error"]
    body = error_body("haechi_proxy_error", message)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"connection", b"close"),
        (b"x-haechi-correlation-id", new_correlation_id().encode()),
    ]
    await cycle.send({"type": "http.response.start", "status": status, "headers": headers})
    await cycle.send({"type": "http.response.body", "body": body, "more_body": False})


class _HeldHead:
    """A cycle's transport for the moment between a response's head and its body: holds
    the head, writes it with the body in one write, and hands the cycle its transport back.
    """

    __slots__ = ("_cycle", "_head", "_transport")

    def __init__(self, cycle: Any) -> None:
        self._cycle = cycle
        self._transport = cycle.transport
        self._head = b""

    def write(self, data: bytes) -> None:
        if not self._head:
            self._head = data
            return
        self._cycle.transport = self._transport
        self._transport.write(self._head + data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def _send_coalesced(cycle: Any, send: Any, message: dict[str, Any]) -> None:
    """uvicorn's ``send``, writing a head marked :data:`BODY_FOLLOWS` with its body."""
    if message.get(BODY_FOLLOWS) and not cycle.response_started and cycle.scope["method"] != "HEAD":
        cycle.transport = _HeldHead(cycle)
    await send(message)


class _CycleTransport:
    """A connection's transport as its request cycles use it: runs ``closed`` once a cycle
    closed the connection, and with TLS hands a long write to the TLS layer in two parts.

    uvicorn closes the connection from the request's own code, after an answer with
    ``connection: close`` or when the app ends without completing its answer (a stream cut
    short), and tells the connection nothing: what the transport still holds for the client
    must then still be bounded by the write deadline, and a TLS connection must still end
    without waiting for the client's close_notify (the protocol's ``_finish_close``).

    The TLS layer passes what it encrypts on to the socket transport below it at once, and
    pauses the gateway's writes only for bytes it holds itself: an answer written whole went
    down whole, the socket transport kept what the client did not read, and the protocol was
    never told to pause, so the write deadline never started for a client that reads
    nothing. Written on its own, the last record stays in the TLS layer when the first part
    filled the socket transport, which pauses the writes as on a plain connection. A plain
    connection's writes go to its transport directly: no call of this class per write.
    """

    __slots__ = ("_closed", "_transport", "write")

    write: Callable[[bytes], None]

    def __init__(self, transport: Any, closed: Callable[[], None], *, tls: bool) -> None:
        self._transport = transport
        self._closed = closed
        self.write = partial(_write_tail_apart, transport) if tls else transport.write

    def close(self) -> None:
        self._transport.close()
        self._closed()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _write_tail_apart(transport: Any, data: bytes) -> None:
    """Write ``data`` to a TLS ``transport``, its last record on its own when it is longer
    (see :class:`_CycleTransport`)."""
    if len(data) <= _TLS_TAIL_BYTES:
        transport.write(data)
        return
    whole = memoryview(data)
    transport.write(whole[:-_TLS_TAIL_BYTES])
    transport.write(whole[-_TLS_TAIL_BYTES:])


def _shut_reading(sock: Any, addresses: tuple[Any, Any]) -> None:
    """Shut the reading side of ``sock`` (a transport's ``socket``: its descriptor), when the
    descriptor is still the connection with these (local, remote) ``addresses``.

    A transport keeps the number of its descriptor after closing it: by then the number may
    belong to another socket or file, which must not be touched.
    """
    fd = sock.fileno() if sock is not None else -1
    if fd < 0:
        return
    try:
        raw = socket.socket(fileno=fd)
    except OSError:
        return  # closed, or no longer a socket
    try:
        if (raw.getsockname()[:2], raw.getpeername()[:2]) == addresses:
            raw.shutdown(socket.SHUT_RD)
    except OSError:
        pass  # the connection is gone already
    finally:
        raw.detach()  # the transport's descriptor: not closed here


def _protocol_class(limits: Any) -> Any:
    """uvicorn's httptools protocol, keeping the raw request target and enforcing the
    header and write timeouts and the head and wire sizes of ``limits``."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    headers_timeout = _timeout_s(limits.headers_timeout_ms, DEFAULT_HEADERS_TIMEOUT_MS)
    write_timeout = _timeout_s(limits.write_timeout_ms, DEFAULT_WRITE_TIMEOUT_MS)

    class GatewayHttpProtocol(HttpToolsProtocol):
        """Records the request target as sent, cuts connections stuck in their headers or
        on a client that stopped reading its answer, and bounds what one request may make
        the parser hold.

        httptools collects each header field whole before handing it over, and uvicorn
        keeps every field (the trailer fields of a chunked body too, while the body is
        drained after an early answer), so sizes are counted on the bytes as they arrive:
        while a request's head is incomplete, every byte received is head.
        """

        #: Seconds from a connection's (or a request's) first byte to the end of its
        #: headers; ``None``: no limit.
        headers_timeout_s: float | None = headers_timeout
        #: Seconds the connection's writes may stay paused (the client reads nothing and
        #: the send buffer is full); ``None``: no limit.
        write_timeout_s: float | None = write_timeout
        #: Largest head; bytes one request may carry after its head.
        max_head_bytes: int = limits.max_header_bytes
        max_after_head_bytes: int = 2 * limits.max_request_bytes + limits.max_header_bytes
        _headers_deadline: _Deadline
        _write_deadline: _Deadline
        #: Looks again at a connection whose writes are paused, or that the gateway closed
        #: while it still held bytes for the client (see :meth:`_look_at_writes`).
        _writes_poll: _Deadline
        #: What the transport held when last looked at (``None``: not looked at yet).
        _held_seen: int | None = None
        #: The transport the connection's request cycles write to and close.
        _cycle_transport: _CycleTransport
        #: Whether the bytes arriving are a request's head, and how many arrived so far (of
        #: the head, or since it).
        _in_head: bool = True
        _received: int = 0

        #: Whether the connection is gone. A request may still close it afterwards (an app
        #: that raised after its client left): :meth:`_finish_close` has nothing left
        #: to end then, and must not look at it again and again.
        _lost: bool = False
        #: The request cycle the app runs (answered now), which need not be the last one
        #: read (``cycle``): a request sent behind it waits (pipelining).
        _answering: Any = None

        #: The refusal of a request that came while the answers to the ones before it were
        #: still being sent: it is sent once they are complete (see :meth:`_refuse`).
        _deferred: bytes | None = None

        def __init__(
            self, *args: Any, stopping: Callable[[], bool] | None = None, **kwargs: Any
        ) -> None:
            """uvicorn's arguments, and ``stopping``: whether the server was told to stop
            (``None`` where uvicorn builds the protocol itself: never)."""
            super().__init__(*args, **kwargs)
            self._stopping = stopping

        def data_received(self, data: bytes) -> None:
            if self.transport.is_closing() or self._deferred is not None:
                return  # refused: nothing more is parsed
            if self.timeout_keep_alive_task is not None:
                # The connection was idle, and uvicorn stops its keep-alive timer at any
                # byte, also at the empty lines the parser skips before a request (which
                # begin none): the header deadline runs from here, or those lines would
                # hold the connection open with no deadline at all.
                self._headers_deadline.arm()
            self._received += len(data)
            before = self._in_head
            self._feed(data)
            if before != self._in_head:
                return  # a head ended or began in this read: counted from there on
            if self._in_head and self._received > self.max_head_bytes:
                self._refuse("haechi_request_headers_too_large")
            elif not self._in_head and self._received > self.max_after_head_bytes:
                # A response may be under way: no answer can be framed, the connection is
                # cut (the request ends as a client disconnect does).
                self._close()

        def _feed(self, data: bytes) -> None:
            """uvicorn's ``data_received``, except after a request that asks to switch
            protocols (``Connection: upgrade``): the parser stops behind it, and uvicorn
            drops the rest of the read. The gateway switches to no protocol and serves that
            request as any other, so the rest is parsed as what follows it: the next request
            (dropped, a pipelined request went unanswered, and a read ending inside one left
            the rest of it to be parsed as a request of its own). Nor is a warning logged per
            refused request, as uvicorn logs one: any client could fill the log with them;
            they are counted (``haechi_requests_total``, decision ``invalid_request``)."""
            self._unset_keepalive_if_required()
            while data:
                try:
                    self.parser.feed_data(data)
                except httptools.HttpParserError:
                    self.send_400_response("Invalid HTTP request received.")
                    return
                except httptools.HttpParserUpgrade as upgrade:
                    data = data[upgrade.args[0] :]
                else:
                    return

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._headers_deadline = _Deadline(
                self.loop, self.headers_timeout_s, self._headers_expired
            )
            # abort, not close: close waits until the buffered answer has been sent, which is
            # what a client that stopped reading never lets happen. Losing the connection
            # wakes uvicorn's pending send and reports http.disconnect to the app.
            self._write_deadline = _Deadline(self.loop, self.write_timeout_s, transport.abort)
            self._writes_poll = _Deadline(self.loop, _WRITES_POLL_S, self._look_at_writes)
            super().connection_made(transport)
            tls = transport.get_extra_info("ssl_object") is not None
            self._cycle_transport = _CycleTransport(transport, self._finish_close, tls=tls)
            if tls:
                # Paused once the TLS layer holds a record, which it does only while the
                # socket transport below it is full (a held last record of a long write,
                # ciphertext being longer than its text, is enough): then, as a plain
                # connection's writes, they may stay paused for the write timeout. By default
                # the TLS layer would hold 64 KiB first.
                transport.set_write_buffer_limits(high=_TLS_TAIL_BYTES)
            if self._stopping is not None and self._stopping():
                # Set up after the stop signal: a TLS connection is made once its handshake
                # ends, which may be well after it was accepted. The drain closed the idle
                # connections and waits for those in flight only; served, this one would
                # start requests after the stop, and hold the drain until the grace is out.
                # abort: it carried nothing, and a TLS close would wait for the client.
                transport.abort()
                return
            self._headers_deadline.arm()

        def _headers_expired(self) -> None:
            """The header deadline passed: close the connection, unless the gateway is the
            one not reading the rest of the head, or a request before it is still being
            answered. The gateway stops reading while a request waits behind the one being
            answered (pipelining), for as long as that answer takes, and a head behind a
            request read whole is read while that request is answered: the deadline then
            starts again, or a head split between two reads would cut the connection, and
            the request in flight with it, however fast it was sent.
            """
            cycle = self.cycle  # the last request whose head was read
            answering = cycle is not None and not cycle.response_complete
            if (self.flow.read_paused or answering) and not self.transport.is_closing():
                self._headers_deadline.arm()
            else:
                self._close()

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            self._answering = cycle
            super()._start_asgi_task(cycle, app)

        def connection_lost(self, exc: Exception | None) -> None:
            self._lost = True
            answering = self._answering
            if answering not in (None, self.cycle) and not answering.response_complete:
                # uvicorn tells the last request read only: with one waiting behind it, the
                # request answered never learnt its client left, and went on waiting for its
                # upstream (holding its limits.maxInFlight slot) for nobody.
                answering.disconnected = True
                answering.message_event.set()
            self._headers_deadline.disarm()
            self._write_deadline.disarm()
            self._writes_poll.disarm()
            super().connection_lost(exc)

        def pause_writing(self) -> None:
            super().pause_writing()
            self._write_deadline.arm()
            if self.write_timeout_s is not None:
                self._writes_poll.arm()

        def resume_writing(self) -> None:
            super().resume_writing()
            self._write_deadline.disarm()

        def _look_at_writes(self) -> None:
            """While the writes are paused, start the write deadline again whenever the
            client took more of what the transport holds; after a close, see
            :meth:`_finish_close`.

            The writes resume only once the transport holds less than a quarter of what
            paused them: an answer sent whole (megabytes in one write) stays paused until
            nearly all of it is sent, and a client that kept reading it, for longer than
            the write timeout in all, was cut as one that reads nothing. No event says when
            the client takes more: the transport is looked at again shortly.
            """
            if self._lost:
                return
            if self.transport.is_closing():
                self._finish_close()
            elif self.flow.write_paused:
                self._restart_on_progress(self.transport.get_write_buffer_size())

        def _restart_on_progress(self, held: int) -> None:
            """Start the write deadline again when the transport, holding ``held`` bytes,
            holds less than when last looked at (or the deadline does not run); look again
            shortly."""
            taken = self._held_seen is not None and held < self._held_seen
            if taken or not self._write_deadline.running:
                self._write_deadline.arm()
            self._held_seen = held
            self._writes_poll.arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._headers_deadline.arm()

        def on_response_complete(self) -> None:
            stopping = self._stopping is not None and self._stopping()
            if stopping:
                # Requests waiting behind this answer (pipelining) are not started after
                # the stop; with them goes a refusal waiting behind them, which the client
                # would read as the answer to the first of them.
                self.pipeline.clear()
            super().on_response_complete()
            # A closing transport: the answer closed the connection, nothing more is sent.
            if (
                self._deferred is not None
                and self.cycle.response_complete  # the last request's: every answer is out
                and not self.transport.is_closing()
            ):
                self.transport.write(self._deferred)
                self._close()
            if stopping:
                # Idle now, as the connections closed at the stop were. uvicorn marks the
                # last request read to close the connection: with requests waiting, that
                # was one of them, and this answer went out without `connection: close`.
                self._close()

        def timeout_keep_alive_handler(self) -> None:
            """uvicorn's keep-alive timeout: close an idle connection (see
            :meth:`_finish_close`)."""
            super().timeout_keep_alive_handler()
            self._finish_close()

        def shutdown(self) -> None:
            """uvicorn's start of the drain: an idle connection is closed, one in flight is
            closed once its answer is out (see :meth:`on_response_complete`)."""
            super().shutdown()
            self._finish_close()

        def _close(self) -> None:
            """Close the connection once the bytes it holds are sent, within the write
            deadline; with TLS, without waiting for the client's close_notify."""
            self.transport.close()
            self._finish_close()

        def _finish_close(self) -> None:
            """Bound the sending of what a closing connection still holds by the write
            deadline, and end a closing TLS connection without waiting for the client's reply.

            A closing transport sends what it holds, then ends the connection, and waits for
            that with no limit. A plain connection's writes pause, and the write deadline
            starts, only once its transport holds 64 KiB (and it stops once the transport
            holds less than 16 KiB again): the end of an answer that a client never reads,
            up to that much beyond what the kernel took, kept the connection, its descriptor
            and buffers for good. The deadline runs from the close while the transport holds
            bytes, and starts again whenever the client took some (the transport then holds
            less), so a slow reader gets the whole answer and one that stops reading is cut.
            No event says when the client takes more: the transport is looked at again
            shortly (see :meth:`_look_at_writes`).

            A TLS close sends close_notify and then waits for the client's own before the
            connection is gone; a pooled client connection reads nothing while idle, so it
            never replies: each connection the gateway closed (at the keep-alive timeout, the
            header deadline, after a refusal or an answer with `connection: close`) held its
            descriptor and buffers until the TLS layer's limit on a close, and the drain
            at a stop, which waits for every connection to be gone, lasted the whole grace.
            Shutting the socket's reading side gives the TLS layer the end of the stream in
            place of the reply: it then closes as a plain connection does, once the bytes it
            holds are sent. Only once it has handed them all to the socket (close_notify is
            the last): an end of stream before would drop the rest, the end of an answer the
            client has not read yet. The TLS layer holds bytes only while the socket
            transport is full; the write deadline bounds that (the TLS layer's own limit, see
            :data:`_TLS_SHUTDOWN_TIMEOUT_S`, does not), and then what the socket transport
            sends as it closes.
            """
            transport = self.transport
            if self._lost or not transport.is_closing():
                return
            tls = transport.get_extra_info("ssl_object") is not None
            held = transport.get_write_buffer_size()
            if not held:
                if tls:
                    self._write_deadline.arm()
                    _shut_reading(transport.get_extra_info("socket"), (self.server, self.client))
                return
            if not tls and self.write_timeout_s is None:
                return  # nothing bounds the close, and nothing else waits for its end
            self._restart_on_progress(held)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head = True
            self._received = 0

        def send_400_response(self, msg: str) -> None:
            # uvicorn calls this from its ``except httptools.HttpParserError`` block when the
            # parser refuses the request: answer with the gateway's JSON error instead of
            # uvicorn's plain text. A target the parser, or uvicorn after it, cannot read as
            # a URL (``foo:/x``; a CONNECT's ``host:port``) is refused like any other target
            # that is not a path.
            refused = sys.exc_info()[1]
            cause = refused.__context__ if refused is not None else None
            if isinstance(refused, httptools.HttpParserInvalidURLError) or isinstance(
                cause, httptools.HttpParserInvalidURLError
            ):
                self._refuse("haechi_invalid_proxy_target")
            elif isinstance(cause, _Refused):
                self._refuse(cause.code)
            else:
                self._refuse("haechi_invalid_http_request")

        def _refuse(self, code: str) -> None:
            """Answer ``code`` and close the connection, after the answers to the requests
            before this one: a client may send its next request (pipelining) before the
            answer to the last one is out, and reads answers in the order it sent the
            requests. When the refused bytes are the body of a request whose answer has
            begun, or that waits behind another, no answer can be framed: the connection
            is cut.
            """
            count = getattr(self.app, "count_refused", None)
            if count is not None:  # None when uvicorn serves another app with these options
                count(code)
            cycle = self.cycle  # the last request whose head was read
            if not self._in_head and (self.pipeline or cycle.response_started):
                self._close()  # the body of that request
            elif self._in_head and cycle is not None and not cycle.response_complete:
                self._deferred = _refusal(code)  # a new request, after an unfinished answer
                self._headers_deadline.disarm()
                self.flow.pause_reading()
            else:
                self.transport.write(_refusal(code))
                self._close()

        def on_headers_complete(self) -> None:
            # A head that arrived within one read was never counted while incomplete.
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > self.max_head_bytes:
                raise _Refused("haechi_request_headers_too_large")
            if self.parser.get_method() == b"CONNECT":
                # The gateway is not a forward proxy, and the parser takes whatever follows
                # a CONNECT for tunnelled bytes, which it would skip without reading.
                raise _Refused("haechi_invalid_proxy_target")
            if self.parser.should_upgrade() and any(
                name == b"transfer-encoding" or (name == b"content-length" and value != b"0")
                for name, value in self.headers
            ):
                # The parser reads no body after a request that asks to switch protocols:
                # the request would be served without it, and its body parsed as requests.
                raise _Refused("haechi_invalid_http_request")
            if len(self.pipeline) >= _MAX_WAITING:
                raise _Refused("haechi_overloaded")  # answered after the ones before it
            # httptools keeps only the path of an absolute-form target; keep the target as
            # sent so the gateway can refuse "http://other-host/..." instead of routing it.
            self.scope[RAW_TARGET_KEY] = bytes(self.url)  # type: ignore[typeddict-unknown-key]
            # The parser goes on adding the trailer fields of a chunked body to its header
            # list, which is the scope's: the scope keeps the headers as they are now.
            self.scope["headers"] = list(self.headers)
            super().on_headers_complete()
            # uvicorn answers a request its app ended without answering (one still running
            # when the shutdown grace is over is cancelled) with a plain-text 500 of its own.
            cycle = self.cycle
            cycle.send_500_response = partial(_send_internal_error, cycle)  # type: ignore[method-assign]
            cycle.send = partial(_send_coalesced, cycle, cycle.send)  # type: ignore[method-assign]
            cycle.transport = self._cycle_transport  # type: ignore[assignment]
            # Only now: until uvicorn took the request (it may refuse its target), a refusal
            # is one of a head, answered, not of a body.
            self._in_head = False
            self._received = 0
            self._headers_deadline.disarm()

    return GatewayHttpProtocol


def uvicorn_options(config: Any) -> dict[str, Any]:
    """The uvicorn settings the gateway runs with (shared by the CLI, the demo and tests)."""
    limits = config.limits
    options: dict[str, Any] = {
        "lifespan": "on",
        "access_log": False,
        "log_level": "warning",
        # uvicorn's records go through the gateway's handlers (configure_logging), in the
        # configured format, instead of handlers uvicorn would install.
        "log_config": None,
        "server_header": False,
        "date_header": False,
        # The gateway reads X-Forwarded-Proto itself (proxy.trustForwardedProto) and uses
        # no client address: uvicorn's rewriting of the scope from X-Forwarded-* headers
        # would only cost time and trust headers nobody asked to trust.
        "proxy_headers": False,
        "timeout_keep_alive": _KEEP_ALIVE_S,
        # The gateway serves no WebSocket: whatever library is installed, an upgrade request
        # is served as a plain request (see the protocol's _feed), never handed to another
        # protocol.
        "ws": "none",
        "timeout_graceful_shutdown": limits.shutdown_grace_ms / 1000,
        "http": _protocol_class(limits),
        "loop": "uvloop" if _HAS_UVLOOP else "asyncio",
    }
    return options


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _startup_lines(
    config: Any, plan: ListenPlan, port: int, workers: int, policy_warnings: Sequence[str]
) -> None:
    from haechi.crypto._exposure import exposed_key_file

    mode = config.effective_mode
    upstream = _safe_url(config.target.upstream)
    host = f"[{plan.host}]" if ":" in plan.host else plan.host
    log_event(
        logging.INFO,
        "proxy_listening",
        text=f"Haechi proxy listening on {plan.scheme}://{host}:{port}\n"
        f"Upstream: {upstream}\nMode: {mode}" + (f"\nWorkers: {workers}" if workers > 1 else ""),
        host=plan.host,
        port=port,
        scheme=plan.scheme,
        tls=plan.tls,
        upstream=upstream,
        mode=mode,
        workers=workers,
        version=haechi.__version__,
    )
    if not is_loopback(plan.host):
        how = (
            "TLS is terminated by Haechi"
            if plan.tls
            else "TLS must be terminated by the proxy in front (X-Forwarded-Proto: https)"
        )
        log_event(
            logging.WARNING,
            "remote_bind_enabled",
            text=f"Warning: Haechi proxy is bound to non-loopback host {plan.host}; {how}.",
            tls=plan.tls,
            trustForwardedProto=plan.forwarded_proto_gate,
        )
    if mode != "enforce":
        log_event(
            logging.WARNING,
            "non_enforce_mode",
            text=f"Warning: mode is {mode}: payloads are inspected and audited, not changed.",
            mode=mode,
        )
    # An MCP server's answers are always inspected (the setting applies to LLM answers).
    if not config.response_protection.enabled and config.target.type != "mcp-http":
        log_event(
            logging.WARNING,
            "response_protection_disabled",
            text="Warning: responseProtection.enabled is false: responses are not inspected.",
        )
    for warning in policy_warnings:
        log_event(logging.WARNING, "policy_warning", text=f"Warning: {warning}.", warning=warning)
    exposed = exposed_key_file(config)
    if exposed is not None:
        log_event(
            logging.WARNING,
            "key_file_exposed",
            text=f"Warning: {exposed}.",
            keyFile=config.keys.key_file,
            warning=exposed,
        )


class _Server(uvicorn.Server):
    """uvicorn's server, announcing itself once it listens and ending with exit code 0.

    uvicorn re-raises a captured SIGTERM/SIGINT after its graceful shutdown (so the process
    dies by the signal); the gateway instead logs ``proxy_shutdown`` (unless a supervisor
    does, see :mod:`haechi.proxy.workers`), drains and returns, so the process exits 0 after
    a requested stop.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        on_started: Callable[[], None],
        *,
        log_shutdown: bool,
        sock: socket.socket,
        handed_off: bool,
        handshake_timeout_s: float | None,
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._log_shutdown = log_shutdown
        self._sock = sock
        self._handed_off = handed_off
        self._handshake_timeout_s = handshake_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn starts the app and no listener: it would listen without a TLS handshake
        # timeout but asyncio's 60 s, whatever limits.headersTimeoutMs says.
        await super().startup([])
        if not self.started:
            return
        config = self.config
        protocol_class: Any = config.http_protocol_class
        protocol = partial(
            protocol_class,
            config=config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
            stopping=self._stopping,
        )
        loop = asyncio.get_running_loop()
        tls = config.ssl is not None
        handshake = self._handshake_timeout_s if tls else None
        shutdown = _TLS_SHUTDOWN_TIMEOUT_S if tls else None
        server: Any
        if self._handed_off:
            # A worker: its connections come from the supervisor (see
            # haechi.proxy._handoff), served by the protocol uvicorn's own listener uses.
            server = HandedConnections(
                loop,
                self._sock,
                protocol,
                config.ssl,
                orphaned=self._orphaned,
                handshake_timeout_s=handshake,
                shutdown_timeout_s=shutdown,
            )
        else:
            server = await loop.create_server(
                protocol,
                sock=self._sock,
                ssl=config.ssl,
                backlog=config.backlog,
                ssl_handshake_timeout=handshake,
                ssl_shutdown_timeout=shutdown,
            )
        # uvicorn closes and awaits its servers at shutdown: this one takes part.
        self.servers.append(server)
        self._loop = loop
        self._on_started()

    def _stop_listening(self, name: str) -> None:
        """Take no more connections (uvicorn closes its servers again at shutdown), then say
        so: once ``proxy_shutdown`` is out, a new connection is refused."""
        for server in self.servers:
            server.close()
        self._log_stop(name)

    def _log_stop(self, name: str) -> None:
        if self._log_shutdown:
            log_event(
                logging.INFO,
                "proxy_shutdown",
                text=f"Haechi proxy shutting down ({name})",
                signal=name,
            )

    def _stopping(self) -> bool:
        """Whether a stop was asked for (a signal, or the supervisor gone)."""
        return bool(self.should_exit)

    def _orphaned(self) -> None:
        """The supervisor is gone: drain and exit, as on SIGTERM."""
        self.should_exit = True

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's SIGTERM/SIGINT handling, and SIGHUP handled the same way: a closing
        terminal or a service manager's reload would otherwise kill the process with
        requests in flight."""
        with super().capture_signals():
            if threading.current_thread() is not threading.main_thread():
                yield  # signals reach the main thread only (an embedded gateway)
                return
            previous = signal.signal(signal.SIGHUP, self.handle_exit)
            try:
                yield
            finally:
                signal.signal(signal.SIGHUP, previous)

    def handle_exit(self, sig: int, frame: Any) -> None:
        first = not self.should_exit
        super().handle_exit(sig, frame)
        self._captured_signals.clear()
        if not first:
            return
        name = signal.Signals(sig).name
        if self._loop is None:
            self._log_stop(name)  # not listening yet
        else:
            # Now, not at uvicorn's next tick (every 0.1 s), which went on serving the
            # connections made meanwhile. The signal handler runs between two steps of the
            # loop's own code: the loop closes them on its next turn (none when it is
            # closed: nothing listens then).
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop_listening, name)


def serve_socket(
    config: Any,
    runtime: Any,
    plan: ListenPlan,
    sock: socket.socket,
    *,
    on_started: Callable[[], None],
    log_shutdown: bool = False,
    handed_off: bool = False,
) -> None:
    """Serve the gateway app of ``runtime`` on the bound ``sock`` until SIGTERM, SIGINT or
    SIGHUP, then close ``runtime``.

    ``on_started`` runs once uvicorn listens. Used by :func:`run_proxy` for one process and
    by each worker process of :mod:`haechi.proxy.workers`, where ``handed_off`` says that
    ``sock`` is the worker's end of the socket pair its connections are handed over on.
    """
    try:
        app = GatewayApp(runtime, forwarded_proto_gate=plan.forwarded_proto_gate)
        with tls_files(config) as tls_options:
            uv_config = uvicorn.Config(app, **uvicorn_options(config), **tls_options)
            uv_config.load()  # reads the TLS files now, so temporary ones can go
        _settle(runtime)
        server = _Server(
            uv_config,
            on_started,
            log_shutdown=log_shutdown,
            sock=sock,
            handed_off=handed_off,
            handshake_timeout_s=_timeout_s(
                config.limits.headers_timeout_ms, DEFAULT_HEADERS_TIMEOUT_MS
            ),
        )
        server.run()
    finally:
        # The providers write what they hold back (a plugin provider the summary of its
        # latest denials, written a second after the first of them) and release their
        # children and files: a process that stopped sooner lost that record.
        with contextlib.suppress(Exception):
            runtime.close()


def _settle(runtime: Any) -> None:
    """Before serving: build what detection builds on first use, then leave every object
    made so far out of the garbage collector's full passes.

    Without this the first requests of each kind pay tens of milliseconds for compiling,
    and the objects built then make the collector walk the whole heap (about 50,000
    long-lived objects, 15-30 ms with every request in flight waiting) a few times while
    the gateway warms up.
    """
    runtime.engine.warm()
    gc.collect()
    gc.freeze()


def run_proxy(config: Any, plan: ListenPlan, *, workers: int | None = None) -> None:
    """Serve the gateway as ``plan`` says (see :func:`plan_listen`) until SIGTERM, SIGINT or
    SIGHUP, then drain within ``limits.shutdownGraceMs``.

    ``workers`` (default ``proxy.workers``) processes serve the socket; with more than one,
    :mod:`haechi.proxy.workers` supervises them. The runtime is built, and the local key
    file read when a request can need a key, before the socket is bound, so a configuration
    that cannot run fails before anything listens.
    """
    from haechi.proxy.workers import serve_workers
    from haechi.runtime import create_runtime

    count = config.proxy.workers if workers is None else workers
    if count < 1:
        raise ConfigError("the number of proxy workers must be at least 1")
    configure_logging(config.logging.format)
    runtime = create_runtime(config)
    runtime.require_keys()  # a missing or invalid key file fails here, named
    policy_warnings = runtime.warnings
    if count > 1:
        runtime.close()  # each worker builds its own; this one only proved the config runs
        # Each worker loads the TLS material as it starts: unusable material is the named
        # error here, before anything listens, not a failure of every worker.
        with tls_files(config):
            pass
    # With workers the supervisor listens on this socket and hands connections over.
    sock = bind_socket(plan.host, plan.port)
    try:
        port = sock.getsockname()[1]

        def announce() -> None:
            _startup_lines(config, plan, port, count, policy_warnings)

        if count == 1:
            serve_socket(config, runtime, plan, sock, on_started=announce, log_shutdown=True)
        else:
            serve_workers(config, plan, sock, count, announce)
    finally:
        sock.close()
