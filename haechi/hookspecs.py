# SPDX-License-Identifier: Apache-2.0
"""The plugin contract of haechi (pluggy project ``"haechi"``).

Registration hooks are called once while a runtime is composed. Each implementation
returns a list of provider *classes*; every class carries a ``name`` that configuration uses
to select it (``keys.provider``, ``tokenVault.provider``, ``audit.sink``, ``auth.provider``,
``rateLimit.provider``, ``metrics.provider``). Built-in providers are registered through these
same hooks, before any third-party plugin. Two classes with one name in one slot is a
:class:`haechi.errors.PluginConflictError`.

Plugins are found through the entry-point group ``haechi``. Signed auth plugins are *not*
loaded through this mechanism: they are verified and run in a sandboxed child process (see
``haechi.plugins``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from haechi.providers import (
        AuditStore,
        AuthProvider,
        CryptoProvider,
        Detector,
        Metrics,
        RateLimiter,
        TokenStore,
    )

__all__ = [
    "PROJECT_NAME",
    "haechi_register_audit_stores",
    "haechi_register_auth_providers",
    "haechi_register_crypto_providers",
    "haechi_register_detectors",
    "haechi_register_metrics",
    "haechi_register_rate_limiters",
    "haechi_register_token_stores",
    "hookimpl",
    "hookspec",
]

PROJECT_NAME = "haechi"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --- Registration ---------------------------------------------------------------------
# Called once per runtime composition by ``haechi.plugins.manager``. Every implementation
# returns a list of classes; the results of all implementations are concatenated. An
# implementation may raise only for a broken installation: the error is reported, never
# swallowed.


@hookspec
def haechi_register_crypto_providers() -> list[type[CryptoProvider]]:
    """Return crypto provider classes, selected by ``keys.provider``.

    Called by the runtime composer before any other slot, because stores and auth need HMAC.
    """
    raise NotImplementedError


@hookspec
def haechi_register_token_stores() -> list[type[TokenStore]]:
    """Return token store classes, selected by ``tokenVault.provider``."""
    raise NotImplementedError


@hookspec
def haechi_register_audit_stores() -> list[type[AuditStore]]:
    """Return audit store classes, selected by ``audit.sink``."""
    raise NotImplementedError


@hookspec
def haechi_register_rate_limiters() -> list[type[RateLimiter]]:
    """Return rate limiter classes, selected by ``rateLimit.provider``."""
    raise NotImplementedError


@hookspec
def haechi_register_metrics() -> list[type[Metrics]]:
    """Return metrics sink classes, selected by ``metrics.provider``."""
    raise NotImplementedError


@hookspec
def haechi_register_auth_providers() -> list[type[AuthProvider]]:
    """Return in-process auth provider classes, selected by ``auth.provider``.

    Signed plugins (``auth.provider: "plugin"``) never come through this hook.
    """
    raise NotImplementedError


@hookspec
def haechi_register_detectors() -> list[type[Detector]]:
    """Return detector classes; every registered detector's rules join the catalogue."""
    raise NotImplementedError
