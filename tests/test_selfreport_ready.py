# SPDX-License-Identifier: Apache-2.0
"""Readiness is always answered: a store whose check never returns makes the gateway not
ready, it does not hold the probe.

A shared audit store on a server that stopped answering (its packets dropped, not refused)
keeps its readiness check waiting for as long as the connection lasts; the probe must still
get 503, within the gateway's bound, rather than no answer at all.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from haechi.audit import FileAuditStore
from haechi.providers import ReadyState
from haechi.proxy import ops
from tests.upstream_server import gateway_in_front


class _SilentStore(FileAuditStore):
    """A file audit store whose readiness check waits for an answer that never comes."""

    async def ready(self) -> ReadyState:
        await asyncio.Event().wait()
        return ReadyState(True)


def test_a_readiness_check_that_never_answers_is_not_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ops, "READY_TIMEOUT_S", 0.3)  # the check never answers: any bound does
    store = _SilentStore(tmp_path / "audit.jsonl")
    with gateway_in_front(tmp_path, providers={"audit_store": store}) as gateway:
        ready = httpx.get(f"{gateway.url}/__haechi/ready", timeout=60)
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        assert ready.json()["checks"]["auditWritable"] is False
        # The gateway itself still answers.
        assert httpx.get(f"{gateway.url}/__haechi/live", timeout=60).status_code == 200
