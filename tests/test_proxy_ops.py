# SPDX-License-Identifier: Apache-2.0
"""Operations and resilience (§13.7): probes, metrics, in-flight ceiling, logs."""

from __future__ import annotations

import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import haechi
from haechi.audit.stores import MemoryAuditStore
from haechi.config import parse_config
from haechi.crypto import init_key_file
from tests.test_proxy import raw_request
from tests.test_proxy_auth import bearer, new_token
from tests.upstream_server import Gateway, Reply, gateway_config, gateway_in_front


def chat(text: str = "hello") -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


def test_live_health_ready(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path) as gateway:
        live = httpx.get(f"{gateway.url}/__haechi/live")
        assert live.json() == {"ok": True, "version": haechi.__version__}
        health = httpx.get(f"{gateway.url}/__haechi/health")
        assert health.json() == {"ok": True, "mode": "enforce", "version": haechi.__version__}
        ready = httpx.get(f"{gateway.url}/__haechi/ready")
        assert ready.status_code == 200
        checks = {"auditWritable": True, "vaultWritable": True, "keysReadable": True}
        assert ready.json()["checks"] == checks
        assert gateway.upstream.received == []


def test_ready_fails_closed_when_the_keys_cannot_be_read(tmp_path: Path) -> None:
    """A key file gone before the process read it: every request that needs a key (a token
    here) fails, so the gateway is not ready; it said so only for the audit log and the
    vault."""
    config = {"policy": {"actions": {"email": "tokenize"}}}
    with gateway_in_front(tmp_path, config) as gateway:
        (tmp_path / ".haechi" / "dev.keys.json").unlink()
        ready = httpx.get(f"{gateway.url}/__haechi/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {
            "auditWritable": True,
            "vaultWritable": True,
            "keysReadable": False,
        }
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions", json=chat("mail jane.doe@example.com")
        )
        assert response.status_code == 500
        assert gateway.upstream.received == []
        # Once the keys can be read, the gateway is ready, and keeps them in memory.
        init_key_file(tmp_path / ".haechi" / "dev.keys.json")
        assert httpx.get(f"{gateway.url}/__haechi/ready").status_code == 200
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions", json=chat("mail jane.doe@example.com")
        )
        assert response.status_code == 200
        (tmp_path / ".haechi" / "dev.keys.json").unlink()
        assert httpx.get(f"{gateway.url}/__haechi/ready").status_code == 200


@pytest.mark.parametrize(
    "framing", [b"content-length: 100000\r\n", b"transfer-encoding: chunked\r\n"]
)
def test_an_endpoint_answered_before_the_body_closes_the_connection(
    tmp_path: Path, framing: bytes
) -> None:
    """As any answer given before the body was read: the body is never drained."""
    with gateway_in_front(tmp_path) as gateway:
        answer = raw_request(
            gateway, b"GET /__haechi/live HTTP/1.1\r\nhost: x\r\n" + framing + b"\r\n"
        )
    head = answer.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in head


def test_health_reports_the_effective_mode(tmp_path: Path) -> None:
    config = {"mode": "enforce", "policy": {"mode": "dry-run"}}
    with gateway_in_front(tmp_path, config) as gateway:
        assert httpx.get(f"{gateway.url}/__haechi/health").json()["mode"] == "dry-run"


def test_ready_fails_closed_when_the_audit_log_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / ".haechi" / "audit.jsonl").mkdir(parents=True)
    with gateway_in_front(tmp_path) as gateway:
        ready = httpx.get(f"{gateway.url}/__haechi/ready")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        assert ready.json()["checks"]["auditWritable"] is False
        # And a request that needs an audit record is not forwarded either.
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat())
        assert response.status_code == 500
        assert response.json()["error"] == "haechi_protection_failed"
        assert gateway.upstream.received == []


@pytest.mark.parametrize(
    ("in_the_way", "check"),
    [
        ("token-vault.json", "vaultWritable"),
        ("token-vault.json.lock", "vaultWritable"),
        ("audit.anchor.jsonl", "auditWritable"),
    ],
)
def test_ready_fails_closed_when_a_vault_or_anchor_write_would_fail(
    tmp_path: Path, in_the_way: str, check: str
) -> None:
    state = tmp_path / ".haechi"
    (state / in_the_way).mkdir(parents=True)
    config = {
        "policy": {"actions": {"email": "tokenize"}},
        "audit": {"anchor": {"mode": "file", "path": str(state / "audit.anchor.jsonl")}},
    }
    with gateway_in_front(tmp_path, config) as gateway:
        ready = httpx.get(f"{gateway.url}/__haechi/ready")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        assert ready.json()["checks"][check] is False
        # What readiness predicted: a request that needs the write is not forwarded.
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions", json=chat("mail jane.doe@example.com")
        )
        assert response.status_code == 500
        assert response.json()["error"] == "haechi_protection_failed"
        assert gateway.upstream.received == []


def test_metrics_count_traffic_without_payload_text(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path) as gateway:
        httpx.post(f"{gateway.url}/v1/chat/completions", json=chat("mail jane.doe@example.com"))
        httpx.post(f"{gateway.url}/v1/chat/completions", json=chat("card 4111 1111 1111 1111"))
        gateway.metrics('haechi_request_duration_seconds_count{route="chat-completions"} 2.0')
        response = httpx.get(f"{gateway.url}/__haechi/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = response.text
        assert (
            'haechi_requests_total{decision="forwarded",mode="enforce",'
            'route="chat-completions"} 1.0' in text
        )
        assert 'decision="blocked"' in text
        assert "haechi_blocks_total 1.0" in text
        assert 'haechi_request_duration_seconds_count{route="chat-completions"} 2.0' in text
        assert "jane" not in text
        assert "4111" not in text


def test_metrics_can_be_disabled(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, {"metrics": {"enabled": False}}) as gateway:
        response = httpx.get(f"{gateway.url}/__haechi/metrics")
        assert response.status_code == 404
        assert response.json()["error"] == "haechi_metrics_disabled"


@contextmanager
def _slot_taken(
    gateway: Gateway, headers: dict[str, str] | None = None
) -> Iterator[list[httpx.Response]]:
    """Hold one in-flight request (the upstream answers after 1 s) for the ``with`` block;
    yields the list its response lands in once the block ends."""
    gateway.upstream.queue(Reply(delay=1.0))
    slow: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: slow.append(
            httpx.post(
                f"{gateway.url}/v1/chat/completions", json=chat(), headers=headers, timeout=10
            )
        )
    )
    thread.start()
    for _ in range(200):  # wait until the slow request reached the upstream
        if gateway.upstream.received:
            break
        threading.Event().wait(0.01)
    try:
        yield slow
    finally:
        thread.join()


def test_in_flight_ceiling_answers_503_with_retry_after(tmp_path: Path) -> None:
    config = {"limits": {"maxInFlight": 1, "shutdownGraceMs": 2500}}
    with gateway_in_front(tmp_path, config) as gateway:
        with _slot_taken(gateway) as slow:
            refused = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat())
            assert refused.status_code == 503
            assert refused.json()["error"] == "haechi_overloaded"
            assert refused.headers["retry-after"] == "3"
            assert httpx.get(f"{gateway.url}/__haechi/live").status_code == 200
            assert httpx.get(f"{gateway.url}/__haechi/metrics").status_code == 200
        assert slow[0].status_code == 200
        assert len(gateway.upstream.received) == 1
        assert "haechi_overloaded_total 1.0" in gateway.metrics("haechi_overloaded_total 1.0")
        assert httpx.post(f"{gateway.url}/v1/chat/completions", json=chat()).status_code == 200


def test_in_flight_ceiling_runs_before_auth_and_before_the_body(tmp_path: Path) -> None:
    config = {"auth": {"provider": "bearer"}, "limits": {"maxInFlight": 1}}
    with gateway_in_front(tmp_path, config) as gateway:
        _id, token = new_token(gateway)
        with _slot_taken(gateway, bearer(token)) as slow:
            # No credential and a declared body that never comes: a gateway that
            # authenticated first would answer 401, one that read the body would hang.
            answer = raw_request(
                gateway,
                b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n",
            )
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503")
        assert b"\r\nretry-after: 10" in head.lower()
        assert json.loads(body)["error"] == "haechi_overloaded"
        assert slow[0].status_code == 200
        assert len(gateway.upstream.received) == 1
        assert not [r for r in gateway.audit() if r.get("decision") == "auth_denied"]
        assert "haechi_auth_denied_total 0.0" in gateway.metrics()


def test_request_body_timeout_is_408(tmp_path: Path) -> None:
    import socket

    with gateway_in_front(tmp_path, {"limits": {"requestTimeoutMs": 200}}) as gateway:
        host, port = gateway.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"
            )
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408")
        assert gateway.upstream.received == []


def test_slow_headers_are_cut_off(tmp_path: Path) -> None:
    import socket

    with gateway_in_front(tmp_path, {"limits": {"headersTimeoutMs": 200}}) as gateway:
        host, port = gateway.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
            assert sock.recv(65536) == b""  # closed by the gateway, nothing answered
        assert gateway.upstream.received == []


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    tmp_path: Path,
) -> None:
    import socket
    import time

    with gateway_in_front(tmp_path, {"limits": {"headersTimeoutMs": 200}}) as gateway:
        host, port = gateway.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            started = time.monotonic()
            assert sock.recv(65536) == b""  # closed by the gateway, nothing answered
            assert time.monotonic() - started < 4


def test_default_client_timeouts_are_in_force(tmp_path: Path) -> None:
    """With no limits configured, headers get 60 s and a body 300 s (Node's defaults), so a
    client that never finishes its request cannot hold a connection and an in-flight slot
    forever. Observed on the values the gateway is built with: the socket tests above show
    what a timeout does, with short explicit values."""
    from haechi.proxy.server import uvicorn_options

    with gateway_in_front(tmp_path) as gateway:
        protocol = uvicorn_options(gateway.runtime.config)["http"]
        assert protocol.headers_timeout_s == 60.0
        assert gateway.app._request_timeout_s == 300.0
    off = gateway_config(tmp_path, "http://127.0.0.1:9", {"limits": {"headersTimeoutMs": 0}})
    assert uvicorn_options(parse_config(off))["http"].headers_timeout_s is None


class _Refuses:
    name = "refuses"

    async def allow(self, key: str, requests_per_minute: float) -> bool:
        return False


class _Explodes(MemoryAuditStore):
    """An audit store whose backend fails, quoting what it held: the 429's record cannot be
    written, an error nothing expects."""

    async def append(self, build: Any, *, committed: Any = None) -> dict[str, Any]:
        raise RuntimeError("audit backend says jane.doe@example.com")


def _failing() -> dict[str, Any]:
    """Providers that refuse a request by the rate limit, then fail to write its record."""
    return {"rate_limiter": _Refuses(), "audit_store": _Explodes()}


def test_internal_errors_are_generic_and_logged_without_payload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = {"policy": {"rate": {"requestsPerMinute": 5}}}
    with (
        caplog.at_level(logging.ERROR, logger="haechi.proxy"),
        gateway_in_front(tmp_path, config, providers=_failing()) as gateway,
    ):
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions", json=chat("jane.doe@example.com")
        )
        assert response.status_code == 500
        assert response.json() == {"error": "haechi_proxy_error", "message": "Internal proxy error"}
        assert gateway.upstream.received == []
    records = [r for r in caplog.records if r.getMessage() == "proxy_internal_error"]
    assert records
    fields: dict[str, Any] = records[0].haechi_fields  # type: ignore[attr-defined]
    assert fields["errorName"] == "AuditError"
    assert fields["correlationId"] == response.headers["x-haechi-correlation-id"]
    assert "jane" not in caplog.text


def test_json_logs_carry_the_correlation_id_and_no_payload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from haechi.proxy.logs import configure_logging

    config = {"policy": {"rate": {"requestsPerMinute": 5}}}
    hooks = warnings.showwarning, sys.unraisablehook, threading.excepthook
    configure_logging("json")
    try:
        with gateway_in_front(tmp_path, config, providers=_failing()) as gw:
            response = httpx.post(
                f"{gw.url}/v1/chat/completions",
                json=chat("jane.doe@example.com"),
                headers={"authorization": "Bearer sk-secret-value"},
            )
    finally:
        for name in ("haechi.proxy", "haechi", "py.warnings"):
            logging.getLogger(name).handlers.clear()
        warnings.showwarning, sys.unraisablehook, threading.excepthook = hooks
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    event = next(line for line in lines if line["event"] == "proxy_internal_error")
    assert event["level"] == "error"
    assert event["correlationId"] == response.headers["x-haechi-correlation-id"]
    assert event["statusCode"] == 500
    everything = captured.out + captured.err
    assert "jane" not in everything
    assert "sk-secret-value" not in everything


def test_a_request_the_server_cuts_counts_as_cancelled(tmp_path: Path) -> None:
    """A request still waiting on the upstream when the shutdown grace runs out is cut by
    the server: it was not forwarded to the client, and is not counted so."""
    errors: list[BaseException] = []

    def post() -> None:
        try:
            chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            httpx.post(f"{gateway.url}/v1/chat/completions", json=chat, timeout=60)
        except httpx.HTTPError as exc:  # the connection may be cut with it
            errors.append(exc)

    with gateway_in_front(tmp_path, {"limits": {"shutdownGraceMs": 200}}) as gateway:
        gateway.upstream.queue(Reply(delay=3))
        client = threading.Thread(target=post)
        client.start()
        for _ in range(1000):
            if gateway.upstream.received:
                break
            threading.Event().wait(0.01)
        assert gateway.upstream.received
    client.join(timeout=60)
    exposition = bytes(gateway.runtime.metrics.render()[0]).decode()
    assert 'decision="cancelled"' in exposition
    assert 'decision="forwarded"' not in exposition
