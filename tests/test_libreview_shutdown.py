# SPDX-License-Identifier: Apache-2.0
"""protect_sync while the interpreter shuts down: a thread still protecting after the main
thread ended (thread pools then refuse new work) protects a large payload as before, rather
than failing it closed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import threading
from haechi.runtime import create_runtime

config = {"policy": {"mode": "enforce"}, "audit": {"sink": "memory"}}
runtime = create_runtime(config, {"token_vault": None})


def after_main():
    threading.main_thread().join()  # shutting down: thread pools take no new work now
    # Text of 64 KiB or more is scanned on a worker thread of the loop's executor.
    result = runtime.protect_sync({"text": "mail user@example.com " + "x " * 40000})
    print(result.payload["text"][:21])
    runtime.close()


threading.Thread(target=after_main).start()
"""


def test_a_thread_protecting_after_the_main_thread_ended_protects_a_large_payload(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["mail", "[REDACTED:email]"], done.stderr
