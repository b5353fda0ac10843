# SPDX-License-Identifier: Apache-2.0
"""The built-in catalogue in its fixed priority order, and the detector that provides it.

Order matters only for ties (two rules matching exactly the same characters): the earlier
rule names the finding. The order is:

1. email, Korean mobile phone, Korean RRN, payment card (the compatible head of the list);
2. secrets and credentials (``haechi.detect.catalog_secrets``);
3. US SSN and ITIN, IBAN;
4. keyword-gated national identifiers (a number right after "PESEL", "SIN", ... is named
   by its keyword, ahead of any bare rule of the same shape);
5. structured national identifiers, starting with the compatible ones (My Number, NIR,
   DNI/NIE, codice fiscale, NRIC, Aadhaar, Steuer-ID, BSN, NINO), then the rest;
6. phone numbers (international, North American, national formats, cue-gated);
7. IP addresses;
8. prompt-injection phrasing (responses only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Self

from haechi.detect.catalog_ids import CUED_ID_RULES, NATIONAL_ID_RULES, STRUCTURED_ID_RULES
from haechi.detect.catalog_injection import INJECTION_RULES
from haechi.detect.catalog_pii import (
    CARD_RULES,
    CONTACT_RULES,
    IBAN_RULES,
    NETWORK_RULES,
    PHONE_RULES,
    US_ID_RULES,
)
from haechi.detect.catalog_secrets import SECRET_RULES
from haechi.detect.rule import Rule

if TYPE_CHECKING:
    from haechi.providers import ProviderContext

__all__ = ["BuiltinDetector", "default_rules"]


def default_rules() -> list[Rule]:
    """Every built-in rule, in priority order."""
    return [
        *CONTACT_RULES,
        *NATIONAL_ID_RULES,
        *CARD_RULES,
        *SECRET_RULES,
        *US_ID_RULES,
        *IBAN_RULES,
        *CUED_ID_RULES,
        *STRUCTURED_ID_RULES,
        *PHONE_RULES,
        *NETWORK_RULES,
        *INJECTION_RULES,
    ]


class BuiltinDetector:
    """The ``builtin`` detector provider: contributes :func:`default_rules`."""

    name: ClassVar[str] = "builtin"

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        """The built-in catalogue needs no configuration."""
        return cls()

    def rules(self) -> list[Rule]:
        """The built-in catalogue."""
        return default_rules()
