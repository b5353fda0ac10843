# SPDX-License-Identifier: Apache-2.0
"""The runtime a command composes from its configuration, for commands that change state.

A command that changes tokens (the vault's or the gateway's bearer tokens) works on the
runtime the gateway would compose from the same configuration: the same store, the same
crypto provider and the same audit log, so every change it records lands in the gateway's
hash chain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import anyio

if TYPE_CHECKING:
    from haechi.config import HaechiConfig
    from haechi.runtime import Runtime

__all__ = ["with_runtime"]

_T = TypeVar("_T")


def with_runtime(settings: HaechiConfig, work: Callable[[Runtime], Awaitable[_T]]) -> _T:
    """Compose the runtime from ``settings``, run ``work`` on it in an event loop, and
    release it (files, child processes, connections) however ``work`` ends."""
    from haechi.runtime import create_runtime

    async def main() -> _T:
        runtime = create_runtime(settings)
        try:
            return await work(runtime)
        finally:
            await runtime.aclose()

    return anyio.run(main)
