# SPDX-License-Identifier: Apache-2.0
"""A signed but malicious plugin against the kernel-confined sandbox.

The hostile fixture (``tests/plugins/auth/hostile_auth.py``) tries to reach a loopback
listener this test runs, read and write files, read secrets from the environment, spawn
processes, signal the gateway and exhaust memory or CPU. Each attempt must fail, the listener
must receive nothing, the gateway must keep serving and the event must be audited.

These tests need the kernel layers (user+network namespaces, Landlock, seccomp); where the
kernel lacks one they are skipped with a reason naming it.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from haechi.audit import AuditSink, FileAuditStore, verify_chain
from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.plugins.auth_plugin import PluginAuthProvider, create_plugin_auth_provider
from haechi.plugins.sandbox import SandboxLimits, probe_confinement
from tests.plugins.auth.kit import confinement_skip_reason, plugin_config, sign_plugin

KERNEL_GAP = confinement_skip_reason()
pytestmark = pytest.mark.skipif(KERNEL_GAP is not None, reason=KERNEL_GAP or "")

SECRET_VARIABLE = "HAECHI_TEST_PLUGIN_SECRET"


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


def audit_events(path: Path, decision: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("decision") == decision]


@pytest.fixture
def hostile(
    tmp_path: Path, audit_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., PluginAuthProvider]]:
    monkeypatch.setenv(SECRET_VARIABLE, "hunter2-from-the-gateway-environment")
    init_key_file(tmp_path / "keys.json")
    crypto = LocalCryptoProvider(tmp_path / "keys.json")
    audit = AuditSink(FileAuditStore(audit_path))
    made: list[PluginAuthProvider] = []

    def make(**settings: Any) -> PluginAuthProvider:
        signed = sign_plugin(tmp_path / "plugin", "hostile_auth.py")
        provider = create_plugin_auth_provider(
            plugin_config(signed, confinement="required", **settings), audit, crypto
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


async def ask(provider: PluginAuthProvider, request: str) -> Any:
    return await provider.authenticate({"authorization": f"Bearer {request}"})


async def role_after(provider: PluginAuthProvider, attack: str) -> str:
    identity = await ask(provider, f"report:{attack}")
    assert identity is not None
    return str(identity.labels["role"])


@pytest.fixture
def tcp_listener() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        yield listener


def assert_nothing_arrived(listener: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_the_probe_reports_every_layer() -> None:
    report = probe_confinement()
    assert report.complete, report.errors
    assert report.landlock_abi >= 1


@pytest.mark.anyio
async def test_no_connection_to_a_loopback_listener(
    hostile: Callable[..., PluginAuthProvider], tcp_listener: socket.socket, audit_path: Path
) -> None:
    provider = hostile()
    port = tcp_listener.getsockname()[1]
    assert await role_after(provider, f"connect:{port}") == "PermissionError:1"
    assert await ask(provider, f"connect:{port}") is None
    assert_nothing_arrived(tcp_listener)
    assert await ask(provider, "hello") is not None
    denials = audit_events(audit_path, "plugin.authenticate.deny")
    assert [e["reason"] for e in denials] == ["plugin-error"]
    assert verify_chain(audit_path).valid


@pytest.mark.anyio
async def test_no_datagram_to_a_loopback_listener(
    hostile: Callable[..., PluginAuthProvider],
) -> None:
    provider = hostile()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.setblocking(False)
        port = receiver.getsockname()[1]
        assert await role_after(provider, f"udp:{port}") == "PermissionError:1"
        with pytest.raises(BlockingIOError):
            receiver.recvfrom(64)


@pytest.mark.anyio
async def test_no_connection_to_a_unix_socket(
    hostile: Callable[..., PluginAuthProvider], tmp_path: Path
) -> None:
    provider = hostile()
    path = tmp_path / "gateway.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen()
        listener.setblocking(False)
        assert await role_after(provider, f"unix:{path}") == "PermissionError:1"
        assert_nothing_arrived(listener)


@pytest.mark.anyio
async def test_no_file_reads_or_writes(
    hostile: Callable[..., PluginAuthProvider], tmp_path: Path, audit_path: Path
) -> None:
    provider = hostile()
    secret = tmp_path / "secret.txt"
    secret.write_text("database password")
    planted = tmp_path / "planted.txt"
    assert await role_after(provider, f"read:{secret}") == "PermissionError:13"
    assert await role_after(provider, "read:/etc/hostname") == "PermissionError:13"
    assert await role_after(provider, f"write:{planted}") == "PermissionError:13"
    assert not planted.exists()
    assert await ask(provider, f"read:{secret}") is None
    assert [e["reason"] for e in audit_events(audit_path, "plugin.authenticate.deny")] == [
        "plugin-error"
    ]


@pytest.mark.anyio
async def test_no_secrets_from_the_environment(
    hostile: Callable[..., PluginAuthProvider], audit_path: Path
) -> None:
    provider = hostile()
    assert os.environ[SECRET_VARIABLE]
    assert await role_after(provider, f"env:{SECRET_VARIABLE}") == "LookupError:None"
    assert await role_after(provider, "parent-env:") == "PermissionError:13"
    assert await ask(provider, f"env:{SECRET_VARIABLE}") is None
    assert await ask(provider, "hello") is not None
    assert [e["reason"] for e in audit_events(audit_path, "plugin.authenticate.deny")] == [
        "plugin-error"
    ]
    assert "hunter2" not in audit_path.read_text()


@pytest.mark.anyio
async def test_no_processes_and_no_signals_to_the_gateway(
    hostile: Callable[..., PluginAuthProvider], audit_path: Path
) -> None:
    provider = hostile()
    assert await role_after(provider, "spawn:") == "PermissionError:1"
    assert await role_after(provider, "fork:") == "PermissionError:1"
    assert await role_after(provider, "signal:") == "PermissionError:1"
    assert await role_after(provider, "owner:") == "PermissionError:1"
    assert await ask(provider, "spawn:") is None
    assert await ask(provider, "hello") is not None
    assert audit_events(audit_path, "plugin.worker.terminated") == []
    assert [e["reason"] for e in audit_events(audit_path, "plugin.authenticate.deny")] == [
        "plugin-error"
    ]


def scheduling_of(pid: int) -> tuple[Any, ...]:
    return (
        resource.prlimit(pid, resource.RLIMIT_NOFILE),
        os.sched_getscheduler(pid),
        os.sched_getaffinity(pid),
        os.getpriority(os.PRIO_PROCESS, pid),
    )


@pytest.mark.anyio
async def test_no_limits_or_scheduling_of_other_processes(
    hostile: Callable[..., PluginAuthProvider],
) -> None:
    """Same-uid calls that act on a process by pid: a plugin that lowers the gateway's
    descriptor or CPU limits, or parks it at idle priority, disables it without a signal."""
    provider = hostile()
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        before = scheduling_of(victim.pid)
        for attack in ("limit-other", "idle-other", "pin-other", "nice-other"):
            assert await role_after(provider, f"{attack}:{victim.pid}") == "PermissionError:1"
        assert scheduling_of(victim.pid) == before
    finally:
        victim.kill()
        victim.wait(timeout=30)
    assert await ask(provider, "hello") is not None


@pytest.mark.anyio
async def test_memory_is_capped(
    hostile: Callable[..., PluginAuthProvider], audit_path: Path
) -> None:
    provider = hostile(resourceLimits={"maxMemoryMb": 128})
    assert await role_after(provider, "memory:512") == "MemoryError:None"
    assert await role_after(provider, "memory:16") == "escaped"  # small allocations work
    assert await ask(provider, "memory:512") is None
    assert await ask(provider, "hello") is not None
    assert [e["reason"] for e in audit_events(audit_path, "plugin.authenticate.deny")] == [
        "plugin-error"
    ]


@pytest.mark.anyio
async def test_cpu_time_is_capped_and_the_gateway_keeps_serving(
    hostile: Callable[..., PluginAuthProvider], audit_path: Path
) -> None:
    provider = hostile(resourceLimits={"cpuSeconds": 1}, timeoutMs=20000)
    assert await ask(provider, "burn:5") is None
    assert [e["cause"] for e in audit_events(audit_path, "plugin.worker.terminated")] == ["crash"]
    assert await ask(provider, "hello") is not None


@pytest.mark.anyio
async def test_a_forged_frame_is_refused_unparsed(
    hostile: Callable[..., PluginAuthProvider], audit_path: Path
) -> None:
    provider = hostile()
    assert await ask(provider, "forge:") is None
    assert [e["cause"] for e in audit_events(audit_path, "plugin.worker.terminated")] == [
        "oversized"
    ]
    assert await ask(provider, "hello") is not None


# --- each layer on its own -------------------------------------------------------------

_ONE_LAYER = """
import ctypes, fcntl, json, os, socket, sys
from haechi.plugins.sandbox import _confine
layer, port, secret, victim = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
report = {"errors": {}}
if layer == "network":
    _confine._unshare(report)
else:
    _confine._libc.prctl(38, 1, 0, 0, 0)
    getattr(_confine, "_" + layer)(report)
key = {"landlock": "filesystem"}.get(layer, layer)
results = {"applied": report.get(key) is True}
def attempt(name, action):
    try:
        action()
        results[name] = "ok"
    except OSError as exc:
        results[name] = exc.errno
def connect():
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
def read():
    with open(secret) as handle:
        handle.read()
def stdlib_import():
    import colorsys
def owner_by_fcntl():
    # A descriptor with an owner signals it (SIGIO) once ready: here at once.
    read_end, write_end = os.pipe()
    fcntl.fcntl(read_end, fcntl.F_SETOWN, victim)
    fcntl.fcntl(read_end, fcntl.F_SETFL, os.O_ASYNC)
    os.write(write_end, b"x")
def owner_by_ioctl():
    left, right = socket.socketpair()
    fcntl.ioctl(left, 0x8901, victim.to_bytes(4, sys.byteorder, signed=True))  # FIOSETOWN
    fcntl.ioctl(left, 0x5452, (1).to_bytes(4, sys.byteorder))  # FIOASYNC
    right.send(b"x")
attempt("connect", connect)
attempt("owner-fcntl", owner_by_fcntl)
attempt("owner-ioctl", owner_by_ioctl)
attempt("read", read)
attempt("import", stdlib_import)
print(json.dumps(results))
"""


def run_one_layer(layer: str, port: int, secret: Path, victim: int = 0) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", _ONE_LAYER, layer, str(port), str(secret), str(victim)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    outcome: dict[str, Any] = json.loads(result.stdout)
    assert outcome["applied"] is True
    return outcome


def test_the_network_namespace_alone_has_no_route_to_host_loopback(
    tcp_listener: socket.socket, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    outcome = run_one_layer("network", tcp_listener.getsockname()[1], secret)
    assert outcome["connect"] == 101  # ENETUNREACH: the namespace's loopback is down
    assert outcome["read"] == "ok"
    assert_nothing_arrived(tcp_listener)


def test_landlock_alone_denies_files_and_tcp_but_keeps_the_stdlib(
    tcp_listener: socket.socket, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    outcome = run_one_layer("landlock", tcp_listener.getsockname()[1], secret)
    assert outcome["read"] == 13
    assert outcome["import"] == "ok"
    if probe_confinement(SandboxLimits()).landlock_abi >= 4:
        assert outcome["connect"] == 13
    assert_nothing_arrived(tcp_listener)


def test_seccomp_alone_denies_new_sockets(tcp_listener: socket.socket, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    outcome = run_one_layer("seccomp", tcp_listener.getsockname()[1], secret)
    assert outcome["connect"] == 1
    assert outcome["read"] == "ok"
    assert_nothing_arrived(tcp_listener)


def test_seccomp_alone_gives_no_descriptor_an_owner_to_signal(
    tcp_listener: socket.socket, tmp_path: Path
) -> None:
    """Before Landlock ABI 6 (kernels older than 6.12) seccomp is the only wall between a
    plugin and signals to the gateway: an owned descriptor's SIGIO (default action:
    terminate, or any signal F_SETSIG picks) reaches any process of the same user."""
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        outcome = run_one_layer("seccomp", tcp_listener.getsockname()[1], secret, victim.pid)
        assert outcome["owner-fcntl"] == 1
        assert outcome["owner-ioctl"] == 1
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait(timeout=30)
