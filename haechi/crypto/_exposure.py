# SPDX-License-Identifier: Apache-2.0
"""Whether the local key file is readable by others than its owner: the check ``haechi
status``, ``haechi protect``, the MCP commands and the gateway's start-up lines share."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from haechi.config import HaechiConfig

__all__ = ["exposed_key_file", "key_file_permissions"]


def key_file_permissions(path: Path) -> str | None:
    """The permission bits of ``path`` in octal (``"0600"``); ``None`` when it cannot be
    examined (missing, a directory on the way not searchable)."""
    try:
        return f"{stat.S_IMODE(path.stat().st_mode):04o}"
    except OSError:
        return None


def exposed_key_file(settings: HaechiConfig) -> str | None:
    """The warning for a local key file others than its owner may read or change (a mode
    beyond 0600, as a copy or an archive restored under the umask leaves it); ``None`` when
    there is none, no such file, or another ``keys.provider``.

    Every command and the gateway that use the file say so: whoever can read it can decrypt
    every envelope and token it protects, and one that only ``status`` reported went unseen.
    """
    if settings.keys.provider != "local":
        return None
    key_file = Path(settings.keys.key_file)
    permissions = key_file_permissions(key_file)
    if permissions is None or not int(permissions, 8) & 0o077:
        return None
    return f"key file {key_file} is readable by others ({permissions}); expected 0600"
