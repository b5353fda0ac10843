# SPDX-License-Identifier: Apache-2.0
"""``haechi proxy`` with TLS material: what a key it cannot use, and a client that does not
finish its handshake, get (real processes, real sockets)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization

from tests.cli import run_haechi
from tests.test_proxy_server import _certificate, _write_config


def test_an_encrypted_pem_key_is_a_named_error_without_a_prompt(tmp_path: Path) -> None:
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
    tls = {"keyFile": str(encrypted), "certFile": str(cert_file)}
    config = _write_config(tmp_path, "http://127.0.0.1:9", {"proxy": {"tls": tls}})
    result = run_haechi("proxy", "--config", str(config), "--port", "0", cwd=tmp_path)
    assert result.returncode == 1
    assert "proxy.tls.keyFile is encrypted" in result.stderr
    assert "pass phrase" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stdout
