# SPDX-License-Identifier: Apache-2.0
"""protect_sync in a process forked after it was used (a server composing its runtime before
forking its workers, multiprocessing with the fork start method): the child gets a loop of its
own, and leaves the parent's alone. Each case runs in a fresh interpreter, so that the fork
happens in a process whose threads the test controls."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.cli import run_python

_PRELUDE = """
import asyncio, os, signal, threading, time
from haechi.runtime import create_runtime

# Text of 64 KiB or more is scanned on a worker thread of the loop's executor.
LARGE = {"text": "mail user@example.com " + "x " * 40000}


def redacted(runtime):
    return runtime.protect_sync(LARGE).payload["text"].startswith("mail [REDACTED:email] ")


# How the child pid ended: its exit code, or "hung" after 30 s.
def outcome(pid):
    deadline = time.monotonic() + 30
    while (ended := os.waitpid(pid, os.WNOHANG)) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hung"
        time.sleep(0.05)
    return f"exit{os.waitstatus_to_exitcode(ended[1])}"


# Ends this process with code 3 if it is still running after 30 s.
def watchdog():
    timer = threading.Timer(30, os._exit, (3,))
    timer.daemon = True
    timer.start()
"""


def _run(tmp_path: Path, script: str) -> list[str]:
    return run_python(_PRELUDE + textwrap.dedent(script), tmp_path, timeout=120)


def test_a_child_forked_while_another_thread_is_in_a_call_runs_its_own_calls(
    tmp_path: Path,
) -> None:
    script = """
    from haechi.audit.stores import MemoryAuditStore

    stalled, release = threading.Event(), threading.Event()

    class StallingOnce(MemoryAuditStore):
        async def append(self, build, *, committed=None):
            if not stalled.is_set():
                stalled.set()
                await asyncio.to_thread(release.wait)
            return await super().append(build, committed=committed)

    runtime = create_runtime(
        {"policy": {"mode": "enforce"}}, {"audit_store": StallingOnce(), "token_vault": None}
    )
    held = threading.Thread(target=runtime.protect_sync, args=({"text": "held"},))
    held.start()
    stalled.wait(30)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if redacted(runtime) else 1)
    print(outcome(pid))
    release.set()
    held.join(30)
    print(redacted(runtime))
    """
    assert _run(tmp_path, script) == ["exit0", "True"]


def test_a_child_closing_its_runtime_leaves_the_parents_calls_working(tmp_path: Path) -> None:
    script = """
    runtime = create_runtime({"policy": {"mode": "enforce"}})
    print(redacted(runtime))
    pid = os.fork()
    if pid == 0:
        runtime.close()
        os._exit(0)
    print(outcome(pid))
    watchdog()  # the parent's next call must not hang
    print(redacted(runtime))
    runtime.close()
    """
    assert _run(tmp_path, script) == ["True", "exit0", "True"]


def test_a_child_forked_under_uvloop_runs_the_calls_of_every_runtime(tmp_path: Path) -> None:
    """With uvloop's policy installed (``uvloop.install()``), the private loops are uvloop's,
    whose ``_closed`` cannot be set: starting over failed for the first loop the child reset
    and left the others as they were, each lock held by the parent's call for good."""
    script = """
    import uvloop
    from haechi.audit.stores import MemoryAuditStore

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    release = threading.Event()

    class StallingOnce(MemoryAuditStore):
        def __init__(self):
            super().__init__()
            self.stalled = threading.Event()

        async def append(self, build, *, committed=None):
            if not self.stalled.is_set():
                self.stalled.set()
                await asyncio.to_thread(release.wait)
            return await super().append(build, committed=committed)

    stores = [StallingOnce(), StallingOnce()]
    runtimes = [
        create_runtime({"policy": {"mode": "enforce"}}, {"audit_store": store, "token_vault": None})
        for store in stores
    ]
    held = [threading.Thread(target=r.protect_sync, args=({"text": "held"},)) for r in runtimes]
    for thread in held:
        thread.start()
    for store in stores:
        store.stalled.wait(30)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if all(redacted(runtime) for runtime in runtimes) else 1)
    print(outcome(pid))
    release.set()
    for thread in held:
        thread.join(30)
    print(all(redacted(runtime) for runtime in runtimes))
    """
    assert _run(tmp_path, script) == ["exit0", "True"]
