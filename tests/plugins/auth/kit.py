# SPDX-License-Identifier: Apache-2.0
"""Helpers for the signed-plugin tests: sign fixture entries, build configs, probe the kernel.

The kernel probe is deliberately independent of the sandbox code under test (raw ``unshare``
and Landlock/seccomp checks), so a bug in the sandbox cannot turn a failure into a skip.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from haechi.config import HaechiConfig
from haechi.plugins.signing import (
    build_payload,
    entry_sha256,
    generate_keypair,
    load_private_key,
    sign_payload,
)

FIXTURES = Path(__file__).parent

_UNSHARE_PROBE = (
    "import ctypes, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "sys.exit(0 if libc.unshare(0x10000000 | 0x40000000) == 0 else 1)\n"
)


def kernel_gaps() -> list[str]:
    """What this kernel cannot do for the sandbox, in words fit for a skip reason."""
    gaps: list[str] = []
    probe = subprocess.run([sys.executable, "-c", _UNSHARE_PROBE], check=False)
    if probe.returncode != 0:
        gaps.append("cannot unshare a user+network namespace")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1)) < 1:
        gaps.append("Landlock ABI >= 1 is not available")
    if os.uname().machine not in ("x86_64", "aarch64"):
        gaps.append("no seccomp filter for this architecture")
    return gaps


def confinement_skip_reason() -> str | None:
    """``None`` when every kernel layer is available, else why the confined tests skip."""
    gaps = kernel_gaps()
    return f"kernel confinement unavailable here: {'; '.join(gaps)}" if gaps else None


@dataclass
class SignedPlugin:
    """A fixture entry copied into a directory and signed there."""

    directory: Path
    envelope_path: Path
    entry_path: Path
    key_id: str
    public_pem: str
    private_key: Ed25519PrivateKey = field(repr=False)
    envelope: dict[str, Any] = field(repr=False)

    def rewrite(self, envelope: dict[str, Any]) -> None:
        """Replace the envelope file (to craft a defect)."""
        self.envelope = envelope
        self.envelope_path.write_text(json.dumps(envelope, indent=2), encoding="utf-8")


def sign_plugin(
    directory: Path,
    fixture: str = "good_auth.py",
    *,
    key_id: str = "test-signer",
    private_key: Ed25519PrivateKey | None = None,
    plugin_id: str = "test-auth",
    version: str = "1.0.0",
    capabilities: dict[str, Any] | None = None,
    core_range: str = ">=0.0.0 <99.0.0",
    not_before: int | None = None,
    not_after: int | None = None,
    edit_payload: Callable[[dict[str, Any]], None] | None = None,
    padding: int = 0,
) -> SignedPlugin:
    """Copy ``fixture`` into ``directory`` and write ``<plugin_id>.signed.json`` beside it.

    ``padding`` lines of comment are appended to the copy before it is signed (a large entry).
    """
    directory.mkdir(parents=True, exist_ok=True)
    entry_path = directory / fixture
    shutil.copyfile(FIXTURES / fixture, entry_path)
    with entry_path.open("a", encoding="utf-8") as handle:
        handle.write(f"# {'padding ' * 12}\n" * padding)
    if private_key is None:
        private_key = load_private_key(generate_keypair().private_pem)
    payload = build_payload(
        plugin_id=plugin_id,
        kind="authProvider",
        version=version,
        capabilities={"readsCredentials": True} if capabilities is None else capabilities,
        core_range=core_range,
        entry=entry_path.read_bytes(),
        not_before=not_before,
        not_after=not_after,
    )
    if edit_payload is not None:
        edit_payload(payload)
    envelope = sign_payload(payload, private_key, key_id)
    envelope["entrypoint"] = fixture
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    signed = SignedPlugin(
        directory=directory,
        envelope_path=directory / f"{plugin_id}.signed.json",
        entry_path=entry_path,
        key_id=key_id,
        public_pem=public_pem,
        private_key=private_key,
        envelope=envelope,
    )
    signed.rewrite(envelope)
    (directory / f"{key_id}.pub").write_text(public_pem, encoding="ascii")
    return signed


def plugin_config_document(
    signed: SignedPlugin, *, enabled: bool = True, **plugin_settings: Any
) -> dict[str, Any]:
    """The JSON document of a config whose ``auth.plugin`` trusts and loads ``signed``."""
    settings: dict[str, Any] = {
        "manifestPath": str(signed.envelope_path),
        "trustAnchors": [{"keyId": signed.key_id, "publicKey": signed.public_pem}],
        "allowCapabilities": ["readsCredentials"],
        "timeoutMs": 2000,
    }
    settings.update(plugin_settings)
    return {"auth": {"provider": "plugin", "plugin": settings}, "plugins": {"enabled": enabled}}


def plugin_config(signed: SignedPlugin, *, enabled: bool = True, **settings: Any) -> HaechiConfig:
    """:func:`plugin_config_document`, validated."""
    return HaechiConfig.model_validate(plugin_config_document(signed, enabled=enabled, **settings))


@dataclass(frozen=True)
class RefusalCase:
    """One crafted defect: how to build it, and the reason the gate must give.

    ``settings`` are ``auth.plugin`` overrides (the runtime and ``plugin-verify --config``
    both use them); ``cli_flags`` are extra ``plugin-verify`` flags.
    """

    reason: str
    build: Callable[[Path], SignedPlugin]
    settings: dict[str, Any] = field(default_factory=dict)
    cli_flags: tuple[str, ...] = ()


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(payload: dict[str, Any]) -> None:
        payload[key] = value

    return edit


def _tampered(directory: Path) -> SignedPlugin:
    signed = sign_plugin(directory)
    with signed.entry_path.open("a", encoding="utf-8") as handle:
        handle.write("\n# edited after signing\n")
    return signed


def _bad_alg(directory: Path) -> SignedPlugin:
    signed = sign_plugin(directory)
    signed.rewrite({**signed.envelope, "alg": "RS256"})
    return signed


def _bad_signature(directory: Path) -> SignedPlugin:
    signed = sign_plugin(directory)
    other = load_private_key(generate_keypair().private_pem)
    forged = sign_payload(signed.envelope["payload"], other, signed.key_id)["signature"]
    signed.rewrite({**signed.envelope, "signature": forged})
    return signed


def _unknown_signer(directory: Path) -> SignedPlugin:
    signed = sign_plugin(directory)
    signed.rewrite({**signed.envelope, "signerKeyId": "someone-else"})
    return signed


#: SPKI and PKCS#8 PEM of a key whose algorithm (OID 1.2.3.4) no library knows.
UNKNOWN_ALGORITHM_PUBLIC_PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDKgMEAyEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    "-----END PUBLIC KEY-----\n"
)
UNKNOWN_ALGORITHM_PRIVATE_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDKgMEBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
    "-----END PRIVATE KEY-----\n"
)


def _not_utf8(directory: Path) -> SignedPlugin:
    # Signed as it is: the signature holds, but the sandbox runs text.
    signed = sign_plugin(directory)
    entry = b"# \xff\n" + signed.entry_path.read_bytes()
    signed.entry_path.write_bytes(entry)
    payload = {**signed.envelope["payload"], "entrySha256": entry_sha256(entry)}
    envelope = sign_payload(payload, signed.private_key, signed.key_id)
    signed.rewrite({**envelope, "entrypoint": signed.envelope["entrypoint"]})
    return signed


REFUSAL_CASES: tuple[RefusalCase, ...] = (
    RefusalCase(
        "manifest-invalid",
        lambda d: sign_plugin(d, capabilities={"readsCredentials": "true"}),
    ),
    RefusalCase("alg-not-ed25519", _bad_alg),
    RefusalCase("unknown-signer", _unknown_signer),
    RefusalCase("revoked", sign_plugin, settings={"revoked": {"signerKeyIds": ["test-signer"]}}),
    RefusalCase(
        # A hash as some tools print it (PowerShell's Get-FileHash: capitals) still revokes.
        "revoked",
        sign_plugin,
        settings={
            "revoked": {
                "entrySha256": [entry_sha256((FIXTURES / "good_auth.py").read_bytes()).upper()]
            }
        },
    ),
    RefusalCase(
        "unknown-signer",
        sign_plugin,
        settings={
            "trustAnchors": [{"keyId": "test-signer", "publicKey": UNKNOWN_ALGORITHM_PUBLIC_PEM}]
        },
    ),
    RefusalCase("tampered-entry", _tampered),
    RefusalCase("invalid-signature", _bad_signature),
    RefusalCase("expired-window", lambda d: sign_plugin(d, not_before=0, not_after=1000)),
    RefusalCase(
        "below-version-floor",
        lambda d: sign_plugin(d, version="1.2.0"),
        settings={"versionFloor": {"test-auth": "1.10.0"}},
    ),
    RefusalCase(
        "pin-mismatch",
        sign_plugin,
        settings={"pin": {"entrySha256": "0" * 64}},
        cli_flags=("--pin", "0" * 64),
    ),
    RefusalCase(
        "capability-not-allowlisted",
        lambda d: sign_plugin(d, capabilities={"readsCredentials": True, "networkEgress": True}),
    ),
    RefusalCase(
        "manifest-invalid",
        lambda d: sign_plugin(d, core_range=">=90.0.0 <91.0.0"),
        settings={"coreVersion": "1.0.0"},
        cli_flags=("--core-version", "1.0.0"),
    ),
    RefusalCase(
        "manifest-invalid",
        lambda d: sign_plugin(d, edit_payload=_set("notAfter", "whenever")),
    ),
    # Without auth.plugin.coreVersion the range is checked against this haechi.
    RefusalCase("manifest-invalid", lambda d: sign_plugin(d, core_range=">=90.0.0 <91.0.0")),
    RefusalCase(
        "manifest-invalid", lambda d: sign_plugin(d, edit_payload=_set("kind", "filter-engine"))
    ),
    RefusalCase("manifest-invalid", _not_utf8),
)
