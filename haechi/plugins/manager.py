# SPDX-License-Identifier: Apache-2.0
"""Build the plugin manager and select providers by name.

Built-ins are registered first (from ``haechi._builtins``), then every ``haechi``
entry point. A plugin that fails to import is an error that names it; it is never skipped.
Selection is by the provider class's ``name``; a duplicate name in one slot is a conflict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from haechi import hookspecs
from haechi.errors import ConfigError, PluginConflictError, PluginLoadError

if TYPE_CHECKING:
    from haechi.config import HaechiConfig

__all__ = [
    "SLOTS",
    "ProviderRegistry",
    "build_plugin_manager",
    "external_needs_injection",
    "load_registry",
]

#: slot name -> (hook name, config key that selects it)
SLOTS: dict[str, tuple[str, str]] = {
    "crypto": ("haechi_register_crypto_providers", "keys.provider"),
    "token_store": ("haechi_register_token_stores", "tokenVault.provider"),
    "audit_store": ("haechi_register_audit_stores", "audit.sink"),
    "rate_limiter": ("haechi_register_rate_limiters", "rateLimit.provider"),
    "metrics": ("haechi_register_metrics", "metrics.provider"),
    "auth": ("haechi_register_auth_providers", "auth.provider"),
    "detector": ("haechi_register_detectors", "detectors"),
}

#: Slots whose provider can be ``"external"``: one the application embedding haechi hands
#: to ``create_runtime``. The gateway and the commands hand none, so they refuse the name.
_EXTERNAL: dict[str, str] = {"crypto": "crypto provider", "auth": "auth provider"}

#: ``auth.provider`` names the runtime resolves itself rather than through the registry.
_AUTH_BUILT_IN = frozenset({"none", "plugin"})


def build_plugin_manager(*, load_entrypoints: bool = True) -> pluggy.PluginManager:
    """Return a manager with the built-ins and, unless disabled, every installed plugin."""
    from haechi import _builtins

    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(_builtins, name="haechi.builtins")
    if load_entrypoints:
        loaded: dict[str, str] = {}
        for ep in entry_points(group=hookspecs.PROJECT_NAME):
            if ep.name in loaded:
                # Skipping one would leave its providers out without a word (or let the
                # other's stand in for them): a conflict like two providers with one name.
                raise PluginConflictError(
                    f"two installed plugins use the entry point name {ep.name!r}: "
                    f"{loaded[ep.name]} and {ep.value}"
                )
            loaded[ep.name] = ep.value
            if manager.get_plugin(ep.name) is not None or manager.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginLoadError(
                    "import-failed", f"plugin {ep.name!r} ({ep.value}) failed to import: {exc}"
                ) from exc
            manager.register(plugin, name=ep.name)
    manager.check_pending()
    return manager


@dataclass(frozen=True)
class ProviderRegistry:
    """Provider classes per slot, keyed by their ``name``."""

    slots: dict[str, dict[str, type[Any]]]

    def names(self, slot: str) -> list[str]:
        """Names registered for ``slot``, sorted."""
        return sorted(self.slots.get(slot, {}))

    def select(self, slot: str, name: str) -> type[Any]:
        """Return the class registered as ``name`` in ``slot`` or raise ``ConfigError``."""
        classes = self.slots.get(slot, {})
        try:
            return classes[name]
        except KeyError:
            key = SLOTS[slot][1]
            known = ", ".join(sorted(classes)) or "none"
            raise ConfigError(f"{key}: unknown provider {name!r} (registered: {known})") from None

    def check_config(self, config: HaechiConfig) -> None:
        """Raise the ``ConfigError`` the gateway starts with when ``config`` names a provider
        it cannot select, without building any: what a command that only reports on a
        configuration (``haechi status``) finds before the gateway would refuse it.
        """
        for slot, name in _selected_names(config).items():
            if name == "external" and slot in _EXTERNAL:
                raise external_needs_injection(slot)
            if not (slot == "auth" and name in _AUTH_BUILT_IN):
                self.select(slot, name)


def external_needs_injection(slot: str) -> ConfigError:
    """The error for ``slot`` (``crypto`` or ``auth``) configured as ``"external"`` while no
    provider was injected for it: nothing else can stand in for the application's own."""
    return ConfigError(f'{SLOTS[slot][1]} "external" needs an injected {_EXTERNAL[slot]}')


def _selected_names(config: HaechiConfig) -> dict[str, str]:
    """The provider name ``config`` gives each slot that is selected by one."""
    return {
        "crypto": config.keys.provider,
        "token_store": config.token_vault.provider,
        "audit_store": config.audit.sink,
        "rate_limiter": config.rate_limit.provider,
        "metrics": config.metrics.provider,
        "auth": config.auth.provider,
    }


def _collect(slot: str, results: Iterable[list[type[Any]] | None]) -> dict[str, type[Any]]:
    by_name: dict[str, type[Any]] = {}
    for batch in results:
        for cls in batch or []:
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginLoadError("invalid-provider", f"{cls!r} in slot {slot} has no name")
            if name in by_name and by_name[name] is not cls:
                raise PluginConflictError(
                    f"two {slot} providers are named {name!r}: "
                    f"{by_name[name].__module__}.{by_name[name].__qualname__} and "
                    f"{cls.__module__}.{cls.__qualname__}"
                )
            by_name[name] = cls
    return by_name


def load_registry(manager: pluggy.PluginManager | None = None) -> ProviderRegistry:
    """Call every registration hook and index the classes by slot and name."""
    manager = manager or build_plugin_manager()
    slots: dict[str, dict[str, type[Any]]] = {}
    for slot, (hook_name, _key) in SLOTS.items():
        hook = getattr(manager.hook, hook_name)
        try:
            results = hook()
        except (PluginConflictError, PluginLoadError):
            raise
        except Exception as exc:
            raise PluginLoadError("register-failed", f"{hook_name} raised: {exc}") from exc
        slots[slot] = _collect(slot, results)
    return ProviderRegistry(slots)
