# SPDX-License-Identifier: Apache-2.0
"""The built-in audit stores: the shared contract, then what only the file store promises."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from haechi import _builtins
from haechi.audit import (
    AuditSink,
    FileAuditStore,
    MemoryAuditStore,
    _deferred_sync,
    build_integrity_record,
    verify_chain,
)
from haechi.audit._lines import MAX_LINE_BYTES
from haechi.config import parse_config
from haechi.errors import AuditError, ConfigError
from haechi.providers import AuditStore, ProviderContext
from haechi.testing.audit_store import AuditStoreContract

pytestmark = pytest.mark.anyio


class TestFileAuditStore(AuditStoreContract):
    @pytest.fixture
    def audit_store(self, tmp_path: Path) -> FileAuditStore:
        return FileAuditStore(tmp_path / "logs" / "audit.jsonl")


class TestMemoryAuditStore(AuditStoreContract):
    @pytest.fixture
    def audit_store(self) -> MemoryAuditStore:
        return MemoryAuditStore()


def test_builtins_are_registered_and_built_from_config(tmp_path: Path) -> None:
    classes = {cls.name: cls for cls in _builtins.haechi_register_audit_stores()}
    assert set(classes) == {"jsonl", "memory"}
    config = parse_config({"audit": {"path": str(tmp_path / "a.jsonl")}})
    context = ProviderContext(config=config)
    store = classes["jsonl"].create(context)
    assert isinstance(store, FileAuditStore)
    assert isinstance(store, AuditStore)
    assert store.path == tmp_path / "a.jsonl"
    assert isinstance(classes["memory"].create(context), MemoryAuditStore)


async def test_file_is_compact_jsonl_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    await AuditSink(FileAuditStore(path)).record({"text": "한국어", "n": 1})
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    assert raw.count(b"\n") == 1
    assert b": " not in raw
    assert b", " not in raw
    assert "한국어".encode() in raw
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_tail_read_spans_a_record_longer_than_one_chunk(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(FileAuditStore(path))
    await sink.record({"n": 1})
    await sink.record({"padding": "x" * 300_000})
    third = await sink.record({"n": 3})
    assert third["auditIntegrity"]["sequence"] == 3
    assert verify_chain(path).records == 3


async def test_torn_tail_fails_closed_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(FileAuditStore(path))
    await sink.record({"n": 1})
    with path.open("ab") as handle:
        handle.write(b'{"n":2,"auditInteg')
    before = path.read_bytes()
    with pytest.raises(AuditError, match="incomplete record"):
        await sink.record({"n": 3})
    assert path.read_bytes() == before
    state = await sink.ready()
    assert (state.ok, state.reason) == (False, "audit_file_incomplete")


async def test_unusable_head_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"n":1}\n', encoding="utf-8")
    with pytest.raises(AuditError, match="no usable auditIntegrity"):
        await AuditSink(FileAuditStore(path)).record({"n": 2})


async def test_trailing_blank_lines_are_skipped_by_the_tail_read(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(FileAuditStore(path))
    await sink.record({"n": 1})
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n  \n")
    second = await sink.record({"n": 2})
    assert second["auditIntegrity"]["sequence"] == 2
    assert verify_chain(path).valid


async def test_ready_reports_unwritable_directory_and_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("", encoding="utf-8")
    state = await FileAuditStore(blocker / "audit.jsonl").ready()
    assert (state.ok, state.reason) == (False, "audit_dir_not_writable")

    directory_in_the_way = tmp_path / "audit.jsonl"
    directory_in_the_way.mkdir()
    state = await FileAuditStore(directory_in_the_way).ready()
    assert (state.ok, state.reason) == (False, "audit_file_not_writable")

    fresh = tmp_path / "new" / "audit.jsonl"
    state = await FileAuditStore(fresh).ready()
    assert state.ok
    assert not fresh.exists()


async def test_sink_ready_reports_the_anchor_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    sink = AuditSink(
        FileAuditStore(tmp_path / "audit.jsonl"),
        anchor_mode="file",
        anchor_path=blocker / "anchor.jsonl",
    )
    state = await sink.ready()
    assert (state.ok, state.reason) == (False, "audit_anchor_not_writable")


async def test_store_failure_surfaces_as_audit_error(tmp_path: Path) -> None:
    directory_in_the_way = tmp_path / "audit.jsonl"
    directory_in_the_way.mkdir()
    with pytest.raises(AuditError, match="'jsonl' failed to append"):
        await AuditSink(FileAuditStore(directory_in_the_way)).record({"n": 1})


async def test_records_of_a_missing_file_are_empty(tmp_path: Path) -> None:
    store = FileAuditStore(tmp_path / "absent.jsonl")
    assert [record async for record in store.records()] == []


async def test_records_stream_a_long_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines, previous = [], None
    for n in range(1300):
        record = build_integrity_record(previous, {"n": n})
        previous = record["auditIntegrity"]
        lines.append(json.dumps(record) + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    seen = [record["n"] async for record in FileAuditStore(path).records()]
    assert seen == list(range(1300))


# --- group commit --------------------------------------------------------------------------


def _chained(log: list[str], n: int) -> Any:
    def build(previous: Any) -> dict[str, Any]:
        log.append(f"build {n}")
        return build_integrity_record(previous, {"n": n})

    return build


async def test_appends_queued_while_the_writer_is_busy_share_one_write(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    store = FileAuditStore(path)
    log: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def first(previous: Any) -> dict[str, Any]:
        entered.set()
        release.wait(10)  # holds the writer until every other append is queued
        log.append("build 0")
        return build_integrity_record(previous, {"n": 0})

    async def append(n: int) -> dict[str, Any]:
        build = first if n == 0 else _chained(log, n)
        return await store.append(build, committed=lambda r: log.append(f"done {r['n']}"))

    async with anyio.create_task_group() as group:
        group.start_soon(append, 0)
        await anyio.to_thread.run_sync(entered.wait, 10)
        for n in range(1, 6):
            group.start_soon(append, n)
        await anyio.wait_all_tasks_blocked()
        release.set()
    # The first record is written alone; the five queued behind it are built one after the
    # other, chained, and fsynced once before any of them is reported committed.
    assert log == [
        "build 0",
        "done 0",
        *(f"build {n}" for n in range(1, 6)),
        *(f"done {n}" for n in range(1, 6)),
    ]
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["n"] for r in records] == list(range(6))
    assert verify_chain(path).records == 6


# Holds the log's lock (an flock on the log file) until a line arrives on stdin (or 5 s
# pass, so nothing hangs).
_HOLD_LOCK = textwrap.dedent(
    """
    import fcntl, os, select, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    select.select([sys.stdin], [], [], 5)
    """
)


def _hold_lock(path: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    return holder


def _lock_is_free(path: Path) -> bool:
    """Whether an flock on the log could be taken now (through a description of its own, so
    that the store's lock, even in this process, counts as held)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _let_go(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(10)


async def _started_store(tmp_path: Path, **options: Any) -> tuple[Path, FileAuditStore]:
    """A file store with one record (``n`` 0), so that its log and directory exist."""
    path = tmp_path / "audit.jsonl"
    store = FileAuditStore(path, **options)
    await store.append(lambda previous: build_integrity_record(previous, {"n": 0}))
    return path, store


def _numbers(path: Path) -> list[Any]:
    return [json.loads(line)["n"] for line in path.read_text(encoding="utf-8").splitlines()]


def _patch_fsync(
    monkeypatch: pytest.MonkeyPatch, path: Path, replacement: Callable[[int], None]
) -> Callable[[int], None]:
    """Route fsyncs of the log at ``path`` to ``replacement``; others (stores of earlier
    tests whose sync threads still run) get the real fsync, which is returned."""
    real_fsync = os.fsync
    log = path.stat().st_ino

    def fsync(fd: int) -> None:
        (replacement if os.fstat(fd).st_ino == log else real_fsync)(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return real_fsync


async def test_appends_made_while_a_group_is_fsynced_form_the_next_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, store = await _started_store(tmp_path, fsync_interval=0)
    syncing, release = threading.Event(), threading.Event()
    fsyncs: list[str] = []

    def gated_fsync(fd: int) -> None:
        fsyncs.append(threading.current_thread().name)
        if len(fsyncs) == 1:
            syncing.set()
            release.wait(10)
        real_fsync(fd)

    real_fsync = _patch_fsync(monkeypatch, path, gated_fsync)
    results: dict[int, Any] = {}

    async def append(n: int) -> None:
        results[n] = await store.append(lambda p: build_integrity_record(p, {"n": n}))

    async with anyio.create_task_group() as group:
        group.start_soon(append, 1)
        await anyio.to_thread.run_sync(syncing.wait, 10)
        # The record is written and the lock already released: only its fsync waits.
        assert _numbers(path) == [0, 1]
        assert _lock_is_free(path)
        for n in range(2, 7):
            group.start_soon(append, n)
        await anyio.wait_all_tasks_blocked()
        assert results == {}  # nobody is told before the fsync covering its record returned
        release.set()
    assert _numbers(path) == list(range(7))
    assert len(fsyncs) == 2  # the five queued meanwhile shared one write and one fsync
    assert all(name.startswith("haechi-audit") for name in fsyncs)
    assert results[6] == json.loads(path.read_text(encoding="utf-8").splitlines()[6])
    assert verify_chain(path).records == 7


async def test_with_an_fsync_interval_appends_return_once_written_and_are_synced_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, store = await _started_store(tmp_path, fsync_interval=0.3)
    fsyncs: list[tuple[str, float]] = []

    def recording_fsync(fd: int) -> None:
        fsyncs.append((threading.current_thread().name, time.monotonic()))
        real_fsync(fd)

    real_fsync = _patch_fsync(monkeypatch, path, recording_fsync)
    written = time.monotonic()
    async with anyio.create_task_group() as group:
        for n in range(1, 6):
            group.start_soon(
                store.append, lambda previous, n=n: build_integrity_record(previous, {"n": n})
            )
    assert fsyncs == []  # every append returned before any fsync
    assert _numbers(path) == list(range(6))  # the lines are in the file already
    deadline = time.monotonic() + 5
    while not fsyncs and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    # One fsync for the whole file, on the sync thread, after the interval.
    assert [name for name, _at in fsyncs] == ["haechi-audit-sync"]
    assert fsyncs[0][1] - written >= 0.25
    assert verify_chain(path).records == 6


async def test_with_an_fsync_interval_a_group_that_waited_for_the_lock_is_synced_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, store = await _started_store(tmp_path, fsync_interval=0.3)
    fsyncs: list[str] = []

    def recording_fsync(fd: int) -> None:
        fsyncs.append(threading.current_thread().name)
        real_fsync(fd)

    real_fsync = _patch_fsync(monkeypatch, path, recording_fsync)
    holder = _hold_lock(path)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(
                store.append, lambda previous: build_integrity_record(previous, {"n": 1})
            )
            await anyio.sleep(0.1)  # the append waits for the lock on the writer thread
            _let_go(holder)
    finally:
        if holder.poll() is None:
            _let_go(holder)
    assert fsyncs == []  # it returned once written, like a group written on the event loop
    assert _numbers(path) == [0, 1]
    deadline = time.monotonic() + 5
    while not fsyncs and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    assert fsyncs == ["haechi-audit-sync"]


async def test_a_failed_deferred_fsync_stops_every_later_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, store = await _started_store(tmp_path, fsync_interval=0.05)
    failed = threading.Event()

    def broken_fsync(fd: int) -> None:
        failed.set()
        raise OSError(5, "Input/output error")

    _patch_fsync(monkeypatch, path, broken_fsync)
    await store.append(lambda previous: build_integrity_record(previous, {"n": 1}))
    assert await anyio.to_thread.run_sync(failed.wait, 5)
    await anyio.sleep(0.05)
    with pytest.raises(AuditError, match="could not be made durable"):
        await store.append(lambda previous: build_integrity_record(previous, {"n": 2}))
    assert _numbers(path) == [0, 1]
    state = await store.ready()
    assert (state.ok, state.reason) == (False, "audit_fsync_failed")


def test_the_fsync_interval_comes_from_the_configuration(tmp_path: Path) -> None:
    config = parse_config({"audit": {"path": str(tmp_path / "a.jsonl"), "fsyncIntervalMs": 250}})
    store = FileAuditStore.create(ProviderContext(config=config))
    assert store._deferred is not None
    assert store._deferred._interval == 0.25
    default = FileAuditStore.create(ProviderContext(config=parse_config({})))
    assert default._deferred is not None
    assert default._deferred._interval == 0.2 == FileAuditStore(tmp_path / "c")._deferred._interval
    strict = parse_config({"audit": {"fsyncIntervalMs": 0}})
    assert FileAuditStore.create(ProviderContext(config=strict))._deferred is None
    with pytest.raises(ValueError, match="zero or positive"):
        FileAuditStore(tmp_path / "b.jsonl", fsync_interval=-1)
    with pytest.raises(ConfigError):
        parse_config({"audit": {"fsyncIntervalMs": None}})


async def test_one_sync_thread_serves_a_busy_store_and_ends_once_it_is_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appends spaced wider than the interval are synced by the same thread (starting one
    blocks the event loop until it runs); it ends once nothing came for the linger time, and
    the next hand-over starts a new one."""
    monkeypatch.setattr(_deferred_sync, "_LINGER_S", 0.4)
    _path, store = await _started_store(tmp_path, fsync_interval=0.05)
    deferred = store._deferred  # the store's own sync
    assert deferred is not None
    first = deferred._thread
    assert first is not None
    assert first.is_alive()
    for n in range(1, 6):
        await anyio.sleep(0.12)
        await store.append(lambda p, n=n: build_integrity_record(p, {"n": n}))
        assert deferred._thread is first
    first.join(timeout=5)
    assert not first.is_alive()
    assert deferred._thread is None
    await store.append(lambda p: build_integrity_record(p, {"n": 9}))
    second = deferred._thread
    assert second is not None
    assert second is not first


# Appends one record with a 60 s fsync interval and exits at once, printing each fsync: the
# shutdown wakes the sync thread, which would otherwise keep the process for a minute.
_WRITE_AND_EXIT = textwrap.dedent(
    """
    import asyncio, os, sys, threading
    from haechi.audit import FileAuditStore, build_integrity_record
    real_fsync = os.fsync
    def fsync(fd):
        real_fsync(fd)
        print("fsynced on", threading.current_thread().name, flush=True)
    os.fsync = fsync
    store = FileAuditStore(sys.argv[1], fsync_interval=60)
    asyncio.run(store.append(lambda p: build_integrity_record(p, {"n": 0})))
    print("appended", flush=True)
    """
)


def test_a_process_that_exits_right_after_an_append_fsyncs_it_first(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", _WRITE_AND_EXIT, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    # (creating the log fsyncs its directory on the calling thread first)
    assert done.stdout.splitlines()[-2:] == ["appended", "fsynced on haechi-audit-sync"]
    assert _numbers(path) == [0]


async def test_a_lock_held_elsewhere_is_awaited_off_the_event_loop(tmp_path: Path) -> None:
    path, store = await _started_store(tmp_path)
    holder = _hold_lock(path)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(
                store.append, lambda previous: build_integrity_record(previous, {"n": 1})
            )
            started = time.monotonic()
            await anyio.sleep(0.2)  # the event loop keeps running meanwhile
            assert time.monotonic() - started < 2
            assert _numbers(path) == [0]
            _let_go(holder)
    finally:
        if holder.poll() is None:
            _let_go(holder)
    assert _numbers(path) == [0, 1]
    assert verify_chain(path).records == 2


async def test_an_append_that_cannot_take_the_lock_in_time_fails_and_is_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from haechi.audit import stores

    monkeypatch.setattr(stores, "_LOCK_WAIT", 0.3)
    path, store = await _started_store(tmp_path)
    holder = _hold_lock(path)
    try:
        started = time.monotonic()
        with pytest.raises(AuditError, match="stayed locked"):
            await store.append(lambda previous: build_integrity_record(previous, {"n": 1}))
        assert time.monotonic() - started < 5
    finally:
        _let_go(holder)  # the other process lets go of the lock only now
    # The writer thread got the lock afterwards: the given-up record was not written then.
    await store.append(lambda previous: build_integrity_record(previous, {"n": 2}))
    assert _numbers(path) == [0, 2]
    assert verify_chain(path).records == 2


async def test_concurrent_sink_records_land_in_call_order(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(FileAuditStore(path), anchor_mode="file", anchor_path=tmp_path / "a.jsonl")
    returned: dict[int, dict[str, Any]] = {}

    async def write(n: int) -> None:
        returned[n] = await sink.record({"n": n})

    async with anyio.create_task_group() as group:
        for n in range(40):
            group.start_soon(write, n)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["n"] for r in records] == list(range(40))
    assert [returned[n] for n in range(40)] == records
    result = verify_chain(path, anchor_path=tmp_path / "a.jsonl")
    assert (result.valid, result.records) == (True, 40)
    assert result.anchored is not None
    assert result.anchored.last_sequence == 40


async def test_a_failing_member_of_a_group_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    store = FileAuditStore(path)
    entered, release = threading.Event(), threading.Event()

    def slow(previous: Any) -> dict[str, Any]:
        entered.set()
        release.wait(10)
        return build_integrity_record(previous, {"n": 0})

    def refused(previous: Any) -> dict[str, Any]:
        raise RuntimeError("build refused")

    def unchainable(previous: Any) -> dict[str, Any]:
        return {"n": "no integrity block"}

    def anchor_fails(record: dict[str, Any]) -> None:
        raise OSError("anchor disk full")

    outcomes: dict[str, Any] = {}

    async def run(name: str, build: Any, committed: Any = None) -> None:
        try:
            outcomes[name] = await store.append(build, committed=committed)
        except Exception as exc:
            outcomes[name] = exc

    async with anyio.create_task_group() as group:
        # A committed step sends the group to the writer thread, where the build may wait.
        group.start_soon(run, "slow", slow, lambda record: None)
        await anyio.to_thread.run_sync(entered.wait, 10)
        group.start_soon(run, "refused", refused)
        group.start_soon(run, "one", lambda p: build_integrity_record(p, {"n": 1}))
        group.start_soon(run, "unchainable", unchainable)
        group.start_soon(run, "anchor", lambda p: build_integrity_record(p, {"n": 2}), anchor_fails)
        group.start_soon(run, "three", lambda p: build_integrity_record(p, {"n": 3}))
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert isinstance(outcomes["refused"], RuntimeError)
    assert isinstance(outcomes["unchainable"], AuditError)
    assert isinstance(outcomes["anchor"], OSError)  # its record stays written
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["n"] for r in records] == [0, 1, 2, 3]
    assert outcomes["three"] == records[3]
    assert (
        records[3]["auditIntegrity"]["previousHash"] == (records[2]["auditIntegrity"]["eventHash"])
    )
    assert verify_chain(path).records == 4


async def _two_groups(store: FileAuditStore, between: Any) -> tuple[Any, Any]:
    """Append A, then B queued behind it; ``between`` runs after A is durable, under the
    lock, before B's group (both groups are written in one burst of the writer)."""
    entered, release = threading.Event(), threading.Event()

    def build_a(previous: Any) -> dict[str, Any]:
        entered.set()
        release.wait(10)
        return build_integrity_record(previous, {"n": "A"})

    results: dict[str, Any] = {}

    async def run(name: str, build: Any, committed: Any = None) -> None:
        results[name] = await store.append(build, committed=committed)

    async with anyio.create_task_group() as group:
        group.start_soon(run, "A", build_a, between)
        await anyio.to_thread.run_sync(entered.wait, 10)
        group.start_soon(run, "B", lambda p: build_integrity_record(p, {"n": "B"}))
        await anyio.wait_all_tasks_blocked()
        release.set()
    return results["A"], results["B"]


async def test_a_log_rotated_between_groups_is_not_written_to(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    store = FileAuditStore(path)
    await store.append(lambda p: build_integrity_record(p, {"n": 0}))
    _a, b = await _two_groups(store, lambda record: path.rename(tmp_path / "audit.1.jsonl"))
    rotated = (tmp_path / "audit.1.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["n"] for line in rotated] == [0, "A"]
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == [b]
    assert b["auditIntegrity"]["sequence"] == 1  # the new file starts its own chain


async def test_a_record_appended_by_another_writer_between_groups_is_chained_onto(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    store = FileAuditStore(path)
    foreign: list[dict[str, Any]] = []

    def other_writer(record: dict[str, Any]) -> None:
        # Another process holding the lock would append exactly like this.
        foreign.append(build_integrity_record(record["auditIntegrity"], {"n": "other"}))
        with path.open("ab") as handle:
            handle.write(json.dumps(foreign[0]).encode() + b"\n")

    _a, b = await _two_groups(store, other_writer)
    assert b["auditIntegrity"]["previousHash"] == foreign[0]["auditIntegrity"]["eventHash"]
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["n"] for r in records] == ["A", "other", "B"]
    assert verify_chain(path).records == 3


@pytest.mark.parametrize(
    "foreign",
    [
        {"note": "\ud800"},  # a lone surrogate escape, which orjson refuses to read
        {"note": "x", "big": 2**70},  # an integer orjson would read as a float
    ],
)
async def test_the_head_of_any_writers_last_record_is_chained_onto(
    tmp_path: Path, foreign: dict[str, Any]
) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(FileAuditStore(path))
    first = await sink.record({"n": 1})
    other = build_integrity_record(first["auditIntegrity"], foreign)
    with path.open("ab") as handle:
        handle.write(json.dumps(other).encode() + b"\n")
    second = await sink.record({"n": 2})
    assert second["auditIntegrity"]["previousHash"] == other["auditIntegrity"]["eventHash"]
    assert second["auditIntegrity"]["sequence"] == 3


@pytest.mark.parametrize("last", [b"[1]\n", b'"text"\n', b"{not json\n"])
async def test_a_last_line_that_is_no_json_object_fails_closed(tmp_path: Path, last: bytes) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(FileAuditStore(path))
    await sink.record({"n": 1})
    with path.open("ab") as handle:
        handle.write(last)
    before = path.read_bytes()
    with pytest.raises(AuditError, match="not a JSON object"):
        await sink.record({"n": 2})
    assert path.read_bytes() == before


@pytest.mark.parametrize("same_length", [True, False])
async def test_a_last_line_replaced_between_appends_is_read_again(
    tmp_path: Path, same_length: bool
) -> None:
    # The store remembers the line it wrote last; once the file no longer ends with it, the
    # head is read from the file as if nothing were remembered.
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(FileAuditStore(path))
    first = await sink.record({"n": 1})
    await sink.record({"n": 2})
    replacement = build_integrity_record(first["auditIntegrity"], {"n": 7 if same_length else 70})
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + json.dumps(replacement, separators=(",", ":")).encode() + b"\n")
    assert (len(path.read_bytes()) == sum(map(len, lines))) is same_length
    third = await sink.record({"n": 3})
    assert third["auditIntegrity"]["previousHash"] == replacement["auditIntegrity"]["eventHash"]
    assert verify_chain(path).records == 3


async def test_a_log_cut_back_to_the_remembered_line_chains_onto_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(FileAuditStore(path))
    await sink.record({"n": 1})
    second = await sink.record({"n": 2})
    only_second = path.read_bytes().splitlines(keepends=True)[1]
    path.write_bytes(only_second)  # the file is now exactly the line written last
    third = await sink.record({"n": 3})
    assert third["auditIntegrity"]["previousHash"] == second["auditIntegrity"]["eventHash"]
    assert third["auditIntegrity"]["sequence"] == 3


def test_event_loops_in_several_threads_share_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(FileAuditStore(path))
    errors: list[BaseException] = []

    def thread(worker: int) -> None:
        async def main() -> None:
            async with anyio.create_task_group() as group:
                for n in range(10):
                    group.start_soon(sink.record, {"worker": worker, "n": n})

        try:
            anyio.run(main)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=thread, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert sorted((r["worker"], r["n"]) for r in records) == [
        (w, n) for w in range(4) for n in range(10)
    ]
    for worker in range(4):  # each loop's records keep their call order
        assert [r["n"] for r in records if r["worker"] == worker] == list(range(10))
    assert verify_chain(path).records == 40


_WRITER = textwrap.dedent(
    """
    import os, sys, time
    import anyio
    from haechi.audit import AuditSink, FileAuditStore

    audit, anchor, go, worker, count = sys.argv[1:6]
    while not os.path.exists(go):
        time.sleep(0.001)

    async def main():
        sink = AuditSink(FileAuditStore(audit), anchor_mode="file", anchor_path=anchor)
        for n in range(int(count)):
            await sink.record({"worker": int(worker), "n": n})

    anyio.run(main)
    """
)

PROCESSES = 20
PER_PROCESS = 5


def test_twenty_processes_append_one_linear_chain(tmp_path: Path) -> None:
    audit, anchor, go = tmp_path / "audit.jsonl", tmp_path / "anchor.jsonl", tmp_path / "go"
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WRITER,
                str(audit),
                str(anchor),
                str(go),
                str(w),
                str(PER_PROCESS),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for w in range(PROCESSES)
    ]
    time.sleep(0.2)
    go.touch()
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()

    total = PROCESSES * PER_PROCESS
    records = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    assert [r["auditIntegrity"]["sequence"] for r in records] == list(range(1, total + 1))
    assert len({r["auditIntegrity"]["eventHash"] for r in records}) == total
    assert sorted((r["worker"], r["n"]) for r in records) == [
        (w, n) for w in range(PROCESSES) for n in range(PER_PROCESS)
    ]
    result = verify_chain(audit, anchor_path=anchor)
    assert result.valid
    assert result.records == total
    anchors: list[dict[str, Any]] = [
        json.loads(line) for line in anchor.read_text(encoding="utf-8").splitlines()
    ]
    # Anchors are written inside the store's exclusive section: in sequence order.
    assert [a["sequence"] for a in anchors] == list(range(1, total + 1))
    assert not os.path.exists(f"{audit}.lock")  # the lock is an flock on the log itself


async def test_an_append_on_an_idle_loop_is_written_without_suspending(tmp_path: Path) -> None:
    path, store = await _started_store(tmp_path)
    call = store.append(lambda p: build_integrity_record(p, {"n": 1}))
    with pytest.raises(StopIteration) as finished:
        call.send(None)  # one step: it never waits for the event loop
    assert finished.value.value["n"] == 1
    assert _numbers(path) == [0, 1]


async def test_on_a_saturated_loop_appends_are_written_in_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, store = await _started_store(tmp_path)
    store._loop_lag = 1.0  # as a probe measures it when the loop is far behind
    real_write = os.write
    writes: list[int] = []

    def counting_write(fd: int, data: bytes | memoryview) -> int:
        writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting_write)
    async with anyio.create_task_group() as group:
        for n in range(1, 6):
            group.start_soon(store.append, lambda p, n=n: build_integrity_record(p, {"n": n}))
    assert len(writes) == 1  # one group: one write for five records
    assert _numbers(path) == list(range(6))
    assert verify_chain(path).records == 6


async def test_the_loop_probe_switches_back_to_writing_at_once(tmp_path: Path) -> None:
    path, store = await _started_store(tmp_path)
    store._loop_lag = 1.0
    for n in range(1, 40):  # probes run on an idle loop and measure almost no wait
        await store.append(lambda p, n=n: build_integrity_record(p, {"n": n}))
    assert store._loop_lag < 0.002
    call = store.append(lambda p: build_integrity_record(p, {"n": 40}))
    with pytest.raises(StopIteration):
        call.send(None)
    assert _numbers(path) == list(range(41))


async def test_a_log_moved_away_is_followed_by_a_new_file_at_the_path(tmp_path: Path) -> None:
    path, store = await _started_store(tmp_path)
    await store.append(lambda p: build_integrity_record(p, {"n": 1}))
    path.rename(tmp_path / "audit.1.jsonl")
    await store.append(lambda p: build_integrity_record(p, {"n": 2}))
    assert _numbers(tmp_path / "audit.1.jsonl") == [0, 1]
    assert _numbers(path) == [2]  # a new chain in the new file
    assert verify_chain(path).records == 1
    assert verify_chain(tmp_path / "audit.1.jsonl").records == 2


# A parent appends (so the log is open), forks; the child holds the log's lock through its
# own descriptor, and the parent must then find the lock taken.
_FORK_LOCK = textwrap.dedent(
    """
    import asyncio, os, sys
    from pathlib import Path
    from haechi.audit import FileAuditStore, build_integrity_record
    store = FileAuditStore(sys.argv[1])
    asyncio.run(store.append(lambda p: build_integrity_record(p, {"n": 0})))
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    child = os.fork()
    if child == 0:
        with store._log.held(timeout=None) as fd:
            os.write(ready_w, b"1")
            os.read(done_r, 1)
        os._exit(0)
    os.read(ready_r, 1)
    with store._log.held(timeout=0) as fd:
        print("taken" if fd is None else "shared", flush=True)
    os.write(done_w, b"1")
    os.waitpid(child, 0)
    """
)


def test_a_fork_child_locks_the_log_through_its_own_descriptor(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FORK_LOCK, str(tmp_path / "audit.jsonl")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.strip() == "taken"


async def test_appends_that_never_let_the_loop_turn_leave_at_most_one_probe_behind(
    tmp_path: Path,
) -> None:
    path, store = await _started_store(tmp_path)
    loop = asyncio.get_running_loop()
    waiting = len(loop._ready)  # type: ignore[attr-defined]
    for n in range(1, 101):  # stepped like protect_sync steps a call: the loop never turns
        call = store.append(lambda p, n=n: build_integrity_record(p, {"n": n}))
        with pytest.raises(StopIteration):
            call.send(None)
    assert len(loop._ready) - waiting <= 1  # type: ignore[attr-defined]
    assert _numbers(path) == list(range(101))


async def test_aclose_closes_the_log_and_a_later_append_opens_it_again(tmp_path: Path) -> None:
    path, store = await _started_store(tmp_path)
    assert store._log._fd >= 0
    await store.aclose()
    assert store._log._fd == -1
    await store.append(lambda p: build_integrity_record(p, {"n": 1}))
    assert _numbers(path) == [0, 1]
    assert verify_chain(path).records == 2


def _descriptors_of(path: Path) -> list[str]:
    """This process's open descriptors on the file at ``path``."""
    target = str(path.resolve())
    found = []
    for entry in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(entry) == target:
                found.append(entry.name)
    return found


async def test_aclose_with_an_fsync_interval_syncs_at_once_and_keeps_no_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lines waited for the interval after the close, on a descriptor of the log the
    close left open (up to audit.fsyncIntervalMs after it; here 30 s)."""
    path, store = await _started_store(tmp_path, fsync_interval=30.0)
    fsyncs: list[str] = []

    def recording_fsync(fd: int) -> None:
        fsyncs.append(threading.current_thread().name)
        real_fsync(fd)

    real_fsync = _patch_fsync(monkeypatch, path, recording_fsync)
    await store.append(lambda p: build_integrity_record(p, {"n": 1}))
    assert fsyncs == []
    assert _descriptors_of(path)
    await store.aclose()
    assert len(fsyncs) == 1
    assert fsyncs[0] != threading.current_thread().name  # not on the loop's thread
    assert _descriptors_of(path) == []


async def test_aclose_with_an_fsync_interval_leaves_the_loop_running_while_it_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The close fsynced on the loop's thread: a slow disk stopped every other task of the
    loop (the requests of an application closing one runtime of several) until it returned."""
    path, store = await _started_store(tmp_path, fsync_interval=30.0)
    syncing, release = threading.Event(), threading.Event()

    def gated_fsync(fd: int) -> None:
        syncing.set()
        release.wait(10)
        real_fsync(fd)

    real_fsync = _patch_fsync(monkeypatch, path, gated_fsync)
    await store.append(lambda p: build_integrity_record(p, {"n": 1}))
    closed: list[bool] = []

    async def close() -> None:
        await store.aclose()
        closed.append(True)

    async with anyio.create_task_group() as group:
        group.start_soon(close)
        assert await anyio.to_thread.run_sync(syncing.wait, 10)
        # The fsync has begun and this task has its turn before the close ends.
        assert closed == []
        release.set()
    assert closed == [True]
    assert _descriptors_of(path) == []


async def test_aclose_after_a_failed_deferred_fsync_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, store = await _started_store(tmp_path, fsync_interval=30.0)

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    _patch_fsync(monkeypatch, path, broken_fsync)
    await store.append(lambda p: build_integrity_record(p, {"n": 1}))
    with pytest.raises(AuditError, match="could not be made durable"):
        await store.aclose()
    assert _descriptors_of(path) == []


async def test_a_last_line_longer_than_readers_take_is_not_ready_nor_chained_onto(
    tmp_path: Path,
) -> None:
    # Padded with whitespace, the record keeps its hash: only its length is wrong, and the
    # verifier refuses it for that. The store must not report ready nor append onto it.
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(FileAuditStore(path))
    await sink.record({"n": 1})
    path.write_bytes(b"{" + b" " * MAX_LINE_BYTES + path.read_bytes()[1:])
    with pytest.raises(AuditError, match=f"line 1 is longer than {MAX_LINE_BYTES} bytes"):
        verify_chain(path)
    before = path.read_bytes()
    state = await sink.store.ready()
    assert (state.ok, state.reason) == (False, "audit_file_unreadable")
    with pytest.raises(AuditError, match=f"last audit record is longer than {MAX_LINE_BYTES}"):
        await sink.record({"n": 2})
    assert path.read_bytes() == before
    await sink.store.aclose()
