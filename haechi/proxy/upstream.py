# SPDX-License-Identifier: Apache-2.0
"""The pooled HTTP/1.1 client the gateway talks to its upstream with.

One :class:`Upstream` per gateway keeps connections alive across requests (no per-request
connection or TLS handshake): an idle connection is taken from the pool (most recently used
first, after checking the upstream has not closed it), carries one request, and goes back
once its answer was read to the end; a connection whose answer was not read to the end, or
that either side wants closed, is closed instead. Redirects are never followed (the
upstream is fixed), no proxy environment variable is consulted, no cookie is stored (the
client is shared by all callers), and bodies are read raw — never transparently
decompressed — so the gateway always knows exactly which bytes it inspects. HTTPS upstreams
are verified against the system's trust store (``SSL_CERT_FILE``/``SSL_CERT_DIR`` name
others).

The upstream URL's path prefix is honoured: with ``target.upstream`` set to
``http://host/prefix``, a request for ``/v1/x?y`` goes to ``http://host/prefix/v1/x?y``.

Failures are :class:`UpstreamError` (unreachable, reset, malformed answer: 502) and its
subclass :class:`UpstreamTimeout` (no answer, or a body that stopped flowing, within the
timeout: 504). The timeout bounds the upstream alone: a whole answer is read to its end
before the gateway inspects it, and each frame of a stream is inspected (and written to the
client) between two waits for more, never during one.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Final
from urllib.parse import unquote, urlsplit

from haechi.proxy._http1 import Http1Connection, ResponseHeaders, UpstreamError, UpstreamTimeout

__all__ = [
    "ResponseHeaders",
    "ResponseTooLarge",
    "Upstream",
    "UpstreamError",
    "UpstreamResponse",
    "UpstreamTimeout",
    "declared_length",
    "iter_capped",
    "read_capped",
]

_KEEPALIVE_CONNECTIONS: Final = 256
_KEEPALIVE_EXPIRY_S: Final = 30.0
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE: Final = re.compile(rb"[\x00\r\n]")
_BAD_TARGET: Final = re.compile(rb"[\x00-\x20\x7f]")


class ResponseTooLarge(Exception):
    """The upstream body exceeded the configured cap."""


class UpstreamResponse:
    """An upstream answer whose body is still to be read (then :meth:`aclose` it).

    ``status_code`` and ``headers`` (lowercase names) are known; :meth:`aiter_raw` yields
    the body as it arrives (:meth:`read_chunk` hands it over piece by piece), each wait
    bounded by the upstream timeout, or, once :meth:`read_as_whole` was called, all of them
    by the ``deadline`` its head had (a loop time).
    """

    __slots__ = ("_connection", "_deadline", "_upstream", "_whole", "headers", "status_code")

    def __init__(
        self,
        upstream: Upstream,
        connection: Http1Connection,
        status_code: int,
        headers: ResponseHeaders,
        deadline: float,
    ) -> None:
        self._upstream: Upstream | None = upstream
        self._connection = connection
        self._deadline = deadline
        self._whole = False
        self.status_code = status_code
        self.headers = headers

    def read_as_whole(self) -> None:
        """Read the rest of the body as a whole answer's: the upstream has the timeout, from
        when it was asked, for all of it, as for its head (a stream's body has the timeout
        for each wait). Meant for a reader that takes the whole body before it uses any of
        it, so that what it then does with the answer is never counted."""
        self._whole = True

    async def read_chunk(self) -> bytes | None:
        """The next non-empty piece of the body exactly as sent, or ``None`` at its end
        (what arrived already is handed over also once the deadline has passed)."""
        upstream = self._upstream
        if upstream is None:
            return None
        connection = self._connection
        while (chunk := await connection.next_chunk(self._wait_s(upstream))) is not None:
            if chunk:
                return chunk
        return None

    def _wait_s(self, upstream: Upstream) -> float:
        """How long the next wait for body bytes may last: the timeout, or, for a whole
        answer, what is left of it until the deadline."""
        if not self._whole:
            return upstream.timeout_s
        return max(0.0, self._deadline - self._connection.loop.time())

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk, exactly as sent (no decoding)."""
        while (chunk := await self.read_chunk()) is not None:
            yield chunk

    async def aclose(self) -> None:
        """Give the connection back to the pool, or close it if it cannot be reused."""
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            upstream.release(self._connection)


def _host_field(hostname: str, port: int | None, default_port: int) -> bytes:
    """The ``Host`` header: the host as in the URL, with its port unless it is the default."""
    host = f"[{hostname}]" if ":" in hostname else hostname
    text = host if port in (None, default_port) else f"{host}:{port}"
    return text.encode("idna")


def _basic_credentials(username: str | None, password: str | None) -> bytes | None:
    """``Basic`` credentials from the upstream URL's user information, if it has any.

    They replace whatever ``Authorization`` a caller sent, as the URL's owner intended.
    """
    if not username and not password:
        return None
    pair = f"{unquote(username or '')}:{unquote(password or '')}".encode()
    return b"Basic " + base64.b64encode(pair)


def _trust() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


class Upstream:
    """The upstream base URL and the pool of connections that reach it."""

    def __init__(self, base_url: str, *, timeout_s: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the upstream URL must be http:// or https:// with a host")
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._prefix = parts.path.rstrip("/")
        self._host = parts.hostname
        default_port = 443 if parts.scheme == "https" else 80
        self._port = parts.port or default_port
        self._host_field = _host_field(parts.hostname, parts.port, default_port)
        self._credentials = _basic_credentials(parts.username, parts.password)
        self._tls = _trust() if parts.scheme == "https" else None
        self.timeout_s = timeout_s
        self._idle: list[Http1Connection] = []
        self._closed = False

    @property
    def path_prefix(self) -> str:
        """The path of the upstream URL, decoded and without a trailing slash (``""`` for
        none): the upstream serves it followed by the client's path."""
        return unquote(self._prefix)

    def url(self, raw_path: bytes, query: bytes) -> str:
        """The upstream URL for a request path and query (both as the client sent them)."""
        path = raw_path.decode("latin-1")
        if query:
            return f"{self._origin}{self._prefix}{path}?{query.decode('latin-1')}"
        return f"{self._origin}{self._prefix}{path}"

    async def open(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes | None,
    ) -> UpstreamResponse:
        """Send a request and return the answer with its body still unread.

        ``url`` comes from :meth:`url`. The caller must close the answer
        (``await response.aclose()``). Raises :class:`UpstreamTimeout` when no answer head
        arrived within the timeout and :class:`UpstreamError` on any other failure.
        """
        request = self._request(method, url, headers, body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        connection = self._pooled(loop) or await self._connect(loop, deadline)
        try:
            connection.send(request, head_only=method == "HEAD")
            status, fields = await connection.response_head(deadline)
        except BaseException:
            connection.close()
            raise
        return UpstreamResponse(self, connection, status, ResponseHeaders(fields), deadline)

    def release(self, connection: Http1Connection) -> None:
        """Take a connection back after its answer was closed."""
        if self._closed or not connection.reusable() or len(self._idle) >= _KEEPALIVE_CONNECTIONS:
            connection.close()
            return
        connection.finish()
        connection.idle_since = connection.loop.time()
        self._idle.append(connection)

    async def aclose(self) -> None:
        """Close every idle connection; connections in use close when released."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _request(
        self, method: str, url: str, headers: Sequence[tuple[bytes, bytes]], body: bytes | None
    ) -> bytes:
        """The request head (and body) as bytes, refusing anything that could split it."""
        if not url.startswith(self._origin):
            raise ValueError("the request URL is not on the upstream")
        target = url[len(self._origin) :].encode("latin-1") or b"/"
        verb = method.encode("ascii")
        if not _TOKEN.fullmatch(verb) or _BAD_TARGET.search(target):
            raise ValueError("the request line cannot be sent upstream")
        parts = [verb, b" ", target, b" HTTP/1.1\r\nhost: ", self._host_field, b"\r\n"]
        credentials = self._credentials
        for name, value in headers:
            if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
                raise ValueError("a request header cannot be sent upstream")
            if credentials is None or name != b"authorization":
                parts += (name, b": ", value, b"\r\n")
        if credentials is not None:
            parts += (b"authorization: ", credentials, b"\r\n")
        if body is not None:
            parts += (b"content-length: ", str(len(body)).encode(), b"\r\n\r\n", body)
        else:
            parts.append(b"\r\n")
        return b"".join(parts)

    def _pooled(self, loop: asyncio.AbstractEventLoop) -> Http1Connection | None:
        """The most recently used idle connection that can still carry a request, if any."""
        now = loop.time()
        while self._idle:
            connection = self._idle.pop()
            if (
                connection.loop is loop
                and now - connection.idle_since < _KEEPALIVE_EXPIRY_S
                and connection.alive()
            ):
                return connection
            if connection.loop is loop:
                connection.close()
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float) -> Http1Connection:
        """A new connection, opened before the loop time ``deadline``."""
        try:
            async with asyncio.timeout_at(deadline):
                try:
                    transport, connection = await loop.create_connection(
                        Http1Connection,
                        self._host,
                        self._port,
                        ssl=self._tls,
                        server_hostname=self._host if self._tls is not None else None,
                    )
                except OSError as exc:
                    name = type(exc).__name__
                    raise UpstreamError(f"cannot connect to the upstream ({name})") from None
        except TimeoutError:
            raise UpstreamTimeout("the upstream did not answer in time") from None
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection


def declared_length(response: UpstreamResponse) -> int | None:
    """The upstream's ``Content-Length``, if it sent a valid one."""
    value = response.headers.get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)


async def read_capped(response: UpstreamResponse, cap: int) -> bytes:
    """Read the raw body, raising :class:`ResponseTooLarge` as soon as it passes ``cap``."""
    declared = declared_length(response)
    if declared is not None and declared > cap:
        raise ResponseTooLarge
    # Read without an async generator: most answers arrive as one piece.
    chunks: list[bytes] = []
    size = 0
    while (chunk := await response.read_chunk()) is not None:
        size += len(chunk)
        if size > cap:
            raise ResponseTooLarge
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def iter_capped(response: UpstreamResponse, cap: int) -> AsyncGenerator[bytes, None]:
    """Yield raw body chunks, raising :class:`ResponseTooLarge` once the total passes ``cap``."""
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > cap:
            raise ResponseTooLarge
        yield chunk
