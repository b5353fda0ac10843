# SPDX-License-Identifier: Apache-2.0
"""An example third-party plugin: a haechi token store on SQLite."""

from haechi_example_sqlite.store import SqliteTokenStore

__all__ = ["SqliteTokenStore"]
