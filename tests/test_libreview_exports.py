# SPDX-License-Identifier: Apache-2.0
"""The names ``haechi`` exports are the ones docs/library.md documents."""

from __future__ import annotations

import re
from pathlib import Path

import haechi

_LIBRARY_DOC = Path(__file__).resolve().parent.parent / "docs" / "library.md"


def test_every_exported_name_is_documented_and_every_documented_name_exported() -> None:
    text = _LIBRARY_DOC.read_text("utf-8")
    undocumented = {name for name in haechi.__all__ if f"`{name}`" not in text}
    assert undocumented == set()
    # `haechi.Name` in the text; `haechi.errors` and `haechi.providers` are modules.
    referenced = set(re.findall(r"`haechi\.([A-Za-z_]\w*)`", text)) - {"errors", "providers"}
    assert referenced <= set(haechi.__all__)
