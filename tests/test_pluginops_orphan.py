# SPDX-License-Identifier: Apache-2.0
"""A plugin child does not outlive a gateway killed while the plugin is busy.

A gateway stopped by a signal it does not handle (SIGKILL, the OOM killer, a SIGTERM before
its handlers are installed) never kills its sandbox child. A child waiting for the next
request sees the pipe close and exits, but one running plugin code (an import or a call that
sleeps) would live on, holding the verified plugin and its memory, until it finished.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SLEEPING_CALL = """
import sys, threading, time
from haechi.plugins.sandbox import SandboxLimits
from haechi.plugins.sandbox.host import SandboxProcess

source = "import time\\ndef authenticate(credential):\\n    time.sleep(3600)\\n"
limits = SandboxLimits(timeout_s=3600)
sandbox = SandboxProcess.start(source, "sleeper", limits, required=False)
threading.Thread(target=sandbox.call, args=("Bearer x",), daemon=True).start()
# The call is one small frame written to an empty pipe: it is in the child's pipe well
# within this pause, and the child then runs authenticate whether the host lives or not.
time.sleep(1)
print("calling", flush=True)
time.sleep(3600)
"""


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_a_child_busy_in_a_call_exits_when_its_gateway_is_killed(tmp_path: Path) -> None:
    host = subprocess.Popen(
        [sys.executable, "-c", SLEEPING_CALL], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    try:
        assert host.stdout is not None
        assert host.stdout.readline().strip() == "calling"
        [child] = children_of(host.pid)
    finally:
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=30)
    deadline = time.monotonic() + 20
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    still_running = running(child)
    if still_running:
        os.kill(child, signal.SIGKILL)
    assert not still_running, "the plugin child outlived its gateway"
