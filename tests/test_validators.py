# SPDX-License-Identifier: Apache-2.0
"""Validators of the compatible catalogue: the documented accept and reject lists."""

from __future__ import annotations

import pytest

from haechi.detect import default_rules
from haechi.detect.validators import card_number, de_steuer_id, sg_nric, uk_nino, us_ssn

VALIDATORS = {rule.id: rule.validator for rule in default_rules() if rule.validator}

ACCEPT = [
    ("es-dni-nie", "12345678Z"),
    ("es-dni-nie", "X1234567L"),
    ("sg-nric", "S1234567D"),
    ("sg-nric", "F1234567N"),
    ("it-codice-fiscale", "RSSMRA85T10A562S"),
    ("in-aadhaar", "234567890124"),
    ("de-steuer-id", "02476291358"),
    ("nl-bsn", "111222333"),
    ("nl-bsn", "123456782"),
    ("fr-nir", "185057800604830"),
    ("jp-mynumber", "123456789018"),
    ("uk-nino", "AB123456C"),
    ("iban", "DE89370400440532013000"),
    ("us-ssn", "078-05-1120"),
    ("card-like", "4111111111111111"),
    ("card-like", "378282246310005"),
    ("card-like", "5555 5555 5555 4444"),
]

REJECT = [
    ("kr-rrn-like", "900101-1234567"),
    ("us-ssn", "666-12-3456"),
    ("us-ssn", "900-12-3456"),
    ("us-ssn", "123-00-4567"),
    ("us-ssn", "123-45-0000"),
    ("iban", "DE89370400440532013001"),
    ("jp-mynumber", "123456789010"),
    ("fr-nir", "185057800604831"),
    ("es-dni-nie", "12345678A"),
    ("uk-nino", "BG123456C"),
    ("uk-nino", "AO123456C"),
    ("uk-nino", "AB123456E"),
    ("it-codice-fiscale", "RSSMRA85T10A562X"),
    ("sg-nric", "S1234567A"),
    ("in-aadhaar", "234567890125"),
    ("in-aadhaar", "123456789012"),
    ("de-steuer-id", "02476291357"),
    ("nl-bsn", "123456789"),
    ("nl-bsn", "000000000"),
    ("card-like", "4111111111111112"),
    ("card-like", "7111111111111116"),
]


@pytest.mark.parametrize(("rule_id", "value"), ACCEPT)
def test_accepts(rule_id: str, value: str) -> None:
    assert VALIDATORS[rule_id](value) is True


@pytest.mark.parametrize(("rule_id", "value"), REJECT)
def test_rejects(rule_id: str, value: str) -> None:
    assert VALIDATORS[rule_id](value) is False


def test_ssn_needs_nine_digits() -> None:
    assert not us_ssn("078-05-112")
    assert us_ssn("078-05-1120")


def test_steuer_id_digit_structure() -> None:
    # Checksum-valid but with two repeated digits in the first ten.
    assert not de_steuer_id("11223456789")
    assert not de_steuer_id("0247629135")


def test_nric_series_offsets() -> None:
    assert sg_nric("T1234567J")
    assert sg_nric("G1234567X")
    assert not sg_nric("M1234567A")
    assert not sg_nric("X1234567D")


def test_nino_spaced_and_lowercase_are_normalised() -> None:
    assert uk_nino("AB 12 34 56 C")
    assert uk_nino("ab123456c")
    assert not uk_nino("DA123456C")


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4222222222222", True),  # Visa 13
        ("5105105105105100", True),  # Mastercard
        ("2223003122003222", True),  # Mastercard 2-series
        ("30569309025904", True),  # Diners 14
        ("3530111333300000", True),  # JCB
        ("6011000990139424", True),  # Discover
        ("378734493671000", True),  # Amex
        ("5105105105102", False),  # Mastercard has 16 digits only
        ("154085114594968", False),  # 15 digits starting with 1 (a French NIR shape)
        ("6912151003183", False),  # 13-digit Maestro range (a South African ID shape)
    ],
)
def test_card_issuer_ranges_and_lengths(number: str, valid: bool) -> None:
    from stdnum import luhn

    assert luhn.is_valid(number)  # only the issuer range and length decide here
    assert card_number(number) is valid
