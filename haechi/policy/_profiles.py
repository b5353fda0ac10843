# SPDX-License-Identifier: Apache-2.0
"""Named policy profiles and how an identity selects one (``policy.profileBinding``).

A named profile is the base policy plus overrides. It inherits everything and can only add
strength: after compiling a profile, every type is held at least at the base policy's
action, and an explicit profile action weaker than the base's is a conflict (kept at the base
level with a warning under ``allowUnsafeOverrides``). So a team bound to a profile can have
its values treated more strictly than everyone else's, never more loosely. The model
allowlist and rate are not actions: a profile's replace the base's as given.

Resolution for an identity: the first ``byScope`` entry, in the configuration's order, whose
scope it holds, else the first ``byLabel`` entry whose ``key=value`` label it holds, else the
binding's default. The binding's order decides, not the identity's: scopes are a set (OAuth
scopes are order-independent, and an identity provider may list them in the order the client
asked for them) and labels a mapping, so a caller holding two mapped scopes must not choose
its profile by the order it asked for them. Without a binding, the base policy applies and
the profile name is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from haechi.errors import ConfigError
from haechi.models import Action, Detection, Identity
from haechi.policy._build import Decision, Policy, build_policy, stronger

if TYPE_CHECKING:
    from haechi.config import PolicyConfig, ProfileConfig

__all__ = ["PolicySet", "Rate", "ResolvedPolicy"]


@dataclass(frozen=True, slots=True)
class Rate:
    """A per-identity request budget."""

    requests_per_minute: float


@dataclass(frozen=True, slots=True)
class ResolvedPolicy:
    """The policy in effect for one caller.

    Attributes:
        profile: the named profile's name, or ``None`` for the base policy.
        policy: the compiled policy.
        model_allowlist: models the caller may request (``None``: any).
        rate: the caller's request budget (``None``: unlimited).
    """

    profile: str | None
    policy: Policy
    model_allowlist: tuple[str, ...] | None
    rate: Rate | None

    def decide(self, detection: Detection) -> Decision:
        """The decision of this policy for one detection."""
        return self.policy.decide(detection)


@dataclass(frozen=True, slots=True)
class _Binding:
    default: str
    by_scope: Mapping[str, str]
    by_label: Mapping[str, str]


class PolicySet:
    """The base policy, the named profiles and the binding between identities and them."""

    __slots__ = ("_binding", "base", "profiles")

    def __init__(
        self,
        base: ResolvedPolicy,
        profiles: Mapping[str, ResolvedPolicy],
        binding: _Binding | None,
    ) -> None:
        self.base = base
        self.profiles = MappingProxyType(dict(profiles))
        self._binding = binding

    @property
    def warnings(self) -> tuple[str, ...]:
        """Warnings of the base policy and of every profile."""
        found = list(self.base.policy.warnings)
        for name, resolved in self.profiles.items():
            found.extend(f"profile {name}: {text}" for text in resolved.policy.warnings)
        return tuple(found)

    def named(self, name: str) -> ResolvedPolicy:
        """The profile called ``name``; raise :class:`ConfigError` when there is none."""
        try:
            return self.profiles[name]
        except KeyError:
            raise ConfigError(f"unknown policy profile {name!r}") from None

    def resolve(self, identity: Identity | None) -> ResolvedPolicy:
        """The policy for ``identity``: the first ``byScope`` entry it holds, then the first
        ``byLabel`` entry, then the default (the binding's order decides, see the module)."""
        binding = self._binding
        if binding is None:
            return self.base
        if identity is not None:
            scopes = frozenset(identity.scopes)
            for scope, name in binding.by_scope.items():
                if scope in scopes:
                    return self.profiles[name]
            labels = frozenset(f"{key}={value}" for key, value in identity.labels.items())
            for label, name in binding.by_label.items():
                if label in labels:
                    return self.profiles[name]
        return self.profiles[binding.default]

    @classmethod
    def from_config(cls, config: PolicyConfig, *, privacy_profile: str | None) -> PolicySet:
        """Compile ``policy`` (and ``privacy.profile``) from the configuration."""
        base_policy = build_policy(
            presets=config.presets,
            default_action=config.default_action,
            actions=config.actions,
            allow_unsafe_overrides=config.allow_unsafe_overrides,
            privacy_profile=privacy_profile,
        )
        base = ResolvedPolicy(
            None,
            base_policy,
            _allowlist(config.model_allowlist),
            _rate(config.rate),
        )
        profiles = {
            name: _compile_profile(name, override, config, base, privacy_profile)
            for name, override in (config.profiles or {}).items()
        }
        binding = None
        if config.profile_binding is not None:
            binding = _Binding(
                config.profile_binding.default,
                MappingProxyType(dict(config.profile_binding.by_scope)),
                MappingProxyType(dict(config.profile_binding.by_label)),
            )
        return cls(base, profiles, binding)


def _allowlist(models: list[str] | None) -> tuple[str, ...] | None:
    return None if models is None else tuple(models)


def _rate(rate: object) -> Rate | None:
    requests = getattr(rate, "requests_per_minute", None)
    return None if requests is None else Rate(float(requests))


def _compile_profile(
    name: str,
    override: ProfileConfig,
    config: PolicyConfig,
    base: ResolvedPolicy,
    privacy_profile: str | None,
) -> ResolvedPolicy:
    source = f"policy.profiles.{name}.actions"
    explicit = dict(override.actions or {})
    unsafe = (
        override.allow_unsafe_overrides
        if override.allow_unsafe_overrides is not None
        else config.allow_unsafe_overrides
    )
    compiled = build_policy(
        presets=override.presets if override.presets is not None else config.presets,
        default_action=override.default_action or config.default_action,
        actions=explicit,
        allow_unsafe_overrides=unsafe,
        privacy_profile=privacy_profile,
        section=f"policy.profiles.{name}",
    )
    actions: dict[str, Action] = dict(compiled.actions)
    # Base actions are inherited as if written in the profile, unless the profile names the
    # type itself or its presets are stronger.
    for detection_type, inherited in config.actions.items():
        current = actions.get(detection_type)
        if detection_type not in explicit and (current is None or not stronger(inherited, current)):
            actions[detection_type] = inherited
    floor = base.policy
    warnings = list(compiled.warnings)
    default = compiled.default_action
    if stronger(default, floor.default_action):
        if override.default_action is not None:
            _weakening(
                f"policy.profiles.{name}.defaultAction",
                floor.default_action,
                default,
                unsafe,
                warnings,
            )
        default = floor.default_action
    for detection_type in dict.fromkeys([*actions, *floor.actions]):
        current = actions.get(detection_type, default)
        required = floor.action_for(detection_type)
        if stronger(current, required):
            if detection_type in explicit:
                _weakening(f"{source}.{detection_type}", required, current, unsafe, warnings)
            actions[detection_type] = required
    policy = Policy(
        default_action=default,
        actions=MappingProxyType(actions),
        presets=compiled.presets,
        privacy_profile=privacy_profile,
        warnings=tuple(warnings),
    )
    return ResolvedPolicy(
        name,
        policy,
        _allowlist(override.model_allowlist)
        if override.model_allowlist is not None
        else base.model_allowlist,
        _rate(override.rate) if override.rate is not None else base.rate,
    )


def _weakening(where: str, base: Action, wanted: Action, unsafe: bool, warnings: list[str]) -> None:
    message = f"Policy action conflict: {where} cannot weaken the base policy's {base} to {wanted}"
    if not unsafe:
        raise ConfigError(message)
    warnings.append(f"{message}; allowUnsafeOverrides keeps {base}")
