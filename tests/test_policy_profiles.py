# SPDX-License-Identifier: Apache-2.0
"""Named policy profiles: inheritance that only strengthens, and identity resolution."""

from __future__ import annotations

from typing import Any

import pytest

from haechi.config import parse_config
from haechi.errors import ConfigError
from haechi.models import Identity
from haechi.policy import PolicySet, Rate


def _policies(policy: dict[str, Any], privacy: str | None = None) -> PolicySet:
    config = parse_config({"policy": policy, "privacy": {"profile": privacy}})
    return PolicySet.from_config(config.policy, privacy_profile=config.privacy.profile)


def _identity(scopes: tuple[str, ...] = (), **labels: str) -> Identity:
    return Identity("id-1", "service", "subject-hash", "issuer-hash", "bearer", scopes, labels)


_BOUND = {
    "profiles": {
        "research": {"actions": {"email": "tokenize"}},
        "finance": {"actions": {"card": "block", "iban": "block"}},
        "strict": {"defaultAction": "block"},
    },
    "profileBinding": {
        "default": "strict",
        "byScope": {"research:read": "research", "billing": "finance"},
        "byLabel": {"team=finance": "finance", "team=research": "research"},
    },
}


def test_without_a_binding_the_base_policy_applies() -> None:
    policies = _policies({})
    resolved = policies.resolve(_identity(("anything",), team="x"))
    assert resolved.profile is None
    assert resolved is policies.base
    assert resolved.policy.action_for("email") == "redact"


def test_resolution_is_scope_then_label_then_default() -> None:
    policies = _policies(_BOUND)
    assert policies.resolve(_identity(("billing",))).profile == "finance"
    assert policies.resolve(_identity((), team="research")).profile == "research"
    # A mapped scope beats a mapped label.
    assert policies.resolve(_identity(("research:read",), team="finance")).profile == "research"
    assert policies.resolve(_identity(("other",), team="sales")).profile == "strict"
    assert policies.resolve(None).profile == "strict"


def test_the_binding_order_decides_between_two_mapped_scopes_or_labels() -> None:
    # Scopes are a set and labels a mapping: an identity provider may list a token's scopes in
    # the order the client asked for them, which must not let the client pick its profile.
    policies = _policies(_BOUND)
    for scopes in (("billing", "research:read"), ("research:read", "billing")):
        assert policies.resolve(_identity(scopes)).profile == "research"
    policies = _policies(
        {
            "profiles": {"prod": {}, "finance": {}, "other": {}},
            "profileBinding": {
                "default": "other",
                "byLabel": {"env=prod": "prod", "team=finance": "finance"},
            },
        }
    )
    for labels in ({"team": "finance", "env": "prod"}, {"env": "prod", "team": "finance"}):
        assert policies.resolve(_identity((), **labels)).profile == "prod"


def test_named_lookup_and_unknown_names() -> None:
    policies = _policies(_BOUND)
    assert policies.named("research").policy.action_for("email") == "tokenize"
    with pytest.raises(ConfigError, match="unknown policy profile"):
        policies.named("nope")


@pytest.mark.parametrize(
    "policy",
    [
        {"profiles": {"a": {}}},
        {"profiles": {"a": {}}, "profileBinding": {"default": "missing"}},
        {"profiles": {"a": {}}, "profileBinding": {"default": "a", "byScope": {"s": "missing"}}},
        {"profiles": {"a": {}}, "profileBinding": {"default": "a", "byLabel": {"t=x": "missing"}}},
        {"profileBinding": {"default": "a"}},
    ],
)
def test_bindings_to_unknown_profiles_are_errors(policy: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        _policies(policy)


@pytest.mark.parametrize(
    ("policy", "key"),
    [
        ({"presets": ["strict-blok"]}, "policy.presets"),
        (
            {
                "profiles": {"a": {}, "b": {"presets": ["strict-blok"]}},
                "profileBinding": {"default": "a"},
            },
            "policy.profiles.b.presets",
        ),
    ],
)
def test_an_unknown_preset_is_refused_naming_its_key(policy: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match="Unknown policy preset 'strict-blok'") as caught:
        _policies(policy)
    assert str(caught.value).startswith(f"{key}: ")


def test_a_profile_inherits_the_base_and_adds_strength() -> None:
    policies = _policies(
        {"actions": {"iban": "mask"}, **_BOUND},
    )
    finance = policies.named("finance").policy
    assert finance.action_for("iban") == "block"
    assert finance.action_for("api_key") == "block"  # from the base presets
    strict = policies.named("strict").policy
    assert strict.default_action == "block"
    assert strict.action_for("iban") == "mask"  # explicit base action kept
    assert strict.action_for("injection") == "allow"


def test_a_profile_cannot_weaken_a_base_action() -> None:
    # The reference let a profile lower email from redact to allow.
    with pytest.raises(ConfigError, match="cannot weaken"):
        _policies(
            {
                "profiles": {"lax": {"actions": {"email": "allow"}}},
                "profileBinding": {"default": "lax"},
            }
        )
    with pytest.raises(ConfigError, match="defaultAction"):
        _policies(
            {
                "defaultAction": "block",
                "profiles": {"lax": {"defaultAction": "redact"}},
                "profileBinding": {"default": "lax"},
            }
        )


def test_unsafe_overrides_keep_the_base_action_with_a_warning() -> None:
    policies = _policies(
        {
            "profiles": {"lax": {"actions": {"email": "allow"}, "allowUnsafeOverrides": True}},
            "profileBinding": {"default": "lax"},
        }
    )
    lax = policies.named("lax").policy
    assert lax.action_for("email") == "redact"
    assert any("email" in warning for warning in lax.warnings)
    assert any(warning.startswith("profile lax:") for warning in policies.warnings)


def test_replacing_presets_in_a_profile_keeps_the_base_floor() -> None:
    policies = _policies(
        {"profiles": {"bare": {"presets": []}}, "profileBinding": {"default": "bare"}}
    )
    bare = policies.named("bare").policy
    assert bare.presets == ()
    for detection_type in ("api_key", "secret", "kr_rrn", "card"):
        assert bare.action_for(detection_type) == "block"
    # Without the presets phone falls back to the default redact: as strong as mask.
    assert bare.action_for("phone") == "redact"


def test_a_privacy_profile_applies_to_every_named_profile() -> None:
    policies = _policies(_BOUND, privacy="eu-gdpr")
    for name in ("research", "finance", "strict"):
        assert policies.named(name).policy.action_for("fr_nir") == "block"
    assert policies.base.policy.action_for("email") == "tokenize"


def test_model_allowlist_and_rate_come_from_the_profile_else_the_base() -> None:
    policies = _policies(
        {
            "modelAllowlist": ["small"],
            "rate": {"requestsPerMinute": 60},
            "profiles": {
                "big": {"modelAllowlist": ["small", "large"], "rate": {"requestsPerMinute": 600}},
                "plain": {},
            },
            "profileBinding": {"default": "plain", "byScope": {"big": "big"}},
        }
    )
    assert policies.base.model_allowlist == ("small",)
    assert policies.base.rate == Rate(60.0)
    big = policies.resolve(_identity(("big",)))
    assert big.model_allowlist == ("small", "large")
    assert big.rate == Rate(600.0)
    plain = policies.resolve(None)
    assert plain.model_allowlist == ("small",)
    assert plain.rate == Rate(60.0)
