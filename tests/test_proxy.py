# SPDX-License-Identifier: Apache-2.0
"""The gateway's request pipeline on a real socket, in front of a real local upstream.

Covers the routing, body and header-boundary attacks of the surfaces catalogue (§13.1,
§13.2, §13.4): every test asserts what the upstream received (or that it received nothing).
"""

from __future__ import annotations

import json
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from haechi.proxy.background import serve_in_thread
from haechi.proxy.pipeline import RAW_TARGET_KEY, request_path
from tests.upstream_server import Gateway, Reply, SharedGateways, UpstreamServer, gateway_in_front

EMAIL = "jane.doe@example.com"


def chat(text: str, **extra: object) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
def gateway(shared_gateway: SharedGateways) -> Gateway:
    """The module's gateway (default configuration), its upstream's record emptied."""
    return shared_gateway({})


@pytest.fixture
def own_gateway(tmp_path: Path) -> Iterator[Gateway]:
    """A gateway of the test's own, whose request counters start at zero."""
    with gateway_in_front(tmp_path) as running:
        yield running


def raw_request(gateway: Gateway, request: bytes) -> bytes:
    """Send raw bytes; return one complete response (status line, headers, body)."""
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.lower().split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body


def test_request_is_protected_before_it_reaches_the_upstream(gateway: Gateway) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(f"mail {EMAIL} now"))
    assert response.status_code == 200
    received = gateway.upstream.last.json()
    assert EMAIL not in json.dumps(received)
    assert received["messages"][0]["content"].startswith("mail ")
    assert response.headers["x-haechi-correlation-id"]
    records = gateway.audit()
    assert records[-1]["correlationId"] == response.headers["x-haechi-correlation-id"]
    assert EMAIL not in gateway.audit_text()


def test_correlation_ids_are_fresh_random_uuids(gateway: Gateway) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        ids = [
            client.post("/v1/chat/completions", json=chat("hi")).headers["x-haechi-correlation-id"]
            for _ in range(3)
        ]
    assert len(set(ids)) == 3
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_clean_bodies_are_forwarded_byte_for_byte(gateway: Gateway) -> None:
    body = b'{ "model" : "m",\n  "messages": [{"role": "user", "content": "hello \\u00e9"}] }'
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        content=body,
        headers={"content-type": "text/plain"},
    )
    assert response.status_code == 200
    assert gateway.upstream.last.body == body
    assert gateway.upstream.last.headers["content-type"] == "application/json"


def test_changed_bodies_are_reserialised_compactly(gateway: Gateway) -> None:
    httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(f"to {EMAIL}"))
    body = gateway.upstream.last.body
    assert b", " not in body
    assert EMAIL.encode() not in body


def test_multibyte_utf8_passes_intact(gateway: Gateway) -> None:
    text = "안녕하세요 🙂 héllo"
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat(text))
    assert response.status_code == 200
    assert gateway.upstream.last.json()["messages"][0]["content"] == text
    assert response.json()["choices"][0]["message"]["content"] == f"echo: {text}"


def test_policy_block_is_403_and_never_forwarded(gateway: Gateway) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=chat("card 4111 1111 1111 1111")
    )
    assert response.status_code == 403
    document = response.json()
    assert document["error"] == "haechi_policy_block"
    assert document["summary"]["byType"]["card"] == 1
    assert document["auditId"]
    assert gateway.upstream.received == []
    assert "4111" not in gateway.audit_text()


def test_empty_post_body_is_forwarded_as_an_empty_object(gateway: Gateway) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=b"")
    assert response.status_code == 200
    assert gateway.upstream.last.body == b"{}"


def test_get_is_forwarded_without_a_body(gateway: Gateway) -> None:
    response = httpx.get(f"{gateway.url}/v1/models?limit=5&after=x%20y")
    assert response.status_code == 200
    assert gateway.upstream.last.method == "GET"
    assert gateway.upstream.last.body == b""
    assert gateway.upstream.last.query == "limit=5&after=x%20y"


def test_unknown_routes_are_protected_in_both_directions(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"responseProtection": {"enabled": True}}) as gateway:
        # The model's answer on a path no adapter knows carries an address too.
        gateway.upstream.queue(Reply(body=json.dumps({"owner": f"write {EMAIL}"}).encode()))
        response = httpx.post(f"{gateway.url}/v2/anything", json={"note": f"reach {EMAIL}"})
        assert response.status_code == 200
        assert gateway.upstream.last.path == "/v2/anything"
        assert EMAIL not in gateway.upstream.last.text
        assert EMAIL not in response.text
        assert response.json()["owner"].startswith("write ")
        operations = [record["operation"] for record in gateway.audit()]
        assert operations == ["request:POST unknown", "response:POST unknown"]
        assert EMAIL not in gateway.audit_text()


# -- §13.2 body and parsing ---------------------------------------------------------------


def test_oversize_body_is_413_with_connection_close(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"limits": {"maxRequestBytes": 100}}) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat("x" * 200))
        assert response.status_code == 413
        assert response.json()["error"] == "haechi_request_body_too_large"
        assert response.headers["connection"] == "close"
        assert gateway.upstream.received == []


def test_oversize_streamed_body_without_length_is_cut(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        for _ in range(50):
            yield b"x" * 100
        yield b'"}]}'

    with gateway_in_front(tmp_path, {"limits": {"maxRequestBytes": 1000}}) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", content=chunks())
        assert response.status_code == 413
        assert gateway.upstream.received == []


def test_oversize_declared_length_is_refused_before_reading(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"limits": {"maxRequestBytes": 1000}}) as gateway:
        answer = raw_request(
            gateway,
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json"
            b"\r\ncontent-length: 5000000\r\n\r\n{",
        )
        assert answer.startswith(b"HTTP/1.1 413")
        assert b"haechi_request_body_too_large" in answer
        assert gateway.upstream.received == []


def test_invalid_utf8_is_400_and_never_forwarded(gateway: Gateway) -> None:
    body = b'{"messages": [{"role": "user", "content": "jane\xff@example.com"}]}'
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=body)
    assert response.status_code == 400
    assert response.json()["error"] == "haechi_request_body_not_utf8"
    assert gateway.upstream.received == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"a": NaN}',
        b"[1, 2",
        b'{"a": 1} x',
        # No double holds it: written again (an email redacted) it would be Infinity.
        b'{"messages": [{"role": "user", "content": "jane.doe@example.com"}], "t": 1e400}',
        b'{"a": -1.5E+999}',
    ],
)
def test_invalid_json_is_400(gateway: Gateway, body: bytes) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=body)
    assert response.status_code == 400
    assert response.json()["error"] == "haechi_invalid_json_request"
    assert gateway.upstream.received == []


@pytest.mark.parametrize(
    "members",
    [
        '"stream":"true"',
        '"stream":1',
        '"stream":"false"',
        '"stream":0',
        '"stream":{}',
        # A case-insensitive decoder (Go's) reads ``Stream``; others ignore it.
        '"stream":false,"Stream":true',
        '"STREAM":true',
    ],
)
def test_a_stream_flag_that_every_server_may_not_read_alike_is_400(
    gateway: Gateway, members: str
) -> None:
    body = f'{{"model":"m","messages":[{{"role":"user","content":"hi"}}],{members}}}'
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=body.encode())
    assert response.status_code == 400
    assert response.json()["error"] == "haechi_invalid_stream_flag"
    assert gateway.upstream.received == []


@pytest.mark.parametrize(("flag", "status"), [("true", 501), ("false", 200), ("null", 200)])
def test_a_boolean_or_null_stream_flag_is_read(gateway: Gateway, flag: str, status: int) -> None:
    body = f'{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"stream":{flag}}}'
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=body.encode())
    assert response.status_code == status  # streaming is off by default: 501 for true
    assert len(gateway.upstream.received) == (status == 200)


@pytest.mark.parametrize("depth", [300, 50_000])
def test_deep_nesting_is_413_and_never_forwarded(gateway: Gateway, depth: int) -> None:
    body = ("[" * depth + "]" * depth).encode()
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=body)
    assert response.status_code == 413
    assert response.json()["error"] == "haechi_request_too_deeply_nested"
    assert gateway.upstream.received == []


# -- §13.1 routing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        b"http://attacker.example/v1/chat/completions",
        b"https://x/v1/chat/completions",
        b"//attacker.example/v1/x",
        b"*",
        b"foo:/x",  # refused by the HTTP parser, answered in the same form
        b"http://attacker.example:99999/v1/x",  # read by the parser, not by uvicorn after it
    ],
)
def test_non_origin_targets_are_refused(gateway: Gateway, target: bytes) -> None:
    answer = raw_request(gateway, _post_to(target))
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"haechi_invalid_proxy_target" in answer
    assert gateway.upstream.received == []


@pytest.mark.parametrize("target", [b"https://x/v1/chat/completions", b"foo:/x"])
def test_scheme_targets_never_reach_the_upstream(gateway: Gateway, target: bytes) -> None:
    # Whoever refuses it (the gateway or the HTTP parser), it is a 400 and nothing leaves.
    assert raw_request(gateway, _post_to(target)).startswith(b"HTTP/1.1 400")
    assert gateway.upstream.received == []


def test_a_request_the_parser_refuses_gets_a_json_error(own_gateway: Gateway) -> None:
    answer = raw_request(own_gateway, b"P@ST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"content-type: application/json" in head
    assert b"connection: close" in head
    assert b"cache-control: no-store" in head
    assert re.search(rb"x-haechi-correlation-id: [0-9a-f-]{36}\r\n", head + b"\r\n")
    assert json.loads(body)["error"] == "haechi_invalid_http_request"
    assert own_gateway.upstream.received == []
    counted = 'haechi_requests_total{decision="invalid_request",mode="enforce",route="unknown"} 1.0'
    assert counted in own_gateway.metrics(counted)


def test_targets_refused_by_the_parser_and_by_the_gateway_are_counted_alike(
    own_gateway: Gateway,
) -> None:
    raw_request(own_gateway, _post_to(b"foo:/x"))
    raw_request(own_gateway, _post_to(b"http://attacker.example/v1/chat/completions"))
    counted = 'haechi_requests_total{decision="blocked",mode="enforce",route="unknown"} 2.0'
    assert counted in own_gateway.metrics(counted)


@pytest.mark.parametrize("target", [b"upstream.example:443", b"/v1/chat/completions"])
@pytest.mark.parametrize("after_an_answer", [False, True])
def test_connect_is_refused_and_ends_the_connection(
    gateway: Gateway, target: bytes, after_an_answer: bool
) -> None:
    """The gateway is not a forward proxy; and what follows a CONNECT is not read as HTTP by
    the parser, so it is never taken for the next request."""
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        if after_an_answer:
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n")
            received = b""
            while not received.endswith(b"}]}"):
                received += sock.recv(65536)
        sock.sendall(
            b"CONNECT " + target + b" HTTP/1.1\r\nhost: x\r\n\r\n"
            b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n"
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in head
    assert json.loads(body)["error"] == "haechi_invalid_proxy_target"
    assert [r.method for r in gateway.upstream.received] == ["GET"] * after_an_answer


#: The upgrade to HTTP/2 that curl --http2 asks for on http://.
_UPGRADE = (
    b"connection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\n"
    b"http2-settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
)


def until_closed(gateway: Gateway, request: bytes) -> bytes:
    """Send ``request`` on a new connection and read until the gateway closes it."""
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_a_request_asking_to_upgrade_is_served_and_so_is_the_next_one(gateway: Gateway) -> None:
    """The parser stops behind a request that asks to switch protocols (curl --http2 on
    http:// asks for h2c); the gateway switches to none, and goes on with the next request
    of the same read instead of dropping it."""
    received = until_closed(
        gateway,
        b"GET /v1/models HTTP/1.1\r\nhost: x\r\n" + _UPGRADE + b"\r\n"
        b"GET /v1/models?next HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    assert received.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert b"HTTP/1.1 101" not in received
    assert [r.query for r in gateway.upstream.received] == ["", "next"]


_SMUGGLED = b"GET /v1/models?smuggled HTTP/1.1\r\nhost: x\r\n\r\n"


@pytest.mark.parametrize(
    "framed_body",
    [
        b"content-length: %d\r\n\r\n%s" % (len(_SMUGGLED), _SMUGGLED),
        b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(_SMUGGLED), _SMUGGLED),
    ],
)
def test_a_request_asking_to_upgrade_with_a_body_is_refused(
    gateway: Gateway, framed_body: bytes
) -> None:
    """The parser reads no body after such a request: it was served without its body, and
    the body parsed as the next request (a request smuggled inside another one's body)."""
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n" + _UPGRADE
    received = until_closed(gateway, head + framed_body)
    answer_head, _, answer = received.partition(b"\r\n\r\n")
    assert answer_head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(answer)["error"] == "haechi_invalid_http_request"
    assert gateway.upstream.received == []


def _post_to(target: bytes) -> bytes:
    return b"POST " + target + b" HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"


def test_dot_segments_are_resolved_and_cannot_escape_the_reserved_prefix(
    gateway: Gateway,
) -> None:
    answer = raw_request(gateway, b"GET /v1/../__haechi/live HTTP/1.1\r\nhost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"ok": true' in answer
    answer = raw_request(gateway, b"GET /v1/%2e%2e/__haechi/other HTTP/1.1\r\nhost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 404")
    raw_request(gateway, b"GET /v1/a/./b/../models HTTP/1.1\r\nhost: x\r\n\r\n")
    assert gateway.upstream.last.path == "/v1/a/models"


def test_encoded_dot_segments_cannot_reach_the_reserved_prefix(gateway: Gateway) -> None:
    answer = raw_request(gateway, b"GET /v1/%2e%2e/__haechi/metrics HTTP/1.1\r\nhost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"haechi_requests_total" in answer  # answered by the gateway's own metrics route
    answer = raw_request(gateway, b"GET /v1/%2E%2e/__haechi/other HTTP/1.1\r\nhost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 404")
    assert gateway.upstream.received == []


@pytest.mark.parametrize(
    "target",
    [
        b"/%2f__haechi/metrics",
        b"/%2f%2f__haechi/metrics",
        b"/v1/..%2f__haechi/metrics",
        b"/x/..%2F..%2F__haechi/metrics",
        b"/v1/%2f%2f..%2f__haechi/metrics",
    ],
)
def test_spellings_an_upstream_routes_as_the_reserved_prefix_are_not_proxied(
    gateway: Gateway, target: bytes
) -> None:
    """An upstream that merges slashes and decodes first serves these as /__haechi/metrics:
    the gateway answers them itself."""
    answer = raw_request(gateway, b"GET " + target + b" HTTP/1.1\r\nhost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"haechi_requests_total" in answer
    assert gateway.upstream.received == []


@pytest.mark.parametrize(
    "target",
    [
        b"/v1/x/%2e%2e/chat/completions",
        b"/v1/x/%2E%2E/chat/completions",
        b"/v1/%2e/chat/x/%2E%2e/completions",
        b"/v1/%2e%2e/v1/chat/completions",
    ],
)
def test_encoded_dot_segments_are_resolved_before_routing_and_forwarding(
    own_gateway: Gateway, target: bytes
) -> None:
    body = json.dumps(chat("hi")).encode()
    request = (
        b"POST " + target + b" HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    assert raw_request(own_gateway, request).startswith(b"HTTP/1.1 200")
    assert own_gateway.upstream.last.path == "/v1/chat/completions"
    counted = (
        'haechi_requests_total{decision="forwarded",mode="enforce",route="chat-completions"} 1.0'
    )
    assert counted in own_gateway.metrics(counted)


def _resolve_rfc3986(path: str) -> str:
    """RFC 3986 section 5.2.4, step by step as written (the oracle for the property below)."""
    output = ""
    while path:
        if path.startswith("../"):
            path = path[3:]
        elif path.startswith("./"):
            path = path[2:]
        elif path.startswith("/./") or path == "/.":
            path = "/" + path[3:]
        elif path.startswith("/../") or path == "/..":
            path = "/" + path[4:]
            output = output[: output.rfind("/")] if "/" in output else ""
        elif path in (".", ".."):
            path = ""
        else:
            end = path.find("/", 1)
            end = len(path) if end == -1 else end
            output, path = output + path[:end], path[end:]
    return output


_DOT_SEGMENTS = (".", "..", "%2e", "%2E", "%2e%2e", "%2E%2e", ".%2e", "%2E.")
_OTHER_SEGMENTS = ("v1", "a", "__haechi", "", "a.b", "...", "%2e%2e%2e", "x%2ey")
_SEGMENTS = st.sampled_from((*_DOT_SEGMENTS, *_OTHER_SEGMENTS))


@settings(max_examples=500, deadline=None)
@given(segments=st.lists(_SEGMENTS, min_size=1, max_size=8))
def test_the_routed_path_has_no_dot_segment_left(segments: list[str]) -> None:
    raw = ("/" + "/".join(segments)).encode("ascii")
    assume(not raw.startswith(b"//"))  # refused as protocol-relative before any resolving
    scope = {RAW_TARGET_KEY: raw, "raw_path": raw, "path": unquote(raw.decode("ascii"))}
    forwarded, routed = request_path(scope)
    assert not {".", ".."} & set(routed.split("/"))
    dots_decoded = re.sub("%2e", ".", raw.decode("ascii"), flags=re.IGNORECASE)
    assert routed == _resolve_rfc3986(dots_decoded)
    assert unquote(forwarded.decode("ascii")) == routed


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/__haechi/anything", 404),
        ("GET", "/__haechi", 404),
        ("GET", "/__haechi/live/extra", 404),
        ("POST", "/__haechi/live", 405),
        ("DELETE", "/__haechi/metrics", 405),
        ("GET", "/__haechi/live?x=1", 200),
        ("GET", "/__haechi%2Flive", 200),
    ],
)
def test_reserved_prefix_is_never_proxied(
    gateway: Gateway, method: str, path: str, status: int
) -> None:
    response = httpx.request(method, f"{gateway.url}{path}")
    assert response.status_code == status
    assert gateway.upstream.received == []


def test_upstream_path_prefix_is_kept(tmp_path: Path) -> None:
    upstream = UpstreamServer()
    with (
        serve_in_thread(upstream) as up,
        gateway_in_front(tmp_path, upstream_url=f"{up.url}/prefix/") as gateway,
    ):
        response = httpx.post(f"{gateway.url}/v1/chat/completions?x=1", json=chat("hi"))
        assert response.status_code == 404  # the test upstream has no /prefix routes
        assert upstream.last.path == "/prefix/v1/chat/completions"
        assert upstream.last.query == "x=1"


# -- §13.4 header boundary -------------------------------------------------------------------


def test_header_allowlist_and_hop_by_hop(gateway: Gateway) -> None:
    headers = {
        "authorization": "Bearer sk-upstream-key",
        "x-api-key": "provider-key",
        "anthropic-version": "2023-06-01",
        "x-goog-api-key": "g-key",
        "openai-organization": "org",
        "user-agent": "my-app/1.0",
        "accept-language": "ko",
        "cookie": "session=abc",
        "set-cookie": "planted=1",
        "proxy-authorization": "Basic eA==",
        "te": "trailers",
        "trailer": "x-checksum",
        "keep-alive": "timeout=99",
        "upgrade": "h2c",
        "x-custom-unlisted": "dropped",
        "origin": "https://app.example",
        "accept-encoding": "gzip, br",
        "x-forwarded-for": "10.0.0.1",
        "content-type": "text/plain",
    }
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat("hi"), headers=headers)
    assert response.status_code == 200
    seen = gateway.upstream.last.headers
    for kept in (
        "x-api-key",
        "anthropic-version",
        "x-goog-api-key",
        "openai-organization",
        "user-agent",
        "accept-language",
    ):
        assert seen[kept] == headers[kept]
    # auth.provider is none: Authorization carries the upstream key and is forwarded.
    assert seen["authorization"] == "Bearer sk-upstream-key"
    for dropped in (
        "cookie",
        "set-cookie",
        "proxy-authorization",
        "te",
        "trailer",
        "keep-alive",
        "upgrade",
        "x-custom-unlisted",
        "origin",
        "x-forwarded-for",
    ):
        assert dropped not in seen
        assert headers[dropped] not in seen.values()  # not smuggled under another name
    assert seen["accept-encoding"] == "identity"
    assert seen["content-type"] == "application/json"


def test_connection_named_headers_are_hop_by_hop(gateway: Gateway) -> None:
    answer = raw_request(
        gateway,
        b"GET /v1/models HTTP/1.1\r\nhost: x\r\nconnection: keep-alive, x-api-key\r\n"
        b"x-api-key: secret\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200")
    assert "x-api-key" not in gateway.upstream.last.headers


def test_forward_headers_widens_the_allowlist(tmp_path: Path) -> None:
    config = {"target": {"forwardHeaders": ["x-tenant"]}}
    with gateway_in_front(tmp_path, config) as gateway:
        httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json=chat("hi"),
            headers={"x-tenant": "t1", "x-other": "o"},
        )
        assert gateway.upstream.last.headers["x-tenant"] == "t1"
        assert "x-other" not in gateway.upstream.last.headers


def test_response_hop_by_hop_headers_are_stripped(gateway: Gateway) -> None:
    gateway.upstream.queue(
        Reply(
            body=b'{"ok": true}',
            headers={
                "keep-alive": "timeout=5",
                "x-upstream": "yes",
                "set-cookie": "a=b",
                "proxy-authenticate": "x",
            },
        )
    )
    response = httpx.get(f"{gateway.url}/v1/models")
    assert response.headers["x-upstream"] == "yes"
    assert response.headers["set-cookie"] == "a=b"
    assert "keep-alive" not in response.headers
    assert "proxy-authenticate" not in response.headers


def test_upstream_cookies_never_leak_into_other_requests(gateway: Gateway) -> None:
    gateway.upstream.queue(Reply(body=b"{}", headers={"set-cookie": "session=victim; Path=/"}))
    first = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat("hi"))
    assert first.headers["set-cookie"].startswith("session=victim")
    httpx.post(f"{gateway.url}/v1/chat/completions", json=chat("hi"))
    assert "cookie" not in gateway.upstream.last.headers


def test_head_is_answered_with_the_upstream_headers_and_no_made_up_length(
    gateway: Gateway,
) -> None:
    # The upstream declares the length of the body a GET would get (uvicorn sends none).
    gateway.upstream.queue(
        Reply(body=b'{"object":"list","data":[]}', headers={"content-type": "application/json"})
    )
    answer = raw_request(
        gateway,
        b"HEAD /v1/models HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n\r\n",
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0].startswith(b"http/1.1 200")
    assert gateway.upstream.last.method == "HEAD"
    assert body == b""
    assert not [line for line in lines if line.startswith(b"content-length:")]
    assert not [line for line in lines if line.startswith(b"transfer-encoding:")]
    assert [line for line in lines if line.startswith(b"x-haechi-correlation-id:")]


def test_trailer_fields_of_a_chunked_body_are_not_forwarded_as_headers(gateway: Gateway) -> None:
    body = json.dumps(chat("hi")).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n" % (len(body), body)
        + b"0\r\nx-api-key: sk-set-in-a-trailer\r\nopenai-project: proj-x\r\n\r\n"
    )
    assert raw_request(gateway, request).startswith(b"HTTP/1.1 200")
    forwarded = gateway.upstream.last.headers
    assert "x-api-key" not in forwarded
    assert "openai-project" not in forwarded


def test_an_upstream_cannot_name_the_request_in_the_correlation_header(gateway: Gateway) -> None:
    forged = "00000000-0000-4000-8000-000000000000"
    gateway.upstream.queue(Reply(headers={"x-haechi-correlation-id": forged}))
    head = raw_request(gateway, _post_to(b"/v1/chat/completions")).partition(b"\r\n\r\n")[0]
    named = [line for line in head.split(b"\r\n") if line.lower().startswith(b"x-haechi-correl")]
    assert len(named) == 1
    assert forged.encode() not in named[0]
