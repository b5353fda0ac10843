# SPDX-License-Identifier: Apache-2.0
"""A file store used before a ``fork`` goes on working in the children: each appends to the
one chain and makes its records durable through threads of its own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from haechi.audit import verify_chain

#: The parent appends (which starts its writer or sync thread), then three workers forked
#: from it append ten records each; each prints the threads it ends with.
_FORKED_WORKERS = textwrap.dedent(
    """
    import json, multiprocessing, sys, threading
    import anyio
    from haechi.audit import AuditSink, FileAuditStore

    sink = AuditSink(FileAuditStore(sys.argv[1], fsync_interval=float(sys.argv[2])))
    anyio.run(sink.record, {"n": 0})

    def work(worker):
        async def run():
            with anyio.fail_after(20):
                for k in range(10):
                    await sink.record({"n": 1 + worker * 10 + k})
        anyio.run(run)
        return sorted(thread.name for thread in threading.enumerate())

    with multiprocessing.get_context("fork").Pool(3) as pool:
        print(json.dumps(pool.map(work, range(3))))
    """
)


@pytest.mark.parametrize(
    ("fsync_interval", "thread"), [(0.0, "haechi-audit_0"), (0.2, "haechi-audit-sync")]
)
def test_fork_children_of_a_process_that_appended_append_and_sync_on_their_own(
    tmp_path: Path, fsync_interval: float, thread: str
) -> None:
    path = tmp_path / "audit.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", _FORKED_WORKERS, str(path), str(fsync_interval)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for names in json.loads(done.stdout):
        assert thread in names  # the thread that fsyncs this child's records
    result = verify_chain(path)
    assert (result.valid, result.records) == (True, 31)
    numbers = sorted(json.loads(line)["n"] for line in path.read_text().splitlines())
    assert numbers == list(range(31))
