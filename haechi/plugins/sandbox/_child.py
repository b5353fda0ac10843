# SPDX-License-Identifier: Apache-2.0
"""The sandbox child: confine this process, then run one verified plugin over the pipe.

Sequence (the host drives it and checks every step)::

    child           arm the timer that ends it once the gateway is gone
    host -> child   {"t": "load", "source": <verified entry text>, "pluginId", "limits",
                     "required"}     (or {"t": "probe", "limits", "required"})
    child           preload the modules auth plugins commonly need, move the protocol off
                    fds 0/1/2, confine itself (see ``_confine``)
    child -> host   {"t": "confined", "report": {...}}      <- written before plugin code runs
    child           exit here when confinement is required and incomplete, or when probing
    child -> host   {"t": "loaded"} | {"t": "load-error", "error": <stage>}
    host -> child   {"t": "auth", "cid": n, "credential": "<Authorization header value>"}
    child -> host   {"t": "auth", "cid": n, "claims": {...}}
                  | {"t": "auth", "cid": n, "deny": true[, "error"|"invalid"|"oversized": true]}

The plugin is the entry's top-level ``authenticate(credential)`` function; it returns a claims
object, ``None`` or ``{"deny": true}``. An exception, an unserialisable or oversized answer
becomes a deny; nothing the plugin raises or prints reaches the host (fds 0/1/2 point at
``/dev/null`` once the protocol has moved to private descriptors).

Like ``_wire`` and ``_confine`` this module is sent to the child as source text and imports
only the standard library.
"""

from __future__ import annotations

import builtins
import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, Final

from haechi.plugins.sandbox import _confine, _wire

__all__ = ["main"]

#: The first frame carries the entry (at most 4 MiB of source, JSON-escaped).
_LOAD_MAX_BYTES: Final = 32 * 1024 * 1024
#: Imported before confinement: they load shared libraries from outside the standard library.
_PRELOAD: Final = ("base64", "hashlib", "hmac", "json")
#: Seconds between two checks that the gateway that started this child still lives.
_PARENT_CHECK_SECONDS: Final = 1
_CLOCK_MONOTONIC: Final = 1
_SIGEV_SIGNAL: Final = 0

Authenticate = Callable[[str], Any]


def _private_stdio() -> tuple[int, int]:
    """Move the protocol to private descriptors and point fds 0, 1 and 2 at /dev/null."""
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return proto_in, proto_out


class _SigEvent(ctypes.Structure):
    """``struct sigevent`` (64 bytes on Linux): signal the process with ``sigev_signo``."""

    _fields_ = (
        ("sigev_value", ctypes.c_void_p),
        ("sigev_signo", ctypes.c_int),
        ("sigev_notify", ctypes.c_int),
        ("_rest", ctypes.c_byte * 48),
    )


class _TimerSpec(ctypes.Structure):
    """``struct itimerspec``: the interval and the first expiry, as seconds and nanoseconds."""

    _fields_ = (
        ("interval_s", ctypes.c_long),
        ("interval_ns", ctypes.c_long),
        ("value_s", ctypes.c_long),
        ("value_ns", ctypes.c_long),
    )


def _timer_library() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(libc, "timer_create"):
        return libc
    # Before glibc 2.34 the POSIX timers live in librt.
    return ctypes.CDLL("librt.so.1", use_errno=True)


def _exit_with_the_gateway() -> None:
    """Exit as soon as the gateway that started this child is gone.

    A gateway killed by a signal it cannot handle never kills its child. Between calls the
    child notices, as its pipe closes; but plugin code that sleeps (at import or in a call)
    reads no pipe and would outlive the gateway. A timer checks the parent every second
    instead: once the child is re-parented, it exits. It is armed before confinement and
    before any plugin code runs. It is a POSIX timer on a real-time signal of its own, so a
    plugin's own ``alarm``/``setitimer`` (and SIGALRM's default action) stay as they are;
    PR_SET_PDEATHSIG is no substitute: it fires when the gateway *thread* that started the
    child ends, and worker threads come and go. Where no timer can be made the child runs
    without the check, as it did before it existed.
    """
    gateway = os.getppid()
    check_signal = signal.SIGRTMIN

    def check(_signum: int, _frame: object) -> None:
        if os.getppid() != gateway:
            os._exit(0)

    try:
        library = _timer_library()
    except OSError:
        return
    signal.signal(check_signal, check)
    event = _SigEvent(sigev_signo=check_signal, sigev_notify=_SIGEV_SIGNAL)
    timer = ctypes.c_void_p()
    if library.timer_create(_CLOCK_MONOTONIC, ctypes.byref(event), ctypes.byref(timer)):
        return
    seconds = _PARENT_CHECK_SECONDS
    spec = _TimerSpec(interval_s=seconds, value_s=seconds)
    library.timer_settime(timer, 0, ctypes.byref(spec), None)


def _send(fd: int, message: dict[str, Any]) -> None:
    _wire.write_all_blocking(fd, _wire.encode(message))


def _load(source: str, plugin_id: str) -> Authenticate | str:
    """Execute the entry in a fresh namespace; return ``authenticate`` or the failed stage."""
    namespace: dict[str, Any] = {"__name__": "haechi_plugin", "__builtins__": builtins}
    try:
        code = compile(source, f"<plugin {plugin_id}>", "exec")
    except (SyntaxError, ValueError):
        return "compile"
    try:
        exec(code, namespace)  # noqa: S102 - the verified entry, inside the confined child
    except BaseException:
        return "import"
    authenticate = namespace.get("authenticate")
    if not callable(authenticate):
        return "no-authenticate"
    return authenticate  # type: ignore[no-any-return]


def _answer(authenticate: Authenticate, cid: int, credential: str, max_bytes: int) -> bytes:
    try:
        result = authenticate(credential)
    except BaseException:
        return _wire.encode({"t": "auth", "cid": cid, "deny": True, "error": True})
    if result is None:
        return _wire.encode({"t": "auth", "cid": cid, "deny": True})
    try:
        frame = _wire.encode({"t": "auth", "cid": cid, "claims": result})
    except (TypeError, ValueError, RecursionError):
        return _wire.encode({"t": "auth", "cid": cid, "deny": True, "invalid": True})
    if len(frame) - _wire.HEADER_BYTES > max_bytes:
        return _wire.encode({"t": "auth", "cid": cid, "deny": True, "oversized": True})
    return frame


def _serve(authenticate: Authenticate, proto_in: int, proto_out: int, max_bytes: int) -> None:
    while True:
        try:
            message = _wire.read_frame_blocking(proto_in, max_bytes)
        except _wire.WireClosed:
            return
        cid, credential = message.get("cid"), message.get("credential")
        if message.get("t") != "auth" or type(cid) is not int or type(credential) is not str:
            os._exit(4)
        _wire.write_all_blocking(proto_out, _answer(authenticate, cid, credential, max_bytes))


def main() -> None:
    """Run the child until the host closes the pipe."""
    sys.dont_write_bytecode = True
    _exit_with_the_gateway()
    first = _wire.read_frame_blocking(0, _LOAD_MAX_BYTES)
    for name in _PRELOAD:
        __import__(name)
    proto_in, proto_out = _private_stdio()
    limits: dict[str, int] = first["limits"]
    report = _confine.confine(limits)
    _send(proto_out, {"t": "confined", "report": report})
    complete = all(report[layer] for layer in ("network", "filesystem", "seccomp", "rlimits"))
    if first["t"] == "probe" or (first["required"] and not complete):
        os._exit(0 if first["t"] == "probe" else 3)
    loaded = _load(first["source"], first["pluginId"])
    if isinstance(loaded, str):
        _send(proto_out, {"t": "load-error", "error": loaded})
        os._exit(5)
    _send(proto_out, {"t": "loaded"})
    _serve(loaded, proto_in, proto_out, limits["maxMessageBytes"])
    os._exit(0)
