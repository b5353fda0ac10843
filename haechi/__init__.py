# SPDX-License-Identifier: Apache-2.0
"""haechi: a self-hosted AI context enforcement layer.

The library surface is small::

    import haechi

    runtime = haechi.create_runtime({"policy": {"mode": "enforce"}})
    result = runtime.protect_sync({"messages": [{"role": "user", "content": "mail a@b.co"}]})
    result.payload   # the protected payload, or None when blocked
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from haechi.errors import (
    AuditError,
    AuditRepeatedKey,
    AuthRejected,
    ConfigError,
    CryptoError,
    DetectionError,
    HaechiError,
    IdentityError,
    LimitError,
    PluginConflictError,
    PluginError,
    PluginLoadError,
    PolicyViolation,
    ProviderError,
    VaultError,
)
from haechi.hookspecs import hookimpl
from haechi.models import Detection, Finding, Identity, ProtectResult

if TYPE_CHECKING:
    from haechi.runtime import Runtime, create_runtime

try:
    __version__ = version("haechi")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "AuditError",
    "AuditRepeatedKey",
    "AuthRejected",
    "ConfigError",
    "CryptoError",
    "Detection",
    "DetectionError",
    "Finding",
    "HaechiError",
    "Identity",
    "IdentityError",
    "LimitError",
    "PluginConflictError",
    "PluginError",
    "PluginLoadError",
    "PolicyViolation",
    "ProtectResult",
    "ProviderError",
    "Runtime",
    "VaultError",
    "__version__",
    "create_runtime",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    # The runtime pulls in the whole engine; importing it lazily keeps ``import haechi``
    # (and the CLI start-up) cheap for commands that never protect anything.
    if name in {"Runtime", "create_runtime"}:
        from haechi import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'haechi' has no attribute {name!r}")
