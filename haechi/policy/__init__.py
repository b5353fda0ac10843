# SPDX-License-Identifier: Apache-2.0
"""Policy: which action each detection type gets, for whom.

- :func:`build_policy` compiles presets, a default action, explicit actions and a privacy
  profile into a :class:`Policy`; every layer can only make actions stronger.
- :class:`PolicySet` adds named profiles and resolves the one in effect for an identity.
- :func:`list_privacy_profiles` / :func:`get_privacy_profile` describe the regional floors.
"""

from __future__ import annotations

from haechi.policy._build import Decision, Policy, build_policy, stronger, validate_action
from haechi.policy._presets import PRESETS, Preset, get_preset
from haechi.policy._privacy import (
    PRIVACY_PROFILES,
    PrivacyProfile,
    get_privacy_profile,
    list_privacy_profiles,
)
from haechi.policy._profiles import PolicySet, Rate, ResolvedPolicy

__all__ = [
    "PRESETS",
    "PRIVACY_PROFILES",
    "Decision",
    "Policy",
    "PolicySet",
    "Preset",
    "PrivacyProfile",
    "Rate",
    "ResolvedPolicy",
    "build_policy",
    "get_preset",
    "get_privacy_profile",
    "list_privacy_profiles",
    "stronger",
    "validate_action",
]
