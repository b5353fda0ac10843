# SPDX-License-Identifier: Apache-2.0
"""Compiling presets, a default action, explicit actions and a privacy profile into a policy.

The one rule: every layer may only make a type's action *stronger* (on the scale of
:data:`haechi.models.ACTION_STRENGTH`). Presets raise the default action and per-type actions
and never lower them, whatever their order; a preset's default covers the types other presets
name as well as the rest. An explicit ``policy.actions`` entry weaker than an action a preset
names for its type is a conflict the operator must resolve, unless ``allowUnsafeOverrides`` is
set, in which case the stronger action stays and the policy carries a warning saying so (an
entry may set its type under a preset's default, which covers what no entry names). A
privacy profile raises any type whose effective action is weaker than the profile's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from haechi.errors import ConfigError
from haechi.models import ACTION_STRENGTH, ACTIONS, Action, Detection
from haechi.policy._presets import get_preset
from haechi.policy._privacy import get_privacy_profile

__all__ = ["Decision", "Policy", "build_policy", "stronger", "validate_action"]

#: Injection findings are reported and audited but left in place unless a policy says
#: otherwise: prompt-injection text is evidence, not a secret.
_INJECTION_DEFAULT: Final[Action] = "allow"


def validate_action(value: object, where: str) -> Action:
    """Return ``value`` as an action, or raise :class:`ConfigError` naming ``where``."""
    if value not in ACTIONS:
        raise ConfigError(f"{where}: invalid action {value!r} (one of {', '.join(ACTIONS)})")
    return value


def stronger(current: Action, candidate: Action) -> bool:
    """Whether ``candidate`` is strictly stronger than ``current``."""
    return ACTION_STRENGTH[candidate] > ACTION_STRENGTH[current]


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decided for one detection, and why (``matched:<ruleId>``)."""

    action: Action
    reason: str


@dataclass(frozen=True, slots=True)
class Policy:
    """A compiled policy: the action for every detection type.

    ``warnings`` lists explicit actions the operator asked for but did not get (kept at a
    stronger level under ``allowUnsafeOverrides``), so that ``haechi protect`` and
    ``haechi status`` can show them.
    """

    default_action: Action
    actions: Mapping[str, Action]
    presets: tuple[str, ...] = ()
    privacy_profile: str | None = None
    warnings: tuple[str, ...] = field(default=())

    def action_for(self, detection_type: str) -> Action:
        """The action for ``detection_type``: its own entry, else the default action."""
        return self.actions.get(detection_type, self.default_action)

    def decide(self, detection: Detection) -> Decision:
        """The decision for one detection."""
        return Decision(self.action_for(detection.type), f"matched:{detection.rule_id}")


def _merge_presets(
    names: tuple[str, ...], section: str
) -> tuple[dict[str, Action], dict[str, str], Action | None]:
    """The strongest per-type action among the presets ``names``, the preset each came from,
    and their strongest default action (``None`` when none has one)."""
    merged: dict[str, Action] = {}
    origin: dict[str, str] = {}
    preset_default: Action | None = None
    for name in names:
        try:
            preset = get_preset(name)
        except ConfigError as exc:
            raise ConfigError(f"{section}.presets: {exc}") from None
        candidate = preset.default_action
        if candidate is not None and (
            preset_default is None or stronger(preset_default, candidate)
        ):
            preset_default = candidate
        for detection_type, action in preset.actions.items():
            existing = merged.get(detection_type)
            if existing is None or stronger(existing, action):
                merged[detection_type] = action
                origin[detection_type] = name
    return merged, origin, preset_default


def build_policy(
    *,
    presets: Iterable[str] = (),
    default_action: str = "redact",
    actions: Mapping[str, str] | None = None,
    allow_unsafe_overrides: bool = False,
    privacy_profile: str | None = None,
    section: str = "policy",
) -> Policy:
    """Compile a policy; raise :class:`ConfigError` on an unknown preset, an invalid action
    or an explicit action that would weaken a preset's.

    ``section`` is where the settings are in the configuration (``policy`` or
    ``policy.profiles.<name>``): every error names the key at fault under it, so that the
    operator knows which of several profiles to correct.
    """
    warnings: list[str] = []
    preset_names = tuple(presets)
    default = validate_action(default_action, f"{section}.defaultAction")
    source = f"{section}.actions"
    merged, origin, preset_default = _merge_presets(preset_names, section)
    if preset_default is not None and stronger(default, preset_default):
        default = preset_default
    explicit: set[str] = set()
    for detection_type, raw in (actions or {}).items():
        action = validate_action(raw, f"{source}.{detection_type}")
        existing = merged.get(detection_type)
        if existing is not None and stronger(action, existing):
            message = (
                f"Policy action conflict for {detection_type}: {source} cannot weaken "
                f"{existing} (preset {origin[detection_type]}) to {action}"
            )
            if not allow_unsafe_overrides:
                raise ConfigError(message)
            warnings.append(f"{message}; allowUnsafeOverrides keeps {existing}")
            continue
        merged[detection_type] = action
        explicit.add(detection_type)
    if preset_default is not None:
        # A preset's default covers every type no explicit entry names, those another preset
        # names included: listing llm-redact next to strict-block must not bring e-mail
        # addresses down from block to redact.
        for detection_type, action in merged.items():
            if detection_type not in explicit and stronger(action, preset_default):
                merged[detection_type] = preset_default
    merged.setdefault("injection", _INJECTION_DEFAULT)
    if privacy_profile is not None:
        profile = get_privacy_profile(privacy_profile)
        for detection_type, action in profile.actions.items():
            if stronger(merged.get(detection_type, default), action):
                merged[detection_type] = action
    return Policy(
        default_action=default,
        actions=MappingProxyType(merged),
        presets=preset_names,
        privacy_profile=privacy_profile,
        warnings=tuple(warnings),
    )
