# SPDX-License-Identifier: Apache-2.0
"""The Ed25519 envelope, the order of the trust gate and reading plugin files from disk."""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from haechi._canonical import canonical_json
from haechi.errors import PluginLoadError
from haechi.plugins.manifest import MAX_ENTRY_BYTES, read_plugin_files, validate_manifest
from haechi.plugins.signing import (
    build_payload,
    entry_sha256,
    generate_keypair,
    load_private_key,
    load_public_key,
    manifest_sha256,
    sign_payload,
    signed_bytes,
)
from haechi.plugins.trust import (
    REFUSAL_REASONS,
    PluginPin,
    TrustPolicy,
    VerifiedPlugin,
    _refuse,
    verify_signed_plugin,
)
from tests.plugins.auth.kit import sign_plugin

ENTRY = b"def authenticate(credential):\n    return None\n"


def make(
    *, entry: bytes = ENTRY, signer: str = "k1", **overrides: Any
) -> tuple[dict[str, Any], TrustPolicy]:
    pair = generate_keypair()
    payload = build_payload(
        plugin_id="p",
        kind="authProvider",
        version="1.2.3",
        capabilities={"readsCredentials": True},
        core_range=">=1.0.0 <2.0.0",
        entry=entry,
    )
    payload.update(overrides)
    envelope = sign_payload(payload, load_private_key(pair.private_pem), signer)
    policy = TrustPolicy(
        anchors={signer: pair.public_pem}, allow_capabilities=frozenset({"readsCredentials"})
    )
    return envelope, policy


def reason_of(envelope: Any, entry: bytes, policy: TrustPolicy, **kwargs: Any) -> str:
    with pytest.raises(PluginLoadError) as refused:
        verify_signed_plugin(envelope, entry, policy, **kwargs)
    assert refused.value.reason in REFUSAL_REASONS
    return refused.value.reason


def test_a_good_envelope_verifies_and_carries_the_exact_bytes() -> None:
    envelope, policy = make()
    plugin = verify_signed_plugin(envelope, ENTRY, policy)
    assert isinstance(plugin, VerifiedPlugin)
    assert plugin.entry == ENTRY
    assert plugin.entry_sha256 == entry_sha256(ENTRY)
    assert plugin.manifest_sha256 == manifest_sha256(envelope["payload"])
    assert plugin.capabilities_granted == ["readsCredentials"]
    assert "def authenticate" not in repr(plugin)


def test_the_signature_covers_the_canonical_payload_bytes() -> None:
    envelope, policy = make()
    public = load_public_key(policy.anchors["k1"])
    expected = canonical_json(envelope["payload"]).encode("utf-8")
    assert signed_bytes(envelope["payload"]) == expected
    public.verify(base64.b64decode(envelope["signature"]), expected)  # raises if not
    # Key order in the file does not matter; the canonical form does.
    shuffled = dict(reversed(list(envelope["payload"].items())))
    assert verify_signed_plugin({**envelope, "payload": shuffled}, ENTRY, policy)


def test_tamper_is_reported_before_the_signature() -> None:
    envelope, policy = make()
    envelope["signature"] = base64.b64encode(b"\0" * 64).decode()
    assert reason_of(envelope, ENTRY + b"#", policy) == "tampered-entry"
    assert reason_of(envelope, ENTRY, policy) == "invalid-signature"


def test_the_signer_is_checked_before_any_crypto() -> None:
    envelope, policy = make()
    envelope["signerKeyId"] = "nobody"
    assert reason_of(envelope, ENTRY + b"#", policy) == "unknown-signer"
    envelope["alg"] = "none"
    assert reason_of(envelope, ENTRY, policy) == "alg-not-ed25519"


def test_an_anchor_that_is_not_ed25519_is_unknown_signer() -> None:
    envelope, policy = make()
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    for anchor in (pem, "not a key", None, {"publicKey": pem}):
        assert reason_of(envelope, ENTRY, TrustPolicy(anchors={"k1": anchor})) == "unknown-signer"
    wrapped = TrustPolicy(
        anchors={"k1": {"publicKey": policy.anchors["k1"]}},
        allow_capabilities=policy.allow_capabilities,
    )
    assert verify_signed_plugin(envelope, ENTRY, wrapped)


def test_revocation_of_signer_and_of_build() -> None:
    envelope, policy = make()
    by_signer = TrustPolicy(anchors=policy.anchors, revoked_signers=frozenset({"k1"}))
    assert reason_of(envelope, ENTRY + b"#", by_signer) == "revoked"
    by_build = TrustPolicy(anchors=policy.anchors, revoked_entries=frozenset({entry_sha256(ENTRY)}))
    assert reason_of(envelope, ENTRY, by_build) == "revoked"
    in_capitals = TrustPolicy(
        anchors=policy.anchors, revoked_entries=frozenset({entry_sha256(ENTRY).upper()})
    )
    assert reason_of(envelope, ENTRY, in_capitals) == "revoked"


@pytest.mark.parametrize(
    ("bounds", "reason"),
    [
        ({"notBefore": 0, "notAfter": 10**15}, None),
        ({"notAfter": "2000-01-01T00:00:00Z"}, "expired-window"),
        ({"notBefore": "2999-01-01"}, "expired-window"),
        ({"notBefore": 1.5e12, "notAfter": None}, None),
        ({"notAfter": "whenever"}, "manifest-invalid"),
        ({"notAfter": ""}, "manifest-invalid"),
        ({"notAfter": True}, "manifest-invalid"),
        ({"notAfter": 10**400}, "manifest-invalid"),  # no float holds it
        ({"notAfter": "0001-01-01T00:00:00+14:00"}, "expired-window"),
    ],
)
def test_signing_window(bounds: dict[str, Any], reason: str | None) -> None:
    envelope, policy = make(**bounds)
    if reason is None:
        assert verify_signed_plugin(envelope, ENTRY, policy, now_ms=1.6e12)
    else:
        assert reason_of(envelope, ENTRY, policy, now_ms=1.6e12) == reason


@pytest.mark.parametrize(
    ("version", "floor", "refused"),
    [
        ("1.10.0", "1.9.9", False),
        ("1.2.0", "1.10.0", True),
        ("2", "1.9", False),
        ("1.0", "1.0.1", True),
        # An older pre-release is below a later release, whatever its suffix.
        ("1.0.0-beta", "1.0.3", True),
        ("1.0.0rc1", "1.0.5", True),
        ("1.0.0-rc1", "1.0.0", True),
        ("1.0.1-rc1", "1.0.0", False),
        ("1.0.x", "1.0.0", True),
        ("1.\u00b2", "1.1", True),  # a superscript is a digit to str.isdigit, not to int()
        ("1." + "9" * 5000, "1.10", False),  # beyond int()'s 4300 digits
        ("1.010", "1.9", False),
    ],
)
def test_version_floor_compares_numerically(version: str, floor: str, refused: bool) -> None:
    envelope, policy = make(version=version)
    floored = TrustPolicy(
        anchors=policy.anchors,
        allow_capabilities=policy.allow_capabilities,
        version_floor={"p": floor},
    )
    if refused:
        assert reason_of(envelope, ENTRY, floored) == "below-version-floor"
    else:
        assert verify_signed_plugin(envelope, ENTRY, floored)


def test_pins() -> None:
    envelope, policy = make()
    digest = manifest_sha256(envelope["payload"])
    for pin, ok in (
        (
            PluginPin(version="1.2.3", entry_sha256=entry_sha256(ENTRY), manifest_sha256=digest),
            True,
        ),
        (
            PluginPin(entry_sha256=entry_sha256(ENTRY).upper(), manifest_sha256=digest.upper()),
            True,
        ),
        (PluginPin(version="1.2.4"), False),
        (PluginPin(entry_sha256="f" * 64), False),
        (PluginPin(manifest_sha256=entry_sha256(ENTRY)), False),
    ):
        pinned = TrustPolicy(
            anchors=policy.anchors, allow_capabilities=policy.allow_capabilities, pin=pin
        )
        if ok:
            assert verify_signed_plugin(envelope, ENTRY, pinned)
        else:
            assert reason_of(envelope, ENTRY, pinned) == "pin-mismatch"


def test_capabilities() -> None:
    envelope, policy = make(capabilities={"readsCredentials": True, "fileWrite": False})
    assert verify_signed_plugin(envelope, ENTRY, policy).capabilities_granted == [
        "readsCredentials"
    ]
    envelope, policy = make(capabilities={"readsCredentials": 1})
    assert reason_of(envelope, ENTRY, policy) == "manifest-invalid"
    envelope, policy = make(capabilities={})
    assert reason_of(envelope, ENTRY, policy) == "capability-not-allowlisted"


@pytest.mark.parametrize(
    ("core", "ok"), [("1.0.0", True), ("1.9.9", True), ("2.0.0", False), ("0.9.0", False)]
)
def test_core_version_range(core: str, ok: bool) -> None:
    envelope, policy = make()
    checked = TrustPolicy(
        anchors=policy.anchors, allow_capabilities=policy.allow_capabilities, core_version=core
    )
    if ok:
        assert verify_signed_plugin(envelope, ENTRY, checked)
    else:
        assert reason_of(envelope, ENTRY, checked) == "manifest-invalid"


@pytest.mark.parametrize(
    "defect",
    [
        lambda e: e.pop("payload"),
        lambda e: e.update(signerKeyId=""),
        lambda e: e.update(signature="not base64!"),
        lambda e: e["payload"].update(entrySha256="ABC"),
        lambda e: e["payload"].update(pluginId=7),
        lambda e: e["payload"].update(capabilities=[]),
        lambda e: e["payload"].update(extra=float("nan")),
    ],
)
def test_malformed_envelopes_are_manifest_invalid(defect: Any) -> None:
    envelope, policy = make()
    defect(envelope)
    assert reason_of(envelope, ENTRY, policy) == "manifest-invalid"
    assert reason_of(["not", "an", "object"], ENTRY, policy) == "manifest-invalid"


def test_a_short_signature_is_invalid() -> None:
    envelope, policy = make()
    envelope["signature"] = base64.b64encode(b"short").decode()
    assert reason_of(envelope, ENTRY, policy) == "invalid-signature"


def test_off_contract_reasons_cannot_be_raised() -> None:
    with pytest.raises(RuntimeError):
        _refuse("because", "no")


def test_private_keys_are_ed25519_pkcs8_only() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="Ed25519"):
        load_private_key(pem)
    with pytest.raises(ValueError, match="PKCS#8"):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert "PRIVATE" not in repr(generate_keypair())


# --- reading the files --------------------------------------------------------------------


def test_the_entry_is_read_beside_the_envelope(tmp_path: Path) -> None:
    signed = sign_plugin(tmp_path)
    files = read_plugin_files(signed.envelope_path)
    assert files.entry == signed.entry_path.read_bytes()
    assert files.envelope["signerKeyId"] == "test-signer"


def test_a_symlinked_entry_is_tampered(tmp_path: Path) -> None:
    signed = sign_plugin(tmp_path / "plugin")
    real = tmp_path / "real.py"
    real.write_bytes(signed.entry_path.read_bytes())
    signed.entry_path.unlink()
    signed.entry_path.symlink_to(real)
    with pytest.raises(PluginLoadError) as refused:
        read_plugin_files(signed.envelope_path)
    assert refused.value.reason == "tampered-entry"


@pytest.mark.parametrize("entrypoint", ["../outside.py", "/etc/passwd", "", "a\\b.py", None])
def test_an_entrypoint_outside_the_directory_is_refused_before_io(
    tmp_path: Path, entrypoint: str | None
) -> None:
    signed = sign_plugin(tmp_path / "plugin")
    signed.rewrite({**signed.envelope, "entrypoint": entrypoint})
    with pytest.raises(PluginLoadError) as refused:
        read_plugin_files(signed.envelope_path)
    assert refused.value.reason == "manifest-invalid"


def test_a_directory_symlink_cannot_lead_outside(tmp_path: Path) -> None:
    signed = sign_plugin(tmp_path / "plugin")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "good_auth.py").write_bytes(signed.entry_path.read_bytes())
    (tmp_path / "plugin" / "sub").symlink_to(outside)
    signed.rewrite({**signed.envelope, "entrypoint": "sub/good_auth.py"})
    with pytest.raises(PluginLoadError) as refused:
        read_plugin_files(signed.envelope_path)
    assert refused.value.reason == "tampered-entry"


def test_oversized_and_unreadable_files_are_manifest_invalid(tmp_path: Path) -> None:
    signed = sign_plugin(tmp_path)
    with signed.entry_path.open("ab") as handle:
        handle.truncate(MAX_ENTRY_BYTES + 1)
    with pytest.raises(PluginLoadError) as refused:
        read_plugin_files(signed.envelope_path)
    assert refused.value.reason == "manifest-invalid"
    signed.envelope_path.write_text("{not json")
    with pytest.raises(PluginLoadError) as refused:
        read_plugin_files(signed.envelope_path)
    assert refused.value.reason == "manifest-invalid"
    os.unlink(signed.envelope_path)
    with pytest.raises(PluginLoadError):
        read_plugin_files(signed.envelope_path)


def test_an_entry_that_fails_to_read_is_manifest_invalid(tmp_path: Path) -> None:
    """A read error after a successful open (EIO: a network or FUSE file system gone bad;
    here a regular file of /proc whose first page is unmapped) refuses like any other."""
    signed = sign_plugin(tmp_path)
    with pytest.raises(PluginLoadError) as refused:
        read_plugin_files(signed.envelope_path, Path("/proc/self/mem"))
    assert refused.value.reason == "manifest-invalid"
    assert "cannot read the entry file mem" in refused.value.detail


@pytest.mark.parametrize(
    "junk", ["9" * 5000, "[" * 100_000 + "]" * 100_000], ids=["long-number", "deep-nesting"]
)
def test_json_python_cannot_hold_is_manifest_invalid(tmp_path: Path, junk: str) -> None:
    """Numbers beyond int()'s digit limit and nesting beyond the recursion limit raise
    ValueError and RecursionError from json.loads, not JSONDecodeError."""
    signed = sign_plugin(tmp_path)
    text = json.dumps(signed.envelope)
    signed.envelope_path.write_text(text[:-1] + f', "junk": {junk}}}')
    with pytest.raises(PluginLoadError) as refused:
        read_plugin_files(signed.envelope_path)
    assert refused.value.reason == "manifest-invalid"


def test_a_payload_nested_too_deep_to_hash_is_manifest_invalid() -> None:
    """json.loads reads nesting up to the recursion limit, counted from where it runs; the
    encoder that hashes the payload runs a few calls deeper, so a file nested just below
    the limit can parse and then fail to hash (RecursionError, not a refusal)."""
    nested: list[Any] = []
    for _ in range(sys.getrecursionlimit() + 10):
        nested = [nested]
    envelope, policy = make()
    envelope["payload"]["junk"] = nested
    assert reason_of(envelope, ENTRY, policy) == "manifest-invalid"


def read_fifo_guarded(manifest: Path, fifo: Path) -> PluginLoadError:
    """``read_plugin_files`` where ``fifo`` is a named pipe nobody writes to; a reader that
    blocks on it is released after a generous guard and the test fails."""
    raised: list[BaseException] = []

    def read() -> None:
        try:
            read_plugin_files(manifest)
        except BaseException as exc:
            raised.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(60)
        pytest.fail("reading the plugin files blocked on a named pipe")
    [error] = raised
    assert isinstance(error, PluginLoadError)
    return error


def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    """A respawn re-reads the files under the supervisor's lock: one that waits for a writer
    would hold every later call."""
    signed = sign_plugin(tmp_path / "plugin")
    signed.entry_path.unlink()
    os.mkfifo(signed.entry_path)
    assert read_fifo_guarded(signed.envelope_path, signed.entry_path).reason == "manifest-invalid"
    signed.envelope_path.unlink()
    os.mkfifo(signed.envelope_path)
    assert read_fifo_guarded(signed.envelope_path, signed.envelope_path).reason == (
        "manifest-invalid"
    )


def test_manifest_only_rules() -> None:
    base = {
        "id": "x",
        "version": "1",
        "kind": "filter-engine",
        "runtime": "manifest-only",
        "entrypoint": "x.js",
        "compatibility": {"haechiCore": "*"},
        "capabilities": {
            "readsPlaintext": True,
            "writesPlaintext": False,
            "networkEgress": True,
            "fileWrite": False,
            "auditWrite": False,
            "externalSecrets": False,
        },
    }
    assert any("retention" in e for e in validate_manifest({"haechiPlugin": base}))
    base["dataHandling"] = {"retention": "none", "logsRawPayload": True}
    assert validate_manifest({"haechiPlugin": base}) == [
        "dataHandling.logsRawPayload must not be true"
    ]
    native = validate_manifest({"haechiPlugin": {**base, "runtime": "native"}})
    assert any("dynamic plugin execution is not supported" in e for e in native)
    assert validate_manifest(json.loads("[]")) == ["the root key haechiPlugin must be an object"]
