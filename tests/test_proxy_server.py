# SPDX-License-Identifier: Apache-2.0
"""Serving the gateway (§13.1 binding, TLS, drain) and its commands, as real processes."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from haechi.auth import add_token
from haechi.config import parse_config
from haechi.crypto import init_key_file
from haechi.errors import ConfigError
from haechi.proxy.background import serve_in_thread
from haechi.proxy.server import is_loopback, plan_listen
from tests.cli import proxy_start_events, run_haechi
from tests.upstream_server import Reply, UpstreamServer, gateway_config, gateway_in_front

HAECHI = [sys.executable, "-m", "haechi"]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0:0:0:0:0:0:0:1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("::ffff:127.0.0.1", False),
        ("example.com", False),
    ],
)
def test_loopback_predicate(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _settings(**proxy: Any) -> Any:
    return parse_config({"proxy": proxy})


def test_bind_guards() -> None:
    plan = plan_listen(_settings(), host="127.0.0.1", port=1, allow_remote_bind=False)
    assert (plan.scheme, plan.forwarded_proto_gate) == ("http", False)
    with pytest.raises(ConfigError, match="non-loopback"):
        plan_listen(_settings(), host="0.0.0.0", port=1, allow_remote_bind=False)
    with pytest.raises(ConfigError, match="without TLS"):
        plan_listen(_settings(), host="0.0.0.0", port=1, allow_remote_bind=True)
    trusted = plan_listen(
        _settings(trustForwardedProto=True), host="0.0.0.0", port=1, allow_remote_bind=True
    )
    assert trusted.forwarded_proto_gate
    tls = {"keyFile": "k.pem", "certFile": "c.pem"}
    with_tls = plan_listen(_settings(tls=tls), host="::", port=1, allow_remote_bind=True)
    assert (with_tls.scheme, with_tls.forwarded_proto_gate) == ("https", False)
    loop_tls = plan_listen(_settings(tls=tls), host="127.0.0.1", port=1, allow_remote_bind=False)
    assert loop_tls.scheme == "https"


def _auth_denials(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("decision") == "auth_denied"]


def test_forwarded_proto_gate(tmp_path: Path) -> None:
    config = {"auth": {"provider": "bearer"}}
    with gateway_in_front(tmp_path, config, forwarded_proto_gate=True) as gateway:
        _record, token = add_token(
            gateway.runtime.config.auth.store, gateway.runtime.crypto, token_type="user"
        )
        url = f"{gateway.url}/v1/chat/completions"
        body = {"model": "m", "messages": []}
        missing = httpx.post(url, json=body)
        assert missing.status_code == 403
        assert missing.json()["error"] == "haechi_forwarded_proto_required"
        # Every hop must be https: a proxy that appends puts the client's claim first.
        for proto in ("http", "http, https", "HTTPS, http", "https,", ""):
            refused = httpx.post(url, json=body, headers={"x-forwarded-proto": proto})
            assert refused.status_code == 403
        # The gate runs before authentication: none of these was an auth decision.
        assert _auth_denials(gateway.audit()) == []
        assert gateway.upstream.received == []
        assert httpx.get(f"{gateway.url}/__haechi/live").status_code == 200
        passed = httpx.post(url, json=body, headers={"x-forwarded-proto": "HTTPS, https"})
        assert passed.status_code == 401
        twice = [("x-forwarded-proto", "https"), ("x-forwarded-proto", "http")]
        assert httpx.post(url, json=body, headers=twice).status_code == 403
        ok = httpx.post(
            url,
            json=body,
            headers={"x-forwarded-proto": "https", "authorization": f"Bearer {token}"},
        )
        assert ok.status_code == 200


# -- processes --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(workdir: Path, upstream_url: str, extra: dict[str, Any] | None = None) -> Path:
    settings = gateway_config(workdir, upstream_url, extra)
    init_key_file(settings["keys"]["keyFile"])
    path = workdir / "haechi.config.json"
    path.write_text(json.dumps(settings))
    return path


@contextmanager
def _proxy_process(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    argv = [*HAECHI, "proxy", "--config", str(config), "--port", "0", *args]
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=config.parent,
    )
    assert process.stdout is not None
    lines: list[str] = []
    url = ""
    try:
        for line in process.stdout:
            lines.append(line)
            if '"proxy_listening"' in line:
                event = json.loads(line)
                url = f"{event['scheme']}://{event['host']}:{event['port']}"
                break
            if "listening on" in line:
                url = line.strip().rsplit(" ", 1)[-1]
                break
        yield process, url, lines
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def slow_chats(
    url: str, upstream: UpstreamServer, count: int, delay: float
) -> tuple[list[threading.Thread], list[httpx.Response]]:
    """Start ``count`` chat requests the upstream answers after ``delay`` seconds, and wait
    until it has them all: the threads to join, and the list their answers go to."""
    for _ in range(count):
        upstream.queue(Reply(delay=delay, text="slow but complete"))
    results: list[httpx.Response] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                httpx.post(f"{url}/v1/chat/completions", json={"messages": []}, timeout=30)
            )
        )
        for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    for _ in range(1000):
        if len(upstream.received) == count:
            break
        threading.Event().wait(0.01)
    assert len(upstream.received) == count
    return threads, results


def test_proxy_command_serves_and_drains_on_sigterm(tmp_path: Path) -> None:
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _write_config(tmp_path, up.url, {"limits": {"shutdownGraceMs": 5000}})
        with _proxy_process(config) as (process, url, lines):
            assert url.startswith("http://127.0.0.1:")
            (slow,), results = slow_chats(url, upstream, 1, delay=1.0)
            process.send_signal(signal.SIGTERM)
            slow.join()
            assert process.wait(timeout=10) == 0
            out = process.stdout.read() if process.stdout else ""
            assert results[0].status_code == 200
            assert "slow but complete" in results[0].text
            assert f"Upstream: {up.url}" in out
            assert "Mode: enforce" in out
            assert "shutting down (SIGTERM)" in "".join(lines) + out


def test_forwarded_proto_gate_of_the_proxy_command(tmp_path: Path) -> None:
    # The gate as `haechi proxy` wires it: remote bind + trustForwardedProto, no TLS.
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _write_config(
            tmp_path,
            up.url,
            {"proxy": {"trustForwardedProto": True}, "auth": {"provider": "bearer"}},
        )
        args = ("--host", "0.0.0.0", "--allow-remote-bind")
        with _proxy_process(config, *args) as (_process, url, _lines):
            base = url.replace("0.0.0.0", "127.0.0.1")
            chat_url = f"{base}/v1/chat/completions"
            body = {"model": "m", "messages": []}
            assert httpx.post(chat_url, json=body).status_code == 403
            refused = httpx.post(chat_url, json=body, headers={"x-forwarded-proto": "http, https"})
            assert refused.status_code == 403
            assert refused.json()["error"] == "haechi_forwarded_proto_required"
            assert httpx.get(f"{base}/__haechi/live").status_code == 200
            passed = httpx.post(chat_url, json=body, headers={"x-forwarded-proto": "https"})
            assert passed.status_code == 401
        # Only the request that passed the gate was an authentication decision.
        audit = tmp_path / ".haechi" / "audit.jsonl"
        records = [json.loads(line) for line in audit.read_text().splitlines()]
        assert len(_auth_denials(records)) == 1
        assert upstream.received == []


@dataclass
class _Cut:
    """What a SIGTERM did to an idle and a hung connection (seconds after the signal)."""

    idle_closed: float
    hung_closed: float
    hung_answer: bytes
    exit_code: int
    stderr: str


_CHAT_REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    b"content-length: 15\r\n\r\n" + b'{"messages":[]}'
)


def _sigterm_with_a_hung_request(workdir: Path, grace_ms: int, env: dict[str, str]) -> _Cut:
    def until_closed(sock: socket.socket) -> bytes:
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data

    # An upstream that accepts the request and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(5)
        upstream_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        config = _write_config(workdir, upstream_url, {"limits": {"shutdownGraceMs": grace_ms}})
        with _proxy_process(config, env=env) as (process, url, _lines):
            address = url.removeprefix("http://").split(":")
            idle = socket.create_connection((address[0], int(address[1])), timeout=10)
            hung = socket.create_connection((address[0], int(address[1])), timeout=10)
            with idle, hung:
                idle.sendall(b"GET /__haechi/live HTTP/1.1\r\nhost: x\r\n\r\n")
                assert idle.recv(65536).startswith(b"HTTP/1.1 200")  # now idle, kept alive
                hung.sendall(_CHAT_REQUEST)
                accepted, _ = silent.accept()
                with accepted:
                    assert accepted.recv(65536).startswith(b"POST /v1/chat/completions")
                    signalled = time.monotonic()
                    process.send_signal(signal.SIGTERM)
                    until_closed(idle)
                    idle_closed = time.monotonic() - signalled
                    answer = until_closed(hung)
                    hung_closed = time.monotonic() - signalled
                    code = process.wait(timeout=10)
            stderr = process.stderr.read() if process.stderr else ""
    return _Cut(idle_closed, hung_closed, answer, code, stderr)


def test_sigterm_closes_idle_connections_and_cuts_hung_requests_after_the_grace(
    tmp_path: Path,
) -> None:
    cut = _sigterm_with_a_hung_request(tmp_path, grace_ms=1000, env={})
    # Idle keep-alive connections go at once, not at the end of the grace period...
    assert cut.idle_closed < 1.0
    # ...a request the upstream never answers gets the whole grace, then is cut.
    assert 1.0 <= cut.hung_closed < 5.0
    assert not cut.hung_answer.startswith(b"HTTP/1.1 2")
    assert cut.exit_code == 0


def test_sigterm_cut_keeps_json_logs_json(tmp_path: Path) -> None:
    cut = _sigterm_with_a_hung_request(tmp_path, grace_ms=300, env={"HAECHI_LOG_FORMAT": "json"})
    assert cut.exit_code == 0
    events = [json.loads(line) for line in cut.stderr.splitlines()]
    assert all(isinstance(event, dict) for event in events)
    # uvicorn's own lines are there, as JSON, with the exception's class and no traceback.
    server = [event for event in events if event["event"] == "server_message"]
    assert any(event["message"].startswith("Cancel 1 running task") for event in server)
    assert {"message": "Exception in ASGI application", "errorName": "CancelledError"} in [
        {key: event[key] for key in ("message", "errorName") if key in event} for event in server
    ]
    assert "Traceback" not in cut.stderr


@pytest.mark.parametrize("target", ["openai-compatible", "mcp-http"])
def test_proxy_command_json_logs(tmp_path: Path, target: str) -> None:
    """The warning of disabled response protection is not given for an MCP server, whose
    answers are always inspected."""
    config = _write_config(tmp_path, "http://127.0.0.1:9", {"target": {"type": target}})
    listening, events = proxy_start_events(config)
    assert listening["scheme"] == "http"
    assert listening["tls"] is False
    assert listening["mode"] == "enforce"
    assert listening["upstream"] == "http://127.0.0.1:9"
    warnings = [event["event"] for event in events]
    assert ("response_protection_disabled" in warnings) is (target != "mcp-http")


@pytest.mark.parametrize("workers", [1, 2])
def test_the_proxy_warns_of_policy_entries_that_never_apply(tmp_path: Path, workers: int) -> None:
    """``Email`` is no type (types are lower case): its block never applies, and email keeps
    its weaker action; ``Team`` is no label key a caller can hold (``auth.allowedLabelKeys``
    has ``team``), so its binding never chooses a profile. The gateway starts, and says so."""
    config = _write_config(
        tmp_path,
        "http://127.0.0.1:9",
        {
            "policy": {
                "actions": {"Email": "block", "email": "redact"},
                "profiles": {"strict": {"actions": {"api-key": "block"}}},
                "profileBinding": {
                    "byScope": {"admin": "strict"},
                    "byLabel": {"Team=finance": "strict", "team=ops": "strict"},
                    "default": "strict",
                },
            }
        },
    )
    _listening, events = proxy_start_events(config, "--workers", str(workers))
    warned = [event["warning"] for event in events if event["event"] == "policy_warning"]
    assert [warning.split(":", 1)[0] for warning in warned] == [
        "policy.actions.Email",
        "policy.profiles.strict.actions.api-key",
        "policy.profileBinding.byLabel.Team=finance",
    ]


_NON_LOOPBACK = (
    "Refusing to bind Haechi proxy to non-loopback host 0.0.0.0. Use --allow-remote-bind"
)


@pytest.mark.parametrize(
    ("args", "proxy", "env", "message"),
    [
        (["--host", "0.0.0.0"], {}, {}, _NON_LOOPBACK),
        # Neither the file (even with trustForwardedProto) nor the environment can unlock it.
        ([], {"host": "0.0.0.0", "trustForwardedProto": True}, {}, _NON_LOOPBACK),
        ([], {}, {"HAECHI_PROXY_HOST": "0.0.0.0"}, _NON_LOOPBACK),
        (
            ["--host", "0.0.0.0", "--allow-remote-bind"],
            {},
            {},
            "non-loopback host 0.0.0.0 without TLS",
        ),
        (["--port", "abc"], {}, {}, "Invalid value for '--port': Input should be a valid integer"),
        (["--port", "1.5"], {}, {}, "Invalid value for '--port': Input should be a valid integer"),
        (
            ["--port", "-1"],
            {},
            {},
            "Invalid value for '--port': Input should be greater than or equal to 0",
        ),
        (
            ["--port", "70000"],
            {},
            {},
            "Invalid value for '--port': Input should be less than or equal to 65535",
        ),
        (["--port"], {}, {}, "Option '--port' requires an argument"),
        ([], {"port": -1}, {}, "proxy.port: Input should be greater than or equal to 0"),
        ([], {"port": 1.5}, {}, "proxy.port: Input should be a valid integer"),
        ([], {}, {"HAECHI_PROXY_PORT": "70000"}, "HAECHI_PROXY_PORT must be an integer"),
    ],
)
def test_proxy_command_refusals(
    tmp_path: Path, args: list[str], proxy: dict[str, Any], env: dict[str, str], message: str
) -> None:
    port = _free_port()
    path = _write_config(tmp_path, "http://127.0.0.1:9", {"proxy": {"port": port, **proxy}})
    result = run_haechi("proxy", "--config", path, *args, cwd=tmp_path, env=env, timeout=30)
    assert result.returncode == 1
    assert message in result.stderr
    assert "listening" not in result.stdout
    with socket.socket() as probe:  # and nothing was left listening on the port
        assert probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize(
    ("key_file", "message"),
    [(None, "dev.keys.json not found; run 'haechi init'"), ('{"keys": []}', "has no keys")],
)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_proxy_command_refuses_a_key_file_it_cannot_use(
    tmp_path: Path, key_file: str | None, message: str, workers: str
) -> None:
    """The keys used to be read at the first request that needed one: a gateway whose key
    file was missing or invalid listened, said it was ready, and failed each such request
    with a 500 whose log gave only an error class."""
    port = _free_port()
    tokens = {"proxy": {"port": port}, "policy": {"actions": {"email": "tokenize"}}}
    path = _write_config(tmp_path, "http://127.0.0.1:9", tokens)
    keys = tmp_path / ".haechi" / "dev.keys.json"
    keys.unlink()
    if key_file is not None:
        keys.write_text(key_file)
    result = run_haechi("proxy", "--config", path, "--workers", workers, cwd=tmp_path, timeout=30)
    assert result.returncode == 1
    assert f"haechi: key file {keys}" in result.stderr
    assert message in result.stderr
    assert "listening" not in result.stdout
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_gateway_whose_policy_needs_no_key_starts_without_a_key_file(tmp_path: Path) -> None:
    """Redacting, masking and blocking use no key, and no bearer token is checked: such a
    gateway runs without a key file, and is ready."""
    config = _write_config(tmp_path, "http://127.0.0.1:9")
    (tmp_path / ".haechi" / "dev.keys.json").unlink()
    with _proxy_process(config) as (_process, url, _lines):
        ready = httpx.get(f"{url}/__haechi/ready", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["checks"]["keysReadable"] is True


def test_proxy_command_reports_a_busy_port(tmp_path: Path) -> None:
    config = _write_config(tmp_path, "http://127.0.0.1:9")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = subprocess.run(
            [*HAECHI, "proxy", "--config", str(config), "--port", port],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert "cannot listen" in result.stderr


def _certificate(workdir: Path) -> tuple[Path, Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
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
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file, pfx_file = workdir / "key.pem", workdir / "cert.pem", workdir / "b.p12"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pfx_file.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"gw", key, cert, None, serialization.BestAvailableEncryption(b"pfx-pass")
        )
    )
    return key_file, cert_file, pfx_file


@pytest.mark.parametrize("form", ["pem", "pfx"])
def test_tls_is_served_from_pem_or_pkcs12(tmp_path: Path, form: str) -> None:
    key_file, cert_file, pfx_file = _certificate(tmp_path)
    tls = (
        {"keyFile": str(key_file), "certFile": str(cert_file)}
        if form == "pem"
        else {"pfxFile": str(pfx_file), "passphrase": "pfx-pass"}
    )
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        config = _write_config(tmp_path, up.url, {"proxy": {"tls": tls}})
        with _proxy_process(config) as (_process, url, _lines):
            assert url.startswith("https://127.0.0.1:")
            trust = ssl.create_default_context(cafile=str(cert_file))
            response = httpx.get(f"{url}/__haechi/live", verify=trust)
            assert response.status_code == 200
            assert httpx.get(f"{url}/v1/models", verify=trust).status_code == 200


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"keyFile": "missing.pem", "certFile": "{cert}"}, "proxy.tls.keyFile could not be loaded"),
        ({"keyFile": "{key}", "certFile": "missing.pem"}, "proxy.tls.certFile could not be loaded"),
        ({"keyFile": "{cert}", "certFile": "{cert}"}, "proxy.tls: keyFile and certFile must be"),
        ({"keyFile": "{other}", "certFile": "{cert}"}, "proxy.tls: keyFile and certFile must be"),
        ({"pfxFile": "missing.p12"}, "proxy.tls.pfxFile could not be loaded"),
    ],
)
def test_unusable_tls_material_is_a_named_error(
    tmp_path: Path, tls: dict[str, str], message: str
) -> None:
    key_file, cert_file, _pfx = _certificate(tmp_path)
    other = tmp_path / "other.pem"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths = {"key": key_file, "cert": cert_file, "other": other}
    material = {name: value.format(**paths) for name, value in tls.items()}
    config = _write_config(tmp_path, "http://127.0.0.1:9", {"proxy": {"tls": material}})
    result = run_haechi("proxy", "--config", str(config), "--port", "0", cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stdout


# -- token commands ---------------------------------------------------------------------------


def test_token_commands(tmp_path: Path) -> None:
    config = _write_config(tmp_path, "http://127.0.0.1:9")

    def run(*args: str) -> dict[str, Any]:
        result = subprocess.run(
            [*HAECHI, *args, "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return dict(json.loads(result.stdout))

    added = run(
        "token-add",
        "--type",
        "service",
        "--scope",
        "team:eng",
        "--scope",
        "ci",
        "--label",
        "env=prod",
    )
    assert added["ok"] is True
    assert added["token"].startswith("hae_")
    assert added["scopes"] == ["team:eng", "ci"]
    assert added["labels"] == {"env": "prod"}
    store = (tmp_path / ".haechi" / "auth.json").read_text()
    assert added["token"] not in store
    listed = run("token-list")
    assert [t["id"] for t in listed["tokens"]] == [added["id"]]
    assert added["token"] not in json.dumps(listed)
    revoked = run("token-revoke", added["id"])
    assert revoked["result"] == {"id": added["id"], "revoked": True}
    assert run("token-list")["tokens"][0]["disabled"] is True
    bad = subprocess.run(
        [*HAECHI, "token-add", "--type", "user", "--label", "nokey", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 1
    assert "invalid --label" in bad.stderr


# -- the demo ---------------------------------------------------------------------------------


def test_demo_runs_and_shows_the_round_trip(tmp_path: Path) -> None:
    from haechi.proxy.demo import DEMO_EMAIL

    result = subprocess.run(
        [*HAECHI, "demo"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = " ".join(result.stdout.split())
    first = text.split("1. Email and phone number")[1].split("2. API key")[0]
    second = text.split("2. API key")[1].split("3. Audit log")[0]
    model_saw = first.split("model received ")[1].split(" client got back")[0]
    assert DEMO_EMAIL not in model_saw
    assert "[TOKEN:" in model_saw
    assert f"client got back HTTP 200: You said: Please write to {DEMO_EMAIL}" in first
    assert "HTTP 403 haechi_policy_block" in second
    assert "model received nothing" in second
    assert "hash chain valid" in text
    assert "raw values in log none" in text
    assert list(tmp_path.iterdir()) == []


def test_before_serving_detection_is_built_and_the_heap_is_frozen() -> None:
    import gc

    from haechi import create_runtime
    from haechi.proxy.server import _settle

    runtime = create_runtime({"audit": {"sink": "memory"}})
    rule_set = runtime.engine._sets["request"]
    assert len(rule_set._built) < rule_set.max_digits  # built lazily until now
    try:
        _settle(runtime)
        assert gc.get_freeze_count() > 0
        levels = len(rule_set._built)
        rule_set.locators(rule_set.max_digits)
        assert len(rule_set._built) == levels
    finally:
        gc.unfreeze()
        runtime.close()
