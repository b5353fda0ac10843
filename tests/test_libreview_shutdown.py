# SPDX-License-Identifier: Apache-2.0
"""protect_sync and async protect while the interpreter shuts down.

The scan of a payload holding 64 KiB of text or more runs on a worker thread of the event
loop's executor. Once the interpreter is shutting down (a thread still protecting after the
main thread ended, an ``atexit`` handler) thread pools refuse new work; the scan then runs
on the loop's own thread, so such a payload is protected as before rather than failed
closed.
"""

from __future__ import annotations

from pathlib import Path

from tests.cli import run_python

_SYNC_SCRIPT = """
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

_ASYNC_SCRIPT = """
import asyncio
import atexit
import threading

from haechi.runtime import create_runtime

config = {"policy": {"mode": "enforce"}, "audit": {"sink": "memory"}}
runtime = create_runtime(config, {"token_vault": None})
# Text of 64 KiB or more is scanned on a worker thread of the loop's executor.
PAYLOAD = {"text": "mail user@example.com " + "x " * 40000}


def protect(when):
    result = asyncio.run(runtime.protect(PAYLOAD))
    print(when, result.payload["text"][:21])


def after_main():
    threading.main_thread().join()  # shutting down: thread pools take no new work now
    protect("thread")


def at_exit():
    protect("atexit")
    runtime.close()


atexit.register(at_exit)
threading.Thread(target=after_main).start()
"""


def test_a_thread_protecting_after_the_main_thread_ended_protects_a_large_payload(
    tmp_path: Path,
) -> None:
    assert run_python(_SYNC_SCRIPT, tmp_path) == ["mail [REDACTED:email]"]


def test_async_protect_of_a_large_payload_works_while_the_interpreter_shuts_down(
    tmp_path: Path,
) -> None:
    assert run_python(_ASYNC_SCRIPT, tmp_path) == [
        "thread mail [REDACTED:email]",
        "atexit mail [REDACTED:email]",
    ]
