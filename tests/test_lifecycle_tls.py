# SPDX-License-Identifier: Apache-2.0
"""``haechi proxy`` with TLS material: what a key it cannot use, a client that does not
finish its handshake, idle connections at a stop, and connections the gateway closes, get
(real processes, real sockets)."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from haechi.proxy.background import serve_in_thread
from tests.cli import run_haechi
from tests.test_lifecycle_workers import _until_shutdown_line
from tests.test_proxy_server import _CHAT_REQUEST, _certificate, _proxy_process, _write_config
from tests.upstream_server import Reply, UpstreamServer, read_slowly

_LIVE = b"GET /__haechi/live HTTP/1.1\r\nhost: x\r\n\r\n"
#: An answer larger than the socket buffers hold: when the gateway closes the connection, it
#: still holds the end of it, and then the close_notify behind it, while the client reads.
_LARGE_TEXT = "word " * 1_600_000


def _encrypted_key(tmp_path: Path) -> dict[str, str]:
    key_file, cert_file, _pfx = _certificate(tmp_path)
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"key-pass"),
        )
    )
    return {"keyFile": str(encrypted), "certFile": str(cert_file)}


def _wrong_passphrase(tmp_path: Path) -> dict[str, str]:
    _key, _cert, pfx_file = _certificate(tmp_path)
    return {"pfxFile": str(pfx_file), "passphrase": "not-the-pfx-secret"}


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(
    ("material", "message"),
    [
        (_encrypted_key, "proxy.tls.keyFile is encrypted"),
        (_wrong_passphrase, "proxy.tls.pfxFile could not be loaded"),
    ],
)
def test_unusable_tls_material_is_a_named_error_in_every_process_model(
    tmp_path: Path, material: Callable[[Path], dict[str, str]], message: str, workers: str
) -> None:
    tls = material(tmp_path)
    config = _write_config(tmp_path, "http://127.0.0.1:9", {"proxy": {"tls": tls}})
    argv = ("proxy", "--config", str(config), "--port", "0", "--workers", workers)
    result = run_haechi(*argv, cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert message in result.stderr
    # Never prompted for, never a traceback, never the passphrase.
    assert "pass phrase" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert "not-the-pfx-secret" not in result.stderr + result.stdout
    assert "listening" not in result.stdout


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_tls_handshake_and_the_head_after_it_must_end_within_the_header_timeout(
    tmp_path: Path, workers: str
) -> None:
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _tls_gateway_config(tmp_path, up.url, {"limits": {"headersTimeoutMs": 300}})
        with _proxy_process(config, "--workers", workers) as (_process, url, _lines):
            host, port = url.removeprefix("https://").split(":")
            # Nothing at all, and the first bytes of a ClientHello that never ends: each is
            # closed by the gateway (asyncio's own handshake limit is a minute).
            for first in (b"", b"\x16\x03\x01\x02\x00\x01"):
                with socket.create_connection((host, int(port)), timeout=20) as sock:
                    sock.sendall(first)
                    assert sock.recv(65536) == b""
            trust = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
            # A head that never ends, after the handshake: closed, and the connection ends
            # without the client's reply to the close_notify.
            with _tls_connection(url, trust) as half:
                half.sendall(_LIVE[:20])
                assert _until_closed(half) == b""
            assert httpx.get(f"{url}/__haechi/live", verify=trust).status_code == 200


@contextmanager
def _tls_connection(
    url: str, trust: ssl.SSLContext, *, receive_buffer: int = 0
) -> Iterator[ssl.SSLSocket]:
    """A TLS connection to the gateway at ``url`` that reports a close without close_notify
    as an error (``receive_buffer``: a small receive buffer, for a client slow to read)."""
    host, port = url.removeprefix("https://").split(":")
    raw = socket.socket()
    raw.settimeout(20)
    if receive_buffer:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    raw.connect((host, int(port)))
    with trust.wrap_socket(raw, server_hostname=host, suppress_ragged_eofs=False) as sock:
        yield sock


def _tls_gateway_config(tmp_path: Path, upstream_url: str, extra: dict[str, object]) -> Path:
    key_file, cert_file, _pfx = _certificate(tmp_path)
    tls = {"keyFile": str(key_file), "certFile": str(cert_file)}
    return _write_config(tmp_path, upstream_url, {"proxy": {"tls": tls}, **extra})


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_stop_closes_idle_tls_connections_at_once(tmp_path: Path, workers: str) -> None:
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _tls_gateway_config(tmp_path, up.url, {"limits": {"shutdownGraceMs": 30000}})
        trust = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        with (
            _proxy_process(config, "--workers", workers) as (process, url, _lines),
            httpx.Client(verify=trust) as pooled,
            _tls_connection(url, trust) as idle,
            _tls_connection(url, trust) as half,
        ):
            # A pooled client connection after its request, another that asked and
            # read its answer, one in the middle of a request head: none replies to
            # a TLS close, and none has a request in flight.
            assert pooled.get(f"{url}/__haechi/live").status_code == 200
            idle.sendall(_LIVE)
            assert idle.recv(65536).startswith(b"HTTP/1.1 200")
            half.sendall(_LIVE[:20])
            process.send_signal(signal.SIGTERM)
            # At once, not when the 30 s grace is over.
            assert process.wait(timeout=10) == 0
            assert idle.recv(65536) == b""  # closed with close_notify, not cut


@contextmanager
def _slow_reader_of_a_large_answer(
    tmp_path: Path,
) -> Iterator[tuple[subprocess.Popen[str], ssl.SSLSocket]]:
    """A gateway with TLS whose upstream answers :data:`_LARGE_TEXT`, and a TLS connection
    to it with a small receive buffer (a client slow to read)."""
    upstream = UpstreamServer()
    upstream.queue(Reply(text=_LARGE_TEXT))
    with serve_in_thread(upstream) as up:
        extra = {
            "limits": {"shutdownGraceMs": 30000},
            "responseProtection": {"maxBytes": 16 * 1024 * 1024},
        }
        config = _tls_gateway_config(tmp_path, up.url, extra)
        trust = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        with (
            _proxy_process(config) as (process, url, _lines),
            _tls_connection(url, trust, receive_buffer=4096) as slow,
        ):
            yield process, slow


def _assert_the_whole_large_answer(answer: bytes) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert f"content-length: {len(body)}".encode() in head.lower()
    assert _LARGE_TEXT.strip() in body.decode()


def test_a_stop_lets_an_idle_tls_client_read_the_rest_of_its_answer(tmp_path: Path) -> None:
    with _slow_reader_of_a_large_answer(tmp_path) as (process, slow):
        slow.sendall(_CHAT_REQUEST)
        answer = slow.recv(65536)  # the whole answer is written: the connection is idle
        process.send_signal(signal.SIGTERM)
        _until_shutdown_line(process)
        while chunk := slow.recv(65536):
            answer += chunk
        assert process.wait(timeout=10) == 0
    _assert_the_whole_large_answer(answer)


def _until_closed(sock: ssl.SSLSocket) -> bytes:
    """What the gateway sends on ``sock`` up to its close_notify (a close without one is an
    error), once the connection is closed after it.

    The connection must end (the client sees the gateway's FIN) within 10 s of the
    close_notify, without the client's reply, which a client idle in a pool never sends: a
    TLS close waiting for that reply ends only after 30 s.
    """
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    with socket.socket(fileno=os.dup(sock.fileno())) as raw:
        raw.settimeout(10)
        assert raw.recv(1) == b""
    return answer


def test_tls_connections_the_gateway_closes_end_without_the_clients_close_notify(
    tmp_path: Path,
) -> None:
    frame = b"data: " + b"x" * 100 + b"\n\n"
    upstream = UpstreamServer()
    upstream.queue(Reply(wire=[frame] * 100))
    stream = b'{"model":"m","messages":[],"stream":true}'
    sent = {
        # Closed by the keep-alive timeout (5 s) after its answer.
        "idle": _LIVE,
        "connection close": _LIVE.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n"),
        "refused": b"CONNECT x:443 HTTP/1.1\r\nhost: x\r\n\r\n",
        # A pass-through stream cut at responseProtection.maxBytes.
        "cut stream": b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
        + f"content-type: application/json\r\ncontent-length: {len(stream)}\r\n\r\n".encode()
        + stream,
    }
    with serve_in_thread(upstream) as up:
        extra = {
            # Off: it would also close the refused connection, after its own time.
            "limits": {"headersTimeoutMs": 0},
            "streaming": {"requestMode": "pass-through"},
            "responseProtection": {"maxBytes": 2000},
        }
        config = _tls_gateway_config(tmp_path, up.url, extra)
        trust = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        with _proxy_process(config) as (_process, url, _lines), ExitStack() as stack:
            clients = {name: stack.enter_context(_tls_connection(url, trust)) for name in sent}
            for name, request in sent.items():
                clients[name].sendall(request)
            # The idle connection, closed last, is read last.
            answers = {name: _until_closed(clients[name]) for name in reversed(sent)}
    assert answers["idle"].startswith(b"HTTP/1.1 200")
    assert answers["connection close"].startswith(b"HTTP/1.1 200")
    assert answers["refused"].startswith(b"HTTP/1.1 400")
    assert b"haechi_invalid_proxy_target" in answers["refused"]
    assert answers["cut stream"].startswith(b"HTTP/1.1 200")
    assert not answers["cut stream"].endswith(b"0\r\n\r\n")  # the stream never ended


def test_a_tls_client_slow_to_read_gets_the_whole_answer_before_the_close(
    tmp_path: Path,
) -> None:
    with _slow_reader_of_a_large_answer(tmp_path) as (_process, slow):
        slow.sendall(_CHAT_REQUEST.replace(b"host: x\r\n", b"host: x\r\nconnection: close\r\n"))
        answer = _until_closed(slow)
    _assert_the_whole_large_answer(answer)


def _gateway_loop(
    tmp_path: Path, loop: str, *, default_tls_close_s: float | None = None
) -> dict[str, str]:
    """The environment of a gateway process on ``loop``: ``uvloop`` (the default where it is
    installed) or ``asyncio`` (uvloop hidden from the process). ``default_tls_close_s``
    shortens asyncio's own limit on a TLS close (30 s), which a close the gateway does not
    bound itself waits for."""
    if loop == "uvloop":
        return {}
    site = tmp_path / "site"
    site.mkdir()
    lines = ["import sys", "sys.modules['uvloop'] = None"]
    if default_tls_close_s is not None:
        lines += [
            "import asyncio.constants",
            f"asyncio.constants.SSL_SHUTDOWN_TIMEOUT = {default_tls_close_s}",
        ]
    (site / "sitecustomize.py").write_text("\n".join(lines) + "\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def _octet_upstream(size: int) -> UpstreamServer:
    """An upstream whose next answer is ``size`` bytes of one letter."""
    upstream = UpstreamServer()
    upstream.queue(Reply(body=b"x" * size, headers={"content-type": "application/octet-stream"}))
    return upstream


@contextmanager
def _octet_gateway(
    tmp_path: Path, size: int, write_timeout_ms: int, env: dict[str, str]
) -> Iterator[tuple[str, ssl.SSLContext]]:
    """A TLS gateway process (``env``) whose upstream answers ``size`` bytes of one letter,
    with response protection off and ``limits.writeTimeoutMs``; its URL and the context
    trusting its certificate."""
    with serve_in_thread(_octet_upstream(size)) as up:
        extra = {
            "responseProtection": {"enabled": False, "maxBytes": 2 * size},
            "limits": {"writeTimeoutMs": write_timeout_ms},
        }
        config = _tls_gateway_config(tmp_path, up.url, extra)
        trust = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        with _proxy_process(config, env=env) as (_process, url, _lines):
            yield url, trust


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_tls_client_that_does_not_read_a_large_answer_is_cut(tmp_path: Path, loop: str) -> None:
    """Handed to the TLS layer in one write, the answer went down to the socket transport
    whole, and the writes were never paused: the write deadline never started, and the
    connection stayed until the keep-alive timeout and asyncio's TLS close limit (35 s)."""
    size = 16 * 1024 * 1024  # far more than the socket buffers on the way hold
    env = _gateway_loop(tmp_path, loop)
    with (
        _octet_gateway(tmp_path, size, 300, env) as (url, trust),
        _tls_connection(url, trust, receive_buffer=4096) as client,
    ):
        client.sendall(_CHAT_REQUEST)
        assert client.recv(4096).startswith(b"HTTP/1.1 200")
        # Well past the write timeout, short of the keep-alive timeout (5 s).
        time.sleep(2.0)
        # What the gateway's kernel had accepted before the cut still arrives, then the
        # end of the connection; a connection still open delivers the whole answer.
        received = 0
        with socket.socket(fileno=os.dup(client.fileno())) as raw:
            raw.settimeout(10)
            while data := raw.recv(1 << 20):
                received += len(data)
        assert received < size
        assert httpx.get(f"{url}/__haechi/live", verify=trust).status_code == 200


def test_a_tls_close_waits_for_a_slow_reader_within_the_write_timeout(tmp_path: Path) -> None:
    """A TLS close (here after an answer with ``connection: close``) is bounded by the write
    timeout, as a plain one is, not by the TLS layer's own limit from the close (asyncio's
    30 s, shortened to 0.5 s here), which cut a client still reading off the end of its
    answer."""
    size = 3 * 1024 * 1024
    env = _gateway_loop(tmp_path, "asyncio", default_tls_close_s=0.5)
    with (
        _octet_gateway(tmp_path, size, 15000, env) as (url, trust),
        _tls_connection(url, trust, receive_buffer=4096) as slow,
    ):
        slow.sendall(_CHAT_REQUEST.replace(b"host: x\r\n", b"host: x\r\nconnection: close\r\n"))
        # A TLS record (16 KiB) per 20 ms at most: some 4 s, all of it after the close.
        answer = read_slowly(slow, b"", 65536, 0.02)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b"x" * size


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_tls_connection_logs_nothing_on_either_loop(tmp_path: Path, loop: str) -> None:
    """The TLS layer may already hold bytes of its own (session tickets) when the connection
    is made: telling the protocol to pause its writes before it was set up made asyncio's
    loop log an AttributeError per connection."""
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _tls_gateway_config(tmp_path, up.url, {})
        trust = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        with _proxy_process(config, env=_gateway_loop(tmp_path, loop)) as (process, url, _lines):
            with httpx.Client(verify=trust) as client:
                assert client.get(f"{url}/__haechi/live").status_code == 200
            process.send_signal(signal.SIGTERM)
            _out, errors = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "server_message" not in errors
