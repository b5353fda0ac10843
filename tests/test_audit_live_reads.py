# SPDX-License-Identifier: Apache-2.0
"""Reading a log while a store writes it: a line met half written is read again once the
write is done, so audit-verify, report and ready() do not take it for a torn record."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from haechi.audit import (
    AuditSink,
    FileAuditStore,
    build_integrity_record,
    read_summary,
    verify_chain,
)
from haechi.audit._lines import encode_line
from haechi.errors import AuditError
from tests.cli import run_haechi

#: A store in the middle of a write: holds the log's lock, writes the first part of the
#: line on stdin, and the rest once a second line comes in.
_WRITER = textwrap.dedent(
    """
    import fcntl, os, sys
    line = bytes.fromhex(sys.stdin.readline())
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_APPEND)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, line[: len(line) // 2])
    print("half", flush=True)
    sys.stdin.readline()
    os.write(fd, line[len(line) // 2 :])
    fcntl.flock(fd, fcntl.LOCK_UN)
    """
)


def _log(directory: Path) -> tuple[Path, bytes]:
    """A log of two records, and the line of the third."""
    log = directory / "audit.jsonl"

    async def run() -> dict[str, Any]:
        sink = AuditSink(FileAuditStore(log, fsync_interval=0))
        await sink.record({"n": 0, "summary": {"byType": {"email": 1}}})
        record: dict[str, Any] = await sink.record({"n": 1, "summary": {"byType": {"email": 1}}})
        return record

    last = anyio.run(run)
    third = build_integrity_record(
        last["auditIntegrity"], {"n": 2, "summary": {"byType": {"email": 1}}}
    )
    return log, encode_line(third)


@contextmanager
def _half_written(log: Path, line: bytes) -> Iterator[Callable[[], None]]:
    """Run the body while a writer has written half of ``line``; the body calls the
    function it is given to let the writer finish."""
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(log)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None
    assert writer.stdout is not None
    stdin = writer.stdin
    try:
        stdin.write(line.hex() + "\n")
        stdin.flush()
        assert writer.stdout.readline() == "half\n"

        def finish() -> None:
            stdin.write("\n")
            stdin.flush()
            assert writer.wait(20) == 0

        yield finish
    finally:
        writer.kill()
        writer.wait(20)


def _while_half_written(log: Path, line: bytes, read: Callable[[], Any]) -> Any:
    """``read()`` started while ``line`` is half written, the write finished meanwhile."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(read())
        except Exception as exc:
            outcome.append(exc)

    with _half_written(log, line) as finish:
        reader = threading.Thread(target=run)
        reader.start()
        reader.join(0.3)  # the reader meets the half line (and waits, unless it fails)
        finish()
        reader.join(30)
    assert len(outcome) == 1
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]


def test_verify_reads_a_line_being_written_once_it_is_written(tmp_path: Path) -> None:
    log, line = _log(tmp_path)
    result = _while_half_written(log, line, lambda: verify_chain(log))
    assert (result.valid, result.records) == (True, 3)


def test_report_reads_a_line_being_written_once_it_is_written(tmp_path: Path) -> None:
    log, line = _log(tmp_path)
    summary = _while_half_written(log, line, lambda: read_summary(log))
    assert (summary["events"], summary["byType"]) == (3, {"email": 3})


def test_ready_waits_for_a_write_in_progress(tmp_path: Path) -> None:
    log, line = _log(tmp_path)
    store = FileAuditStore(log)
    state = _while_half_written(log, line, lambda: anyio.run(store.ready))
    assert (state.ok, state.reason) == (True, None)


def test_a_line_torn_with_no_writer_is_still_refused(tmp_path: Path) -> None:
    log, line = _log(tmp_path)
    with log.open("ab") as handle:
        handle.write(line[: len(line) // 2])
    with pytest.raises(AuditError, match="line 3 is not a JSON object"):
        verify_chain(log)
    state = anyio.run(FileAuditStore(log).ready)
    assert (state.ok, state.reason) == (False, "audit_file_incomplete")
    # Piped in, the line cannot be read again: refused without waiting for anything.
    piped = run_haechi("audit-verify", "--audit", "/dev/stdin", cwd=tmp_path, stdin=log.read_text())
    assert piped.returncode == 1
    assert "line 3 is not a JSON object" in piped.stderr
