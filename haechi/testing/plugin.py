# SPDX-License-Identifier: Apache-2.0
"""pytest plugin of the haechi test kit (registered through the ``pytest11`` entry point).

It offers one fixture, ``haechi_runtime``: a factory composing a runtime whose key file,
audit log and token vault live in the test's temporary directory, so tests of code that calls
haechi never touch the working directory. The contract suites are plain classes in
``haechi.testing.*`` and need no plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from haechi.testing import merge_config

if TYPE_CHECKING:
    from haechi.runtime import Runtime

__all__ = ["haechi_runtime"]


@pytest.fixture
def haechi_runtime(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """Return ``make(config=None, **providers)`` building runtimes rooted in ``tmp_path``."""
    from haechi.crypto import init_key_file
    from haechi.runtime import create_runtime

    built: list[Runtime] = []
    key_file = tmp_path / "haechi" / "keys.json"
    init_key_file(key_file)
    files = {
        "keys": {"keyFile": str(key_file)},
        "audit": {"path": str(tmp_path / "haechi" / "audit.jsonl")},
        "tokenVault": {"path": str(tmp_path / "haechi" / "vault.json")},
        "auth": {"store": str(tmp_path / "haechi" / "auth.json")},
    }

    def make(config: Mapping[str, Any] | None = None, **providers: Any) -> Runtime:
        runtime = create_runtime(merge_config(files, config or {}), providers or None)
        built.append(runtime)
        return runtime

    yield make
    for runtime in built:
        runtime.close()
