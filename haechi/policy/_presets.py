# SPDX-License-Identifier: Apache-2.0
"""The named presets ``policy.presets`` can list: bundles of per-type actions.

A preset only ever *raises* actions (see :func:`haechi.policy.build_policy`): listing one can
make a type's handling stronger, never weaker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from haechi.errors import ConfigError
from haechi.models import Action

__all__ = ["PRESETS", "Preset", "get_preset"]


@dataclass(frozen=True, slots=True)
class Preset:
    """One preset: an optional default action and per-type actions."""

    name: str
    default_action: Action | None = None
    actions: Mapping[str, Action] = field(default_factory=lambda: MappingProxyType({}))
    description: str = ""


def _preset(
    name: str, description: str, default: Action | None = None, **actions: Action
) -> Preset:
    return Preset(name, default, MappingProxyType(dict(actions)), description)


_BLOCK_CREDENTIALS: Final[dict[str, Action]] = {"api_key": "block", "secret": "block"}

#: Every preset by name, in the order ``haechi`` documents them.
PRESETS: Final[Mapping[str, Preset]] = MappingProxyType(
    {
        preset.name: preset
        for preset in (
            _preset(
                "llm-redact",
                "Redact e-mail, mask phone numbers; redact everything else by default.",
                "redact",
                email="redact",
                phone="mask",
            ),
            _preset(
                "korean-pii",
                "Block resident registration numbers, mask phones, redact e-mail.",
                kr_rrn="block",
                phone="mask",
                email="redact",
            ),
            _preset("secrets-only", "Block API keys and secrets.", **_BLOCK_CREDENTIALS),
            _preset("strict-block", "Block every detected type by default.", "block"),
            _preset(
                "local-only",
                "Marks traffic as local-only; it changes no action.",
            ),
            _preset(
                "mcp-basic",
                "For MCP tools: block credentials and resident numbers, redact the rest.",
                "redact",
                kr_rrn="block",
                **_BLOCK_CREDENTIALS,
            ),
            _preset(
                "local-inference",
                "For local models: tokenize e-mail, mask phones, block credentials and "
                "resident numbers.",
                "redact",
                email="tokenize",
                phone="mask",
                kr_rrn="block",
                **_BLOCK_CREDENTIALS,
            ),
        )
    }
)


def get_preset(name: str) -> Preset:
    """Return the preset called ``name`` or raise :class:`ConfigError`."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(PRESETS)
        raise ConfigError(f"Unknown policy preset {name!r} (known: {known})") from None
