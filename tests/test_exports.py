# SPDX-License-Identifier: Apache-2.0
"""The public surface stays honest: every public module declares ``__all__``, and every name
in it exists (ruff keeps the lists sorted)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import haechi


def public_modules() -> list[str]:
    names = ["haechi"]
    for info in pkgutil.walk_packages(haechi.__path__, prefix="haechi."):
        parts = info.name.split(".")
        if any(part.startswith("_") for part in parts):
            continue
        if info.name == "haechi.plugins.sandbox._child":
            continue
        names.append(info.name)
    return names


@pytest.mark.parametrize("name", public_modules())
def test_public_module_declares_a_complete_all(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item!r}"


def test_facade_exposes_the_library_api() -> None:
    runtime_api = {"create_runtime", "Runtime", "ProtectResult", "hookimpl", "HaechiError"}
    assert runtime_api <= set(haechi.__all__)
    assert callable(haechi.create_runtime)
