# SPDX-License-Identifier: Apache-2.0
"""The gateway's upstream client on real sockets, against an upstream that answers raw bytes.

Each test scripts exactly what the upstream writes back (headers in any case, chunked or
close-delimited bodies, malformed or truncated answers, bytes after the answer, closed
keep-alive connections), then checks what the gateway or the client hands on.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from haechi.proxy.upstream import Upstream, UpstreamError, UpstreamTimeout, read_capped
from tests.upstream_server import gateway_in_front

EMAIL = "jane.doe@example.com"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}

#: Given the raw request (head and body), returns what to write back and whether to close.
Script = Callable[[bytes], tuple[bytes, bool]]


def answer(body: bytes, *head: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", *head]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_answer(document: object, *extra: str) -> bytes:
    body = json.dumps(document).encode()
    return answer(body, "Content-Type: application/json", f"Content-Length: {len(body)}", *extra)


class RawUpstream:
    """A threaded TCP server that reads HTTP/1.1 requests and writes scripted bytes."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed = 0
        self._closing = threading.Condition()
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._listener.close()

    def wait_closed(self, count: int, timeout: float = 5.0) -> None:
        """Wait until this server has closed ``count`` connections."""
        with self._closing:
            assert self._closing.wait_for(lambda: self.closed >= count, timeout)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    rest += conn.recv(65536)
                request, buffer = head + b"\r\n\r\n" + rest[:length], rest[length:]
                self.requests.append(request)
                reply, close = self.script(request)
                if reply:
                    conn.sendall(reply)
                if close:
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()
            with self._closing:
                self.closed += 1
                self._closing.notify_all()


@pytest.fixture
def raw_upstream() -> Iterator[Callable[..., RawUpstream]]:
    servers: list[RawUpstream] = []

    def start(script: Script, tls: ssl.SSLContext | None = None) -> RawUpstream:
        server = RawUpstream(script, tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def raw_response(url: str, request: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """Send ``request`` to the gateway; return its header fields and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        fields = [
            (name.strip().lower(), value.strip())
            for name, _, value in (line.decode().partition(":") for line in head.split(b"\r\n")[1:])
        ]
        length = int(dict(fields)["content-length"])
        while len(body) < length:
            body += sock.recv(65536)
        return fields, body


def post(path: str, document: object) -> bytes:
    body = json.dumps(document).encode()
    return (
        f"POST {path} HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


# --- through the gateway -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["enforce", "dry-run"])
def test_upstream_header_case_never_duplicates_framing_or_leaks_hop_by_hop(
    tmp_path: Path, raw_upstream: Callable[..., RawUpstream], mode: str
) -> None:
    document = {"choices": [{"message": {"content": f"write to {EMAIL}"}}]}
    reply = json_answer(
        document, "Connection: keep-alive", "Keep-Alive: timeout=5", "ETag: abc", "X-Trace: 7"
    )
    upstream = raw_upstream(lambda request: (reply, False))
    config = {
        "mode": mode,
        "policy": {"mode": mode},
        "responseProtection": {"enabled": True, "mode": mode},
    }
    with gateway_in_front(tmp_path, config, upstream_url=upstream.url) as gateway:
        fields, body = raw_response(gateway.url, post("/v1/chat/completions", CHAT))
    names = [name for name, _ in fields]
    assert names.count("content-length") == 1
    assert dict(fields)["content-length"] == str(len(body))
    assert "connection" not in names or dict(fields)["connection"] != "keep-alive"
    assert "keep-alive" not in names
    assert "transfer-encoding" not in names
    assert dict(fields)["x-trace"] == "7"
    if mode == "enforce":  # the answer was rewritten: its validator goes, the e-mail too
        assert "etag" not in names
        assert EMAIL.encode() not in body
    else:
        assert dict(fields)["etag"] == "abc"
        assert json.loads(body) == document


def test_chunked_and_close_delimited_answers_are_relayed(
    tmp_path: Path, raw_upstream: Callable[..., RawUpstream]
) -> None:
    text = json.dumps({"ok": True, "n": "x" * 5000}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (text[:7], text[7:]))
    replies = iter(
        [
            (
                answer(
                    chunks + b"0\r\n\r\n",
                    "Content-Type: application/json",
                    "Transfer-Encoding: chunked",
                ),
                False,
            ),
            (answer(text, "Content-Type: application/json", "Connection: close"), True),
        ]
    )
    upstream = raw_upstream(lambda request: next(replies))
    with gateway_in_front(tmp_path, upstream_url=upstream.url) as gateway:
        for _ in range(2):
            fields, body = raw_response(gateway.url, post("/v1/chat/completions", CHAT))
            assert body == text
            assert [name for name, _ in fields].count("content-length") == 1
            assert "transfer-encoding" not in dict(fields)


def test_keep_alive_connections_are_reused(
    tmp_path: Path, raw_upstream: Callable[..., RawUpstream]
) -> None:
    upstream = raw_upstream(lambda request: (json_answer({"ok": True}), False))
    with (
        gateway_in_front(tmp_path, upstream_url=upstream.url) as gateway,
        httpx.Client(base_url=gateway.url) as client,
    ):
        for _ in range(5):
            assert client.post("/v1/chat/completions", json=CHAT).json() == {"ok": True}
    assert len(upstream.requests) == 5
    assert upstream.connections == 1


def test_a_connection_the_upstream_closed_while_idle_is_not_used(
    tmp_path: Path, raw_upstream: Callable[..., RawUpstream]
) -> None:
    # The upstream drops every connection right after answering, without saying so.
    upstream = raw_upstream(lambda request: (json_answer({"ok": True}), True))
    with (
        gateway_in_front(tmp_path, upstream_url=upstream.url) as gateway,
        httpx.Client(base_url=gateway.url) as client,
    ):
        for sent in range(1, 5):
            response = client.post("/v1/chat/completions", json=CHAT)
            assert response.status_code == 200
            # Idle and closed before the next request comes (a close racing a request
            # already written into the connection is another matter: that one gets 502).
            upstream.wait_closed(sent)
    assert upstream.connections == 4


@pytest.mark.parametrize(
    "reply",
    [
        answer(b"hello", "Content-Length: 5", "Content-Length: 6"),
        b"NOT HTTP AT ALL\r\n\r\n",
        answer(b"short", "Content-Type: application/json", "Content-Length: 100"),
        answer(b"zz\r\nab\r\n", "Transfer-Encoding: chunked"),
        answer(b"", "Connection: upgrade", "Upgrade: websocket", status="101 Switching"),
        b"",
    ],
    ids=["two-lengths", "garbage", "cut-short", "bad-chunk", "upgrade", "closed"],
)
def test_a_broken_answer_is_a_502_and_nothing_of_it_is_relayed(
    tmp_path: Path, raw_upstream: Callable[..., RawUpstream], reply: bytes
) -> None:
    upstream = raw_upstream(lambda request: (reply, True))
    with (
        gateway_in_front(tmp_path, upstream_url=upstream.url) as gateway,
        httpx.Client(base_url=gateway.url) as client,
    ):
        response = client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    assert response.json()["error"] == "haechi_upstream_unreachable"


def test_bytes_after_an_answer_never_reach_the_next_request(
    tmp_path: Path, raw_upstream: Callable[..., RawUpstream]
) -> None:
    smuggled = json_answer({"smuggled": True})
    replies = iter([json_answer({"n": 1}) + smuggled, json_answer({"n": 2})])
    upstream = raw_upstream(lambda request: (next(replies), False))
    with (
        gateway_in_front(tmp_path, upstream_url=upstream.url) as gateway,
        httpx.Client(base_url=gateway.url) as client,
    ):
        first = client.post("/v1/chat/completions", json=CHAT)
        second = client.post("/v1/chat/completions", json=CHAT)
    assert first.json() == {"n": 1}
    assert second.json() == {"n": 2}
    assert upstream.connections == 2


def test_the_request_head_upstream(
    tmp_path: Path, raw_upstream: Callable[..., RawUpstream]
) -> None:
    upstream = raw_upstream(lambda request: (json_answer({"ok": True}), False))
    base = f"http://bob:p%40ss@127.0.0.1:{upstream.port}/prefix"
    with (
        gateway_in_front(tmp_path, upstream_url=base) as gateway,
        httpx.Client(base_url=gateway.url) as client,
    ):
        client.post(
            "/v1/chat/completions?x=1",
            json=CHAT,
            headers={"authorization": "Bearer caller", "user-agent": "test-agent"},
        )
    head, _, body = upstream.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /prefix/v1/chat/completions?x=1 HTTP/1.1"
    fields = [line.split(b": ", 1) for line in lines[1:]]
    names = [name for name, _ in fields]
    values = dict((name, value) for name, value in fields)
    assert names.count(b"host") == names.count(b"content-length") == 1
    assert names.count(b"authorization") == 1
    assert values[b"host"] == f"127.0.0.1:{upstream.port}".encode()
    assert values[b"content-length"] == str(len(body)).encode()
    assert values[b"authorization"] == b"Basic " + base64.b64encode(b"bob:p@ss")
    assert values[b"accept-encoding"] == b"identity"
    assert values[b"user-agent"] == b"test-agent"
    assert b"transfer-encoding" not in names
    assert json.loads(body) == CHAT


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_an_upstream_that_never_answers_is_a_504(
    tmp_path: Path, raw_upstream: Callable[..., RawUpstream], stream: bool
) -> None:
    upstream = raw_upstream(lambda request: (b"", False))
    config = {"limits": {"upstreamTimeoutMs": 300}, "streaming": {"requestMode": "inspect"}}
    with (
        gateway_in_front(tmp_path, config, upstream_url=upstream.url) as gateway,
        httpx.Client(base_url=gateway.url) as client,
    ):
        response = client.post("/v1/chat/completions", json={**CHAT, "stream": stream})
    assert response.status_code == 504
    assert response.json()["error"] == "haechi_upstream_timeout"


# --- the client itself -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_head_answers_have_no_body_and_do_not_confuse_the_next_request(
    raw_upstream: Callable[..., RawUpstream],
) -> None:
    def script(request: bytes) -> tuple[bytes, bool]:
        if request.startswith(b"HEAD"):
            return answer(b"", "Content-Length: 10"), False
        return answer(b"body", "Content-Length: 4"), False

    server = raw_upstream(script)
    upstream = Upstream(server.url, timeout_s=5)
    try:
        for method, expected in (("HEAD", b""), ("GET", b"body"), ("GET", b"body")):
            response = await upstream.open(method, upstream.url(b"/x", b""), [], None)
            try:
                assert response.status_code == 200
                assert await read_capped(response, 100) == expected
            finally:
                await response.aclose()
    finally:
        await upstream.aclose()
    assert server.connections == 2  # the HEAD connection is not reused; the GETs share one


@pytest.mark.anyio
async def test_a_body_that_stops_flowing_times_out(
    raw_upstream: Callable[..., RawUpstream],
) -> None:
    server = raw_upstream(lambda request: (answer(b"part", "Content-Length: 100"), False))
    upstream = Upstream(server.url, timeout_s=0.3)
    try:
        response = await upstream.open("GET", upstream.url(b"/", b""), [], None)
        try:
            with pytest.raises(UpstreamTimeout):
                await read_capped(response, 1000)
        finally:
            await response.aclose()
    finally:
        await upstream.aclose()


@pytest.mark.anyio
async def test_an_answer_head_that_never_comes_times_out_and_its_connection_is_dropped(
    raw_upstream: Callable[..., RawUpstream],
) -> None:
    replies = iter([b"", json_answer({"n": 2})])  # the first request is never answered
    server = raw_upstream(lambda request: (next(replies), False))
    upstream = Upstream(server.url, timeout_s=0.3)
    try:
        with pytest.raises(UpstreamTimeout):
            await upstream.open("POST", upstream.url(b"/", b""), [], b"{}")
        response = await upstream.open("POST", upstream.url(b"/", b""), [], b"{}")
        try:
            assert json.loads(await read_capped(response, 100)) == {"n": 2}
        finally:
            await response.aclose()
    finally:
        await upstream.aclose()
    assert server.connections == 2  # a late answer can never reach the next request


@pytest.mark.anyio
async def test_a_refused_connection_is_an_upstream_error_not_a_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    upstream = Upstream(f"http://127.0.0.1:{port}", timeout_s=5)
    try:
        with pytest.raises(UpstreamError, match="cannot connect") as raised:
            await upstream.open("GET", upstream.url(b"/", b""), [], None)
        assert not isinstance(raised.value, UpstreamTimeout)
    finally:
        await upstream.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "headers",
    [[(b"x-a", b"1\r\nx-injected: 1")], [(b"bad name", b"1")], [(b"x-a", b"a\x00b")]],
)
async def test_request_heads_that_could_split_are_refused(
    raw_upstream: Callable[..., RawUpstream], headers: list[tuple[bytes, bytes]]
) -> None:
    server = raw_upstream(lambda request: (json_answer({}), False))
    upstream = Upstream(server.url, timeout_s=5)
    with pytest.raises(ValueError, match="cannot be sent"):
        await upstream.open("POST", upstream.url(b"/", b""), headers, b"{}")
    with pytest.raises(ValueError, match="cannot be sent"):
        await upstream.open("POST", upstream.url(b"/a b", b""), [], b"{}")
    await upstream.aclose()
    assert server.requests == []


def _tls_files(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "upstream")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = directory / "up.key", directory / "up.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


@pytest.mark.anyio
async def test_https_upstreams_are_verified(
    tmp_path: Path, raw_upstream: Callable[..., RawUpstream], monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file, cert_file = _tls_files(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server = raw_upstream(lambda request: (answer(b"secure", "Content-Length: 6"), False), context)

    untrusting = Upstream(server.url, timeout_s=5)
    with pytest.raises(UpstreamError):
        await untrusting.open("GET", untrusting.url(b"/", b""), [], None)
    await untrusting.aclose()

    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    trusting = Upstream(server.url, timeout_s=5)
    try:
        for _ in range(2):
            response = await trusting.open("GET", trusting.url(b"/", b""), [], None)
            try:
                assert await read_capped(response, 100) == b"secure"
            finally:
                await response.aclose()
    finally:
        await trusting.aclose()
    assert server.connections == 2  # the refused handshake, then one reused connection


@pytest.mark.parametrize("protect", [True, False], ids=["protected", "unprotected"])
def test_a_declared_oversize_answer_is_refused_before_its_body(
    tmp_path: Path, raw_upstream: Callable[..., RawUpstream], protect: bool
) -> None:
    # The upstream declares far more than responseProtection.maxBytes, sends one byte and
    # stalls: the declaration alone is refused, without waiting for upstreamTimeoutMs.
    stall = answer(b"{", "Content-Type: application/json", "Content-Length: 99999999")
    upstream = raw_upstream(lambda request: (stall, False))
    config = {
        "responseProtection": {"enabled": protect, "maxBytes": 1000},
        "limits": {"upstreamTimeoutMs": 20000},
    }
    with gateway_in_front(tmp_path, config, upstream_url=upstream.url) as gateway:
        started = time.monotonic()
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=30)
        assert time.monotonic() - started < 10
        assert response.status_code == 502
        expected = "haechi_response_unprotected" if protect else "haechi_response_too_large"
        assert response.json()["error"] == expected
        assert response.json()["reason"] == "response_body_too_large"


@pytest.mark.parametrize("protect", [True, False], ids=["protected", "unprotected"])
def test_an_undeclared_oversize_answer_is_cut_at_the_cap(
    tmp_path: Path, raw_upstream: Callable[..., RawUpstream], protect: bool
) -> None:
    # Chunked, so no length is declared: the body is counted as it comes.
    chunk = b"x" * 600
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
    reply = answer(chunked, "Content-Type: application/json", "Transfer-Encoding: chunked")
    upstream = raw_upstream(lambda request: (reply, False))
    config = {"responseProtection": {"enabled": protect, "maxBytes": 1000}}
    with gateway_in_front(tmp_path, config, upstream_url=upstream.url) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT)
        assert response.status_code == 502
        assert response.json()["reason"] == "response_body_too_large"
        assert b"xxxx" not in response.content
