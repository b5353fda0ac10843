# SPDX-License-Identifier: Apache-2.0
"""Kernel confinement the sandbox child applies to itself before any plugin code runs.

Layers, each enforced by the Linux kernel (not by Python, so plugin code cannot undo them):

* **network**: ``unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC)``. The child gets a
  fresh network namespace whose only interface is a loopback that is down: it cannot reach
  the host's loopback listeners, other machines or abstract UNIX sockets of the host.
* **filesystem**: Landlock (raw syscalls through ``ctypes``). Every filesystem right the
  running kernel's ABI knows is handled and only reading the Python standard library is
  granted back (so ``import`` keeps working); no write, no execute, no other read anywhere.
  From ABI 4 on TCP bind/connect are denied as well, from ABI 6 on signals to and abstract
  sockets of processes outside the sandbox.
* **seccomp**: a small BPF denylist (x86-64 and aarch64): no new sockets (this also closes
  pathname UNIX sockets, which Landlock does not cover), no fork/clone/exec, no signals to
  other processes (nor descriptors owned by one, which the kernel would signal), no ptrace,
  namespaces, keyrings, BPF, io_uring, perf or mounts. Calls that act on a process named by
  its pid (resource limits, scheduling, priority, page placement) are allowed on the child
  itself only: the kernel lets any process of the same user lower another's limits, so
  without this a plugin could set the gateway's ``RLIMIT_NOFILE`` or ``RLIMIT_CPU`` to 1, or
  park it at idle priority, and disable it without a signal.
* **resource limits**: address space, CPU seconds, open files, no core dumps, no file growth,
  no new processes (``RLIMIT_NPROC`` 0, which binds every uid but root; seccomp covers root).

This module is sent to the child as source and runs there before the plugin, so it imports
nothing but the standard library. ``confine`` never raises: it reports what holds.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import sys
from typing import Any, Final

__all__ = ["confine"]

_CLONE_NEWUSER: Final = 0x10000000
_CLONE_NEWNET: Final = 0x40000000
_CLONE_NEWIPC: Final = 0x08000000

_PR_SET_DUMPABLE: Final = 4
_PR_SET_SECCOMP: Final = 22
_PR_SET_NO_NEW_PRIVS: Final = 38
_SECCOMP_MODE_FILTER: Final = 2

# Landlock: the syscall numbers are the same on every architecture.
_SYS_LANDLOCK_CREATE_RULESET: Final = 444
_SYS_LANDLOCK_ADD_RULE: Final = 445
_SYS_LANDLOCK_RESTRICT_SELF: Final = 446
_LANDLOCK_CREATE_RULESET_VERSION: Final = 1
_LANDLOCK_RULE_PATH_BENEATH: Final = 1
_FS_READ_FILE: Final = 1 << 2
_FS_READ_DIR: Final = 1 << 3
_NET_BIND_AND_CONNECT_TCP: Final = (1 << 0) | (1 << 1)
_SCOPE_ABSTRACT_UNIX_AND_SIGNAL: Final = (1 << 0) | (1 << 1)
_SKIPPED_LIBRARY_DIRS: Final = frozenset({"site-packages", "dist-packages"})

# seccomp: audit arch, and the syscalls denied with EPERM (name -> number per arch).
_AUDIT_ARCH: Final = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_SYSCALL_BIT: Final = 0x40000000
_DENIED_SYSCALLS: Final = {
    "x86_64": (
        41,  # socket
        56,  # clone
        57,  # fork
        58,  # vfork
        59,  # execve
        62,  # kill
        101,  # ptrace
        129,  # rt_sigqueueinfo
        141,  # setpriority (its target may be every process of a user)
        165,  # mount
        166,  # umount2
        200,  # tkill
        234,  # tgkill
        248,  # add_key
        249,  # request_key
        250,  # keyctl
        251,  # ioprio_set (its target may be every process of a user)
        272,  # unshare
        297,  # rt_tgsigqueueinfo
        298,  # perf_event_open
        303,  # name_to_handle_at
        304,  # open_by_handle_at
        308,  # setns
        310,  # process_vm_readv
        311,  # process_vm_writev
        312,  # kcmp
        321,  # bpf
        322,  # execveat
        323,  # userfaultfd
        424,  # pidfd_send_signal
        425,  # io_uring_setup
        434,  # pidfd_open
        435,  # clone3
        438,  # pidfd_getfd
    ),
    "aarch64": (
        30,  # ioprio_set (its target may be every process of a user)
        39,  # umount2
        40,  # mount
        97,  # unshare
        117,  # ptrace
        129,  # kill
        130,  # tkill
        131,  # tgkill
        138,  # rt_sigqueueinfo
        140,  # setpriority (its target may be every process of a user)
        198,  # socket
        217,  # add_key
        218,  # request_key
        219,  # keyctl
        220,  # clone
        221,  # execve
        240,  # rt_tgsigqueueinfo
        241,  # perf_event_open
        264,  # name_to_handle_at
        265,  # open_by_handle_at
        268,  # setns
        270,  # process_vm_readv
        271,  # process_vm_writev
        272,  # kcmp
        280,  # bpf
        281,  # execveat
        282,  # userfaultfd
        424,  # pidfd_send_signal
        425,  # io_uring_setup
        434,  # pidfd_open
        435,  # clone3
        438,  # pidfd_getfd
    ),
}
#: Calls whose first argument is the pid they act on: allowed only with pid 0 (this process).
_SELF_ONLY_SYSCALLS: Final = {
    "x86_64": (
        142,  # sched_setparam
        144,  # sched_setscheduler
        203,  # sched_setaffinity
        256,  # migrate_pages
        274,  # get_robust_list
        279,  # move_pages
        302,  # prlimit64 (setrlimit and getrlimit use it with pid 0)
        314,  # sched_setattr
    ),
    "aarch64": (
        100,  # get_robust_list
        118,  # sched_setparam
        119,  # sched_setscheduler
        122,  # sched_setaffinity
        238,  # migrate_pages
        239,  # move_pages
        261,  # prlimit64 (setrlimit and getrlimit use it with pid 0)
        274,  # sched_setattr
    ),
}
#: Calls denied for some values of their second argument, the command: those that give a
#: descriptor an owner. The kernel signals the owner (SIGIO, whose default action ends a
#: process, or any signal ``F_SETSIG`` picks) whenever the descriptor becomes ready, and the
#: owner may be any process of the same user (any process at all for root): a way to the
#: gateway that neither the ``kill`` family nor Landlock before ABI 6 closes.
_DENIED_COMMANDS: Final = {
    "x86_64": {
        72: (8, 15),  # fcntl: F_SETOWN, F_SETOWN_EX
        16: (0x8901, 0x8902),  # ioctl: FIOSETOWN, SIOCSPGRP (sockets, socketpair's too)
    },
    "aarch64": {
        25: (8, 15),  # fcntl: F_SETOWN, F_SETOWN_EX
        29: (0x8901, 0x8902),  # ioctl: FIOSETOWN, SIOCSPGRP
    },
}
#: seccomp_data.args[0] and args[1], low 32 bits (both architectures are little-endian):
#: the pid_t of the self-only calls, the unsigned int command of fcntl and ioctl.
_ARG0_LOW: Final = 16
_ARG1_LOW: Final = 24
_BPF_LD_W_ABS: Final = 0x20
_BPF_JEQ_K: Final = 0x15
_BPF_JGE_K: Final = 0x35
_BPF_RET_K: Final = 0x06
_SECCOMP_RET_KILL_PROCESS: Final = 0x80000000
_SECCOMP_RET_ERRNO: Final = 0x00050000
_SECCOMP_RET_ALLOW: Final = 0x7FFF0000


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _errno_name() -> str:
    return errno.errorcode.get(ctypes.get_errno(), "unknown")


def _unshare(report: dict[str, Any]) -> None:
    flags = _CLONE_NEWUSER | _CLONE_NEWNET | _CLONE_NEWIPC
    if _libc.unshare(ctypes.c_int(flags)) == 0:
        report["network"] = True
    else:
        report["errors"]["network"] = _errno_name()


def _landlock_abi() -> int:
    abi = _libc.syscall(
        _SYS_LANDLOCK_CREATE_RULESET,
        None,
        ctypes.c_size_t(0),
        ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION),
    )
    return max(int(abi), 0)


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        rights |= 1 << 13  # refer
    if abi >= 3:
        rights |= 1 << 14  # truncate
    if abi >= 5:
        rights |= 1 << 15  # ioctl_dev
    return rights


def _library_rules() -> list[tuple[str, int]]:
    """What ``import`` may read: (path, Landlock rights) for the standard library.

    Each root on ``sys.path`` may be listed (``READ_DIR`` covers its subtree, so names are
    visible); file contents are granted per entry below the root, which keeps
    ``site-packages`` and ``dist-packages`` unreadable.
    """
    rules: list[tuple[str, int]] = []
    for root in sys.path:
        if os.path.isfile(root):
            rules.append((root, _FS_READ_FILE))
        elif os.path.isdir(root):
            rules.append((root, _FS_READ_DIR))
            for entry in os.scandir(root):
                if entry.name in _SKIPPED_LIBRARY_DIRS:
                    continue
                is_dir = entry.is_dir()
                rules.append((entry.path, _FS_READ_FILE | (_FS_READ_DIR if is_dir else 0)))
    return rules


def _allow(ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
        _libc.syscall(
            _SYS_LANDLOCK_ADD_RULE,
            ctypes.c_int(ruleset),
            ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH),
            ctypes.byref(rule),
            ctypes.c_uint32(0),
        )
    finally:
        os.close(fd)


def _landlock(report: dict[str, Any]) -> None:
    abi = _landlock_abi()
    report["landlockAbi"] = abi
    if abi < 1:
        report["errors"]["filesystem"] = _errno_name()
        return
    attr = _RulesetAttr(handled_access_fs=_fs_rights(abi))
    size = 8
    if abi >= 4:
        attr.handled_access_net = _NET_BIND_AND_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX_AND_SIGNAL
        size = 24
    ruleset = int(
        _libc.syscall(
            _SYS_LANDLOCK_CREATE_RULESET,
            ctypes.byref(attr),
            ctypes.c_size_t(size),
            ctypes.c_uint32(0),
        )
    )
    if ruleset < 0:
        report["errors"]["filesystem"] = _errno_name()
        return
    try:
        for path, access in _library_rules():
            _allow(ruleset, path, access)
        if _libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)):
            report["errors"]["filesystem"] = _errno_name()
            return
    finally:
        os.close(ruleset)
    report["filesystem"] = True


def _bpf(code: int, k: int, jt: int = 0, jf: int = 0) -> _SockFilter:
    return _SockFilter(code=code, jt=jt, jf=jf, k=k)


def _seccomp_program(machine: str) -> list[_SockFilter]:
    """The filter: check the architecture, then one comparison per listed call, each jumping
    to a block that ends in a return (deny; allow for pid 0 only; deny some commands)."""
    deny = _bpf(_BPF_RET_K, _SECCOMP_RET_ERRNO | errno.EPERM)
    allow = _bpf(_BPF_RET_K, _SECCOMP_RET_ALLOW)
    program = [
        _bpf(_BPF_LD_W_ABS, 4),  # seccomp_data.arch
        _bpf(_BPF_JEQ_K, _AUDIT_ARCH[machine], jt=1),
        _bpf(_BPF_RET_K, _SECCOMP_RET_KILL_PROCESS),
        _bpf(_BPF_LD_W_ABS, 0),  # seccomp_data.nr
    ]
    if machine == "x86_64":
        # The x32 ABI reaches the same kernel entry points under other numbers.
        program += [_bpf(_BPF_JGE_K, _X32_SYSCALL_BIT, jf=1), deny]
    blocks = [
        [deny],
        [_bpf(_BPF_LD_W_ABS, _ARG0_LOW), _bpf(_BPF_JEQ_K, 0, jt=1), deny, allow],
    ]
    targets = [(number, 0) for number in _DENIED_SYSCALLS[machine]]
    targets += [(number, 1) for number in _SELF_ONLY_SYSCALLS[machine]]
    for number, commands in _DENIED_COMMANDS[machine].items():
        # Each comparison jumps over the rest and the allow, to the deny closing the block.
        checks = [
            _bpf(_BPF_JEQ_K, command, jt=len(commands) - index)
            for index, command in enumerate(commands)
        ]
        targets.append((number, len(blocks)))
        blocks.append([_bpf(_BPF_LD_W_ABS, _ARG1_LOW), *checks, allow, deny])
    starts = [len(targets) + 1]  # the blocks follow the comparisons and one allow
    for block in blocks[:-1]:
        starts.append(starts[-1] + len(block))
    for index, (number, block_index) in enumerate(targets):
        program.append(_bpf(_BPF_JEQ_K, number, jt=starts[block_index] - index - 1))
    program.append(allow)
    for block in blocks:
        program += block
    return program


def _seccomp(report: dict[str, Any]) -> None:
    machine = os.uname().machine
    if machine not in _DENIED_SYSCALLS or ctypes.sizeof(ctypes.c_void_p) != 8:
        report["errors"]["seccomp"] = f"unsupported architecture {machine}"
        return
    program = _seccomp_program(machine)
    filters = (_SockFilter * len(program))(*program)
    fprog = _SockFprog(len=len(program), filter=filters)
    if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0):
        report["errors"]["seccomp"] = _errno_name()
        return
    report["seccomp"] = True


def _rlimits(report: dict[str, Any], limits: dict[str, int]) -> None:
    wanted = {
        resource.RLIMIT_AS: limits["memoryBytes"],
        resource.RLIMIT_CPU: limits["cpuSeconds"],
        resource.RLIMIT_NOFILE: limits["maxOpenFiles"],
        resource.RLIMIT_NPROC: 0,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_FSIZE: 0,
    }
    try:
        for kind, value in wanted.items():
            _, hard = resource.getrlimit(kind)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            # CPU: SIGXCPU at the soft limit, SIGKILL one second later.
            ceiling = value + 1 if kind == resource.RLIMIT_CPU else value
            if hard != resource.RLIM_INFINITY:
                ceiling = min(ceiling, hard)
            resource.setrlimit(kind, (value, ceiling))
    except (OSError, ValueError) as exc:
        report["errors"]["rlimits"] = type(exc).__name__
        return
    report["rlimits"] = True


def confine(limits: dict[str, int]) -> dict[str, Any]:
    """Confine the calling (single-threaded) process and report which layers hold.

    ``limits`` carries ``memoryBytes``, ``cpuSeconds`` and ``maxOpenFiles``. The report has
    boolean ``network``, ``filesystem``, ``seccomp`` and ``rlimits``, the Landlock ABI and,
    per failed layer, the errno name in ``errors``.
    """
    report: dict[str, Any] = {
        "network": False,
        "filesystem": False,
        "seccomp": False,
        "rlimits": False,
        "landlockAbi": 0,
        "errors": {},
    }
    _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    _unshare(report)
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
        report["errors"]["noNewPrivs"] = _errno_name()
    else:
        _landlock(report)
        _seccomp(report)
    _rlimits(report, limits)
    return report
