# SPDX-License-Identifier: Apache-2.0
"""Non-streamed answers from a hostile or broken upstream, written byte for byte.

Each test scripts exactly what the upstream writes back (chunked trailers, status codes
no HTTP server sends, odd charset parameters, a HEAD answer declaring a huge body, a
connection reset in the middle of a close-delimited body, answers nested too deeply) and
checks that nothing uninspected reaches the client and that the gateway answers with the
error it documents.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from haechi.proxy._http1 import MAX_HEAD_BYTES
from haechi.proxy.responses import declares_other_charset
from haechi.proxy.upstream import Upstream, read_capped
from tests.test_proxy_upstream import RawUpstream, answer
from tests.upstream_server import Gateway, Reply, gateway_in_front

EMAIL = "jane.doe@example.com"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
PROTECTED = {"responseProtection": {"enabled": True}}
JSON = "Content-Type: application/json"


def sized(body: bytes, *head: str, status: str = "200 OK") -> bytes:
    """An answer with ``body`` and a matching ``Content-Length``."""
    return answer(body, *head, f"Content-Length: {len(body)}", status=status)


def chunked(body: bytes, *head: str, trailer: bytes = b"") -> bytes:
    """``body`` as one chunk (with an extension), then the last chunk and ``trailer``."""
    framed = b"%x;ext=1\r\n%s\r\n0\r\n%s\r\n" % (len(body), body, trailer)
    return answer(framed, *head, "Transfer-Encoding: chunked")


def decisions(gateway: Gateway) -> list[tuple[str, str]]:
    return [(r["decision"], r["reason"]) for r in gateway.audit() if "decision" in r]


@pytest.fixture
def raw_upstream() -> Iterator[Callable[..., RawUpstream]]:
    servers: list[RawUpstream] = []

    def start(script: Callable[[bytes], tuple[bytes, bool]]) -> RawUpstream:
        server = RawUpstream(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def gateway_for(
    tmp_path: Path, raw_upstream: Callable[..., RawUpstream]
) -> Iterator[Callable[..., Gateway]]:
    """Start a gateway in front of a raw upstream that writes ``replies`` in turn."""
    with contextlib.ExitStack() as stack:

        def start(*replies: bytes, config: dict[str, object] | None = None) -> Gateway:
            scripted = iter(replies)
            upstream = raw_upstream(lambda request: (next(scripted), False))
            return stack.enter_context(
                gateway_in_front(tmp_path, config or PROTECTED, upstream_url=upstream.url)
            )

        yield start


# --- trailer fields ---------------------------------------------------------------------------


@pytest.mark.parametrize("protect", [True, False], ids=["protected", "unprotected"])
def test_trailer_fields_of_a_chunked_answer_never_become_headers(
    gateway_for: Callable[..., Gateway], protect: bool
) -> None:
    """llhttp reports trailer fields like header fields; they arrive after the body was read
    (so after nothing of them could be inspected) and must not reach the client as headers."""
    body = json.dumps({"choices": [{"message": {"content": "all good"}}]}).encode()
    trailer = f"X-Leak: {EMAIL}\r\nSet-Cookie: s={EMAIL}\r\n".encode()
    config = PROTECTED if protect else {}
    gateway = gateway_for(chunked(body, JSON, trailer=trailer), config=config)
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
    assert response.status_code == 200
    assert response.content == body
    assert "x-leak" not in response.headers
    assert "set-cookie" not in response.headers
    assert EMAIL not in str(response.headers)


def test_a_trailer_cannot_turn_an_inspected_answer_into_another_media_type(
    gateway_for: Callable[..., Gateway],
) -> None:
    """The decision is taken on the header fields; a trailing ``Content-Type`` that reads the
    same (clean) bytes as UTF-7 (where ``+AEA-`` is ``@``) must never reach the client."""
    body = json.dumps({"text": "jane.doe+AEA-example.com"}).encode()
    trailer = b"Content-Type: text/plain; charset=utf-7\r\n"
    gateway = gateway_for(chunked(body, JSON, trailer=trailer))
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
    assert response.status_code == 200
    assert response.headers.get_list("content-type") == ["application/json"]
    assert EMAIL not in response.text


@pytest.mark.anyio
async def test_the_client_hands_over_only_the_header_fields(
    raw_upstream: Callable[..., RawUpstream],
) -> None:
    server = raw_upstream(
        lambda request: (chunked(b"{}", JSON, "X-Head: 1", trailer=b"X-Tail: 2\r\n"), False)
    )
    upstream = Upstream(server.url, timeout_s=5)
    try:
        for _ in range(2):  # the connection is reused: trailers do not spoil it
            response = await upstream.open("GET", upstream.url(b"/", b""), [], None)
            try:
                assert await read_capped(response, 100) == b"{}"
                names = [name for name, _ in response.headers.raw]
                assert names == [b"content-type", b"x-head", b"transfer-encoding"]
            finally:
                await response.aclose()
    finally:
        await upstream.aclose()
    assert server.connections == 1


# --- charsets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset*0=utf-7",
        "application/json; charset*0=utf; charset*1=-7",
        'application/json; charset*0*="utf-7"',
        "application/json; CHARSET*0=utf-7",
    ],
)
def test_a_charset_split_into_rfc2231_continuations_is_another_charset(
    content_type: str,
) -> None:
    """httpx reads the charset with ``email.message``, which joins ``charset*0``,
    ``charset*1``... into one value (here UTF-7)."""
    assert declares_other_charset(content_type)


def test_a_utf7_answer_declared_through_continuations_never_reaches_the_client(
    gateway_for: Callable[..., Gateway],
) -> None:
    body = json.dumps({"error": {"message": "write to jane.doe+AEA-example.com"}}).encode()
    content_type = "Content-Type: application/json; charset*0=utf; charset*1=-7"
    gateway = gateway_for(sized(body, content_type, status="400 Bad Request"))
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
    assert EMAIL not in response.text  # httpx decodes with the declared charset
    assert response.status_code == 502
    assert response.json()["reason"] == "unsupported_charset"
    assert decisions(gateway)[-1] == ("response_unprotected_blocked", "unsupported_charset")


# --- answers no HTTP server sends ---------------------------------------------------------------


@pytest.mark.parametrize("protect", [True, False], ids=["protected", "unprotected"])
def test_an_answer_to_head_may_declare_any_length(
    gateway_for: Callable[..., Gateway], protect: bool
) -> None:
    """A HEAD answer's Content-Length is that of the body a GET would get: it is no body the
    gateway reads, so no cap applies to it."""
    head = answer(b"", JSON, "Content-Length: 99999999", "X-Model: m")
    gateway = gateway_for(head, config=PROTECTED if protect else {})
    response = httpx.head(f"{gateway.url}/v1/models", timeout=10)
    assert response.status_code == 200
    assert response.headers["x-model"] == "m"
    assert "content-length" not in response.headers


@pytest.mark.parametrize("status", ["600 Beyond", "999 Nine", "099 Early", "000 Zero"])
def test_a_status_code_outside_the_http_range_is_a_broken_answer(
    gateway_for: Callable[..., Gateway], status: str
) -> None:
    body = json.dumps({"text": "all good"}).encode()
    gateway = gateway_for(sized(body, JSON, status=status), sized(body, JSON))
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        response = client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 502
        assert response.json()["error"] == "haechi_upstream_unreachable"
        assert client.post("/v1/chat/completions", json=CHAT).json() == {"text": "all good"}


def test_a_close_delimited_body_cut_by_a_reset_is_never_relayed_whole(tmp_path: Path) -> None:
    """Without Content-Length or chunked framing only an orderly close ends the body; a reset
    (the upstream process died mid-answer) leaves it incomplete, which is a 502."""

    def serve(listener: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                conn.sendall(answer(b"[1, 2, 3", JSON))  # no framing: ends with the close
                time.sleep(0.2)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()  # SO_LINGER 0: a reset, not an orderly close

    with socket.create_server(("127.0.0.1", 0)) as listener:
        threading.Thread(target=serve, args=(listener,), daemon=True).start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with gateway_in_front(tmp_path, upstream_url=url) as gateway:
            response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
    assert response.status_code == 502
    assert response.json()["error"] == "haechi_upstream_unreachable"


# --- nesting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [300, 100_000])
def test_an_answer_nested_too_deeply_is_uninspectable_not_a_request_error(
    gateway_for: Callable[..., Gateway], depth: int
) -> None:
    """The request was fine; the answer, nested deeper than limits.maxNestingDepth (or than
    the JSON parser can go), cannot be inspected: 502, audited, nothing of it relayed."""
    body = b"[" * depth + json.dumps(f"mail {EMAIL}").encode() + b"]" * depth
    gateway = gateway_for(sized(body, JSON))
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=30)
    assert response.status_code == 502
    assert response.json()["error"] == "haechi_response_unprotected"
    assert response.json()["reason"] == "response_too_deeply_nested"
    assert EMAIL not in response.text
    assert decisions(gateway)[-1] == ("response_unprotected_blocked", "response_too_deeply_nested")


# --- decoded answers ------------------------------------------------------------------------------


def test_a_decoded_answer_loses_the_validators_of_its_compressed_bytes(
    gateway_for: Callable[..., Gateway],
) -> None:
    """Under allowCompressed the client gets the decoded bytes: an ETag or a digest of the
    gzip bytes describes another representation (a cache would answer a conditional request
    for one with the other; a digest check would fail)."""
    body = gzip.compress(json.dumps({"text": "all good"}).encode())
    validators = ('ETag: "gz1"', "Content-MD5: eA==", "Digest: sha-256=eA==", "X-Other: 1")
    reply = sized(body, JSON, "Content-Encoding: gzip", *validators)
    config = {"responseProtection": {"enabled": True, "allowCompressed": True}}
    gateway = gateway_for(reply, config=config)
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"text": "all good"}
    assert "content-encoding" not in response.headers
    for name in ("etag", "content-md5", "digest"):
        assert name not in response.headers
    assert response.headers["x-other"] == "1"


@pytest.mark.parametrize("odd", [{"odd": 1}, 7, "text", None])
def test_an_odd_element_among_token_pieces_does_not_let_a_value_through(
    tmp_path: Path, odd: object
) -> None:
    """A log-probability list with one element that is no token object: the pieces around
    it are still read joined (a client shows them one after another)."""
    pieces = [
        {"token": "Mail jane.doe@", "logprob": -0.1, "bytes": list(b"Mail jane.doe@")},
        {"token": "example.com", "logprob": -0.1, "bytes": list(b"example.com")},
        odd,
    ]
    choice = {
        "index": 0,
        "finish_reason": "stop",
        "message": {"role": "assistant", "content": "ok"},
        "logprobs": {"content": pieces},
    }
    body = json.dumps({"id": "c", "object": "chat.completion", "model": "m", "choices": [choice]})
    with gateway_in_front(tmp_path, PROTECTED) as gateway:
        gateway.upstream.queue(
            Reply(body=body.encode(), headers={"content-type": "application/json"})
        )
        sent = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=30)
    assert sent.status_code == 200
    tokens = [p.get("token", "") for p in sent.json()["choices"][0]["logprobs"]["content"][:2]]
    assert "jane.doe" not in "".join(tokens)
    assert "example.com" not in sent.text


@pytest.mark.parametrize("fields", [1, 4000], ids=["one-huge-field", "many-fields"])
def test_an_answer_head_past_the_bound_is_a_broken_answer(
    gateway_for: Callable[..., Gateway], fields: int
) -> None:
    """The header fields of an answer are kept until its head ends: an upstream sending
    them without end is cut off at :data:`MAX_HEAD_BYTES` instead of filling memory."""
    size = MAX_HEAD_BYTES // fields + 1
    head = [f"X-Pad-{index}: {'v' * size}" for index in range(fields)]
    body = json.dumps({"text": "all good"}).encode()
    gateway = gateway_for(sized(body, JSON, *head), sized(body, JSON, "X-Fine: yes"))
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        response = client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 502
        assert response.json()["error"] == "haechi_upstream_unreachable"
        assert "x-pad-0" not in response.headers
        fine = client.post("/v1/chat/completions", json=CHAT)
        assert fine.json() == {"text": "all good"}
        assert fine.headers["x-fine"] == "yes"
