# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures and settings for the core test suite."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

import haechi
import haechi.crypto
from haechi.runtime import Runtime
from tests.upstream_server import (
    Answer,
    Gateway,
    ScriptedUpstream,
    SharedGateways,
    gateway_in_front,
)

# On CI the property tests run a fixed sequence of examples (derandomized), so a result is
# reproducible from the commit alone; on a developer machine they explore new examples on
# every run, which is where new counterexamples come from.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio, the loop uvicorn and httpx use here."""
    return "asyncio"


@pytest.fixture(scope="module")
def memory_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """An enforce-mode runtime with in-memory audit and vault, shared by one module."""
    home = tmp_path_factory.mktemp("memory-runtime")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(home)
        built = haechi.create_runtime(
            {
                "policy": {"mode": "enforce"},
                "audit": {"sink": "memory"},
                "tokenVault": {"provider": "memory"},
            }
        )
        try:
            yield built
        finally:
            built.close()


@pytest.fixture(scope="module")
def shared_gateway(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SharedGateways]:
    """A gateway per configuration, started once for the module's tests that ask for it.

    Starting and stopping a gateway costs more than most of its tests. The upstream forgets
    what it received and what was queued each time a test is handed the gateway, so a test
    that reads only its answers and ``upstream.received`` sees what a fresh one would; tests
    that read the audit log, the vault or the counters start their own gateway.
    """
    running: dict[str, Gateway] = {}
    with contextlib.ExitStack() as stack:

        def hand_out(config: Mapping[str, Any]) -> Gateway:
            key = json.dumps(config, sort_keys=True)
            if key not in running:
                workdir = tmp_path_factory.mktemp("shared-gateway")
                running[key] = stack.enter_context(gateway_in_front(workdir, config))
            running[key].upstream.clear()
            return running[key]

        yield hand_out


@pytest.fixture
def pieces_runtime(tmp_path: Path) -> Runtime:
    """An enforce-mode runtime with in-memory stores that tokenizes e-mail addresses and
    blocks cards (tests of values cut into pieces)."""
    from haechi.crypto import init_key_file

    init_key_file(tmp_path / "keys.json")
    return haechi.create_runtime(
        {
            "mode": "enforce",
            "audit": {"sink": "memory"},
            "tokenVault": {"provider": "memory"},
            "keys": {"keyFile": str(tmp_path / "keys.json")},
            "policy": {"actions": {"email": "tokenize", "card": "block"}},
        }
    )


@pytest.fixture
async def redacting_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Runtime]:
    """An enforce-mode runtime (file audit, development key) that redacts addresses."""
    monkeypatch.chdir(tmp_path)
    haechi.crypto.init_key_file(".haechi/dev.keys.json")
    built = haechi.create_runtime(
        {"mode": "enforce", "policy": {"mode": "enforce", "actions": {"email": "redact"}}}
    )
    yield built
    await built.aclose()


@pytest.fixture
async def enforcing_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Runtime]:
    """An enforce-mode runtime with the default actions (file audit under ``tmp_path``, the
    working directory, and a development key)."""
    monkeypatch.chdir(tmp_path)
    haechi.crypto.init_key_file(".haechi/dev.keys.json")
    built = haechi.create_runtime({"mode": "enforce", "policy": {"mode": "enforce"}})
    yield built
    await built.aclose()


@pytest.fixture
def scripted_upstream() -> Iterator[Callable[..., ScriptedUpstream]]:
    """Starts upstreams that answer with raw bytes (see :class:`ScriptedUpstream`), all
    closed at the end of the test."""
    started: list[ScriptedUpstream] = []

    def start(*answers: Answer) -> ScriptedUpstream:
        started.append(ScriptedUpstream(*answers))
        return started[-1]

    yield start
    for server in started:
        server.close()
