# SPDX-License-Identifier: Apache-2.0
"""Built-in providers, registered through the same hooks third-party plugins use.

Imports are local to each hook so that composing a runtime only imports what it needs.
"""

from __future__ import annotations

from typing import Any

from haechi.hookspecs import hookimpl


@hookimpl
def haechi_register_crypto_providers() -> list[type[Any]]:
    from haechi.crypto import LocalCryptoProvider

    return [LocalCryptoProvider]


@hookimpl
def haechi_register_token_stores() -> list[type[Any]]:
    from haechi.vault import FileTokenStore, MemoryTokenStore

    return [FileTokenStore, MemoryTokenStore]


@hookimpl
def haechi_register_audit_stores() -> list[type[Any]]:
    from haechi.audit import FileAuditStore, MemoryAuditStore

    return [FileAuditStore, MemoryAuditStore]


@hookimpl
def haechi_register_rate_limiters() -> list[type[Any]]:
    from haechi.ratelimit import MemoryRateLimiter

    return [MemoryRateLimiter]


@hookimpl
def haechi_register_metrics() -> list[type[Any]]:
    from haechi.metrics import PrometheusMetrics

    return [PrometheusMetrics]


@hookimpl
def haechi_register_auth_providers() -> list[type[Any]]:
    from haechi.auth import BearerAuthProvider

    return [BearerAuthProvider]


@hookimpl
def haechi_register_detectors() -> list[type[Any]]:
    from haechi.detect import BuiltinDetector

    return [BuiltinDetector]
