# SPDX-License-Identifier: Apache-2.0
"""Providers a runtime builds on first use: built once, however many threads ask for one
first (a second would count requests apart from the first, or hold what nothing closes), and
closed each, also when another fails to close."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from haechi.audit import FileAuditStore
from haechi.errors import ProviderError
from haechi.runtime import create_runtime

_SLOW_LIMITER = '''
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

_UNCLOSABLE_LIMITER = '''
from haechi import hookimpl


class UnclosableLimiter:
    """A limiter whose connection fails to close, quoting its URL."""

    name = "unclosable"

    @classmethod
    def create(cls, context):
        return cls()

    async def allow(self, key, requests_per_minute):
        return True

    async def aclose(self):
        raise ConnectionError("redis://limiter:hunter2@cache.internal lost")


@hookimpl
def haechi_register_rate_limiters():
    return [UnclosableLimiter]
'''


def _install_plugin(where: Path, monkeypatch: pytest.MonkeyPatch, module: str, source: str) -> None:
    """Install ``source`` as the plugin module ``module`` (found through its entry point)."""
    info = where / f"{module}-1.0.dist-info"
    info.mkdir()
    metadata = f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 1.0\n"
    (info / "METADATA").write_text(metadata)
    (info / "entry_points.txt").write_text(f"[haechi]\n{module} = {module}\n")
    (where / f"{module}.py").write_text(source)
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.syspath_prepend(str(where))


def test_threads_asking_for_a_provider_at_once_get_one_built_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_plugin(tmp_path, monkeypatch, "haechi_slow_limiter", _SLOW_LIMITER)
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


def test_a_provider_failing_to_close_leaves_the_others_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_plugin(tmp_path, monkeypatch, "haechi_unclosable_limiter", _UNCLOSABLE_LIMITER)
    config = {
        "policy": {"mode": "enforce"},
        "rateLimit": {"provider": "unclosable"},
        "audit": {"path": str(tmp_path / "audit.jsonl")},
    }
    runtime = create_runtime(config, {"token_vault": None})
    assert runtime.rate_limiter is not None
    runtime.protect_sync({"note": "mail jane.doe@example.com"})
    store = runtime.audit.store
    assert isinstance(store, FileAuditStore)
    with pytest.raises(ProviderError, match="closing providers failed: ConnectionError") as info:
        runtime.close()
    assert "hunter2" not in str(info.value)
    assert store._log._fd == -1  # the audit file is closed all the same
    assert not runtime._sync.started  # and so is the loop of protect_sync
