# SPDX-License-Identifier: Apache-2.0
"""``haechi proxy`` with TLS stopping: a connection whose handshake ends after the stop signal
is not served (real processes, real sockets)."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import threading
from pathlib import Path

import httpx
import pytest

from haechi.proxy.background import serve_in_thread
from tests.test_lifecycle_tls import _tls_gateway_config
from tests.test_lifecycle_workers import _until_shutdown_line
from tests.test_proxy_server import _proxy_process
from tests.upstream_server import Reply, UpstreamServer

_BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "late"}]}).encode()
_REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n" % len(_BODY) + _BODY
)


class _Handshake:
    """A TLS client handshake over a raw socket, stopped after the server's first flight:
    the gateway accepted the connection and is in its handshake, which ends when
    :meth:`finish` sends the client's last flight."""

    def __init__(self, host: str, port: int, cert_file: Path) -> None:
        context = ssl.create_default_context(cafile=str(cert_file))
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname="localhost")
        self.sock = socket.create_connection((host, port), timeout=20)
        self._step()  # the ClientHello
        self._incoming.write(self.sock.recv(65536))  # the server's answer to it

    def _step(self) -> bool:
        try:
            self._tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        self.sock.sendall(self._outgoing.read())
        return done

    def finish_and_ask(self) -> bytes:
        """End the handshake, send a chat request; the first bytes answered (``b""`` when
        the connection was closed unserved)."""
        try:
            while not self._step():
                self._incoming.write(self.sock.recv(65536))
            self._tls.write(_REQUEST)
            self.sock.sendall(self._outgoing.read())
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return b""
                self._incoming.write(data)
                try:
                    return self._tls.read(65536)
                except ssl.SSLWantReadError:
                    continue
        except (OSError, ssl.SSLError):  # closed or reset, unserved
            return b""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_connection_whose_handshake_ends_after_the_stop_is_not_served(
    tmp_path: Path, workers: int
) -> None:
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _tls_gateway_config(tmp_path, up.url, {"limits": {"shutdownGraceMs": 20000}})
        with _proxy_process(config, "--workers", str(workers)) as (process, url, _lines):
            host, port = url.removeprefix("https://").split(":")
            # An in-flight request keeps the gateway (and its worker) draining meanwhile.
            upstream.queue(Reply(delay=5, text="slow but complete"))
            trust = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
            slow: list[httpx.Response] = []
            chat = {"model": "m", "messages": []}
            thread = threading.Thread(
                target=lambda: slow.append(
                    httpx.post(f"{url}/v1/chat/completions", json=chat, verify=trust, timeout=30)
                )
            )
            thread.start()
            for _ in range(1000):
                if upstream.received:
                    break
                threading.Event().wait(0.01)
            assert len(upstream.received) == 1
            # Handed out in turn: with two workers one of them lands beside the slow request.
            late = [_Handshake(host, int(port), tmp_path / "cert.pem") for _ in range(workers)]
            process.send_signal(signal.SIGTERM)
            _until_shutdown_line(process)
            answers = [handshake.finish_and_ask() for handshake in late]
            for handshake in late:
                handshake.sock.close()
            thread.join()
            assert process.wait(timeout=60) == 0
    assert answers == [b""] * workers
    assert slow[0].status_code == 200
    assert len(upstream.received) == 1
