# SPDX-License-Identifier: Apache-2.0
"""The runtime's public members carry the types docs/library.md gives them, so that an
application checked with a type checker sees them rather than ``Any``."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pytest

import haechi.runtime
from haechi.audit import AuditSink
from haechi.config import HaechiConfig
from haechi.detect import DetectionEngine
from haechi.models import Action, EntryKind, Finding
from haechi.policy import PolicySet
from haechi.providers import AuthProvider, CryptoProvider, RateLimiter
from haechi.runtime import Runtime, create_runtime
from haechi.vault import TokenVault

# Names the runtime module imports for type checkers only.
_CHECKER_ONLY = {"DetectionEngine": DetectionEngine, "TokenVault": TokenVault}


def _hints(item: object) -> dict[str, object]:
    return typing.get_type_hints(item, vars(haechi.runtime), _CHECKER_ONLY)


def test_the_runtime_attributes_have_their_documented_types() -> None:
    assert _hints(Runtime) == {
        "config": HaechiConfig,
        "crypto": CryptoProvider,
        "token_vault": TokenVault | None,
        "audit": AuditSink,
        "engine": DetectionEngine,
        "policies": PolicySet,
    }
    assert _hints(Runtime.rate_limiter.fget)["return"] == RateLimiter
    assert _hints(Runtime.auth.fget)["return"] == AuthProvider | None


def test_a_findings_action_is_typed_as_one_of_the_actions() -> None:
    hints = typing.get_type_hints(Finding)
    assert hints["action"] == Action | None
    assert hints["kind"] == EntryKind


def test_protect_sync_takes_the_options_of_protect() -> None:
    asynchronous = inspect.signature(Runtime.protect)
    synchronous = inspect.signature(Runtime.protect_sync)
    assert synchronous == asynchronous  # parameters, and the result: a ProtectResult
    assert Runtime.protect_sync.__name__ == "protect_sync"
    runtime = create_runtime({"audit": {"sink": "memory"}}, {"token_vault": None})
    try:
        result = runtime.protect_sync({"to": "user@example.com"}, mode="enforce")
        assert result.payload == {"to": "[REDACTED:email]"}
        calls: list[dict[str, object]] = []
        protect = runtime.protect

        async def recorded(payload: object, **options: Any) -> object:
            calls.append(options)
            return await protect(payload, **options)

        runtime.protect = recorded  # type: ignore[method-assign]
        runtime.protect_sync({"to": "user@example.com"}, direction="response")
        assert calls == [{"direction": "response"}]  # the method of the instance runs
        with pytest.raises(TypeError, match="modes"):
            runtime.protect_sync({"to": "user@example.com"}, modes="enforce")  # type: ignore[call-arg]
    finally:
        runtime.close()
