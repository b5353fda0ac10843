# SPDX-License-Identifier: Apache-2.0
"""``auth.provider: "plugin"`` end to end: gate, sandbox start, authenticate, audit, breaker.

Every test starts real child processes and writes a real hash-chained audit file.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from haechi.audit import AuditSink, FileAuditStore, verify_chain
from haechi.auth import IDENTITY_HASH_DOMAIN
from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.errors import ConfigError, PluginLoadError
from haechi.plugins.auth_plugin import (
    PluginAuthProvider,
    create_plugin_auth_provider,
    sanitize_claims,
)
from haechi.plugins.sandbox import BreakerPolicy
from haechi.providers import AuthProvider
from tests.plugins.auth.kit import (
    REFUSAL_CASES,
    RefusalCase,
    SignedPlugin,
    confinement_skip_reason,
    plugin_config,
    sign_plugin,
)

KERNEL_GAP = confinement_skip_reason()
#: Where the kernel cannot confine, the behavioural tests still run, unconfined.
MODE = "required" if KERNEL_GAP is None else "best-effort"
GOOD = {"authorization": "Bearer let-me-in"}


@pytest.fixture
def crypto(tmp_path: Path) -> LocalCryptoProvider:
    key_file = tmp_path / "keys.json"
    init_key_file(key_file)
    return LocalCryptoProvider(key_file)


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
def audit(audit_path: Path) -> AuditSink:
    return AuditSink(FileAuditStore(audit_path))


def audit_events(path: Path, decision: str | None = None) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if decision is None or r.get("decision") == decision]


@pytest.fixture
def make_provider(
    crypto: LocalCryptoProvider, audit: AuditSink, tmp_path: Path
) -> Iterator[Callable[..., PluginAuthProvider]]:
    made: list[PluginAuthProvider] = []

    def make(
        fixture: str = "good_auth.py",
        *,
        breaker: BreakerPolicy | None = None,
        padding: int = 0,
        **settings: Any,
    ) -> PluginAuthProvider:
        signed = sign_plugin(tmp_path / "plugin", fixture, padding=padding)
        settings.setdefault("confinement", MODE)
        provider = create_plugin_auth_provider(
            plugin_config(signed, **settings), audit, crypto, breaker=breaker
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


# --- a good plugin ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_good_plugin_authenticates_with_hmacd_identity(
    make_provider: Callable[..., PluginAuthProvider],
    crypto: LocalCryptoProvider,
    audit_path: Path,
) -> None:
    provider = make_provider()
    assert isinstance(provider, AuthProvider)
    identity = await provider.authenticate(GOOD)
    assert identity is not None
    subject_hash = crypto.hmac("svc-reporting@example.com", IDENTITY_HASH_DOMAIN)
    assert identity.subject_hash == subject_hash
    assert identity.issuer_hash == crypto.hmac("https://idp.example.com", IDENTITY_HASH_DOMAIN)
    assert identity.provider == "plugin:test-auth"
    assert identity.id == f"plugin:test-auth:{subject_hash[:16]}"
    assert identity.type == "service"
    assert identity.scopes == ("chat:write",)
    assert identity.labels == {"team": "finance"}
    assert await provider.authenticate({"Authorization": "Bearer let-me-in"}) == identity

    accepted = audit_events(audit_path, "plugin.load.accepted")
    assert len(accepted) == 1
    assert accepted[0]["pluginId"] == "test-auth"
    assert accepted[0]["capabilitiesGranted"] == ["readsCredentials"]
    assert accepted[0]["isolation"] == "process"
    if KERNEL_GAP is None:
        assert accepted[0]["degraded"] == []
        assert accepted[0]["kernel"]["network"] is True
        assert accepted[0]["kernel"]["filesystem"] is True
        assert accepted[0]["kernel"]["seccomp"] is True


@pytest.mark.anyio
async def test_a_plugin_denying_with_a_deny_object_passes_conformance(
    make_provider: Callable[..., PluginAuthProvider], audit_path: Path
) -> None:
    provider = make_provider("deny_object.py")
    assert await provider.authenticate(GOOD) is not None
    assert await provider.authenticate({"authorization": "Bearer wrong-value"}) is None
    assert [e["reason"] for e in audit_events(audit_path, "plugin.authenticate.deny")] == ["deny"]


@pytest.mark.anyio
async def test_denials_are_audited_without_the_credential(
    make_provider: Callable[..., PluginAuthProvider], audit_path: Path
) -> None:
    provider = make_provider()
    assert await provider.authenticate({"authorization": "Bearer wrong-value"}) is None
    assert await provider.authenticate({}) is None
    assert await provider.authenticate({"authorization": "x" * 20000}) is None
    reasons = [e["reason"] for e in audit_events(audit_path, "plugin.authenticate.deny")]
    assert reasons == ["deny", "missing-credential", "oversized"]
    text = audit_path.read_text()
    assert "wrong-value" not in text
    assert "svc-reporting" not in text
    assert verify_chain(audit_path).valid


@pytest.mark.anyio
async def test_a_credential_with_a_lone_surrogate_is_denied(
    make_provider: Callable[..., PluginAuthProvider], audit_path: Path
) -> None:
    """A str handed to the library API can hold one (a header read by the gateway cannot):
    it raised UnicodeEncodeError out of authenticate instead of being denied."""
    provider = make_provider()
    for credential in ("Bearer let-me-in\ud800", "\udcff"):
        assert await provider.authenticate({"authorization": credential}) is None
    reasons = [e["reason"] for e in audit_events(audit_path, "plugin.authenticate.deny")]
    assert reasons == ["malformed-credential", "malformed-credential"]
    assert "let-me-in" not in audit_path.read_text()
    assert await provider.authenticate(GOOD) is not None
    assert verify_chain(audit_path).valid


@pytest.mark.anyio
async def test_construction_inside_a_running_loop_is_audited(
    crypto: LocalCryptoProvider, audit: AuditSink, audit_path: Path, tmp_path: Path
) -> None:
    signed = sign_plugin(tmp_path / "plugin")
    provider = create_plugin_auth_provider(plugin_config(signed, confinement=MODE), audit, crypto)
    try:
        with anyio.fail_after(10):
            while not audit_events(audit_path, "plugin.load.accepted"):
                await anyio.sleep(0.01)
        assert await provider.authenticate(GOOD) is not None
    finally:
        provider.close()


def wrapper_manifest(signed: SignedPlugin, **flat: Any) -> Path:
    payload = signed.envelope["payload"]
    manifest = signed.directory / "manifest.json"
    plugin = {
        "id": payload["pluginId"],
        "version": payload["version"],
        "kind": "authProvider",
        "runtime": "process-isolated",
        "entrypoint": signed.entry_path.name,
        "entrySha256": payload["entrySha256"],
        "capabilities": {"readsCredentials": True},
        "signed": {k: v for k, v in signed.envelope.items() if k != "entrypoint"},
    }
    manifest.write_text(json.dumps({"haechiPlugin": {**plugin, **flat}}))
    return manifest


@pytest.mark.anyio
async def test_a_wrapper_manifest_loads_when_its_flat_fields_agree(
    crypto: LocalCryptoProvider, audit: AuditSink, tmp_path: Path
) -> None:
    signed = sign_plugin(tmp_path / "plugin", not_before=0)
    manifest = wrapper_manifest(signed, notBefore=0)
    settings: dict[str, Any] = {"confinement": MODE, "manifestPath": str(manifest)}
    provider = create_plugin_auth_provider(plugin_config(signed, **settings), audit, crypto)
    try:
        assert await provider.authenticate(GOOD) is not None
    finally:
        provider.close()
    # An unsigned flat field may not say something the signature does not.
    wrapper_manifest(signed, notBefore=0, notAfter=4102444800000)
    with pytest.raises(PluginLoadError) as refused:
        create_plugin_auth_provider(plugin_config(signed, **settings), audit, crypto)
    assert refused.value.reason == "manifest-invalid"


def test_a_flat_field_the_signed_payload_leaves_out_is_refused(
    crypto: LocalCryptoProvider, audit: AuditSink, tmp_path: Path
) -> None:
    """A payload without a bound is unbounded: a flat bound would be the only window the
    manifest shows (and the one its validation requires), signed by no one."""

    def unbounded(payload: dict[str, Any]) -> None:
        del payload["notBefore"], payload["notAfter"]

    signed = sign_plugin(tmp_path / "plugin", edit_payload=unbounded)
    manifest = wrapper_manifest(signed, notAfter=1000)
    settings: dict[str, Any] = {"confinement": MODE, "manifestPath": str(manifest)}
    with pytest.raises(PluginLoadError) as refused:
        create_plugin_auth_provider(plugin_config(signed, **settings), audit, crypto)
    assert refused.value.reason == "manifest-invalid"
    assert "notAfter" in refused.value.detail


@pytest.mark.anyio
async def test_an_explicit_entry_path_is_read_as_given(
    crypto: LocalCryptoProvider, audit: AuditSink, tmp_path: Path
) -> None:
    signed = sign_plugin(tmp_path / "plugin")
    moved = tmp_path / "elsewhere.py"
    shutil.move(signed.entry_path, moved)
    settings: dict[str, Any] = {"confinement": MODE, "entryPath": str(moved)}
    provider = create_plugin_auth_provider(plugin_config(signed, **settings), audit, crypto)
    try:
        assert await provider.authenticate(GOOD) is not None
    finally:
        provider.close()


# --- the load gate at runtime -------------------------------------------------------------


@pytest.mark.parametrize(
    "case", REFUSAL_CASES, ids=[f"{i}-{c.reason}" for i, c in enumerate(REFUSAL_CASES)]
)
def test_runtime_refuses_each_crafted_envelope(
    case: RefusalCase,
    crypto: LocalCryptoProvider,
    audit: AuditSink,
    audit_path: Path,
    tmp_path: Path,
) -> None:
    plugin = case.build(tmp_path / "plugin")
    config = plugin_config(plugin, confinement=MODE, **case.settings)
    with pytest.raises(PluginLoadError) as refused:
        create_plugin_auth_provider(config, audit, crypto)
    assert refused.value.reason == case.reason
    [event] = audit_events(audit_path, "plugin.load.refused")
    assert event["reason"] == case.reason
    assert event["blocked"] is True
    assert event["pluginId"] == "test-auth"
    assert verify_chain(audit_path).valid


def test_kill_switch_refuses_and_is_audited(
    crypto: LocalCryptoProvider, audit: AuditSink, audit_path: Path, tmp_path: Path
) -> None:
    signed = sign_plugin(tmp_path / "plugin")
    with pytest.raises(PluginLoadError) as refused:
        create_plugin_auth_provider(plugin_config(signed, enabled=False), audit, crypto)
    assert refused.value.reason == "plugins-disabled"
    assert [e["reason"] for e in audit_events(audit_path, "plugin.load.refused")] == [
        "plugins-disabled"
    ]


def test_a_crypto_provider_without_hmac_is_refused(audit: AuditSink, tmp_path: Path) -> None:
    signed = sign_plugin(tmp_path / "plugin")
    with pytest.raises(ConfigError, match="hmac"):
        create_plugin_auth_provider(plugin_config(signed), audit, object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [("no_authenticate.py", "load-error"), ("accept_all.py", "conformance-failed")],
)
def test_entries_that_cannot_serve_are_refused(
    fixture: str,
    reason: str,
    crypto: LocalCryptoProvider,
    audit: AuditSink,
    audit_path: Path,
    tmp_path: Path,
) -> None:
    signed = sign_plugin(tmp_path / "plugin", fixture)
    with pytest.raises(PluginLoadError) as refused:
        create_plugin_auth_provider(plugin_config(signed, confinement=MODE), audit, crypto)
    assert refused.value.reason == reason
    assert [e["reason"] for e in audit_events(audit_path, "plugin.load.refused")] == [reason]


_WITHOUT_USER_NAMESPACES = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tests.plugins.auth.kit import plugin_config, sign_plugin
from haechi.audit import AuditSink, MemoryAuditStore
from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.errors import PluginLoadError
from haechi.plugins.auth_plugin import create_plugin_auth_provider
from pathlib import Path
work = Path(sys.argv[2])
init_key_file(work / "keys.json")
crypto = LocalCryptoProvider(work / "keys.json")
store = MemoryAuditStore()
signed = sign_plugin(work / "plugin")
out = {}
try:
    create_plugin_auth_provider(plugin_config(signed), AuditSink(store), crypto)
except PluginLoadError as exc:
    out["required"] = [exc.reason, exc.detail]
provider = create_plugin_auth_provider(
    plugin_config(signed, confinement="best-effort"), AuditSink(store), crypto
)
out["bestEffort"] = provider.confinement.to_json()
provider.close()
import asyncio
async def events():
    return [r async for r in store.records()]
out["events"] = [[r["decision"], r.get("reason"), r.get("degraded")] for r in asyncio.run(events())]
print(json.dumps(out))
"""


def test_required_confinement_refuses_when_the_kernel_cannot(tmp_path: Path) -> None:
    """Run the gateway side where user namespaces are exhausted (``max_user_namespaces`` 0
    inside a namespace of its own): ``required`` must refuse, ``best-effort`` must start
    and audit the missing layer."""
    unshare = shutil.which("unshare")
    if unshare is None or KERNEL_GAP is not None:
        pytest.skip(KERNEL_GAP or "util-linux unshare is not installed")
    root = Path(__file__).parent.parent
    command = (
        "echo 0 > /proc/sys/user/max_user_namespaces && "
        f'exec "{sys.executable}" -c "$0" "{root}" "{tmp_path}"'
    )
    result = subprocess.run(
        [unshare, "-U", "-r", "--fork", "sh", "-c", command, _WITHOUT_USER_NAMESPACES],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["required"][0] == "confinement-unavailable"
    assert "network" in out["required"][1]
    assert out["bestEffort"]["network"] is False
    assert out["bestEffort"]["filesystem"] is True
    assert ["plugin.load.refused", "confinement-unavailable", None] in out["events"]
    assert ["plugin.load.accepted", None, ["network"]] in out["events"]


# --- claims, limits, breaker ---------------------------------------------------------------


def test_claims_sanitizer_keeps_only_bounded_known_fields() -> None:
    allowed = frozenset({"team"})
    claims = sanitize_claims(
        {"subject": "s", "issuer": "i", "__proto__": {"x": 1}, "admin": True}, allowed
    )
    assert (claims.subject, claims.issuer, claims.type) == ("s", "i", "user")
    for bad in (
        {"subject": "", "issuer": "i"},
        {"subject": "s" * 1025, "issuer": "i"},
        {"subject": "s", "issuer": "i", "type": "admin"},
        {"subject": "s", "issuer": "i", "scopes": "chat"},
        {"subject": "s", "issuer": "i", "scopes": [""]},
        {"subject": "s", "issuer": "i", "labels": {"owner": "x"}},
        {"subject": "s", "issuer": "i", "labels": {"team": "t" * 65}},
        ["s", "i"],
    ):
        with pytest.raises(ValueError, match=r"must|not in") as error:
            sanitize_claims(bad, allowed)
        assert "s" * 100 not in str(error.value)


@pytest.mark.parametrize(
    ("request_name", "reason"),
    [
        ("claims-type", "invalid-claims"),
        ("claims-label", "invalid-claims"),
        ("claims-scopes", "invalid-claims"),
        ("claims-list", "invalid-claims"),
        ("claims-deny", "deny"),
        ("claims-huge", "oversized"),
    ],
)
@pytest.mark.anyio
async def test_hostile_claims_are_denied(
    request_name: str,
    reason: str,
    make_provider: Callable[..., PluginAuthProvider],
    audit_path: Path,
) -> None:
    provider = make_provider("hostile_auth.py")
    assert await provider.authenticate({"authorization": f"Bearer {request_name}"}) is None
    assert [e["reason"] for e in audit_events(audit_path, "plugin.authenticate.deny")] == [reason]
    assert await provider.authenticate({"authorization": "Bearer hello"}) is not None


@pytest.mark.anyio
async def test_extra_claim_keys_never_reach_the_identity(
    make_provider: Callable[..., PluginAuthProvider],
) -> None:
    provider = make_provider("hostile_auth.py")
    identity = await provider.authenticate({"authorization": "Bearer claims-extra"})
    assert identity is not None
    assert identity.labels == {}
    assert identity.scopes == ()


@pytest.mark.anyio
async def test_a_hanging_plugin_times_out_and_is_replaced(
    make_provider: Callable[..., PluginAuthProvider], audit_path: Path
) -> None:
    provider = make_provider("hostile_auth.py", timeoutMs=300)
    assert await provider.authenticate({"authorization": "Bearer spin:"}) is None
    assert await provider.authenticate({"authorization": "Bearer hello"}) is not None
    assert [e["cause"] for e in audit_events(audit_path, "plugin.worker.terminated")] == ["timeout"]
    assert [e["reason"] for e in audit_events(audit_path, "plugin.authenticate.deny")] == [
        "timeout"
    ]
    accepted = audit_events(audit_path, "plugin.load.accepted")
    assert [e["respawn"] for e in accepted] == [False, True]


@pytest.mark.anyio
async def test_the_breaker_trips_after_repeated_crashes(
    make_provider: Callable[..., PluginAuthProvider], audit_path: Path
) -> None:
    provider = make_provider("hostile_auth.py", breaker=BreakerPolicy(backoff_s=0.001))
    for _ in range(5):
        assert await provider.authenticate({"authorization": "Bearer exit:1"}) is None
    assert await provider.authenticate({"authorization": "Bearer hello"}) is None
    causes = [e["cause"] for e in audit_events(audit_path, "plugin.worker.terminated")]
    assert causes == ["crash"] * 5 + ["respawn-storm"]
    reasons = [e["reason"] for e in audit_events(audit_path, "plugin.authenticate.deny")]
    assert reasons == ["crash"] * 5 + ["circuit-open"]


@pytest.mark.anyio
async def test_a_child_dying_between_calls_counts_for_the_breaker(
    make_provider: Callable[..., PluginAuthProvider], audit_path: Path
) -> None:
    """Without this a plugin that exits after every answer costs a new process, and a
    conformance run, per request for ever."""
    provider = make_provider("hostile_auth.py", breaker=BreakerPolicy(backoff_s=0.001))
    for _ in range(5):
        identity = await provider.authenticate({"authorization": "Bearer die-after"})
        assert identity is not None
        # Wait (without reaping) until the child is gone.
        pid = int(identity.labels["role"])
        await anyio.to_thread.run_sync(os.waitid, os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    assert await provider.authenticate({"authorization": "Bearer hello"}) is None
    causes = [e["cause"] for e in audit_events(audit_path, "plugin.worker.terminated")]
    assert causes == ["crash"] * 5 + ["respawn-storm"]
    reasons = [e["reason"] for e in audit_events(audit_path, "plugin.authenticate.deny")]
    assert reasons == ["circuit-open"]
    accepted = audit_events(audit_path, "plugin.load.accepted")
    assert [e["respawn"] for e in accepted] == [False, True, True, True, True]


async def respawn_reasons(
    provider: PluginAuthProvider,
    audit_path: Path,
    *,
    asks: int = 1,
    headers: dict[str, str] | None = None,
) -> tuple[list[str], list[str]]:
    """Kill the hostile plugin's child (it exits), ask ``asks`` more times (each must be
    denied) and return the reasons of the load refusals and of the denials audited."""
    assert await provider.authenticate({"authorization": "Bearer exit:1"}) is None
    for _ in range(asks):
        assert await provider.authenticate(headers or {"authorization": "Bearer hello"}) is None
    refused = [e["reason"] for e in audit_events(audit_path, "plugin.load.refused")]
    denied = [e["reason"] for e in audit_events(audit_path, "plugin.authenticate.deny")]
    return refused, denied


@pytest.mark.anyio
async def test_a_respawn_reruns_the_gate_from_disk(
    make_provider: Callable[..., PluginAuthProvider], audit_path: Path, tmp_path: Path
) -> None:
    provider = make_provider("hostile_auth.py")
    entry = tmp_path / "plugin" / "hostile_auth.py"
    entry.write_text(entry.read_text() + "\n# swapped after the start\n")
    assert await respawn_reasons(provider, audit_path) == (
        ["tampered-entry"],
        ["crash", "unavailable"],
    )


@pytest.mark.anyio
async def test_a_respawn_refuses_another_signed_build_put_in_place(
    crypto: LocalCryptoProvider, audit: AuditSink, audit_path: Path, tmp_path: Path
) -> None:
    """Files replaced under a running gateway by another plugin its anchor signed: the
    build accepted at start is the one that serves until a restart, not whatever a crash
    makes the next child read."""
    signed = sign_plugin(tmp_path / "plugin", "hostile_auth.py")
    settings: dict[str, Any] = {"confinement": MODE}
    provider = create_plugin_auth_provider(plugin_config(signed, **settings), audit, crypto)
    try:
        other = sign_plugin(
            tmp_path / "plugin",
            "good_auth.py",
            private_key=signed.private_key,
            plugin_id="other-auth",
        )
        shutil.copyfile(other.envelope_path, signed.envelope_path)
        assert await respawn_reasons(provider, audit_path, headers=GOOD) == (
            ["pin-mismatch"],
            ["crash", "unavailable"],
        )
    finally:
        provider.close()
    assert [e["pluginId"] for e in audit_events(audit_path, "plugin.load.refused")] == [
        "other-auth"
    ]
    assert [e["pluginId"] for e in audit_events(audit_path, "plugin.load.accepted")] == [
        "test-auth"
    ]


@pytest.mark.anyio
async def test_a_respawn_refuses_a_manifest_python_cannot_parse(
    make_provider: Callable[..., PluginAuthProvider], audit_path: Path, tmp_path: Path
) -> None:
    provider = make_provider("hostile_auth.py")
    envelope = tmp_path / "plugin" / "test-auth.signed.json"
    envelope.write_text(envelope.read_text().rstrip()[:-1] + ', "junk": ' + "9" * 5000 + "}")
    assert await respawn_reasons(provider, audit_path, asks=2) == (
        ["manifest-invalid"],
        ["crash", "unavailable", "unavailable"],
    )


@pytest.mark.anyio
async def test_a_child_dying_before_it_reads_its_program_is_a_refused_respawn(
    make_provider: Callable[..., PluginAuthProvider],
    audit_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An interpreter that exits at once (broken by an upgrade under a running gateway)
    closes the pipe while the host still writes a start frame larger than the pipe buffer:
    a failed start like any other, audited and not retried on every request."""
    provider = make_provider("hostile_auth.py", padding=1000)
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(broken))
    assert await respawn_reasons(provider, audit_path, asks=2) == (
        ["sandbox-failed"],
        ["crash", "unavailable", "unavailable"],
    )


@pytest.mark.anyio
async def test_a_respawn_without_a_working_directory_is_refused(
    make_provider: Callable[..., PluginAuthProvider],
    audit_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The temporary directory gone (or full, or read-only) when a child must be replaced:
    a failed start, audited, and the provider unavailable, as for any other."""
    provider = make_provider("hostile_auth.py")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    assert await respawn_reasons(provider, audit_path) == (
        ["sandbox-failed"],
        ["crash", "unavailable"],
    )


@pytest.mark.anyio
async def test_calls_beyond_max_pending_are_denied(
    make_provider: Callable[..., PluginAuthProvider], audit_path: Path
) -> None:
    provider = make_provider("hostile_auth.py", maxPendingCalls=1)
    assert await provider.authenticate({"authorization": "Bearer hello"}) is not None
    results: dict[str, Any] = {}

    async def call(name: str, credential: str) -> None:
        results[name] = await provider.authenticate({"authorization": credential})

    async with anyio.create_task_group() as group:
        group.start_soon(call, "slow", "Bearer report:burn:0.3")
        group.start_soon(call, "second", "Bearer hello")
    assert results["slow"] is not None
    assert results["second"] is None
    reasons = [e["reason"] for e in audit_events(audit_path, "plugin.authenticate.deny")]
    assert reasons == ["over-capacity"]


@pytest.mark.anyio
async def test_closing_kills_the_child_and_denies_afterwards(
    make_provider: Callable[..., PluginAuthProvider], audit_path: Path
) -> None:
    provider = make_provider()
    assert await provider.authenticate(GOOD) is not None
    await provider.aclose()
    assert await provider.authenticate(GOOD) is None
    assert audit_events(audit_path, "plugin.authenticate.deny")[-1]["reason"] == "closed"


@pytest.mark.anyio
async def test_concurrent_calls_get_their_own_answers(
    make_provider: Callable[..., PluginAuthProvider],
) -> None:
    provider = make_provider()
    credentials = ["Bearer let-me-in", "Bearer nope"] * 4
    answers = await asyncio.gather(
        *(provider.authenticate({"authorization": c}) for c in credentials)
    )
    assert [a is not None for a in answers] == [c == "Bearer let-me-in" for c in credentials]


@pytest.mark.anyio
async def test_closing_during_a_call_denies_it_without_blaming_the_plugin(
    make_provider: Callable[..., PluginAuthProvider], audit_path: Path
) -> None:
    provider = make_provider("hostile_auth.py", timeoutMs=10000)
    assert await provider.authenticate({"authorization": "Bearer hello"}) is not None
    results: list[Any] = []

    async def slow_call() -> None:
        results.append(await provider.authenticate({"authorization": "Bearer spin:"}))

    async with anyio.create_task_group() as group:
        group.start_soon(slow_call)
        await anyio.sleep(0.2)
        provider.close()
    assert results == [None]
    assert audit_events(audit_path, "plugin.worker.terminated") == []
    assert audit_events(audit_path, "plugin.authenticate.deny")[-1]["reason"] == "closed"
