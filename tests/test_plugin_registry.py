# SPDX-License-Identifier: Apache-2.0
"""Provider registration: built-ins and installed plugins, selection by name, failures."""

from __future__ import annotations

import sqlite3
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest
from haechi_example_sqlite import SqliteTokenStore

from haechi import create_runtime, hookimpl
from haechi.crypto import init_key_file
from haechi.errors import ConfigError, PluginConflictError, PluginLoadError
from haechi.plugins.manager import build_plugin_manager, load_registry
from haechi.testing.token_store import TokenStoreContract


def test_builtins_and_the_installed_plugin_are_registered() -> None:
    registry = load_registry()
    assert {"local", "memory", "sqlite"} <= set(registry.names("token_store"))
    assert {"jsonl", "memory"} <= set(registry.names("audit_store"))
    assert "local" in registry.names("crypto")
    assert registry.select("token_store", "sqlite") is SqliteTokenStore


def test_an_entry_point_provider_is_selected_by_config_name(tmp_path: Path) -> None:
    init_key_file(tmp_path / "keys.json")
    database = tmp_path / "vault.db"
    runtime = create_runtime(
        {
            "policy": {"mode": "enforce", "actions": {"email": "tokenize"}},
            "keys": {"keyFile": str(tmp_path / "keys.json")},
            "audit": {"path": str(tmp_path / "audit.jsonl")},
            "tokenVault": {"provider": "sqlite", "path": str(database)},
        }
    )
    result = runtime.protect_sync({"content": "write to minji.kim@example.com today"})
    (token,) = result.issued_tokens
    assert result.payload == {"content": f"write to [TOKEN:{token}] today"}
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT token, record FROM tokens").fetchall()
    assert [row[0] for row in rows] == [token]
    assert "minji.kim@example.com" not in rows[0][1]


def test_an_unknown_provider_name_lists_the_registered_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tokenVault.provider: unknown provider 'nope'.*sqlite"):
        create_runtime(
            {"tokenVault": {"provider": "nope"}, "audit": {"path": str(tmp_path / "a.jsonl")}}
        )


def test_two_providers_with_one_name_conflict() -> None:
    class Impostor:
        name: ClassVar[str] = "local"

    plugin = types.ModuleType("impostor_plugin")

    @hookimpl
    def haechi_register_token_stores() -> list[type[Any]]:
        return [Impostor]

    plugin.haechi_register_token_stores = haechi_register_token_stores  # type: ignore[attr-defined]
    manager = build_plugin_manager(load_entrypoints=False)
    manager.register(plugin, name="impostor")
    with pytest.raises(PluginConflictError, match="two token_store providers are named 'local'"):
        load_registry(manager)


def test_a_plugin_that_fails_to_import_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "haechi_broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: haechi-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[haechi]\nbroken = haechi_broken_missing.plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "haechi_broken_missing", raising=False)
    with pytest.raises(PluginLoadError, match=r"plugin 'broken'.*failed to import") as info:
        build_plugin_manager()
    assert info.value.reason == "import-failed"


def test_two_installed_plugins_with_one_entry_point_name_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second would otherwise be left out without a word: its providers missing, or the
    first one's taken in their place."""
    for dist, module in (
        ("haechi_alpha", "haechi_alpha_plugin"),
        ("haechi_beta", "haechi_beta_plugin"),
    ):
        info = tmp_path / f"{dist}-1.0.dist-info"
        info.mkdir()
        name = dist.replace("_", "-")
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[haechi]\nstore = {module}\n")
        (tmp_path / f"{module}.py").write_text("")
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginConflictError, match="entry point name 'store'") as info:
        build_plugin_manager()
    assert "haechi_alpha_plugin" in str(info.value)
    assert "haechi_beta_plugin" in str(info.value)


class TestSqliteTokenStoreContract(TokenStoreContract):
    """The public contract suite, run against a third-party store."""

    @pytest.fixture
    def token_store(self, tmp_path: Path) -> SqliteTokenStore:
        return SqliteTokenStore(str(tmp_path / "contract.db"))
