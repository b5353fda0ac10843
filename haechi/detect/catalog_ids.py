# SPDX-License-Identifier: Apache-2.0
"""National, tax and health identifiers of 45 countries.

How each format is matched depends on how much its shape says on its own:

* **Structured formats** (letters in fixed places, dates, separators the issuer prints, such
  as ``123.456.789-09`` for a Brazilian CPF or ``811218-9876`` ... ) match bare, anywhere.
* **Bare digit runs with a strong check** (Korean RRN, Japanese My Number, Aadhaar, German
  Steuer-ID, Dutch BSN, Chinese RIC, South African ID) match bare too, keep the compatible
  confidence and, unless the type is hard-block by design, stay suppressible by the
  precision dials.
* **Bare digit runs with a weak or no check** (Polish PESEL, Canadian SIN, Portuguese NIF,
  Norwegian and Danish numbers, ...) only match right after a keyword naming them (``PESEL:``,
  ``SIN #``, ``NIF``...): a random 9- or 11-digit run passes such checks far too often (1 in
  10, 1 in 11) for a bare match to mean anything. These rules report only the number (the
  ``value`` group), never the keyword.

Every validator comes from python-stdnum except where noted in ``validators.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from haechi.detect.patterns import HEAD_GROUP, NOT_INSIDE_NUMBER, headed, lead
from haechi.detect.rule import Rule, Validator
from haechi.detect.validators import (
    au_medicare,
    de_steuer_id,
    es_dni_nie,
    mx_rfc,
    nl_bsn,
    sg_nric,
    stdnum_check,
    uk_nino,
    us_ssn,
)

__all__ = ["CUED_ID_RULES", "NATIONAL_ID_RULES", "STRUCTURED_ID_RULES"]

_DIGITS: Final = tuple("0123456789")
# Not glued to a longer number or word on either side.
_BEFORE: Final = r"(?<![\w-])"
_AFTER: Final = r"(?![\w-])"
# The gap allowed between a keyword and its number: punctuation and a few words, one line.
_GAP: Final = r"[^0-9\n]{0,24}?"
# The two letters a UK National Insurance number may start with.
_NINO_PREFIX: Final = "[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"


def _compact_or_spaced(first: str, compact: str, spaced: str) -> str:
    """A bare digit run, or its space-grouped print form that continues no other group.

    ``first`` is the class of the first digit; ``compact`` and ``spaced`` follow it.
    """
    return (
        lead(first, "[0-9-]")
        + rf"(?:{compact}(?![0-9-])|(?<![0-9][ ][0-9]){spaced}(?![0-9-]|[ ][0-9]))"
    )


def _rule(
    rule_id: str,
    rule_type: str,
    pattern: str,
    description: str,
    validator: Validator | str,
    *,
    confidence: float,
    min_digits: int,
    prefilter: tuple[str, ...] = _DIGITS,
    ignore_case: bool = False,
    sub_run_digits: int = 0,
    sub_run_joiners: str = "",
) -> Rule:
    """A rule whose validator is a function or the name of a stdnum module."""
    if isinstance(validator, str):
        check, name = stdnum_check(validator), f"stdnum:{validator}"
    else:
        check, name = validator, validator.__name__.strip("_").replace("_", "-")
    return Rule(
        id=rule_id,
        type=rule_type,
        pattern=pattern,
        confidence=confidence,
        description=description,
        validator=check,
        validator_name=name,
        prefilter=prefilter,
        ignore_case=ignore_case,
        min_digits=min_digits,
        sub_run_digits=sub_run_digits,
        sub_run_joiners=sub_run_joiners,
    )


def _keyword_pattern(keywords: Sequence[str], *, case_sensitive: bool) -> str:
    """Alternation of ``keywords`` as whole words.

    ASCII-only matching ignores case only for ASCII letters, so other scripts list their
    upper- and lower-case spellings explicitly.
    """
    words = []
    for word in keywords:
        if word.isascii() or case_sensitive:
            words.append(re.escape(word))
        else:
            words.append(f"(?:{re.escape(word.upper())}|{re.escape(word.lower())})")
    body = "|".join(words)
    if not case_sensitive:
        body = f"(?i:{body})"
    return rf"(?<![A-Za-z0-9])(?:{body})(?![A-Za-z])"


def _cued(
    rule_id: str,
    rule_type: str,
    keywords: Sequence[str],
    value: str,
    description: str,
    validator: Validator | str,
    *,
    min_digits: int,
    confidence: float = 0.85,
    case_sensitive: bool = False,
) -> Rule:
    """A context-gated rule: ``value`` must follow one of ``keywords`` on the same line.

    Acronyms that are also everyday words (``RUN``, ``NIT``, ``SIN``, ``INN``) are matched
    case-sensitively so ordinary prose does not open the gate.
    """
    return _rule(
        rule_id,
        rule_type,
        _keyword_pattern(keywords, case_sensitive=case_sensitive)
        + _GAP
        + _BEFORE
        + f"(?P<value>{value})"
        + _AFTER,
        description + f" Only after a keyword ({', '.join(keywords)}).",
        validator,
        confidence=confidence,
        min_digits=min_digits,
        prefilter=tuple(word.lower() for word in keywords),
    )


#: The identifiers the compatible catalogue has always had, in its order.
NATIONAL_ID_RULES: Final[tuple[Rule, ...]] = (
    _rule(
        "kr-rrn-like",
        "kr_rrn",
        lead("[0-9]", r"\w") + r"[0-9]{5}[-\s]?[1-8][0-9]{6}\b",
        "Korean resident registration number (birth date, checksum).",
        "kr.rrn",
        confidence=0.85,
        min_digits=13,
        sub_run_digits=13,
    ),
)

STRUCTURED_ID_RULES: Final[tuple[Rule, ...]] = (
    _rule(
        "jp-mynumber",
        "jp_mynumber",
        _compact_or_spaced("[0-9]", "[0-9]{11}", "[0-9]{3} [0-9]{4} [0-9]{4}"),
        "Japanese Individual Number (My Number), 12 digits, mod-11 check digit.",
        "jp.in_",
        confidence=0.9,
        min_digits=12,
    ),
    _rule(
        "fr-nir",
        "fr_nir",
        lead("[12]", r"[\w-]")
        + r" ?[0-9]{2} ?(?:0[1-9]|1[0-2]|20) ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}"
        + _AFTER,
        "French social security number (NIR), compact or spaced, mod-97 key.",
        "fr.nir",
        confidence=0.9,
        min_digits=8,
        # Fifteen digits in one run; the Corsican 2A/2B splits a number into two runs.
        sub_run_digits=15,
        sub_run_joiners=" ",
    ),
    _rule(
        "es-dni-nie",
        "es_dni",
        # A NIE's leading X/Y/Z is the optional head; a DNI starts at its first digit.
        "[0-9]"
        + NOT_INSIDE_NUMBER
        + f"(?:(?<=(?<![\\w-])(?P<{HEAD_GROUP}>[XYZxyz])[0-9])[0-9]{{6}}"
        + r"|(?<![\w-][0-9])[0-9]{6,7})-?[A-HJ-NP-TV-Za-hj-np-tv-z]"
        + _AFTER,
        "Spanish DNI or NIE, mod-23 check letter.",
        es_dni_nie,
        confidence=0.85,
        min_digits=7,
    ),
    _rule(
        "it-codice-fiscale",
        "it_codice_fiscale",
        headed("[A-Za-z]{6}", "[A-Za-z0-9]")
        + r"[0-9][A-Za-z][0-9]{2}[A-Za-z][0-9]{3}[A-Za-z](?![A-Za-z0-9])",
        "Italian codice fiscale, check character over odd/even tables.",
        "it.codicefiscale",
        confidence=0.9,
        min_digits=3,
    ),
    _rule(
        "sg-nric",
        "sg_nric",
        headed("[STFGMstfgm]", "[A-Za-z0-9]") + r"[0-9]{6}[A-Za-z](?![A-Za-z0-9])",
        "Singapore NRIC/FIN, weighted check letter.",
        sg_nric,
        confidence=0.9,
        min_digits=7,
    ),
    _rule(
        "in-aadhaar",
        "in_aadhaar",
        _compact_or_spaced("[2-9]", "[0-9]{11}", "[0-9]{3} [0-9]{4} [0-9]{4}"),
        "Indian Aadhaar number, compact or 4-4-4, Verhoeff check digit.",
        "in_.aadhaar",
        confidence=0.85,
        min_digits=12,
    ),
    _rule(
        "de-steuer-id",
        "de_steuer_id",
        _compact_or_spaced("[0-9]", "[0-9]{10}", "[0-9] [0-9]{3} [0-9]{3} [0-9]{3}"),
        "German tax identification number (Steuer-ID), digit structure and ISO 7064 MOD 11,10.",
        de_steuer_id,
        confidence=0.85,
        min_digits=11,
    ),
    _rule(
        "nl-bsn",
        "nl_bsn",
        lead("[0-9]", "[0-9-]")
        + r"(?:[0-9]{8}|(?<![0-9][.][0-9])[0-9]{3}\.[0-9]{2}\.[0-9]{3})(?![0-9-]|\.[0-9])",
        "Dutch citizen service number (BSN), 11-proef.",
        nl_bsn,
        confidence=0.8,
        min_digits=9,
    ),
    _rule(
        "uk-nino",
        "uk_nino",
        headed(_NINO_PREFIX, r"[\w-]") + r"[0-9]{5}[A-D]" + _AFTER,
        "UK National Insurance number (format rules only, no checksum).",
        uk_nino,
        confidence=0.7,
        min_digits=6,
    ),
    _rule(
        "uk-nino-spaced",
        "uk_nino",
        headed(_NINO_PREFIX + " ", r"[\w-]") + r"[0-9](?: [0-9]{2}){2} [A-D]" + _AFTER,
        "UK National Insurance number printed in pairs (AB 12 34 56 C).",
        uk_nino,
        confidence=0.7,
        min_digits=6,
    ),
    _rule(
        "br-cpf",
        "br_cpf",
        lead("[0-9]", r"[\w.-]") + r"[0-9]{2}\.[0-9]{3}\.[0-9]{3}-[0-9]{2}(?![\w-]|\.[0-9])",
        "Brazilian CPF written 123.456.789-09, two mod-11 check digits.",
        "br.cpf",
        confidence=0.85,
        min_digits=11,
    ),
    _rule(
        "br-cnpj",
        "br_cnpj",
        lead("[0-9]", r"[\w.-]") + r"[0-9]\.[0-9]{3}\.[0-9]{3}/[0-9]{4}-[0-9]{2}(?![\w-])",
        "Brazilian CNPJ written 12.345.678/0001-95, two mod-11 check digits.",
        "br.cnpj",
        confidence=0.85,
        min_digits=14,
    ),
    _rule(
        "cn-ric",
        "cn_ric",
        lead("[1-9]", r"[\w-]")
        + r"[0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]"
        + _AFTER,
        "Chinese resident identity card number: region, birth date, ISO 7064 MOD 11-2.",
        "cn.ric",
        confidence=0.85,
        min_digits=17,
    ),
    _rule(
        "in-pan",
        "in_pan",
        headed("[A-Z]{3}[ABCFGHJLPT][A-Z]", "[A-Za-z0-9]") + r"[0-9]{3}[A-Z](?![A-Za-z0-9])",
        "Indian Permanent Account Number (holder-type letter, no checksum).",
        "in_.pan",
        confidence=0.6,
        min_digits=4,
    ),
    _rule(
        "mx-curp",
        "mx_curp",
        headed("[A-Z][AEIOUX][A-Z]{2}", "[A-Za-z0-9]") + r"[0-9](?:0[1-9]|1[0-2])"
        r"(?:0[1-9]|[12][0-9]|3[01])[HMX][A-Z]{2}[B-DF-HJ-NP-TV-Z]{3}[0-9A-Z][0-9]"
        r"(?![A-Za-z0-9])",
        "Mexican CURP: name letters, birth date, sex, state, check digit.",
        "mx.curp",
        confidence=0.85,
        min_digits=6,
    ),
    _rule(
        "za-id",
        "za_id",
        lead("[0-9]", r"[\w-]")
        + r"[0-9](?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{4}[01][89][0-9]"
        + _AFTER,
        "South African identity number: birth date, citizenship, Luhn.",
        "za.idnr",
        confidence=0.7,
        min_digits=13,
    ),
    _rule(
        "fi-hetu",
        "fi_hetu",
        lead("[0-3]", r"[\w-]")
        + r"(?<=0(?=[1-9])|[12](?=[0-9])|3(?=[01]))[0-9](?:0[1-9]|1[0-2])[0-9]{2}[-+A-FU-Y]"
        r"[0-9]{3}[0-9A-FHJ-NPR-Y]" + _AFTER,
        "Finnish personal identity code (HETU): birth date, century sign, mod-31 check.",
        "fi.hetu",
        confidence=0.85,
        min_digits=6,
    ),
    _rule(
        "be-nn",
        "be_nn",
        lead("[0-9]", r"[\w.-]") + r"[0-9]\.[0-9]{2}\.[0-9]{2}-[0-9]{3}\.[0-9]{2}(?![\w-]|\.[0-9])",
        "Belgian national number written 85.07.30-033.28, mod-97 check.",
        "be.nn",
        confidence=0.85,
        min_digits=11,
    ),
    _rule(
        "ie-pps",
        "ie_pps",
        lead("[0-9]", r"[\w-]") + r"[0-9]{6}[A-W][ABHTWX]?" + _AFTER,
        "Irish Personal Public Service number, mod-23 check letter.",
        "ie.pps",
        confidence=0.6,
        min_digits=7,
    ),
    _rule(
        "ch-ahv",
        "ch_ahv",
        lead("7", r"[\w.-]") + r"56(?:\.[0-9]{4}\.[0-9]{4}\.[0-9]{2}|[0-9]{10})(?![\w-]|\.[0-9])",
        "Swiss social security number (AHV/AVS, 756...), EAN-13 check digit.",
        "ch.ssn",
        confidence=0.85,
        min_digits=13,
    ),
    _rule(
        "cz-rc",
        "cz_rc",
        lead("[0-9]", r"[\w-]")
        + r"[0-9](?:[05][1-9]|[16][0-2]|[27][0-9]|[38][0-2])[0-3][0-9]/[0-9]{3,4}"
        + _AFTER,
        "Czech or Slovak birth number (rodne cislo) written YYMMDD/SSSC, mod-11.",
        "cz.rc",
        confidence=0.75,
        min_digits=9,
    ),
    _rule(
        "ar-cuit",
        "ar_cuit",
        lead("[23]", r"[\w-]") + r"(?<=2(?=[0347])|3(?=[034]))[0-9]-[0-9]{8}-[0-9]" + _AFTER,
        "Argentine CUIT/CUIL written 20-12345678-9, mod-11 check digit.",
        "ar.cuit",
        confidence=0.85,
        min_digits=11,
    ),
    _rule(
        "cl-rut",
        "cl_rut",
        lead("[0-9]", r"[\w.-]") + r"[0-9]?\.[0-9]{3}\.[0-9]{3}-[0-9Kk]" + _AFTER,
        "Chilean RUT/RUN written 12.345.678-5, mod-11 check character.",
        "cl.rut",
        confidence=0.85,
        min_digits=7,
    ),
    _rule(
        "my-nric",
        "my_nric",
        lead("[0-9]", r"[\w-]")
        + r"[0-9](?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])-[0-9]{2}-[0-9]{4}"
        + _AFTER,
        "Malaysian NRIC written YYMMDD-PB-NNNN (birth date, birth place code).",
        "my.nric",
        confidence=0.8,
        min_digits=12,
    ),
    _rule(
        "th-pin",
        "th_pin",
        lead("[1-8]", r"[\w-]") + r"-[0-9]{4}-[0-9]{5}-[0-9]{2}-[0-9]" + _AFTER,
        "Thai personal identification number written 1-2345-67890-12-1, mod-11 check.",
        "th.pin",
        confidence=0.85,
        min_digits=13,
    ),
)

CUED_ID_RULES: Final[tuple[Rule, ...]] = (
    _cued(
        "br-cpf-context",
        "br_cpf",
        ("CPF",),
        r"[0-9]{3}\.?[0-9]{3}\.?[0-9]{3}-?[0-9]{2}",
        "Brazilian CPF, compact.",
        "br.cpf",
        min_digits=11,
    ),
    _cued(
        "br-cnpj-context",
        "br_cnpj",
        ("CNPJ",),
        r"[0-9]{2}\.?[0-9]{3}\.?[0-9]{3}/?[0-9]{4}-?[0-9]{2}",
        "Brazilian CNPJ, compact.",
        "br.cnpj",
        min_digits=14,
    ),
    _cued(
        "mx-rfc-context",
        "mx_rfc",
        ("RFC",),
        r"[A-Za-z&]{3,4}[0-9]{6}[A-Za-z0-9]{3}",
        "Mexican tax id (RFC): name letters, date, check digit.",
        mx_rfc,
        min_digits=6,
        confidence=0.8,
    ),
    _cued(
        "ca-sin-context",
        "ca_sin",
        ("SIN", "NAS", "social insurance number", "Social Insurance Number"),
        r"[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{3}",
        "Canadian Social Insurance Number, Luhn.",
        "ca.sin",
        min_digits=9,
        confidence=0.8,
        case_sensitive=True,
    ),
    _cued(
        "au-tfn-context",
        "au_tfn",
        ("TFN", "tax file number"),
        r"[0-9]{3}[ ]?[0-9]{3}[ ]?[0-9]{2,3}",
        "Australian Tax File Number, weighted mod-11.",
        "au.tfn",
        min_digits=8,
        confidence=0.8,
    ),
    _cued(
        "au-medicare-context",
        "au_medicare",
        ("Medicare",),
        r"[2-6][0-9]{3}[ ]?[0-9]{5}[ ]?[0-9](?:[ /-]?[1-9])?",
        "Australian Medicare card number, weighted check digit.",
        au_medicare,
        min_digits=10,
        confidence=0.8,
    ),
    _cued(
        "gb-nhs-context",
        "gb_nhs",
        ("NHS",),
        r"[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}",
        "UK NHS number, mod-11 check digit.",
        "gb.nhs",
        min_digits=10,
        confidence=0.8,
    ),
    _cued(
        "pl-pesel-context",
        "pl_pesel",
        ("PESEL",),
        r"[0-9]{11}",
        "Polish PESEL: birth date, weighted check digit.",
        "pl.pesel",
        min_digits=11,
    ),
    _cued(
        "se-personnummer-context",
        "se_personnummer",
        ("personnummer", "personnr", "pnr"),
        r"(?:19|20)?[0-9]{6}[-+]?[0-9]{4}",
        "Swedish personal identity number: birth date, Luhn.",
        "se.personnummer",
        min_digits=10,
    ),
    _cued(
        "dk-cpr-context",
        "dk_cpr",
        ("CPR", "CPR-nr", "personnummer"),
        r"[0-9]{6}-?[0-9]{4}",
        "Danish CPR number (birth date; no checksum since 2007).",
        "dk.cpr",
        min_digits=10,
        confidence=0.75,
    ),
    _cued(
        "no-fnr-context",
        "no_fnr",
        ("fødselsnummer", "fodselsnummer", "personnummer", "fnr"),
        r"[0-9]{6} ?[0-9]{5}",
        "Norwegian national identity number (fødselsnummer), two mod-11 check digits.",
        "no.fodselsnummer",
        min_digits=11,
    ),
    _cued(
        "be-nn-context",
        "be_nn",
        ("rijksregisternummer", "numéro national", "national number", "NISS", "INSZ"),
        r"[0-9]{11}",
        "Belgian national number, compact.",
        "be.nn",
        min_digits=11,
    ),
    _cued(
        "pt-nif-context",
        "pt_nif",
        ("NIF", "contribuinte"),
        r"[0-9]{3} ?[0-9]{3} ?[0-9]{3}",
        "Portuguese tax number (NIF), mod-11 check digit.",
        "pt.nif",
        min_digits=9,
        confidence=0.8,
    ),
    _cued(
        "at-svnr-context",
        "at_svnr",
        ("SVNR", "VSNR", "SV-Nummer", "Versicherungsnummer", "Sozialversicherungsnummer"),
        r"[0-9]{4} ?[0-9]{6}",
        "Austrian social insurance number: weighted check digit, birth date.",
        "at.vnr",
        min_digits=10,
        confidence=0.8,
    ),
    _cued(
        "ro-cnp-context",
        "ro_cnp",
        ("CNP",),
        r"[1-9][0-9]{12}",
        "Romanian personal numeric code (CNP): birth date, county, check digit.",
        "ro.cnp",
        min_digits=13,
    ),
    _cued(
        "bg-egn-context",
        "bg_egn",
        ("EGN", "ЕГН"),
        r"[0-9]{10}",
        "Bulgarian personal number (EGN): birth date, weighted check digit.",
        "bg.egn",
        min_digits=10,
    ),
    _cued(
        "ee-ik-context",
        "ee_ik",
        ("isikukood", "isikukoodi", "Estonian ID code", "personal code"),
        r"[1-6][0-9]{10}",
        "Estonian personal identification code: birth date, check digit.",
        "ee.ik",
        min_digits=11,
    ),
    _cued(
        "lt-asmens-kodas-context",
        "lt_asmens_kodas",
        ("asmens kodas", "asmens kodą", "asmens kodo"),
        r"[1-6][0-9]{10}",
        "Lithuanian personal code (asmens kodas): birth date, check digit.",
        "lt.asmens",
        min_digits=11,
    ),
    _cued(
        "gr-amka-context",
        "gr_amka",
        ("AMKA", "\u0391\u039c\u039a\u0391"),  # Latin and Greek spellings
        r"[0-9]{11}",
        "Greek social security number (AMKA): birth date, Luhn.",
        "gr.amka",
        min_digits=11,
    ),
    _cued(
        "tr-tckn-context",
        "tr_tckn",
        ("kimlik", "TCKN", "TC no", "T.C. no"),
        r"[1-9][0-9]{10}",
        "Turkish identity number (T.C. Kimlik No), two check digits.",
        "tr.tckimlik",
        min_digits=11,
    ),
    _cued(
        "il-idnr-context",
        "il_idnr",
        ("teudat zehut", "mispar zehut", "Israeli ID", "תעודת זהות", "ת.ז", 'ת"ז'),
        r"[0-9]{8}-?[0-9]",
        "Israeli identity number (Teudat Zehut), Luhn-style check digit.",
        "il.idnr",
        min_digits=9,
        confidence=0.8,
    ),
    _cued(
        "ar-cuit-context",
        "ar_cuit",
        ("CUIT", "CUIL"),
        r"[0-9]{2}-?[0-9]{8}-?[0-9]",
        "Argentine CUIT/CUIL, compact.",
        "ar.cuit",
        min_digits=11,
    ),
    _cued(
        "cl-rut-context",
        "cl_rut",
        ("RUT", "RUN"),
        r"[0-9]{7,8}-?[0-9Kk]",
        "Chilean RUT/RUN, compact.",
        "cl.rut",
        min_digits=7,
        confidence=0.8,
        case_sensitive=True,
    ),
    _cued(
        "co-nit-context",
        "co_nit",
        ("NIT",),
        r"[0-9]{1,3}(?:\.?[0-9]{3}){2}-?[0-9]",
        "Colombian tax number (NIT), weighted mod-11 check digit.",
        "co.nit",
        min_digits=7,
        confidence=0.8,
        case_sensitive=True,
    ),
    _cued(
        "hr-oib-context",
        "hr_oib",
        ("OIB",),
        r"[0-9]{11}",
        "Croatian personal identification number (OIB), ISO 7064 MOD 11,10.",
        "hr.oib",
        min_digits=11,
    ),
    _cued(
        "th-pin-context",
        "th_pin",
        ("Thai ID", "เลขประจำตัวประชาชน"),
        r"[1-8][0-9]{12}",
        "Thai personal identification number, compact.",
        "th.pin",
        min_digits=13,
    ),
    _cued(
        "ru-inn-context",
        "ru_inn",
        ("INN", "ИНН"),
        r"[0-9]{10}(?:[0-9]{2})?",
        "Russian taxpayer number (INN), check digits.",
        "ru.inn",
        min_digits=10,
        case_sensitive=True,
    ),
    _cued(
        "nz-ird-context",
        "nz_ird",
        ("IRD",),
        r"[0-9]{2,3}-?[0-9]{3}-?[0-9]{3}",
        "New Zealand IRD number, weighted mod-11 check digit.",
        "nz.ird",
        min_digits=8,
        confidence=0.8,
    ),
    _cued(
        "is-kennitala-context",
        "is_kennitala",
        ("kennitala", "kt."),
        r"[0-9]{6}-?[0-9]{4}",
        "Icelandic identity code (kennitala): birth date, mod-11 check digit.",
        "is_.kennitala",
        min_digits=10,
    ),
    _cued(
        "si-emso-context",
        "si_emso",
        ("EMŠO", "EMSO"),
        r"[0-9]{13}",
        "Slovenian unique master citizen number (EMŠO): birth date, mod-11.",
        "si.emso",
        min_digits=13,
    ),
    _cued(
        "us-ssn-context",
        "us_ssn",
        ("SSN", "social security number", "social security no"),
        r"[0-8][0-9]{2} ?[0-9]{2} ?[0-9]{4}",
        "US Social Security number without dashes (SSA ranges).",
        us_ssn,
        min_digits=9,
        confidence=0.8,
    ),
)
