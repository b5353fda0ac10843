# SPDX-License-Identifier: Apache-2.0
"""Hook implementations only: register the provider class."""

from __future__ import annotations

from typing import Any

from haechi import hookimpl


@hookimpl
def haechi_register_token_stores() -> list[type[Any]]:
    from haechi_example_sqlite.store import SqliteTokenStore

    return [SqliteTokenStore]
