# SPDX-License-Identifier: Apache-2.0
"""Write the labelled detection corpus (``*.jsonl`` beside this file), deterministically.

Run ``python benchmarks/corpus/generate.py`` after changing a builder; the output only
depends on the fixed seed. Each line is
``{"id", "text", "direction", "expect": {"<type>": true|false, ...}}``; types a case does not
list are not scored for it.

Files written (``secrets.jsonl`` belongs to the secret catalogue and is not touched):

* ``pii.jsonl``        email, phone, card, IBAN, IP, US SSN/ITIN: positives and near misses
* ``national_ids.jsonl`` national, tax and health identifiers: positives, broken check
  digits, and keyword-gated numbers written without their keyword
* ``injection.jsonl``  prompt-injection phrasing in responses, the same text in requests
* ``near_misses.jsonl`` identifiers-that-are-not: UUIDs, hashes, versions, timestamps,
  order numbers, prose with numbers
* ``reference.jsonl``  the compatible catalogue's accept/reject examples and phone cases
"""

from __future__ import annotations

import json
import random
import sys
import uuid
from collections.abc import Iterator
from hashlib import sha1, sha256
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from samples import SAMPLES, Sample  # noqa: E402

SEED = 20240501
POSITIVES = 14
NEGATIVES = 10

PII_TYPES = ("email", "phone", "card", "iban", "ip_address", "us_ssn", "us_itin")
#: Every type a near miss must not be reported as.
NEAR_MISS_TYPES = (*sorted(SAMPLES), "secret", "api_key")

_TEMPLATES = (
    "{value}",
    "Please update the record: {value}.",
    "Customer note - {value} (verified yesterday)",
    '{{"field": "{value}", "status": "active"}}',
    "Hi team,\nthe value on file is {value}\nThanks!",
    "ref {value}; see attached",
    "(\u8a18\u9332: {value})",
    "\uc5f0\ub77d\ucc98 {value} \uc785\ub2c8\ub2e4",
    "- item: `{value}`",
)
_LABELS = {
    "email": "email",
    "phone": "phone",
    "card": "card number",
    "iban": "IBAN",
    "ip_address": "server address",
}


def _case(case_id: str, text: str, expect: dict[str, bool], direction: str = "request") -> Any:
    return {"id": case_id, "text": text, "direction": direction, "expect": expect}


def _embed(rng: random.Random, sample: Sample, value: str, with_cue: bool = True) -> str:
    shown = f"{sample.cue}: {value}" if sample.cue and with_cue else value
    return rng.choice(_TEMPLATES).format(value=shown)


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _typed_cases(rng: random.Random, prefix: str, types: tuple[str, ...]) -> Iterator[Any]:
    for name in types:
        sample = SAMPLES[name]
        direction = "response" if name == "injection" else "request"
        for index in range(POSITIVES):
            value = sample.valid(rng)
            text = _embed(rng, sample, value)
            if index == 0 and name != "injection":
                text = _fullwidth(text)
            yield _case(f"{prefix}-{name}-pos-{index}", text, {name: True}, direction)
        for index in range(NEGATIVES):
            value = sample.valid(rng)
            if sample.cue and index % 2 == 0:
                text = _embed(rng, sample, value, with_cue=False)
            elif sample.break_check is not None:
                text = _embed(rng, sample, sample.break_check(value))
            else:
                continue
            yield _case(f"{prefix}-{name}-neg-{index}", text, {name: False}, direction)


def _shape_near_misses(rng: random.Random) -> Iterator[Any]:
    """Number- and token-shaped strings that are no PII at all."""
    everything = dict.fromkeys(NEAR_MISS_TYPES, False)
    makers = [
        lambda: f"request id {uuid.UUID(int=rng.getrandbits(128))}",
        lambda: f"commit {sha1(rng.randbytes(8), usedforsecurity=False).hexdigest()} merged",
        lambda: f"sha256: {sha256(rng.randbytes(8)).hexdigest()}",
        lambda: (
            f"Upgrade to version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
            f".{rng.randint(0, 99)} today"
        ),
        lambda: (
            f"uses v{rng.randint(1, 4)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"
        ),
        lambda: (
            f"created_at 2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
        ),
        lambda: f"ts={rng.randint(1_600_000_000, 1_799_999_999)}",
        lambda: f"eval_duration {rng.randint(1_600_000_000_000, 1_799_999_999_999)}",
        lambda: (
            f"Order #{rng.randint(100000, 999999)} shipped, invoice INV-{rng.randint(10**7, 10**8)}"
        ),
        lambda: f"Tracking number {rng.randint(10**15, 10**16 - 1)}{rng.randint(100, 999)}",
        lambda: (
            f"The budget grew {rng.randint(1, 99)}% to ${rng.randint(1, 999)},"
            f"{rng.randint(100, 999)}.{rng.randint(10, 99)} in {rng.randint(1990, 2030)}."
        ),
        lambda: (
            f"Meet at {rng.randint(1, 12)}:{rng.randint(0, 59):02d} in room {rng.randint(100, 999)}"
        ),
        lambda: f"coordinates {rng.uniform(-90, 90):.6f}, {rng.uniform(-180, 180):.6f}",
        lambda: (
            f"build {rng.randint(1000, 9999)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}-"
            f"{rng.randint(10, 99)}"
        ),
        lambda: f"std::vector<int> v; v.size() == {rng.randint(1, 99)}; a::b::c",
        lambda: f"x{rng.randint(10**9, 10**10 - 1)}x and id_{rng.randint(10**10, 10**11 - 1)}",
        lambda: (
            f"ISBN 978-{rng.randint(0, 9)}-{rng.randint(100, 999)}-{rng.randint(10000, 99999)}-"
            f"{rng.randint(0, 9)}"
        ),
        lambda: (
            f"chapter {rng.randint(1, 9)}.{rng.randint(1, 9)}."
            f"{rng.randint(1, 9)}.{rng.randint(1, 9)}"
        ),
        # Bare digit runs of identifier lengths: a weak checksum passes some by chance, which
        # is exactly the false-positive rate of the bare rules.
        lambda: f"Order number {rng.randint(10**8, 10**9 - 1)} confirmed",
        lambda: f"Order number {rng.randint(10**10, 10**11 - 1)} confirmed",
        lambda: f"Order number {rng.randint(10**11, 10**12 - 1)} confirmed",
        lambda: f"Order number {rng.randint(10**12, 10**13 - 1)} confirmed",
        lambda: f"Order number {rng.randint(10**15, 10**16 - 1)} confirmed",
    ]
    for index in range(300):
        text = rng.choice(makers)()
        yield _case(f"near-miss-{index}", text, everything)


def _reference_cases() -> Iterator[Any]:
    """The compatible catalogue's documented accept/reject examples."""
    accept = {
        "es_dni": ["12345678Z", "X1234567L"],
        "sg_nric": ["S1234567D", "F1234567N"],
        "it_codice_fiscale": ["RSSMRA85T10A562S"],
        "in_aadhaar": ["234567890124"],
        "de_steuer_id": ["02476291358"],
        "nl_bsn": ["111222333", "123456782"],
        "fr_nir": ["185057800604830"],
        "jp_mynumber": ["123456789018"],
        "uk_nino": ["AB123456C"],
        "iban": ["DE89370400440532013000"],
        "us_ssn": ["078-05-1120"],
        "phone": ["01012345678", "010-1234-5678", "+82 10 1234 5678", "+1 415 555 2671",
                  "(415) 555-2671"],
    }  # fmt: skip
    reject = {
        "kr_rrn": ["900101-1234567"],
        "us_ssn": ["666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000", "078051120"],
        "iban": ["DE89370400440532013001"],
        "jp_mynumber": ["123456789010"],
        "fr_nir": ["185057800604831"],
        "es_dni": ["12345678A"],
        "uk_nino": ["BG123456C", "AO123456C", "AB123456E"],
        "it_codice_fiscale": ["RSSMRA85T10A562X"],
        "sg_nric": ["S1234567A"],
        "in_aadhaar": ["234567890125", "123456789012"],
        "de_steuer_id": ["02476291357"],
        "nl_bsn": ["123456789"],
        "phone": ["id 550e8400-e29b-41d4-a716-446655440000", "x01012345678x", "1781129892",
                  "1719999999", "12345678901", "4155552671"],
        "card": ["41111111111111111111111"],
    }  # fmt: skip
    for name, values in accept.items():
        for index, value in enumerate(values):
            yield _case(f"reference-{name}-accept-{index}", f"value: {value}", {name: True})
    for name, values in reject.items():
        for index, value in enumerate(values):
            yield _case(f"reference-{name}-reject-{index}", f"value: {value}", {name: False})
    yield _case(
        "reference-card-not-phone",
        "card 4111111111111111 on file",
        {"card": True, "phone": False},
    )
    yield _case(
        "reference-card-in-email",
        "write to 4242424242424242@x.co",
        {"card": True, "email": True},
    )


def _cards_among_digit_groups(rng: random.Random) -> Iterator[Any]:
    """Cards written right next to other digit groups (a phone number, a date, an order
    number): the whole run fails the card check, the card inside it must still be found;
    and grouped runs in which no card-shaped part passes the check."""
    neighbours = (
        lambda: f"010-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
        lambda: f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        lambda: str(rng.randint(10_000, 99_999)),
        lambda: str(rng.randint(1, 99)),
        lambda: f"{rng.randint(1000, 9999)}",
    )
    for index in range(POSITIVES):
        card = SAMPLES["card"].valid(rng)
        neighbour = rng.choice(neighbours)()
        text = f"{neighbour} {card}" if index % 2 else f"{card} {neighbour}"
        yield _case(f"pii-card-among-groups-{index}", f"paid {text} today", {"card": True})
    yield _case(
        "pii-card-among-groups-reference", "value: 4111 1111 1111 1111 2222", {"card": True}
    )
    for index, text in enumerate(
        [
            "1234 5678 9012 3456 7890",
            "2024-05-01 7111 1111 1111 1116",
            "010-1234-5678 4111 1111 1111 1112",
            "4111 1111 1111 1112 010-1234-5678",
        ]
    ):
        yield _case(f"pii-card-among-groups-neg-{index}", f"ref {text} end", {"card": False})


def _injection_in_requests(rng: random.Random) -> Iterator[Any]:
    for index in range(NEGATIVES):
        text = SAMPLES["injection"].valid(rng)
        yield _case(f"injection-request-{index}", text, {"injection": False}, "request")


def _write(name: str, cases: list[Any]) -> None:
    path = HERE / name
    with path.open("w", encoding="utf-8") as handle:
        for case in cases:
            handle.write(json.dumps(case, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{path.name}: {len(cases)} cases")


def main() -> None:
    """Regenerate every corpus file this module owns."""
    rng = random.Random(SEED)
    national = tuple(
        name for name in sorted(SAMPLES) if name not in PII_TYPES and name != "injection"
    )
    # The digit-group cases draw from their own generator so that adding them left every
    # other case as it was.
    _write(
        "pii.jsonl",
        [
            *_typed_cases(rng, "pii", PII_TYPES),
            *_cards_among_digit_groups(random.Random(SEED + 1)),
        ],
    )
    _write("national_ids.jsonl", list(_typed_cases(rng, "id", national)))
    _write(
        "injection.jsonl",
        [*_typed_cases(rng, "injection", ("injection",)), *_injection_in_requests(rng)],
    )
    _write("near_misses.jsonl", list(_shape_near_misses(rng)))
    _write("reference.jsonl", list(_reference_cases()))


if __name__ == "__main__":
    main()
