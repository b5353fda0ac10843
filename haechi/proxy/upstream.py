# SPDX-License-Identifier: Apache-2.0
"""The one pooled HTTP client the gateway talks to its upstream with.

A single :class:`httpx.AsyncClient` per gateway keeps connections alive across requests (no
per-request client or TLS handshake). Redirects are never followed (the upstream is fixed),
proxy environment variables are ignored, cookies are never stored (the client is shared by
all callers), and bodies are read raw — never transparently
decompressed — so the gateway always knows exactly which bytes it inspects.

The upstream URL's path prefix is honoured: with ``target.upstream`` set to
``http://host/prefix``, a request for ``/v1/x?y`` goes to ``http://host/prefix/v1/x?y``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Final
from urllib.parse import urlsplit

import httpx

__all__ = ["ResponseTooLarge", "Upstream", "declared_length", "iter_capped", "read_capped"]

_KEEPALIVE_CONNECTIONS: Final = 256
_KEEPALIVE_EXPIRY_S: Final = 30.0


class ResponseTooLarge(Exception):
    """The upstream body exceeded the configured cap."""


def _no_cookies() -> CookieJar:
    """A cookie jar that keeps nothing.

    The client is shared by every caller of the gateway: a cookie one upstream answer set
    must never ride along on another caller's request.
    """
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class Upstream:
    """The upstream base URL and the pooled client that reaches it."""

    def __init__(self, base_url: str, *, timeout_s: float) -> None:
        parts = urlsplit(base_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(
                max_connections=None,
                max_keepalive_connections=_KEEPALIVE_CONNECTIONS,
                keepalive_expiry=_KEEPALIVE_EXPIRY_S,
            ),
            follow_redirects=False,
            trust_env=False,
            cookies=_no_cookies(),
        )

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
    ) -> httpx.Response:
        """Send a request and return the response with its body still unread.

        The caller must close the response (``await response.aclose()``).
        """
        request = self.client.build_request(method, url, headers=list(headers), content=body)
        return await self.client.send(request, stream=True)

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self.client.aclose()


def declared_length(response: httpx.Response) -> int | None:
    """The upstream's ``Content-Length``, if it sent a valid one."""
    value = response.headers.get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """Read the raw body, raising :class:`ResponseTooLarge` as soon as it passes ``cap``."""
    declared = declared_length(response)
    if declared is not None and declared > cap:
        raise ResponseTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > cap:
            raise ResponseTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def iter_capped(response: httpx.Response, cap: int) -> AsyncIterator[bytes]:
    """Yield raw body chunks, raising :class:`ResponseTooLarge` once the total passes ``cap``."""
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > cap:
            raise ResponseTooLarge
        yield chunk
