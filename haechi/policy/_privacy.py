# SPDX-License-Identifier: Apache-2.0
"""Regional privacy profiles (``privacy.profile``): per-type minimum actions for a region.

A profile is a floor, not a replacement: applied to a policy it raises every type whose
action is weaker than the profile's and leaves stronger choices alone. Credentials and cards
are blocked in every region; each region blocks its own national identifiers (and the
neighbouring ones its rules cover). The region, regulations and transfer notes are
descriptive metadata that ``haechi status`` shows; nothing enforces them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from haechi.errors import ConfigError
from haechi.models import Action

__all__ = ["PRIVACY_PROFILES", "PrivacyProfile", "get_privacy_profile", "list_privacy_profiles"]


@dataclass(frozen=True, slots=True)
class PrivacyProfile:
    """One regional profile."""

    id: str
    region: str
    regulations: tuple[str, ...]
    requires_assessment: bool
    transfer_note: str
    actions: Mapping[str, Action]

    def to_json(self) -> dict[str, object]:
        """The JSON shape ``haechi status`` and the library listing use."""
        return {
            "id": self.id,
            "region": self.region,
            "regulations": list(self.regulations),
            "transfer": {
                "requiresAssessment": self.requires_assessment,
                "note": self.transfer_note,
            },
            "actions": dict(self.actions),
        }


def _blocked(*types: str) -> dict[str, Action]:
    return dict.fromkeys(types, "block")


#: Blocked in every region: credentials, payment cards, and Japan's My Number (its use is
#: restricted by law wherever a Japanese record travels).
_EVERYWHERE: Final = _blocked("card", "api_key", "secret", "jp_mynumber")
_CONTACT: Final[dict[str, Action]] = {"email": "redact", "phone": "mask"}

# National identifiers by region. Each region's profile blocks its own list. The EU and
# Asia-Pacific lists start from the reference system's (which also covered Korean and several
# European numbers in both) and add every identifier of the region haechi detects.
_KOREA: Final = ("kr_rrn",)
_EUROPE: Final = (
    "kr_rrn",
    "fr_nir",
    "es_dni",
    "it_codice_fiscale",
    "de_steuer_id",
    "nl_bsn",
    "uk_nino",
    "gb_nhs",
    "at_svnr",
    "be_nn",
    "bg_egn",
    "ch_ahv",
    "cz_rc",
    "dk_cpr",
    "ee_ik",
    "fi_hetu",
    "gr_amka",
    "hr_oib",
    "ie_pps",
    "is_kennitala",
    "lt_asmens_kodas",
    "no_fnr",
    "pl_pesel",
    "pt_nif",
    "ro_cnp",
    "se_personnummer",
    "si_emso",
)
_ASIA: Final = (
    "kr_rrn",
    "fr_nir",
    "es_dni",
    "it_codice_fiscale",
    "de_steuer_id",
    "nl_bsn",
    "sg_nric",
    "in_aadhaar",
    "in_pan",
    "my_nric",
    "th_pin",
    "cn_ric",
    "au_tfn",
    "au_medicare",
    "nz_ird",
)
_US: Final = ("us_ssn", "us_itin")
_JAPAN: Final = ("kr_rrn",)


def _profile(
    profile_id: str,
    region: str,
    regulations: tuple[str, ...],
    *,
    identifiers: tuple[str, ...],
    contact: Mapping[str, Action] = _CONTACT,
    requires_assessment: bool = True,
    note: str,
) -> PrivacyProfile:
    actions = {**contact, **_EVERYWHERE, **_blocked(*identifiers)}
    return PrivacyProfile(
        profile_id,
        region,
        regulations,
        requires_assessment,
        note,
        MappingProxyType(actions),
    )


#: Every profile by id.
PRIVACY_PROFILES: Final[Mapping[str, PrivacyProfile]] = MappingProxyType(
    {
        profile.id: profile
        for profile in (
            _profile(
                "kr-pipa",
                "KR",
                ("PIPA",),
                identifiers=_KOREA,
                note="Cross-border transfer of personal information needs consent or another "
                "lawful basis; resident registration numbers may not leave in clear.",
            ),
            _profile(
                "eu-gdpr",
                "EU",
                ("GDPR", "UK GDPR", "revFADP (CH)"),
                identifiers=_EUROPE,
                contact={"email": "tokenize", "phone": "mask"},
                note="Transfers outside the EEA need an adequacy decision or safeguards; "
                "pseudonymise e-mail addresses so replies can be re-identified locally.",
            ),
            _profile(
                "asia-pdpa",
                "ASIA",
                ("PDPA (SG, MY, TH)", "DPDP (IN)", "PIPL (CN)", "Privacy Act (AU, NZ)"),
                identifiers=_ASIA,
                note="Check the destination's comparable-protection rules before transfer.",
            ),
            _profile(
                "us-general",
                "US",
                ("CCPA/CPRA", "GLBA", "HIPAA"),
                identifiers=_US,
                requires_assessment=False,
                note="No general transfer assessment; sector rules may still apply.",
            ),
            _profile(
                "jp-appi",
                "JP",
                ("APPI", "My Number Act"),
                identifiers=_JAPAN,
                note="Transfers to third parties abroad need consent or an equivalent-standard "
                "recipient.",
            ),
        )
    }
)


def list_privacy_profiles() -> list[dict[str, object]]:
    """Every profile as JSON (fresh copies: callers may modify them)."""
    return [profile.to_json() for profile in PRIVACY_PROFILES.values()]


def get_privacy_profile(profile_id: str) -> PrivacyProfile:
    """Return the profile ``profile_id`` or raise :class:`ConfigError`."""
    try:
        return PRIVACY_PROFILES[profile_id]
    except KeyError:
        known = ", ".join(PRIVACY_PROFILES)
        raise ConfigError(f"Unknown privacy profile {profile_id!r} (known: {known})") from None
