# SPDX-License-Identifier: Apache-2.0
"""A log rotated while an append waits for its lock: the record goes to the file at the path,
not to the file moved away (which logrotate may already be compressing or removing)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from haechi.audit import AuditSink, FileAuditStore, verify_chain

pytestmark = pytest.mark.anyio

#: Holds an flock on the file at argv[1] (another writer mid-write) until stdin closes.
_HOLD = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def _numbers(path: Path) -> list[int]:
    return [json.loads(line)["n"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("fsync_interval", [0.2, 0.0])
async def test_a_record_waiting_for_the_lock_when_the_log_is_rotated_lands_at_the_path(
    tmp_path: Path, fsync_interval: float
) -> None:
    path, rotated = tmp_path / "audit.jsonl", tmp_path / "audit.1.jsonl"
    sink = AuditSink(FileAuditStore(path, fsync_interval=fsync_interval))
    await sink.record({"n": 0})
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdin is not None
    try:
        assert holder.stdout.readline() == "locked\n"
        async with anyio.create_task_group() as group:
            group.start_soon(sink.record, {"n": 1})
            await anyio.sleep(0.5)  # the append now waits for the lock on the old file
            path.rename(rotated)  # rotation: move the log away, create the next one
            path.touch(mode=0o600)
            holder.stdin.close()
    finally:
        holder.kill()
        holder.wait(10)
    assert _numbers(rotated) == [0]
    assert _numbers(path) == [1]
    assert verify_chain(path).records == 1
    assert verify_chain(rotated).records == 1
