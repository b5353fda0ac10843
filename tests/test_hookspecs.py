# SPDX-License-Identifier: Apache-2.0
"""Every hook of the plugin contract is documented, and the built-ins implement every one."""

from __future__ import annotations

import inspect
from pathlib import Path

from haechi import _builtins, hookspecs
from haechi.plugins.manager import SLOTS, build_plugin_manager, load_registry

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def hook_names() -> list[str]:
    return [
        name
        for name, value in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("haechi_")
    ]


def test_every_hook_is_documented_and_has_a_docstring() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name in hook_names():
        assert f"`{name}`" in text, f"{name} is missing from docs/plugins.md"
        assert (getattr(hookspecs, name).__doc__ or "").strip()


def test_every_hook_is_a_registration_slot_implemented_by_the_builtins() -> None:
    assert sorted(hook for hook, _key in SLOTS.values()) == sorted(hook_names())
    for name in hook_names():
        assert hasattr(_builtins, name), f"built-ins do not implement {name}"
    manager = build_plugin_manager(load_entrypoints=False)
    registry = load_registry(manager)
    for slot in SLOTS:
        assert registry.names(slot), f"no built-in provider for slot {slot}"
        for provider_name in registry.names(slot):
            cls = registry.select(slot, provider_name)
            assert cls.name == provider_name
            assert callable(getattr(cls, "create", None)), f"{cls!r} has no create()"
