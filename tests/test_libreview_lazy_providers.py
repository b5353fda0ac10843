# SPDX-License-Identifier: Apache-2.0
"""A provider built on first use is built once, however many threads ask for it first: a
second one would count requests apart from the first (a rate limiter), or hold what
nothing closes (a connection, a child process)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from haechi.runtime import create_runtime

_PLUGIN = '''
import threading
import time

from haechi import hookimpl


class SlowLimiter:
    """A limiter whose build takes a while (a connection to make): it waits up to 1 s for
    another thread to start building one too."""

    name = "slow"
    built = []

    @classmethod
    def create(cls, context):
        cls.built.append(threading.current_thread().name)
        deadline = time.monotonic() + 1
        while len(cls.built) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        return cls()

    async def allow(self, key, requests_per_minute):
        return True


@hookimpl
def haechi_register_rate_limiters():
    return [SlowLimiter]
'''


def _install_plugin(where: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = where / "haechi_slow_limiter-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: haechi-slow-limiter\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text("[haechi]\nslow = haechi_slow_limiter_plugin\n")
    (where / "haechi_slow_limiter_plugin.py").write_text(_PLUGIN)
    monkeypatch.delitem(sys.modules, "haechi_slow_limiter_plugin", raising=False)
    monkeypatch.syspath_prepend(str(where))


def test_threads_asking_for_a_provider_at_once_get_one_built_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_plugin(tmp_path, monkeypatch)
    config = {"rateLimit": {"provider": "slow"}, "audit": {"sink": "memory"}}
    runtime = create_runtime(config, {"token_vault": None})
    start = threading.Barrier(2)
    limiters: list[Any] = []

    def first_use() -> None:
        start.wait(timeout=30)
        limiters.append(runtime.rate_limiter)

    threads = [threading.Thread(target=first_use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(limiters) == 2
    assert limiters[0] is limiters[1] is runtime.rate_limiter
    assert len(type(limiters[0]).built) == 1
    runtime.close()
