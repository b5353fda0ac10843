# SPDX-License-Identifier: Apache-2.0
"""Another writer keeps the audit log's lock (stopped or hung while writing): appends fail
after their wait, and the gateway says it is not ready until the lock is let go."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import httpx
import pytest

from haechi.audit import stores
from tests.upstream_server import gateway_in_front

#: Takes the log's lock and keeps it until its standard input closes.
_KEEP_LOCK = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()
    """
)

_CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


def test_a_lock_kept_elsewhere_makes_the_gateway_not_ready_until_it_is_let_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stores, "_LOCK_WAIT", 0.5)  # an append's wait for the lock
    monkeypatch.setattr(stores, "_READY_WAIT", 0.3)  # a readiness check's wait for it
    with gateway_in_front(tmp_path) as gateway:
        url = gateway.url
        assert httpx.post(f"{url}/v1/chat/completions", json=_CHAT, timeout=30).is_success
        log = Path(gateway.runtime.config.audit.path)
        keeper = subprocess.Popen(
            [sys.executable, "-c", _KEEP_LOCK, str(log)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert keeper.stdout is not None
        assert keeper.stdin is not None
        try:
            assert keeper.stdout.readline() == "locked\n"
            failed = httpx.post(f"{url}/v1/chat/completions", json=_CHAT, timeout=30)
            assert failed.status_code == 500
            ready = httpx.get(f"{url}/__haechi/ready", timeout=30)
            assert ready.status_code == 503
            assert ready.json()["checks"]["auditWritable"] is False
            state = anyio.run(gateway.runtime.audit.ready)
            assert (state.ok, state.reason) == (False, "audit_file_locked")
        finally:
            keeper.stdin.close()
            keeper.wait(20)
        assert httpx.get(f"{url}/__haechi/ready", timeout=30).status_code == 200
        assert httpx.post(f"{url}/v1/chat/completions", json=_CHAT, timeout=30).is_success
