# SPDX-License-Identifier: Apache-2.0
"""A signed but malicious auth plugin: each credential names an escape attempt.

``Bearer <attack>:<argument>`` runs the attack and lets any error propagate (the host sees a
plugin error). ``Bearer report:<attack>:<argument>`` runs it inside ``try`` and answers with
an identity whose ``role`` label says what happened: ``escaped`` when the attack worked,
otherwise ``<ExceptionClass>:<errno>``, so a test can tell which wall stopped it.
"""

import fcntl
import os
import resource
import signal
import socket
import subprocess
import time


def _connect(argument):
    with socket.create_connection(("127.0.0.1", int(argument)), timeout=1) as conn:
        conn.sendall(b"stolen")


def _udp(argument):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"stolen", ("127.0.0.1", int(argument)))


def _unix(argument):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(argument)
        sock.sendall(b"stolen")


def _read(argument):
    with open(argument, "rb") as handle:
        handle.read()


def _write(argument):
    with open(argument, "w") as handle:
        handle.write("planted")


def _env(argument):
    if argument not in os.environ:
        raise LookupError("not in the environment")


def _parent_env(argument):
    with open(f"/proc/{os.getppid()}/environ", "rb") as handle:
        handle.read()


def _spawn(argument):
    subprocess.run(["/bin/sh", "-c", "true"], check=True)


def _fork(argument):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def _signal_parent(argument):
    os.kill(os.getppid(), 0)


def _owner_parent(argument):
    # Make the gateway the owner of a descriptor: the kernel signals it (SIGIO) once ready.
    read_end, write_end = os.pipe()
    fcntl.fcntl(read_end, fcntl.F_SETOWN, os.getppid())
    fcntl.fcntl(read_end, fcntl.F_SETFL, os.O_ASYNC)
    os.write(write_end, b"x")


def _limit_other(argument):
    # Lower the descriptor limit of another process of the same user (the gateway).
    resource.prlimit(int(argument), resource.RLIMIT_NOFILE, (1, 1))


def _idle_other(argument):
    os.sched_setscheduler(int(argument), os.SCHED_IDLE, os.sched_param(0))


def _pin_other(argument):
    os.sched_setaffinity(int(argument), {0})


def _nice_other(argument):
    os.setpriority(os.PRIO_PROCESS, int(argument), 19)


def _memory(argument):
    block = bytearray(int(argument) * 1024 * 1024)
    block[-1] = 1


def _spin(argument):
    while True:
        pass


def _burn(argument):
    # Busy for long enough of CPU time to reach RLIMIT_CPU.
    end = time.process_time() + float(argument)
    while time.process_time() < end:
        pass


def _exit(argument):
    os._exit(int(argument))


def _forge(argument):
    # Write straight to the protocol descriptor: a frame header announcing 4 GiB.
    for fd in range(3, 16):
        try:
            os.write(fd, b"\xff\xff\xff\xff")
        except OSError:
            continue


_ATTACKS = {
    "connect": _connect,
    "udp": _udp,
    "unix": _unix,
    "read": _read,
    "write": _write,
    "env": _env,
    "parent-env": _parent_env,
    "spawn": _spawn,
    "fork": _fork,
    "signal": _signal_parent,
    "owner": _owner_parent,
    "limit-other": _limit_other,
    "idle-other": _idle_other,
    "pin-other": _pin_other,
    "nice-other": _nice_other,
    "memory": _memory,
    "spin": _spin,
    "burn": _burn,
    "exit": _exit,
    "forge": _forge,
}

_CLAIMS = {
    "hello": {"subject": "mallory", "issuer": "evil", "labels": {"role": "served"}},
    "claims-extra": {
        "subject": "mallory",
        "issuer": "evil",
        "__proto__": {"admin": True},
        "constructor": "x",
        "isAdmin": True,
    },
    "claims-type": {"subject": "mallory", "issuer": "evil", "type": "root"},
    "claims-label": {"subject": "mallory", "issuer": "evil", "labels": {"owner": "x"}},
    "claims-scopes": {"subject": "mallory", "issuer": "evil", "scopes": ["s"] * 65},
    "claims-huge": {"subject": "m" * 40000, "issuer": "evil"},
    "claims-deny": {"deny": True},
    "claims-list": ["not", "an", "object"],
}


def authenticate(credential):
    request = credential.removeprefix("Bearer ")
    if request == "die-after":
        # Answer, then die of a timer a moment later: between calls, not during one.
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        return {"subject": "mallory", "issuer": "evil", "labels": {"role": str(os.getpid())}}
    if request in _CLAIMS:
        return _CLAIMS[request]
    report = request.startswith("report:")
    name, _, argument = request.removeprefix("report:").partition(":")
    attack = _ATTACKS.get(name)
    if attack is None:
        return None
    if not report:
        attack(argument)
        return {"subject": "mallory", "issuer": "evil", "labels": {"role": "escaped"}}
    try:
        attack(argument)
    except BaseException as exc:
        outcome = f"{type(exc).__name__}:{getattr(exc, 'errno', None)}"
    else:
        outcome = "escaped"
    return {"subject": "mallory", "issuer": "evil", "labels": {"role": outcome[:64]}}
