# SPDX-License-Identifier: Apache-2.0
"""Policy compilation: presets, strengthen-only merges, conflicts and privacy profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from haechi.config import PRIVACY_PROFILE_IDS
from haechi.detect import default_rules
from haechi.errors import ConfigError
from haechi.models import ACTION_STRENGTH, Detection
from haechi.policy import (
    PRESETS,
    PRIVACY_PROFILES,
    build_policy,
    get_privacy_profile,
    list_privacy_profiles,
)


def _detection(detection_type: str) -> Detection:
    return Detection(detection_type, f"{detection_type}-rule", (), "value", 0, 1, 0.9, "x")


def test_the_shipped_default_policy() -> None:
    policy = build_policy(
        presets=["korean-pii", "secrets-only", "llm-redact"],
        actions={"card": "block"},
    )
    assert policy.default_action == "redact"
    assert dict(policy.actions) == {
        "kr_rrn": "block",
        "phone": "mask",
        "email": "redact",
        "api_key": "block",
        "secret": "block",
        "card": "block",
        "injection": "allow",
    }
    assert policy.action_for("us_ssn") == "redact"
    decision = policy.decide(_detection("phone"))
    assert (decision.action, decision.reason) == ("mask", "matched:phone-rule")
    assert policy.warnings == ()


def test_every_preset_of_the_reference_exists() -> None:
    assert set(PRESETS) == {
        "llm-redact",
        "korean-pii",
        "secrets-only",
        "strict-block",
        "local-only",
        "mcp-basic",
        "local-inference",
    }
    assert dict(PRESETS["local-inference"].actions)["email"] == "tokenize"
    assert PRESETS["strict-block"].default_action == "block"
    assert not PRESETS["local-only"].actions


def test_unknown_preset_and_invalid_action_are_errors() -> None:
    with pytest.raises(ConfigError, match="Unknown policy preset"):
        build_policy(presets=["no-such-preset"])
    with pytest.raises(ConfigError, match="invalid action"):
        build_policy(actions={"email": "shred"})
    with pytest.raises(ConfigError, match="defaultAction"):
        build_policy(default_action="shred")


def test_an_explicit_action_weaker_than_a_preset_is_a_conflict() -> None:
    with pytest.raises(ConfigError, match="Policy action conflict for api_key") as caught:
        build_policy(presets=["secrets-only"], actions={"api_key": "allow"})
    assert "secrets-only" in str(caught.value)


def test_allow_unsafe_overrides_keeps_the_stronger_action_and_says_so() -> None:
    policy = build_policy(
        presets=["secrets-only"], actions={"api_key": "allow"}, allow_unsafe_overrides=True
    )
    assert policy.action_for("api_key") == "block"
    (warning,) = policy.warnings
    assert "api_key" in warning
    assert "keeps block" in warning


def test_equal_strength_explicit_actions_replace_preset_ones() -> None:
    policy = build_policy(presets=["llm-redact"], actions={"phone": "redact", "email": "mask"})
    assert policy.action_for("phone") == "redact"
    assert policy.action_for("email") == "mask"


def test_presets_never_weaken_each_other_whatever_their_order() -> None:
    # The reference let a later preset overwrite the default action: strict-block then
    # llm-redact ended as redact.
    for presets in (["strict-block", "llm-redact"], ["llm-redact", "strict-block"]):
        assert build_policy(presets=presets).default_action == "block"
    for presets in (["local-inference", "llm-redact"], ["llm-redact", "local-inference"]):
        assert build_policy(presets=presets).action_for("email") == "tokenize"


def test_a_preset_default_covers_the_types_other_presets_name() -> None:
    # strict-block alone blocks e-mail addresses; listing llm-redact (e-mail redact, phone
    # mask) or the default presets next to it must not bring them down.
    for presets in (
        ["strict-block", "llm-redact"],
        ["llm-redact", "strict-block"],
        ["korean-pii", "secrets-only", "llm-redact", "strict-block"],
    ):
        policy = build_policy(presets=presets)
        for detection_type in ("email", "phone", "kr_rrn", "api_key", "iban"):
            assert policy.action_for(detection_type) == "block", (presets, detection_type)
        assert policy.action_for("injection") == "allow"
    # An explicit entry still sets its type under a preset's default, as with strict-block
    # alone.
    for presets in (["strict-block"], ["strict-block", "llm-redact"]):
        policy = build_policy(presets=presets, actions={"email": "redact"})
        assert policy.action_for("email") == "redact"
        assert policy.action_for("phone") == "block"


def test_a_preset_never_lowers_an_explicit_default_action() -> None:
    assert build_policy(presets=["llm-redact"], default_action="block").default_action == "block"
    assert build_policy(presets=["llm-redact"], default_action="allow").default_action == "redact"


def test_injection_is_allowed_by_default_but_can_be_raised() -> None:
    assert build_policy(presets=["strict-block"]).action_for("injection") == "allow"
    assert build_policy(actions={"injection": "block"}).action_for("injection") == "block"


def test_a_privacy_profile_raises_weaker_actions_only() -> None:
    policy = build_policy(
        presets=["llm-redact"],
        actions={"sg_nric": "encrypt", "in_aadhaar": "block", "email": "encrypt"},
        privacy_profile="asia-pdpa",
    )
    assert policy.action_for("sg_nric") == "block"  # encrypt raised to the profile's block
    assert policy.action_for("in_aadhaar") == "block"
    assert policy.action_for("email") == "encrypt"  # stronger than the profile's redact
    assert policy.action_for("kr_rrn") == "block"  # unset type: the profile applies
    assert policy.privacy_profile == "asia-pdpa"


def test_a_privacy_profile_never_lowers_the_default_action() -> None:
    policy = build_policy(presets=["strict-block"], privacy_profile="eu-gdpr")
    assert policy.action_for("email") == "block"
    assert policy.action_for("phone") == "block"


def test_eu_gdpr_tokenizes_email() -> None:
    policy = build_policy(presets=["llm-redact"], privacy_profile="eu-gdpr")
    assert policy.action_for("email") == "tokenize"
    assert policy.action_for("uk_nino") == "block"


@pytest.mark.parametrize("profile_id", PRIVACY_PROFILE_IDS)
def test_every_profile_blocks_credentials_and_cards(profile_id: str) -> None:
    profile = get_privacy_profile(profile_id)
    for detection_type in ("secret", "api_key", "card", "jp_mynumber"):
        assert profile.actions[detection_type] == "block"
    assert all(action in ACTION_STRENGTH for action in profile.actions.values())


def test_each_region_blocks_its_own_national_identifiers() -> None:
    def blocked(profile_id: str) -> set[str]:
        actions = get_privacy_profile(profile_id).actions
        return {name for name, action in actions.items() if action == "block"}

    assert "kr_rrn" in blocked("kr-pipa")
    assert "kr_rrn" not in blocked("us-general")
    assert {"us_ssn", "us_itin"} <= blocked("us-general")
    reference_eu = {"fr_nir", "es_dni", "it_codice_fiscale", "de_steuer_id", "nl_bsn"}
    assert reference_eu | {"uk_nino", "pl_pesel", "se_personnummer", "ch_ahv"} <= blocked("eu-gdpr")
    assert reference_eu | {"sg_nric", "in_aadhaar", "cn_ric", "my_nric"} <= blocked("asia-pdpa")
    assert "uk_nino" not in blocked("asia-pdpa")
    assert "br_cpf" not in blocked("eu-gdpr")


def test_every_profile_type_is_a_detected_type() -> None:
    detected = {rule.type for rule in default_rules()}
    for profile in PRIVACY_PROFILES.values():
        assert set(profile.actions) <= detected, profile.id


def _privacy_table() -> str:
    ids = list(PRIVACY_PROFILES)
    types = sorted({name for profile in PRIVACY_PROFILES.values() for name in profile.actions})
    lines = [
        "| type | " + " | ".join(f"`{profile_id}`" for profile_id in ids) + " |",
        "|---|" + "---|" * len(ids),
    ]
    for name in types:
        cells = [PRIVACY_PROFILES[profile_id].actions.get(name, "-") for profile_id in ids]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def test_the_policy_guide_lists_every_profile_action() -> None:
    text = (Path(__file__).parent.parent / "docs" / "policy.md").read_text("utf-8")
    begin = "<!-- BEGIN PRIVACY PROFILES -->\n"
    end = "<!-- END PRIVACY PROFILES -->"
    documented = text[text.index(begin) + len(begin) : text.index(end)]
    assert documented == _privacy_table()


def test_profile_listing_and_lookup() -> None:
    listed = list_privacy_profiles()
    assert [profile["id"] for profile in listed] == list(PRIVACY_PROFILE_IDS)
    listed[0]["actions"]["email"] = "allow"  # type: ignore[index]
    assert get_privacy_profile(str(listed[0]["id"])).actions["email"] != "allow"
    us = next(profile for profile in listed if profile["id"] == "us-general")
    assert us["transfer"] == {"requiresAssessment": False, "note": us["transfer"]["note"]}  # type: ignore[index]
    with pytest.raises(ConfigError, match="Unknown privacy profile"):
        get_privacy_profile("mars-law")
