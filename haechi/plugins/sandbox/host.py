# SPDX-License-Identifier: Apache-2.0
"""Host side of the plugin sandbox: start a confined child, talk to it, kill it.

The child is ``sys.executable -I -S -B -c <bootstrap>``: an isolated interpreter (no
environment variables honoured, no site-packages, no user site, no bytecode writes) with an
empty environment, no inherited descriptors beyond its two pipes (stderr goes to
``/dev/null``), an empty private working directory and its own session. The tiny bootstrap
reads haechi's sandbox modules (``_wire``, ``_confine``, ``_child``, sent as source by this
process) and then the verified entry from its stdin: no plugin file is opened by the child,
so what runs is exactly what the trust gate hashed.

Every exchange has a deadline. Any sign of trouble (deadline passed, pipe closed, oversized
or malformed frame) kills the child; the caller decides whether to start another. All
methods here are blocking and thread-safe enough to be driven from a worker thread, which
keeps the sandbox independent of any particular event loop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import IO, Any, Final, Literal

from haechi.errors import PluginLoadError
from haechi.plugins.sandbox import _wire

__all__ = [
    "ConfinementReport",
    "SandboxLimits",
    "SandboxProcess",
    "SandboxReply",
    "probe_confinement",
]

_BOOTSTRAP: Final = """\
import os, sys, types, json
def _read(n):
    data = b""
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            os._exit(70)
        data += chunk
    return data
_program = json.loads(_read(int.from_bytes(_read(4), "big")))
for _name in ("haechi", "haechi.plugins", "haechi.plugins.sandbox"):
    _module = types.ModuleType(_name)
    _module.__path__ = []
    sys.modules[_name] = _module
for _name, _source in _program["modules"]:
    _module = types.ModuleType("haechi.plugins.sandbox." + _name)
    _module.__package__ = "haechi.plugins.sandbox"
    sys.modules[_module.__name__] = _module
    exec(compile(_source, "<haechi sandbox " + _name + ">", "exec"), _module.__dict__)
    setattr(sys.modules["haechi.plugins.sandbox"], _name, _module)
sys.modules["haechi.plugins.sandbox._child"].main()
"""
_CHILD_MODULES: Final = ("_wire", "_confine", "_child")
_LAYERS: Final = ("network", "filesystem", "seccomp", "rlimits")
_LOAD_STAGES: Final = frozenset({"compile", "import", "no-authenticate"})
_CONTROL_MAX_BYTES: Final = 64 * 1024

Outcome = Literal[
    "claims",
    "deny",
    "plugin-error",
    "invalid-claims",
    "oversized",
    "timeout",
    "crash",
    "protocol-error",
]


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Bounds of one sandboxed plugin: per call, per message and for the whole child."""

    timeout_s: float = 2.0
    max_message_bytes: int = 16384
    memory_bytes: int = 256 * 1024 * 1024
    cpu_seconds: int = 10
    max_open_files: int = 64
    start_timeout_s: float = 10.0

    def _to_wire(self) -> dict[str, int]:
        return {
            "memoryBytes": self.memory_bytes,
            "cpuSeconds": self.cpu_seconds,
            "maxOpenFiles": self.max_open_files,
            "maxMessageBytes": self.max_message_bytes,
        }


@dataclass(frozen=True, slots=True)
class ConfinementReport:
    """Which kernel layers hold in a sandbox child (see ``haechi.plugins.sandbox._confine``)."""

    network: bool
    filesystem: bool
    seccomp: bool
    rlimits: bool
    landlock_abi: int
    errors: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def _from_wire(cls, report: object) -> ConfinementReport:
        data = report if isinstance(report, Mapping) else {}
        errors = data.get("errors")
        abi = data.get("landlockAbi")
        return cls(
            network=data.get("network") is True,
            filesystem=data.get("filesystem") is True,
            seccomp=data.get("seccomp") is True,
            rlimits=data.get("rlimits") is True,
            landlock_abi=abi if isinstance(abi, int) and not isinstance(abi, bool) else 0,
            errors={str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {},
        )

    @property
    def complete(self) -> bool:
        """True when every layer holds."""
        return not self.missing()

    def missing(self) -> list[str]:
        """Layers that did not hold, in a fixed order."""
        return [layer for layer in _LAYERS if not getattr(self, layer)]

    def to_json(self) -> dict[str, Any]:
        """The JSON shape used in audit records and diagnostics."""
        return {
            "network": self.network,
            "filesystem": self.filesystem,
            "seccomp": self.seccomp,
            "rlimits": self.rlimits,
            "landlockAbi": self.landlock_abi,
        }


@dataclass(frozen=True, slots=True)
class SandboxReply:
    """What one call produced. ``killed`` means the child is gone and must be replaced."""

    outcome: Outcome
    claims: Any = field(default=None, repr=False)
    killed: bool = False


@cache
def _program_frame() -> bytes:
    package = resources.files(__package__)
    modules = [[name, package.joinpath(f"{name}.py").read_text("utf-8")] for name in _CHILD_MODULES]
    return _wire.encode({"modules": modules})


def _reap(proc: subprocess.Popen[bytes], workdir: str) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()
    shutil.rmtree(workdir, ignore_errors=True)


def _spawn() -> tuple[subprocess.Popen[bytes], str]:
    if not sys.executable:
        raise PluginLoadError("sandbox-failed", "no Python interpreter path to start")
    try:
        workdir = tempfile.mkdtemp(prefix="haechi-plugin-")
    except OSError as exc:
        detail = f"cannot make the sandbox's working directory: {exc.strerror}"
        raise PluginLoadError("sandbox-failed", detail) from None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", "-c", _BOOTSTRAP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={},
            cwd=workdir,
            close_fds=True,
            start_new_session=True,
            bufsize=0,
        )
    except OSError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        detail = f"cannot start the sandbox: {exc.strerror}"
        raise PluginLoadError("sandbox-failed", detail) from None
    return proc, workdir


@contextlib.contextmanager
def _starting() -> Iterator[None]:
    """Read a failed exchange with a starting child (either way) as a failed start."""
    try:
        yield
    except _wire.WireTimeout:
        raise PluginLoadError("sandbox-failed", "the sandbox did not answer in time") from None
    except (_wire.WireError, OSError):
        raise PluginLoadError("sandbox-failed", "the sandbox exited while starting") from None


def _fd(stream: IO[bytes] | None) -> int:
    if stream is None:  # pragma: no cover - Popen was asked for both pipes
        raise RuntimeError("sandbox pipe missing")
    fd = stream.fileno()
    os.set_blocking(fd, False)
    return fd


class SandboxProcess:
    """One confined child running one verified plugin."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        workdir: str,
        limits: SandboxLimits,
    ) -> None:
        self._proc = proc
        self._limits = limits
        self._stdin = _fd(proc.stdin)
        self._stdout = _fd(proc.stdout)
        self._cid = 0
        self._dead = False
        self._kill_lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _reap, proc, workdir)
        self.report = ConfinementReport(False, False, False, False, 0)

    @classmethod
    def start(
        cls, source: str, plugin_id: str, limits: SandboxLimits, *, required: bool
    ) -> SandboxProcess:
        """Start a child, confine it and load ``source`` into it.

        Raises :class:`~haechi.errors.PluginLoadError` with reason ``confinement-unavailable``
        (``required`` and a kernel layer is missing), ``load-error`` (the entry did not
        define a callable ``authenticate``) or ``sandbox-failed``.
        """
        sandbox = cls._launch(
            {
                "t": "load",
                "source": source,
                "pluginId": plugin_id,
                "limits": limits._to_wire(),
                "required": required,
            },
            limits,
        )
        deadline = time.monotonic() + limits.start_timeout_s
        try:
            if required and not sandbox.report.complete:
                missing = ", ".join(sandbox.report.missing())
                raise PluginLoadError(
                    "confinement-unavailable", f"the kernel cannot provide: {missing}"
                )
            message = sandbox._control(deadline)
            if message.get("t") == "load-error":
                stage = message.get("error")
                stage = stage if stage in _LOAD_STAGES else "unknown"
                raise PluginLoadError("load-error", f"the plugin entry failed at {stage}")
            if message.get("t") != "loaded":
                raise PluginLoadError("sandbox-failed", "unexpected answer while loading")
        except BaseException:
            sandbox.kill()
            raise
        return sandbox

    @classmethod
    def _launch(cls, first: dict[str, Any], limits: SandboxLimits) -> SandboxProcess:
        proc, workdir = _spawn()
        sandbox = cls(proc, workdir, limits)
        deadline = time.monotonic() + limits.start_timeout_s
        try:
            with _starting():
                _wire.write_all(sandbox._stdin, _program_frame() + _wire.encode(first), deadline)
            message = sandbox._control(deadline)
        except BaseException:
            sandbox.kill()
            raise
        if message.get("t") != "confined":
            sandbox.kill()
            raise PluginLoadError("sandbox-failed", "the sandbox did not report confinement")
        sandbox.report = ConfinementReport._from_wire(message.get("report"))
        return sandbox

    def _control(self, deadline: float) -> dict[str, Any]:
        with _starting():
            return _wire.read_frame(self._stdout, _CONTROL_MAX_BYTES, deadline)

    @property
    def alive(self) -> bool:
        """False once the child was killed or exited."""
        return not self._dead and self._proc.poll() is None

    def call(self, credential: str) -> SandboxReply:
        """Ask the plugin about one credential, within the per-call deadline."""
        if not self.alive:
            return self._killed("crash")
        self._cid += 1
        cid = self._cid
        frame = _wire.encode({"t": "auth", "cid": cid, "credential": credential})
        if len(frame) - _wire.HEADER_BYTES > self._limits.max_message_bytes:
            return SandboxReply("oversized")
        deadline = time.monotonic() + self._limits.timeout_s
        try:
            _wire.write_all(self._stdin, frame, deadline)
            message = _wire.read_frame(self._stdout, self._limits.max_message_bytes, deadline)
        except _wire.WireTimeout:
            return self._killed("timeout")
        except _wire.WireOversized:
            return self._killed("oversized")
        except _wire.WireProtocolError:
            return self._killed("protocol-error")
        except (_wire.WireClosed, OSError):
            return self._killed("crash")
        answer = message.get("cid")
        if message.get("t") != "auth" or type(answer) is not int or answer != cid:
            return self._killed("protocol-error")
        if "claims" in message:
            claims = message["claims"]
            if isinstance(claims, dict) and claims.get("deny") is True:
                # The documented way to deny besides None: a denial to every caller,
                # conformance included, which would otherwise read it as an acceptance.
                return SandboxReply("deny")
            return SandboxReply("claims", claims=claims)
        if message.get("error") is True:
            return SandboxReply("plugin-error")
        if message.get("invalid") is True:
            return SandboxReply("invalid-claims")
        if message.get("oversized") is True:
            return SandboxReply("oversized")
        return SandboxReply("deny")

    def _killed(self, outcome: Outcome) -> SandboxReply:
        self.kill()
        return SandboxReply(outcome, killed=True)

    def kill(self) -> None:
        """Kill the child (idempotent) and remove its working directory."""
        with self._kill_lock:
            if self._dead:
                return
            self._dead = True
        self._finalizer()


def probe_confinement(limits: SandboxLimits | None = None) -> ConfinementReport:
    """Start a child in probe mode and return which kernel layers it could apply."""
    limits = limits or SandboxLimits()
    sandbox = SandboxProcess._launch(
        {"t": "probe", "limits": limits._to_wire(), "required": False}, limits
    )
    sandbox.kill()
    return sandbox.report
