# SPDX-License-Identifier: Apache-2.0
"""What was synced to disk, and when: the real ``os.fsync``, noting each call."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


class Fsyncs:
    """The real ``os.fsync``, noting what each file or directory held when it was synced:
    a file's size, a directory's names."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.synced: list[tuple[tuple[int, int], int | frozenset[str]]] = []
        real_fsync = os.fsync

        def noting_fsync(fd: int) -> None:
            real_fsync(fd)
            found = os.fstat(fd)
            held = frozenset(os.listdir(fd)) if stat.S_ISDIR(found.st_mode) else found.st_size
            self.synced.append(((found.st_dev, found.st_ino), held))

        monkeypatch.setattr(os, "fsync", noting_fsync)

    def _times(self, path: Path, held: int | str) -> list[int]:
        found = os.stat(path)
        return [
            number
            for number, (key, noted) in enumerate(self.synced)
            if key == (found.st_dev, found.st_ino)
            and (noted == held or (isinstance(noted, frozenset) and held in noted))
        ]

    def durable(self, path: Path) -> bool:
        """Whether ``path`` was synced into its directory, and a file before that whole."""
        named = self._times(path.parent, path.name)
        if not named:
            return False
        if path.is_dir():
            return True
        whole = self._times(path, path.stat().st_size)
        return bool(whole) and whole[0] < named[-1]
