# SPDX-License-Identifier: Apache-2.0
"""An audit log path that holds something records cannot be kept in (a named pipe, a device),
put there before the first record or in the middle of a run."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from haechi.audit import AuditSink, FileAuditStore, vault_event, verify_chain
from haechi.errors import AuditError
from tests.upstream_server import gateway_in_front

pytestmark = pytest.mark.anyio


def _event() -> dict[str, object]:
    return vault_event(operation="reveal", decision="reveal_denied")


@pytest.mark.parametrize("fsync_interval", [0.2, 0.0])
async def test_a_named_pipe_at_the_log_path_is_refused_and_not_ready(
    tmp_path: Path, fsync_interval: float
) -> None:
    path = tmp_path / "audit.jsonl"
    os.mkfifo(path, 0o600)
    store = FileAuditStore(path, fsync_interval=fsync_interval)
    state = await store.ready()
    assert (state.ok, state.reason) == (False, "audit_file_not_writable")
    sink = AuditSink(store)
    for _ in range(2):  # each refused: none starts a chain that vanishes into the pipe
        with pytest.raises(AuditError, match="not a regular file"):
            await sink.record(_event())


async def test_a_link_to_a_device_at_the_log_path_is_refused_and_not_ready(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    path.symlink_to(os.devnull)
    store = FileAuditStore(path)
    state = await store.ready()
    assert (state.ok, state.reason) == (False, "audit_file_not_writable")
    with pytest.raises(AuditError, match="not a regular file"):
        await AuditSink(store).record(_event())


async def test_a_pipe_put_in_place_of_the_log_mid_run_is_refused_until_it_is_gone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(FileAuditStore(path))
    await sink.record(_event())
    path.rename(tmp_path / "audit.1.jsonl")
    os.mkfifo(path, 0o600)
    for _ in range(3):
        with pytest.raises(AuditError, match="not a regular file"):
            await sink.record(_event())
    path.unlink()
    record = await sink.record(_event())  # a file again: a fresh chain, nothing stuck
    assert record["auditIntegrity"]["sequence"] == 1
    assert verify_chain(path).records == 1
    assert verify_chain(tmp_path / "audit.1.jsonl").records == 1


async def test_a_named_pipe_as_the_anchor_file_fails_the_record(tmp_path: Path) -> None:
    anchor = tmp_path / "anchor.jsonl"
    os.mkfifo(anchor, 0o600)
    sink = AuditSink(
        FileAuditStore(tmp_path / "audit.jsonl"), anchor_mode="file", anchor_path=anchor
    )
    assert (await sink.ready()).reason == "audit_anchor_not_writable"
    with pytest.raises(AuditError):
        await sink.record(_event())


def test_the_gateway_with_a_pipe_as_its_log_is_not_ready_and_fails_closed(
    tmp_path: Path,
) -> None:
    state = tmp_path / ".haechi"
    state.mkdir()
    os.mkfifo(state / "audit.jsonl", 0o600)
    with gateway_in_front(tmp_path) as gateway:
        ready = httpx.get(f"{gateway.url}/__haechi/ready", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["checks"]["auditWritable"] is False
        body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
        answer = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)
        assert answer.status_code == 500
        assert gateway.upstream.received == []
