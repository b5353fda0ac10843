# SPDX-License-Identifier: Apache-2.0
"""A key file or a vault file kept elsewhere and reached through a symbolic link.

Files are rewritten by atomic replacement; replacing the path itself put a new file in the
link's place at the first write: a copy of the keys beside the link, cut off from the file
other processes share (their nonce counting and rotations) and a vault whose records never
reached the volume it was linked to. Writes, and the lock they take, go to where the link
points.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from haechi.crypto import NONCE_WINDOW, LocalCryptoProvider, init_key_file, read_nonce_budget
from haechi.testing.token_store import sample_record
from haechi.vault import FileTokenStore

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")


@pytest.fixture
def linked(tmp_path: Path) -> tuple[Path, Path]:
    """A key file in ``secrets/`` and a link to it in ``app/``."""
    target = tmp_path / "secrets" / "keys.json"
    init_key_file(target)
    link = tmp_path / "app" / "keys.json"
    link.parent.mkdir()
    link.symlink_to(target)
    return link, target


def test_encrypting_through_a_linked_key_file_counts_in_the_shared_file(
    linked: tuple[Path, Path],
) -> None:
    link, target = linked
    LocalCryptoProvider(link).encrypt("ann.a@example.com", {"a": 1})
    assert link.is_symlink()
    assert read_nonce_budget(target).used == NONCE_WINDOW
    # A process using the file by its own name reserves the next window, not the same one.
    LocalCryptoProvider(target).encrypt("bob.b@example.org", {"a": 1})
    assert read_nonce_budget(target).used == 2 * NONCE_WINDOW
    assert not list(link.parent.glob("keys.json.*"))


def test_a_rotation_of_the_linked_file_is_followed(linked: tuple[Path, Path]) -> None:
    link, target = linked
    provider = LocalCryptoProvider(link, recheck_seconds=0)
    before = provider.encrypt("ann.a@example.com", {"a": 1})
    rotated = init_key_file(target, force=True)
    after = provider.encrypt("ann.a@example.com", {"a": 1})
    assert before["kid"] != rotated.kid
    assert after["kid"] == rotated.kid
    assert link.is_symlink()


def test_rotating_through_the_link_rotates_the_linked_file(linked: tuple[Path, Path]) -> None:
    link, target = linked
    rotated = init_key_file(link, force=True)
    assert link.is_symlink()
    assert read_nonce_budget(target).kid == rotated.kid


@pytest.mark.anyio
async def test_a_linked_vault_file_is_written_where_it_points(tmp_path: Path) -> None:
    target = tmp_path / "volume" / "token-vault.json"
    target.parent.mkdir()
    link = tmp_path / "app" / "token-vault.json"
    link.parent.mkdir()
    link.symlink_to(target)
    through_link, direct = FileTokenStore(link), FileTokenStore(target)
    first, second = "tok_email_0123456789abcdef", "tok_email_fedcba9876543210"
    await direct.put(second, sample_record(second))
    await through_link.put(first, sample_record(first))
    await through_link.delete(second)
    assert link.is_symlink()
    assert sorted([token async for token, _ in direct.items()]) == [first]
    assert (await through_link.ready()).ok


@pytest.mark.anyio
async def test_a_dangling_link_is_replaced_not_followed(tmp_path: Path) -> None:
    """No file is created where a dangling link points (a link planted in the state
    directory must not make haechi write elsewhere)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    (state / "dev.keys.json").symlink_to(elsewhere / "keys.json")
    (state / "token-vault.json").symlink_to(elsewhere / "vault.json")
    init_key_file(state / "dev.keys.json")
    LocalCryptoProvider(state / "dev.keys.json").encrypt("ann.a@example.com", {"a": 1})
    token = "tok_email_0123456789abcdef"
    await FileTokenStore(state / "token-vault.json").put(token, sample_record(token))
    assert list(elsewhere.iterdir()) == []
    assert (state / "dev.keys.json").is_file()
    assert not (state / "dev.keys.json").is_symlink()
    assert not (state / "token-vault.json").is_symlink()
