# SPDX-License-Identifier: Apache-2.0
"""Run the ``haechi`` command line as a user does: a real subprocess of this interpreter."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

#: The most memory :func:`run_haechi_capped` lets a command map: far over what reading an
#: input under its bound takes, far under what an endless input held whole would.
CAPPED_DATA_BYTES: Final = 1 << 30


def run_haechi(
    *args: str | Path,
    cwd: Path,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``python -m haechi ARGS`` in ``cwd``, without any ``HAECHI_*`` variable of this shell."""
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("HAECHI_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "haechi", *map(str, args)],
        cwd=cwd,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_haechi_on_terminal(
    *args: str, cwd: Path
) -> tuple[subprocess.CompletedProcess[bytes], bytes]:
    """``python -m haechi ARGS`` in ``cwd`` with stderr on a terminal (a pseudo-terminal):
    the finished process, its stdout captured, and all the terminal was sent."""
    main, secondary = pty.openpty()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "haechi", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=secondary,
            timeout=120,
            check=False,
        )
        os.close(secondary)
        secondary = -1
        shown = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal is closed once the child is gone
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if secondary != -1:
            os.close(secondary)
        os.close(main)
    return process, shown


@dataclass(frozen=True)
class CappedRun:
    """How a command ended: its exit code, its output, and its peak resident size."""

    returncode: int
    stdout: str
    stderr: str
    peak_kib: int


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (CAPPED_DATA_BYTES, CAPPED_DATA_BYTES))


#: Runs ``python -m haechi`` with the arguments after its first one, a file to which it
#: writes, as it exits, its peak resident size in KiB: the high-water mark of its own memory
#: (``VmHWM``), which starts afresh when the program is loaded. The kernel's ``ru_maxrss``
#: of a child does not: it keeps the resident size of the forking process, so a command
#: started by a test process grown to hundreds of megabytes would seem to have used them.
_PEAK_PRELUDE: Final = """
import atexit, runpy, sys
peak_path = sys.argv.pop(1)
def _write_peak():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(peak_path, "w") as out:
        out.write(kib)
atexit.register(_write_peak)
runpy.run_module("haechi", run_name="__main__", alter_sys=True)
"""


def _reap(pid: int, timeout: float) -> int:
    """The exit code of the child ``pid``, once it ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    raise AssertionError(f"haechi still running after {timeout} s")


def run_haechi_capped(
    *args: str, cwd: Path, stdin: IO[Any] | int = subprocess.DEVNULL, timeout: float = 120
) -> CappedRun:
    """``python -m haechi ARGS`` in ``cwd`` reading ``stdin``, with at most
    :data:`CAPPED_DATA_BYTES` of memory: a command that holds an endless input whole fails
    with a ``MemoryError`` instead of taking the machine's memory. Its peak resident size is
    the high-water mark of its own memory (see ``_PEAK_PRELUDE``; ``-1`` when it ended
    without writing it)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HAECHI_")}
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.TemporaryDirectory() as scratch,
    ):
        peak_file = Path(scratch) / "peak-kib"
        process = subprocess.Popen(
            [sys.executable, "-c", _PEAK_PRELUDE, str(peak_file), *args],
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=out,
            stderr=err,
            preexec_fn=_cap_memory,
        )
        try:
            process.returncode = _reap(process.pid, timeout)
        finally:
            if process.returncode is None:
                process.kill()
                process.wait()
        out.seek(0)
        err.seek(0)
        written = peak_file.read_text() if peak_file.exists() else ""
        peak = int(written) if written.isdigit() else -1
        return CappedRun(process.returncode, out.read(), err.read(), peak)


@contextlib.contextmanager
def endless_writer(text: str) -> Iterator[IO[bytes]]:
    """The read end of a pipe another process writes ``text`` to, again and again, without
    end (see :func:`endless_output`)."""
    program = f"import sys\nchunk = {text!r} * 4096\nwhile True: sys.stdout.write(chunk)"
    with endless_output(program) as pipe:
        yield pipe


@contextlib.contextmanager
def endless_output(program: str) -> Iterator[IO[bytes]]:
    """The read end of a pipe the Python ``program``, which never stops writing, writes to.
    The body's end is checked to find the writer still there: this end of the pipe stays
    open, so it only ever waits to write more."""
    writer = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE)
    assert writer.stdout is not None
    try:
        yield writer.stdout
        assert writer.poll() is None
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()


def json_output(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON document a successful command printed."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def plugin_sign_args(key: str, capabilities: str, *extra: str, entry: str = "auth.py") -> list[str]:
    """``plugin-sign`` of ``entry`` as version 1.0.0 of the auth provider ``acme-auth``,
    with the key file ``key`` of signer ``acme`` and ``--capabilities capabilities``."""
    return [
        "plugin-sign",
        entry,
        "--key",
        key,
        "--signer-key-id",
        "acme",
        "--plugin-id",
        "acme-auth",
        "--kind",
        "authProvider",
        "--plugin-version",
        "1.0.0",
        "--core-range",
        ">=0.0.0 <99.0.0",
        "--capabilities",
        capabilities,
        *extra,
    ]


def proxy_start_events(config: Path, *args: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Start ``haechi proxy --config CONFIG --port 0 ARGS`` with JSON logs, stop it with
    SIGINT once it listens, and return its ``proxy_listening`` event and every event it
    wrote on standard error (its warnings). The gateway must exit 0."""
    argv = [sys.executable, "-m", "haechi", "proxy", "--config", str(config), "--port", "0"]
    env = {**os.environ, "HAECHI_LOG_FORMAT": "json"}
    process = subprocess.Popen(
        [*argv, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        listening = json.loads(process.stdout.readline())
        assert listening["event"] == "proxy_listening"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        stderr = process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return listening, [json.loads(line) for line in stderr.splitlines() if line.strip()]


def run_python(script: str, cwd: Path, *, timeout: float = 60) -> list[str]:
    """The lines ``python -c SCRIPT`` printed in ``cwd``; it must exit 0 (its standard error
    is the message otherwise)."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()
