# SPDX-License-Identifier: Apache-2.0
"""Serve an ASGI app with uvicorn on a background thread.

``haechi demo`` runs the gateway and its demonstration upstream in one process, and the test
suite runs real servers next to synchronous clients (the official ``openai``/``anthropic``/
``ollama`` SDKs block). Both need the same thing: a real listening socket on a free loopback
port, served by uvicorn on its own event loop, stopped cleanly afterwards.

The socket is bound here (port 0 lets the kernel choose) and handed to uvicorn, so the port
is known before the server starts and there is no bind race.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from haechi.proxy._sockets import bind_socket

__all__ = ["BackgroundServer", "serve_in_thread"]

_START_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class BackgroundServer:
    """Where a background server listens and how to reach it."""

    host: str
    port: int
    scheme: str = "http"

    @property
    def url(self) -> str:
        """Base URL without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _loop_factory(loop: object) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A new uvloop event loop for ``loop="uvloop"``; otherwise asyncio's default."""
    if loop != "uvloop":
        return None
    import uvloop

    return uvloop.new_event_loop


@contextlib.contextmanager
def serve_in_thread(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, **uvicorn_options: Any
) -> Iterator[BackgroundServer]:
    """Serve ``app`` until the ``with`` block ends; yield where it listens.

    ``uvicorn_options`` go to :class:`uvicorn.Config` (``ssl_keyfile``, ``lifespan``,
    ``timeout_keep_alive``, ...). The server's startup must finish within ten seconds.
    ``loop="uvloop"`` serves on uvloop's event loop, as ``haechi proxy`` does where uvloop is
    installed (its transports buffer and pause writes differently from asyncio's); any other
    value, or none, on asyncio's.
    """
    sock = bind_socket(host, port)
    options: dict[str, Any] = {"log_level": "warning", "lifespan": "off", "access_log": False}
    options.update(uvicorn_options)
    config = uvicorn.Config(app, **options)
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with asyncio.Runner(loop_factory=_loop_factory(options.get("loop"))) as runner:
                runner.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name="haechi-background-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not server.started:
            raise RuntimeError(f"background server did not start: {failure[:1]!r}")
        scheme = "https" if options.get("ssl_keyfile") or options.get("ssl_certfile") else "http"
        yield BackgroundServer(host=host, port=sock.getsockname()[1], scheme=scheme)
    finally:
        server.should_exit = True
        thread.join(timeout=_START_TIMEOUT_S)
        sock.close()
