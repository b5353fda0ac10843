# SPDX-License-Identifier: Apache-2.0
"""Every configuration example in the documentation is one haechi accepts as written.

A fenced ``json`` block the line ``<!-- haechi.config.json -->`` comes right before is a
whole configuration file: it is loaded as one and its policy compiled, as the gateway does
before it listens. A ``json`` block that looks like a configuration (an object whose keys are
all top-level configuration keys) must carry the mark, so a new example cannot escape the
check by being left unmarked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

import pytest

from haechi.config import config_reference, parse_config
from haechi.policy import PolicySet

ROOT: Final = Path(__file__).resolve().parents[1]
PAGES: Final = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
MARK: Final = "<!-- haechi.config.json -->"
_TOP_LEVEL_KEYS: Final = {key.key.split(".")[0] for key in config_reference()}


def _json_blocks() -> list[tuple[str, bool, str]]:
    """``(where, marked, body)`` of every fenced ``json`` block of every page."""
    blocks = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"^```json\n(.*?)^```$", text, re.M | re.S):
            line = text.count("\n", 0, match.start()) + 1
            previous = text[: match.start()].rstrip("\n").rpartition("\n")[2]
            blocks.append((f"{page.name}:{line}", previous == MARK, match.group(1)))
    return blocks


def _looks_like_a_configuration(body: str) -> bool:
    try:
        document: Any = json.loads(body)
    except ValueError:
        return False  # an excerpt with "..." or a record with elisions
    return isinstance(document, dict) and bool(document) and set(document) <= _TOP_LEVEL_KEYS


BLOCKS: Final = _json_blocks()
EXAMPLES: Final = [(where, body) for where, marked, body in BLOCKS if marked]


def test_the_documentation_has_marked_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize(("where", "body"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_a_marked_example_is_a_configuration_haechi_accepts(where: str, body: str) -> None:
    settings = parse_config(json.loads(body))
    PolicySet.from_config(settings.policy, privacy_profile=settings.privacy.profile)


def test_every_configuration_example_is_marked() -> None:
    unmarked = [
        where for where, marked, body in BLOCKS if not marked and _looks_like_a_configuration(body)
    ]
    assert unmarked == [], f"put {MARK} on the line before these examples"
