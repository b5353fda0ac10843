# SPDX-License-Identifier: Apache-2.0
"""The private loop behind protect_sync: inline steps, hand-over to the host task, unwinding."""

from __future__ import annotations

import asyncio
import contextvars
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from haechi._sync_loop import _TURN_EVERY, SyncLoop
from haechi.audit import verify_chain
from haechi.crypto import init_key_file
from haechi.runtime import create_runtime

_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("_VAR", default="unset")


@pytest.fixture
def sync_loop() -> Any:
    runner = SyncLoop()
    yield runner
    runner.close()


async def _where() -> tuple[asyncio.AbstractEventLoop, asyncio.Task[Any] | None]:
    return asyncio.get_running_loop(), asyncio.current_task()


def test_a_call_that_never_waits_sees_a_running_loop_and_a_task(sync_loop: SyncLoop) -> None:
    loop, task = sync_loop.run(_where())
    assert task is not None
    assert not loop.is_closed()
    assert sync_loop.run(_where()) == (loop, task)
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()  # nothing of the call leaks into the caller


def test_one_task_drives_a_call_from_its_first_step_to_its_end(sync_loop: SyncLoop) -> None:
    async def call() -> list[Any]:
        seen = [asyncio.current_task()]
        await asyncio.sleep(0)
        seen.append(asyncio.current_task())
        await anyio.to_thread.run_sync(lambda: None)
        seen.append(asyncio.current_task())
        await asyncio.sleep(0.001)
        seen.append(asyncio.current_task())
        return seen

    first = sync_loop.run(call())
    assert first[0] is not None
    assert first == [first[0]] * 4
    assert first[0].done()  # a host that drove a suspended call ends with it
    second = sync_loop.run(call())
    assert second == [second[0]] * 4  # the next call is driven just the same, by a new host
    assert second[0] is not first[0]


def _anyio_workers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "AnyIO worker thread"]


def test_worker_threads_a_call_started_are_stopped_when_it_ends(sync_loop: SyncLoop) -> None:
    async def call() -> None:
        await anyio.to_thread.run_sync(lambda: None)

    before = set(_anyio_workers())
    sync_loop.run(call())
    started = [thread for thread in _anyio_workers() if thread not in before]
    for thread in started:
        thread.join(timeout=5)
    # Non-daemon threads left waiting would keep the interpreter from exiting.
    assert not any(thread.is_alive() for thread in started)


def test_context_variables_live_in_a_copy_of_the_callers_context(sync_loop: SyncLoop) -> None:
    async def call() -> tuple[str, str]:
        before = _VAR.get()
        token = _VAR.set("inside")
        await asyncio.sleep(0)
        after = _VAR.get()
        _VAR.reset(token)  # a token made before the suspension still resets after it
        return before, after

    _VAR.set("caller")
    assert sync_loop.run(call()) == ("caller", "inside")
    assert _VAR.get() == "caller"


def test_errors_propagate_from_the_first_step_and_after_a_suspension(
    sync_loop: SyncLoop,
) -> None:
    async def fails_at_once() -> None:
        raise ValueError("first step")

    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise KeyError("after a suspension")

    with pytest.raises(ValueError, match="first step"):
        sync_loop.run(fails_at_once())
    assert asyncio._get_running_loop() is None  # the failed step left the thread clean
    with pytest.raises(KeyError, match="after a suspension"):
        sync_loop.run(fails_later())
    assert sync_loop.run(_where())[1] is not None  # still usable


def test_a_timeout_cancels_only_the_call_it_belongs_to(sync_loop: SyncLoop) -> None:
    async def stalls() -> None:
        async with asyncio.timeout(0.01):
            await asyncio.Event().wait()

    async def checks() -> int:
        async with asyncio.timeout(5):
            await asyncio.sleep(0)
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    with pytest.raises(TimeoutError):
        sync_loop.run(stalls())
    assert sync_loop.run(checks()) == 0


def _interrupt() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("driven", [False, True], ids=["before-hand-over", "while-driven"])
def test_an_interrupted_call_is_unwound_before_the_interruption_propagates(
    sync_loop: SyncLoop, driven: bool
) -> None:
    events: list[str] = []

    async def stalls() -> None:
        if driven:
            await asyncio.sleep(0)  # the host task drives from here on
        asyncio.get_running_loop().call_soon(_interrupt)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    with pytest.raises(KeyboardInterrupt):
        sync_loop.run(stalls())
    assert events == ["cancelled"]

    async def after() -> int:
        await asyncio.sleep(0)
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    assert sync_loop.run(after()) == 0
    assert events == ["cancelled"]


def test_callbacks_a_call_does_not_wait_for_still_run(sync_loop: SyncLoop) -> None:
    ran: list[int] = []

    async def schedules() -> None:
        asyncio.get_running_loop().call_soon(ran.append, 1)

    sync_loop.run(schedules())
    for _ in range(_TURN_EVERY):
        sync_loop.run(_where())
    assert ran == [1]


def test_close_releases_the_loop_and_a_later_call_opens_a_new_one(sync_loop: SyncLoop) -> None:
    first, _ = sync_loop.run(_where())
    assert sync_loop.started
    sync_loop.close()
    assert first.is_closed()
    assert not sync_loop.started
    second, _ = sync_loop.run(_where())
    assert second is not first


@pytest.mark.anyio
async def test_run_refuses_a_running_event_loop() -> None:
    runner = SyncLoop()
    with pytest.raises(RuntimeError, match="running event loop"):
        runner.run(_where())
    assert not runner.started


def test_calls_from_several_threads_take_turns(sync_loop: SyncLoop) -> None:
    results: dict[int, int] = {}

    async def double(value: int) -> int:
        await asyncio.sleep(0)
        return value * 2

    def worker(value: int) -> None:
        for _ in range(20):
            results[value] = sync_loop.run(double(value))

    threads = [threading.Thread(target=worker, args=(value,)) for value in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {0: 0, 1: 2, 2: 4, 3: 6}


def test_a_process_using_protect_sync_over_file_stores_exits_without_closing(
    tmp_path: Path,
) -> None:
    init_key_file(tmp_path / ".haechi" / "dev.keys.json")
    script = (
        "from haechi.runtime import create_runtime\n"
        "config = {'policy': {'mode': 'enforce', 'actions': {'email': 'tokenize'}}}\n"
        "runtime = create_runtime(config)\n"
        "print(runtime.protect_sync({'to': 'user@example.com'}).payload['to'][:11])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[TOKEN:tok_"


def test_protect_sync_over_the_file_stores_waits_for_their_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    init_key_file(".haechi/dev.keys.json")
    runtime = create_runtime({"policy": {"mode": "enforce", "actions": {"email": "tokenize"}}})
    try:
        results = [runtime.protect_sync({"to": f"user{n}@example.com"}) for n in range(3)]
    finally:
        runtime.close()
    for result in results:
        assert result.payload["to"].startswith("[TOKEN:tok_")
        assert len(result.issued_tokens) == 1
    audit = Path(".haechi/audit.jsonl")
    ids = [json.loads(line)["id"] for line in audit.read_text("utf-8").splitlines()]
    assert {result.audit_id for result in results} <= set(ids)
    assert verify_chain(audit).valid
    vault = json.loads(Path(".haechi/token-vault.json").read_text("utf-8"))["tokens"]
    assert {token for result in results for token in result.issued_tokens} == set(vault)
