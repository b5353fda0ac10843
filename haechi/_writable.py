# SPDX-License-Identifier: Apache-2.0
"""Whether a file a store keeps could be written now, asked without writing to it.

Readiness probes call this: they must not write or lock, yet permission bits alone do not
answer (an immutable or append-only file, the process's effective identity), so an existing
file is opened with the flags its writer uses and closed at once.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["writable_if_present"]


def writable_if_present(path: Path, flags: int) -> bool:
    """Whether ``path`` is missing (a write creates it) or a regular file that opens with
    ``flags`` (``O_CLOEXEC`` and ``O_NONBLOCK`` are added)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return not os.path.lexists(path)  # a dangling link points at something missing
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    try:
        fd = os.open(path, flags | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    os.close(fd)
    return True
