# SPDX-License-Identifier: Apache-2.0
"""Public test kit: contract suites any provider implementation can subclass.

Each suite asks for one fixture that returns a fresh, empty provider; everything else is
inherited. The built-in providers run these same suites in haechi's own tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["merge_config"]


def merge_config(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge two configuration documents: objects merge key by key, the rest replaces.

    Tests build a configuration from shared defaults plus what one test changes.
    """
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = merge_config(current, value)
        else:
            merged[key] = value
    return merged
