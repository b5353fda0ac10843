# SPDX-License-Identifier: Apache-2.0
"""Validators: the second opinion a regex candidate needs before it becomes a finding.

A validator receives the matched text after NFKC folding and answers ``True`` or ``False``.
Where python-stdnum implements an identifier's algorithm (Luhn, IBAN, Verhoeff, ISO 7064
and most national numbers) it is used as is; the few validators written here are the ones
stdnum lacks (payment-card issuer ranges, Singapore NRIC, UK NINO) or whose stdnum version
is deliberately stricter than the compatible behaviour (US SSN, German Steuer-ID).

Validators never raise on odd input: malformed text simply fails.
"""

from __future__ import annotations

import hashlib
import importlib
import ipaddress
import re
import secrets
from collections.abc import Callable, Sequence
from typing import Final

import phonenumbers
from stdnum import luhn
from stdnum.iso7064 import mod_11_10
from stdnum.mx import rfc as _rfc

from haechi.detect.rule import Validator

__all__ = [
    "au_medicare",
    "card_number",
    "de_steuer_id",
    "es_dni_nie",
    "ipv4_address",
    "ipv6_address",
    "mx_rfc",
    "nl_bsn",
    "phone_in_regions",
    "phone_international",
    "sg_nric",
    "stdnum_check",
    "uk_nino",
    "us_ssn",
]

_NON_DIGITS: Final = re.compile(r"[^0-9]")


def _digits(text: str) -> str:
    return _NON_DIGITS.sub("", text)


def stdnum_check(module: str) -> Validator:
    """The ``is_valid`` of ``stdnum.<module>`` (imported once, when the rule is built)."""
    checker = importlib.import_module(f"stdnum.{module}")
    is_valid = checker.is_valid

    def validate(text: str) -> bool:
        return bool(is_valid(text))

    return validate


_nl_bsn = stdnum_check("nl.bsn")
_es_dni = stdnum_check("es.dni")
_es_nie = stdnum_check("es.nie")


# Issuer identification number ranges with the lengths each brand issues. A number is a card
# only when its prefix falls in one of these ranges *and* its length is one the brand uses,
# which rejects most Luhn-valid order numbers and timestamps. Rare lengths that collide with
# national identifiers are left out: 15-digit UATP numbers (they would swallow French NIRs)
# and 12-15 digit Maestro numbers (South African IDs are 13 Luhn-valid digits).
_IIN_RANGES: Final[tuple[tuple[int, int, frozenset[int]], ...]] = (
    (2200, 2204, frozenset(range(16, 20))),  # Mir
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (300, 305, frozenset(range(14, 20))),  # Diners Club
    (3095, 3095, frozenset(range(14, 20))),  # Diners Club
    (34, 34, frozenset({15})),  # American Express
    (36, 36, frozenset(range(14, 20))),  # Diners Club
    (3528, 3589, frozenset(range(16, 20))),  # JCB
    (37, 37, frozenset({15})),  # American Express
    (38, 39, frozenset(range(16, 20))),  # Diners Club
    (4, 4, frozenset({13, 16, 19})),  # Visa
    (50, 50, frozenset(range(16, 20))),  # Maestro
    (51, 55, frozenset({16})),  # Mastercard
    (56, 69, frozenset(range(16, 20))),  # Maestro, Discover, UnionPay, RuPay, ...
    (81, 82, frozenset(range(16, 20))),  # UnionPay, RuPay
    (9792, 9792, frozenset({16})),  # Troy
)


def card_number(text: str) -> bool:
    """Payment card: 13-19 digits, a known issuer range with that length, and Luhn."""
    digits = _digits(text)
    if not 13 <= len(digits) <= 19:
        return False
    for low, high, lengths in _IIN_RANGES:
        width = len(str(low))
        if low <= int(digits[:width]) <= high and len(digits) in lengths:
            return bool(luhn.is_valid(digits))
    return False


def us_ssn(text: str) -> bool:
    """US SSN ``DDD-DD-DDDD``: area not 000, 666 or 900+; group not 00; serial not 0000.

    The SSA ranges only; stdnum's list of publicised numbers is not applied, so documentation
    samples such as ``078-05-1120`` still count as SSNs (they are treated as leaked values).
    """
    digits = _digits(text)
    if len(digits) != 9:
        return False
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    return area not in (0, 666) and area < 900 and group != 0 and serial != 0


def de_steuer_id(text: str) -> bool:
    """German tax id: one digit repeated 2-3 times in the first ten, ISO 7064 MOD 11,10.

    Unlike stdnum, a leading zero is accepted (compatible behaviour; the BZSt does not issue
    them, but a value shaped like one is still treated as an identifier).
    """
    digits = re.sub(r"[\s/]", "", text)
    if len(digits) != 11 or not digits.isascii() or not digits.isdigit():
        return False
    counts = [digits[:10].count(d) for d in set(digits[:10])]
    repeated = [c for c in counts if c > 1]
    if len(repeated) != 1 or repeated[0] not in (2, 3):
        return False
    return bool(mod_11_10.is_valid(digits))


def nl_bsn(text: str) -> bool:
    """Dutch BSN: the 11-proef (stdnum), with the all-zero number rejected."""
    digits = re.sub(r"[\s.]", "", text)
    if len(digits) != 9 or set(digits) == {"0"}:
        return False
    return _nl_bsn(digits)


_NRIC_WEIGHTS: Final = (2, 7, 6, 5, 4, 3, 2)
_NRIC_TABLES: Final = {
    "S": "JZIHGFEDCBA",
    "T": "JZIHGFEDCBA",
    "F": "XWUTRQPNMLK",
    "G": "XWUTRQPNMLK",
    "M": "KLJNPQRTUWX",
}
_NRIC_OFFSET: Final = {"S": 0, "F": 0, "T": 4, "G": 4, "M": 3}


def sg_nric(text: str) -> bool:
    """Singapore NRIC/FIN: weighted sum of the 7 digits plus a series offset, check letter."""
    value = text.upper()
    if len(value) != 9 or value[0] not in _NRIC_TABLES or not value[1:8].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value[1:8], _NRIC_WEIGHTS, strict=True))
    total += _NRIC_OFFSET[value[0]]
    return _NRIC_TABLES[value[0]][total % 11] == value[8]


_NINO_BAD_FIRST: Final = frozenset("DFIQUV")
_NINO_BAD_SECOND: Final = frozenset("DFIOQUV")
_NINO_BAD_PREFIXES: Final = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def uk_nino(text: str) -> bool:
    """UK National Insurance number: prefix letter rules, 6 digits, suffix A-D (no checksum)."""
    value = re.sub(r"\s", "", text).upper()
    if len(value) != 9 or not value[2:8].isdigit() or value[8] not in "ABCD":
        return False
    first, second = value[0], value[1]
    if not (first.isalpha() and second.isalpha()) or not value[:2].isascii():
        return False
    if first in _NINO_BAD_FIRST or second in _NINO_BAD_SECOND:
        return False
    return value[:2] not in _NINO_BAD_PREFIXES


def es_dni_nie(text: str) -> bool:
    """Spanish DNI (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter), mod-23 letter."""
    value = re.sub(r"[\s-]", "", text).upper()
    if value[:1] in ("X", "Y", "Z"):
        return _es_nie(value)
    return _es_dni(value)


#: Verdicts a :class:`_Verdicts` keeps before it starts over.
_VERDICTS: Final = 4096


class _Verdicts:
    """Remembered libphonenumber verdicts, by a keyed digest of the number's text.

    libphonenumber is pure Python and spends tens of microseconds on one number, and the
    same numbers come back request after request (a chat client resends the conversation
    on every turn). The memo keeps a BLAKE2b digest under a key drawn when the process
    starts, never the number, and a verdict is a pure function of the text; at most
    :data:`_VERDICTS` are kept, and the memo is emptied when full.
    """

    __slots__ = ("_key", "_known")

    def __init__(self) -> None:
        self._key = secrets.token_bytes(16)
        self._known: dict[bytes, bool] = {}

    def verdict(self, text: str, check: Callable[[str], bool]) -> bool:
        """``check(text)``, computed once per text."""
        digest = hashlib.blake2b(
            text.encode("utf-8", "surrogatepass"), key=self._key, digest_size=16
        ).digest()
        known = self._known.get(digest)
        if known is None:
            known = check(text)
            if len(self._known) >= _VERDICTS:
                self._known.clear()
            self._known[digest] = known
        return known


_INTERNATIONAL: Final = _Verdicts()


def phone_international(text: str) -> bool:
    """A ``+``-prefixed number that libphonenumber accepts as a valid number."""
    return _INTERNATIONAL.verdict(text, _valid_international)


def _valid_international(text: str) -> bool:
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


def phone_in_regions(regions: Sequence[str]) -> Validator:
    """A validator accepting numbers valid in any of ``regions`` (or internationally)."""
    return _RegionPhone(tuple(regions))


class _RegionPhone:
    """:func:`phone_in_regions`: libphonenumber's verdict for a number written the way
    ``regions`` write it, trying each region in turn."""

    __slots__ = ("_regions", "_verdicts")

    def __init__(self, regions: tuple[str, ...]) -> None:
        self._regions = regions
        self._verdicts = _Verdicts()

    def __call__(self, text: str) -> bool:
        return self._verdicts.verdict(text, self._valid)

    def _valid(self, text: str) -> bool:
        for region in self._regions:
            try:
                number = phonenumbers.parse(text, region)
            except phonenumbers.NumberParseException:
                return False
            if phonenumbers.is_valid_number(number):
                return True
        return False

    def warm(self) -> None:
        """Load and compile what libphonenumber needs for these regions now (it does so on
        first use, which costs a request tens of milliseconds): validate an example number
        of every kind, written nationally, for each region."""
        for region in self._regions:
            for kind in _NUMBER_TYPES:
                example = phonenumbers.example_number_for_type(region, kind)
                if example is not None:
                    national = phonenumbers.format_number(
                        example, phonenumbers.PhoneNumberFormat.NATIONAL
                    )
                    self._valid(national)


#: Every kind of number libphonenumber has example numbers for.
_NUMBER_TYPES: Final = tuple(
    value
    for name, value in vars(phonenumbers.PhoneNumberType).items()
    if name.isupper() and isinstance(value, int)
)


def ipv4_address(text: str) -> bool:
    """A dotted-quad IPv4 address."""
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def ipv6_address(text: str) -> bool:
    """An IPv6 address with at least one digit (so hex words such as ``cafe::babe`` do not
    count) in full eight-group form or ``::``-compressed form."""
    address, _, zone = text.partition("%")
    if zone and not zone.isalnum():
        return False
    if not any(c.isdigit() for c in address):
        return False
    if "::" not in address and address.count(":") != 7 and "." not in address:
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def mx_rfc(text: str) -> bool:
    """Mexican RFC with its check digit (stdnum skips the check digit by default)."""
    try:
        _rfc.validate(text, validate_check_digits=True)
    except ValueError:
        return False
    return True


def au_medicare(text: str) -> bool:
    """Australian Medicare card: first digit 2-6, weights 1,3,7,9,1,3,7,9 mod 10 = 9th digit
    (stdnum has no Medicare module)."""
    digits = _digits(text)
    if len(digits) not in (10, 11) or digits[0] not in "23456":
        return False
    weights = (1, 3, 7, 9, 1, 3, 7, 9)
    total = sum(int(d) * w for d, w in zip(digits[:8], weights, strict=True))
    return total % 10 == int(digits[8])
