# SPDX-License-Identifier: Apache-2.0
"""The gateway's logs carry no exception text, also when the event loop reports a failure.

asyncio reports a callback that raised, or a task whose exception nobody retrieved, through
its ``asyncio`` logger, with the exception's text and traceback, and names the callback with
the repr of its arguments. In a gateway process those
reports come in the configured format with the exception's class only, as uvicorn's do.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

EMAIL = "jane.doe@example.com"
CARD = "4111111111111111"


def _quiet_lines(script: str, log_format: str) -> list[str]:
    """Run the Python ``script`` with ``log_format`` as its argument; check that nothing it
    printed holds a value or a traceback, and return its standard error lines."""
    result = subprocess.run(
        [sys.executable, "-c", script, log_format],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    printed = result.stdout + result.stderr
    assert EMAIL not in printed
    assert CARD not in printed
    assert "Traceback" not in printed
    return result.stderr.splitlines()


_FAILING_LOOP = textwrap.dedent(
    f"""
    import asyncio, gc, sys
    from haechi.proxy.logs import configure_logging

    configure_logging(sys.argv[1])

    def callback(seen):
        raise RuntimeError("callback saw " + seen)

    async def task():
        raise ValueError("task saw card {CARD}")

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_soon(callback, "{EMAIL}")
        failed = loop.create_task(task())
        await asyncio.sleep(0.05)
        del failed
        gc.collect()

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_event_loop_failures_are_logged_without_their_text(log_format: str) -> None:
    lines = _quiet_lines(_FAILING_LOOP, log_format)
    assert len(lines) == 2, lines
    if log_format == "json":
        events = [json.loads(line) for line in lines]
        assert {event["event"] for event in events} == {"server_message"}
        assert {event["level"] for event in events} == {"error"}
        assert sorted(event["errorName"] for event in events) == ["RuntimeError", "ValueError"]
        assert any(event["message"] == "Exception in callback callback" for event in events)
        assert any(event["message"] == "Task exception was never retrieved" for event in events)
    else:
        assert all(line.startswith("haechi server_message: message=") for line in lines)
        assert any("errorName=ValueError" in line for line in lines)


_UNCAUGHT = textwrap.dedent(
    f"""
    import gc, sys, threading
    from haechi.proxy.logs import configure_logging

    configure_logging(sys.argv[1])

    class Holder:
        def __del__(self):
            raise ValueError("finalizer saw card {CARD}")

    def work():
        raise RuntimeError("thread saw {EMAIL}")

    held = Holder()
    del held
    gc.collect()
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    """
)


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_exceptions_nothing_could_catch_are_logged_without_their_text(log_format: str) -> None:
    """Python reports an exception raised in a finalizer, or one that ended a thread, with
    a traceback and the exception's text; in a gateway process it is a log line naming the
    exception's class."""
    lines = _quiet_lines(_UNCAUGHT, log_format)
    if log_format == "json":
        events = [json.loads(line) for line in lines]
        assert [(event["event"], event["level"]) for event in events] == [
            ("server_message", "error")
        ] * 2
        assert [(event["message"], event["errorName"]) for event in events] == [
            ("Exception ignored in", "ValueError"),
            ("Exception in thread", "RuntimeError"),
        ]
    else:
        assert lines == [
            "haechi server_message: message=Exception ignored in errorName=ValueError",
            "haechi server_message: message=Exception in thread errorName=RuntimeError",
        ]
