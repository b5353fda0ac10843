# SPDX-License-Identifier: Apache-2.0
"""Contact, financial and network PII rules: email, phone numbers, payment cards, IBAN, IP
addresses, US SSN (dashed) and ITIN.

Phone numbers are confirmed with libphonenumber (``phonenumbers``). Numbers written with
``+`` are parsed internationally. Without ``+`` a number is only considered when its shape
pins the region down: the Korean mobile shape, the North American ``(415) 555-2671`` /
``415-555-2671`` shapes, a small set of national formats written with their usual separators
(GB, DE, FR, JP, BR, AU, IN, CN), or a ``tel:`` / ``phone:`` style cue right before it. Bare
digit runs (``4155552671``, epoch seconds, UUID tails) are never phone numbers.

Patterns are compiled with ASCII semantics: ``\\w`` and ``\\b`` consider only ASCII letters,
so Hangul or kana glued to a number do not hide it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Final

from stdnum import numdb

from haechi.detect.patterns import HEAD_GROUP, NOT_INSIDE_NUMBER, headed, lead
from haechi.detect.rule import Rule
from haechi.detect.validators import (
    card_number,
    ipv4_address,
    ipv6_address,
    phone_in_regions,
    phone_international,
    stdnum_check,
    us_ssn,
)

__all__ = [
    "CARD_RULES",
    "CONTACT_RULES",
    "IBAN_RULES",
    "NETWORK_RULES",
    "PHONE_RULES",
    "US_ID_RULES",
]

#: Prefilter for rules that need at least one digit.
_DIGITS: Final = tuple("0123456789")

CONTACT_RULES: Final[tuple[Rule, ...]] = (
    Rule(
        id="email",
        type="email",
        pattern=(
            r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@"
            r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
            r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![A-Za-z])"
        ),
        confidence=0.95,
        description="Email address (local part @ domain with a letter TLD).",
        prefilter=("@",),
    ),
    Rule(
        id="kr-phone",
        type="phone",
        pattern=(
            lead("[+0]", r"[\w+-]")
            + r"(?:(?<=\+)82[ -]?0?|(?<=0))1[016789][-.\s]?[0-9]{3,4}[-.\s]?[0-9]{4}(?![\w-])"
        ),
        confidence=0.9,
        description="Korean mobile number (010-1234-5678, +82 10 1234 5678, 01012345678); "
        "a leading 0 or +82 is required.",
        validator=phone_in_regions(("KR",)),
        validator_name="phonenumbers:KR",
        prefilter=_DIGITS,
        min_digits=9,
    ),
)


def _iban_pattern() -> str:
    """One alternative per BBAN length, listing the countries that use it.

    Knowing each country's exact length keeps a following word (``... 7034 plus``) from being
    swallowed into the candidate, which would then fail the checksum as a whole.
    """
    by_length: dict[int, list[str]] = defaultdict(list)
    for _width, country, _high, properties, _children in numdb.get("iban").prefixes:
        length = sum(int(part) for part in re.findall(r"([0-9]+)!", properties["bban"]))
        by_length[length].append(country)
    alternatives = [
        f"(?<=(?i:{'|'.join(sorted(countries))})[0-9]{{2}})(?:[ ]?[A-Za-z0-9]){{{length}}}"
        for length, countries in sorted(by_length.items())
    ]
    return (
        headed("[A-Za-z]{2}", "[A-Za-z0-9]")
        + "[0-9](?:"
        + "|".join(alternatives)
        + r")(?![A-Za-z0-9])"
    )


CARD_RULES: Final[tuple[Rule, ...]] = (
    Rule(
        id="card-like",
        type="card",
        pattern=(
            # The first digit is consumed before the look-behind so the regex engine can skip
            # quickly to digits. A grouped number must not continue another digit group.
            # Groups are split by one kind of separator: spaces, dashes, dots or underscores
            # (a numeric literal in code); not tabs or line breaks, which split the cells of
            # a table of numbers.
            "[0-9]" + NOT_INSIDE_NUMBER + r"(?:[0-9]{12,18}(?![0-9])"
            r"|(?<![0-9][ ._-][0-9])[0-9]{3}(?P<sep>[ ._-])[0-9]{4}(?:(?P=sep)[0-9]{4}){1,2}"
            r"(?:(?P=sep)[0-9]{1,4})?(?![0-9])(?!(?P=sep)[0-9])"
            r"|(?<![0-9][ ._-][0-9])[0-9]{3}(?P<amex>[ ._-])[0-9]{6}(?P=amex)[0-9]{4,5}"
            r"(?![0-9])(?!(?P=amex)[0-9]))"
        ),
        confidence=0.75,
        description=(
            "Payment card number, contiguous or grouped with spaces, dashes, dots or "
            "underscores; issuer range, brand length and Luhn. Longer digit runs never yield "
            "a partial card."
        ),
        validator=card_number,
        validator_name="luhn+iin",
        prefilter=_DIGITS,
        min_digits=13,
        sub_run_digits=13,
        sub_run_joiners=" ._-",
    ),
)

IBAN_RULES: Final[tuple[Rule, ...]] = (
    Rule(
        id="iban",
        type="iban",
        pattern=_iban_pattern(),
        confidence=0.9,
        description="IBAN, electronic or print form (groups of four, any case); per-country "
        "length and structure, mod 97.",
        validator=stdnum_check("iban"),
        validator_name="stdnum:iban",
        prefilter=_DIGITS,
        min_digits=2,
    ),
)

US_ID_RULES: Final[tuple[Rule, ...]] = (
    Rule(
        id="us-ssn",
        type="us_ssn",
        pattern=lead("[0-8]", r"[\w-]") + r"[0-9]{2}-[0-9]{2}-[0-9]{4}(?![\w-])",
        confidence=0.85,
        description="US Social Security number written DDD-DD-DDDD (SSA ranges).",
        validator=us_ssn,
        validator_name="ssa-ranges",
        prefilter=_DIGITS,
        min_digits=9,
    ),
    Rule(
        id="us-itin",
        type="us_itin",
        pattern=lead("9", r"[\w-]") + r"[0-9]{2}-[0-9]{2}-[0-9]{4}(?![\w-])",
        confidence=0.85,
        description="US Individual Taxpayer Identification Number (9DD-DD-DDDD, ITIN groups).",
        validator=stdnum_check("us.itin"),
        validator_name="stdnum:us.itin",
        prefilter=_DIGITS,
        min_digits=9,
    ),
)

# A national-format number must not continue a longer number on either side.
_NOT_BEFORE_NUMBER: Final = r"(?![\w-]|[ .][0-9])"


def _national_phone(
    region: str, name: str, first: str, rest: str, example: str, digits: int
) -> Rule:
    """A phone rule for one region; ``first`` is the class of the number's first character."""
    pattern = lead(first, r"[\w+.-]") + f"(?<![0-9][ ./-]{first})" + rest + _NOT_BEFORE_NUMBER
    return Rule(
        id=f"{region.lower()}-phone",
        type="phone",
        pattern=pattern,
        confidence=0.7,
        description=f"{name} phone number in national format with separators ({example}).",
        validator=phone_in_regions((region,)),
        validator_name=f"phonenumbers:{region}",
        prefilter=_DIGITS,
        min_digits=digits,
    )


_CUE_REGIONS: Final = (
    "US", "GB", "DE", "FR", "KR", "JP", "IN", "BR", "AU", "CN", "CA", "ES", "IT", "MX", "NL",
)  # fmt: skip

PHONE_RULES: Final[tuple[Rule, ...]] = (
    Rule(
        id="e164-phone",
        type="phone",
        pattern=lead(r"\+", r"[\w+]") + r"[1-9](?:[ .-]?\(?[0-9]\)?){5,16}(?![\w-]|[ .][0-9])",
        confidence=0.85,
        description="International phone number written with + (any country).",
        validator=phone_international,
        validator_name="phonenumbers:international",
        prefilter=("+",),
        min_digits=2,
    ),
    Rule(
        id="us-phone",
        type="phone",
        pattern=(
            lead("[(2-9]", r"[\w+-]")
            + r"(?:(?<=\()[2-9][0-9]{2}\)[ ]?|(?<=[2-9])[0-9]{2}[-.])[2-9][0-9]{2}[-.][0-9]{4}"
            r"(?![\w-])"
        ),
        confidence=0.75,
        description="North American number written (415) 555-2671 or 415-555-2671.",
        validator=phone_in_regions(("US",)),
        validator_name="phonenumbers:US",
        prefilter=_DIGITS,
        min_digits=10,
    ),
    _national_phone(
        "GB", "UK", "0", r"[1-9][0-9]{1,3}[ -][0-9]{3,4}[ -]?[0-9]{3,4}", "020 7946 0958", 9
    ),
    _national_phone(
        "DE", "German", "0", r"[1-9][0-9]{1,4}[ /-][0-9]{3,8}(?:-[0-9]{1,5})?", "030 12345678", 6
    ),
    _national_phone("FR", "French", "0", r"[1-9](?:[ .-][0-9]{2}){4}", "01 23 45 67 89", 10),
    _national_phone("JP", "Japanese", "0", r"[0-9]{1,4}-[0-9]{1,4}-[0-9]{4}", "03-1234-5678", 7),
    _national_phone(
        "BR", "Brazilian", r"\(", r"[1-9][0-9]\)[ ]?9?[0-9]{4}-[0-9]{4}", "(11) 91234-5678", 10
    ),
    _national_phone(
        "AU",
        "Australian",
        "[(0]",
        r"(?:(?<=\()0[2378]\)[ ]?[0-9]{4}[ -]?[0-9]{4}|(?<=0)4[0-9]{2}[ -][0-9]{3}[ -][0-9]{3})",
        "(02) 9876 5432",
        10,
    ),
    _national_phone(
        "IN", "Indian", "[06-9]", r"(?:(?<=0)[6-9])?[0-9]{4}[ -][0-9]{5}", "98765 43210", 10
    ),
    _national_phone(
        "CN", "Chinese", "1", r"[3-9][0-9][ -][0-9]{4}[ -][0-9]{4}", "138 0013 8000", 11
    ),
    Rule(
        id="phone-context",
        type="phone",
        pattern=(
            # The cue word is found from its first letter, then completed case-insensitively.
            lead("[CcFfHhMmPpTtWw]", "[A-Za-z0-9]")
            + r"(?i:(?<=t)(?:el(?:ephone|efon)?|\u00e9l\u00e9phone)|(?<=p)hone|(?<=m)obile"
            r"|(?<=c)ell|(?<=f)ax|(?<=h)andy|(?<=w)hatsapp)(?![A-Za-z])"
            r"[.:]?[ \t]*(?i:no\.?|number|nr\.?|#)?[ \t]*[:.]?[ \t]*"
            r"(?P<value>\+?\(?[0-9][0-9 ().\-]{5,18}[0-9])(?![\w-]|[ .][0-9])"
        ),
        confidence=0.8,
        description="Phone number right after a tel:/phone:/mobile: cue, valid in a common "
        "region (US, GB, DE, FR, KR, JP, IN, BR, AU, CN, CA, ES, IT, MX, NL).",
        validator=phone_in_regions(_CUE_REGIONS),
        validator_name="phonenumbers:common-regions",
        prefilter=("tel", "phone", "mobile", "cell", "fax", "handy", "whatsapp", "t\u00e9l"),
        min_digits=2,
        # Every match starts at its cue word, and "tel" occurs in "tell", "hotel", ...
        anchored=True,
    ),
)

# Words after which a dotted quad is a version or section number, not an address. The
# look-behinds run after the first digit has been consumed, hence the trailing ``[0-9]``.
_NOT_A_VERSION: Final = "".join(
    rf"(?<!\b{re.escape(word)}[0-9])"
    for word in (
        "version ", "Version ", "VERSION ", "version: ", "Version: ", "ver ", "ver. ", "Ver. ",
        "release ", "Release ", "section ", "Section ", "chapter ", "Chapter ", "step ",
        "Step ",
    )
) + r"(?<!\u00a7 [0-9])(?<!\u00a7[0-9])"  # fmt: skip

NETWORK_RULES: Final[tuple[Rule, ...]] = (
    Rule(
        id="ipv4-address",
        type="ip_address",
        pattern=(
            lead("[0-9]", r"[\w.]")
            + r"(?=[0-9]{0,2}\.[0-9]{1,3}\.)"
            + _NOT_A_VERSION
            + r"[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?!\.?\w)"
        ),
        confidence=0.75,
        description="IPv4 address, octets up to 255 (not a v-prefixed, 'version'- or "
        "'section'-cued dotted number).",
        validator=ipv4_address,
        validator_name="ipaddress",
        prefilter=_DIGITS,
        min_digits=4,
    ),
    Rule(
        id="ipv6-address",
        type="ip_address",
        pattern=(
            lead("[0-9A-Fa-f:]", r"[\w:.]")
            + r"(?:(?<=:)(?=:)|(?=[0-9A-Fa-f]{0,3}(?::[0-9A-Fa-f]{1,4}){0,6}::))[0-9A-Fa-f:]{0,38}"
            r"(?:(?<=:)[0-9]{1,3}(?:\.[0-9]{1,3}){3})?(?:%[0-9A-Za-z]+)?(?![\w:]|\.[0-9])"
        ),
        confidence=0.8,
        description="IPv6 address in ::-compressed form, with at least one digit.",
        validator=ipv6_address,
        validator_name="ipaddress",
        prefilter=("::",),
        min_digits=1,
    ),
    Rule(
        id="ipv6-address-full",
        type="ip_address",
        # The match starts at the first colon (hex letters are everywhere in text, colons
        # are not); the first group is one of four fixed-width heads looking back from it.
        # The look-ahead repeats what must follow, so that a colon in prose or code fails
        # before the heads are tried.
        pattern=(
            ":(?=[0-9A-Fa-f]{1,4}:)(?:"
            + "|".join(
                f"(?<=(?<![\\w:.])(?P<{HEAD_GROUP}{width}>[0-9A-Fa-f]{{{width}}}):)"
                for width in (4, 3, 2, 1)
            )
            + r")[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){4}"
            r"(?::[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|:[0-9]{1,3}(?:\.[0-9]{1,3}){3})"
            r"(?:%[0-9A-Za-z]+)?(?![\w:]|\.[0-9])"
        ),
        confidence=0.8,
        description="IPv6 address written out in full (eight groups), with at least one digit.",
        validator=ipv6_address,
        validator_name="ipaddress",
        prefilter=(":",),
        min_digits=1,
    ),
)
