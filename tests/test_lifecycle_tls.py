# SPDX-License-Identifier: Apache-2.0
"""``haechi proxy`` with TLS material: what a key it cannot use, and a client that does not
finish its handshake, get (real processes, real sockets)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from haechi.proxy.background import serve_in_thread
from tests.cli import run_haechi
from tests.test_proxy_server import _certificate, _proxy_process, _write_config
from tests.upstream_server import UpstreamServer


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
def test_a_tls_handshake_must_end_within_the_header_timeout(tmp_path: Path, workers: str) -> None:
    key_file, cert_file, _pfx = _certificate(tmp_path)
    tls = {"keyFile": str(key_file), "certFile": str(cert_file)}
    upstream = UpstreamServer()
    with serve_in_thread(upstream) as up:
        extra = {"proxy": {"tls": tls}, "limits": {"headersTimeoutMs": 300}}
        config = _write_config(tmp_path, up.url, extra)
        with _proxy_process(config, "--workers", workers) as (_process, url, _lines):
            host, port = url.removeprefix("https://").split(":")
            # Nothing at all, and the first bytes of a ClientHello that never ends: each is
            # closed by the gateway (asyncio's own handshake limit is a minute).
            for first in (b"", b"\x16\x03\x01\x02\x00\x01"):
                with socket.create_connection((host, int(port)), timeout=20) as sock:
                    sock.sendall(first)
                    assert sock.recv(65536) == b""
            trust = ssl.create_default_context(cafile=str(cert_file))
            assert httpx.get(f"{url}/__haechi/live", verify=trust).status_code == 200
