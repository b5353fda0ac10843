# SPDX-License-Identifier: Apache-2.0
"""Numbers read inside the hexadecimal ids servers mint are not findings; numbers glued to
words, alone, or in ids that are not hexadecimal still are."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haechi.detect import DetectionEngine, default_rules
from haechi.models import Entry
from tests.upstream_server import Reply, gateway_in_front

ENGINE = DetectionEngine(default_rules())
#: The rules that read numbers (a hex id may still hold a secret's shape, a Twilio SID).
NUMBER_RULES = frozenset(rule.id for rule in default_rules() if rule.min_digits)

#: Ids that ``uuid4().hex`` minted, in which a number rule found a number that passed its
#: checksum (the rule and the span it reported).
MINTED = [
    ("73ba2562998041858649bb8c1cf6d496", "card-like", 4, 20),
    ("07045483f17b4766937706461174b813", "card-like", 12, 28),
    ("4392057247394ac998c82892ab15ef19", "card-like", 0, 13),
    ("20b7bdd336954438a7b3af9cfbc2e849", "nl-bsn", 7, 16),
    ("968220794edd4688b8902465889abae2", "nl-bsn", 0, 9),
    ("chatcmpl-bedacbe961134069a903a2561bb3f5bd", "nl-bsn", 16, 25),
    ("chatcmpl-587204612d524b5db9573df105612868", "nl-bsn", 32, 41),
    ("chatcmpl-ba9a4e07c90b4166aba91330342765d9", "de-steuer-id", 28, 39),
    ("686c5b53b9ba41dab487755508519a5f", "in-aadhaar", 17, 29),
    ("chatcmpl-7d80ecfdee0d479a97fd228253565458", "in-aadhaar", 29, 41),
    ("6a126988542141cbbbbbde157a10a1da", "jp-mynumber", 2, 14),
    ("call_6664ec6ebcbf475884334495", "jp-mynumber", 17, 29),
    ("call_124aa6a4451343409570e06c", "card-like", 12, 25),
    # Canonical UUIDs (uuid4()), whose groups are shorter than a minted token.
    ("e4531b01-4fcf-4b08-9bdd-39d880403482", "nl-bsn", 27, 36),
    ("b4b6cf39-c0c2-4c06-b151-f493786776f1", "nl-bsn", 25, 34),
    ("74fb0d52-5937-4604-9512-8608c79667e6", "card-like", 9, 28),
    ("a454a2f4-6040-4769-9260-1600d16431eb", "card-like", 9, 28),
]


def found(text: str) -> list[tuple[str, str]]:
    detections = ENGINE.detect([Entry(("t",), text)], direction="request")
    return [(detection.rule_id, detection.value) for detection in detections]


@pytest.mark.parametrize(("minted", "rule", "start", "end"), MINTED)
def test_a_number_inside_a_minted_hex_id_is_no_finding(
    minted: str, rule: str, start: int, end: int
) -> None:
    assert found(minted) == []
    assert found(f'"id": "{minted.upper()}"') == []
    # The same digits with their hex letters gone are the finding they were read as.
    assert (rule, minted[start:end]) in found(f"id {minted[start:end]} here")


@pytest.mark.parametrize(
    ("text", "rule", "value"),
    [
        ("BSN123456782", "nl-bsn", "123456782"),
        ("4111111111111111", "card-like", "4111111111111111"),
        ("card 4111-1111-1111-1111", "card-like", "4111-1111-1111-1111"),
        ("card4111111111111111", "card-like", "4111111111111111"),
        ("the card 4111111111111111 expires in May", "card-like", "4111111111111111"),
        # Too few hex letters around the number for a minted id.
        ("4111111111111111cafe", "card-like", "4111111111111111"),
        ("ab4111111111111111c", "card-like", "4111111111111111"),
        # Letters of both cases, or letters beyond f: base62 and base64 ids, words.
        ("deADbeef4111111111111111CAFEbabe", "card-like", "4111111111111111"),
        ("chatcmpl-AbCdEf123456782aBcDeFaBc", "nl-bsn", "123456782"),
        ("msg_01xyzabcdef123456782abcdefqrst", "nl-bsn", "123456782"),
        ("réf4111111111111111deadbeef", "card-like", "4111111111111111"),
        # Not a whole canonical UUID: glued to a letter on either side, or of mixed case.
        ("e4531b01-4fcf-4b08-9bdd-39d880403482a", "nl-bsn", "880403482"),
        ("xe4531b01-4fcf-4b08-9bdd-39d880403482", "nl-bsn", "880403482"),
        ("E4531B01-4fcf-4b08-9bdd-39d880403482", "nl-bsn", "880403482"),
    ],
)
def test_numbers_that_are_no_hex_id_are_still_found(text: str, rule: str, value: str) -> None:
    assert (rule, value) in found(text)


@pytest.mark.parametrize(
    ("fingerprint", "number"),
    [
        ("fp_248898085f", "248898085"),
        ("fp_e138075943", "138075943"),
        ("fp_c859452049", "859452049"),
    ],
)
def test_a_number_inside_a_system_fingerprint_is_no_finding(fingerprint: str, number: str) -> None:
    """OpenAI's ``system_fingerprint`` is ``fp_`` and ten hex digits, too short for a minted
    token; the digits alone, or after another prefix, are still the BSN they read as."""
    assert found(fingerprint) == []
    assert found(f'{{"system_fingerprint": "{fingerprint}"}}') == []
    assert ("nl-bsn", number) in found(f"bsn {number} here")
    assert ("nl-bsn", number) in found("x" + fingerprint)
    assert ("nl-bsn", number) in found(fingerprint.replace("fp_", "ssn_"))


def test_random_system_fingerprints_hold_no_number() -> None:
    draw = random.Random(5)
    for _ in range(5000):
        fingerprint = "fp_" + draw.randbytes(5).hex()
        assert found(fingerprint) == [], fingerprint


@pytest.mark.parametrize(
    ("call_id", "card"),
    [
        ("call_4798128648704886991feddf", "4798128648704886991"),
        ("call_544a380237184850806517e4", "380237184850806517"),
        ("call_dde46e68354444149708934e", "68354444149708934"),
    ],
)
def test_a_card_inside_a_tool_call_id_is_no_finding(call_id: str, card: str) -> None:
    """A tool-call id has 24 hex digits, which leaves room for a card with fewer than eight
    characters beside it; the digits alone, glued to a letter before ``call_``, or with too
    few hex digits after it, are still the card they read as."""
    assert found(call_id) == []
    assert found(f'{{"id": "{call_id}", "type": "function"}}') == []
    assert ("card-like", card) in found(f"card {card} here")
    assert ("card-like", card) in found("x" + call_id)
    assert ("card-like", card) in found(call_id.replace("call_", "card_"))
    assert ("card-like", card) in found(call_id[:-1])


def test_an_iban_filling_a_tool_call_id_is_no_finding() -> None:
    """About one tool-call id in a million reads whole as a lower-case IBAN."""
    call_id = "call_ad0509649245935dc86cbd49"
    assert found(call_id) == []
    assert found(f'{{"tool_call_id": "{call_id}"}}') == []
    iban = call_id.removeprefix("call_")
    assert ("iban", iban) in found(f"pay to {iban}")
    assert ("iban", iban) in found(f"iban_{iban}")
    assert ("iban", iban) in found(f"xcall_{iban}")
    mixed = "AD" + iban[2:]
    assert ("iban", mixed) in found(f"call_{mixed}")


def test_random_tool_call_ids_hold_no_number() -> None:
    draw = random.Random(20261207)
    for _ in range(20000):
        call_id = "call_" + draw.randbytes(12).hex()
        assert found(call_id) == [], call_id


def test_a_card_hidden_between_hex_letters_is_not_found() -> None:
    """The trade-off: a card deliberately wrapped in hex letters reads as an id."""
    assert found("deadbeef4111111111111111cafe") == []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789abcdef", min_size=24, max_size=64), st.booleans())
def test_random_hex_ids_hold_no_number(hex_id: str, upper: bool) -> None:
    token = hex_id.upper() if upper else hex_id
    assert [rule for rule, _ in found(token) if rule in NUMBER_RULES] == []


def test_minted_ids_of_an_openai_answer_reach_the_client_unchanged(tmp_path: Path) -> None:
    answer_id = "chatcmpl-bedacbe961134069a903a2561bb3f5bd"
    call_id = "call_6664ec6ebcbf475884334495"
    body = {
        "id": answer_id,
        "object": "chat.completion",
        "created": 1700000000,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"q": "x"}'},
                        }
                    ],
                },
            }
        ],
    }
    config = {"responseProtection": {"enabled": True}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(
            Reply(body=json.dumps(body).encode(), headers={"content-type": "application/json"})
        )
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
    assert response.status_code == 200
    answer = response.json()
    assert answer["id"] == answer_id
    assert answer["choices"][0]["message"]["tool_calls"][0]["id"] == call_id


def test_uuid4_hex_ids_hold_no_number() -> None:
    draw = random.Random(4)
    for _ in range(2000):
        minted = uuid.UUID(int=draw.getrandbits(128), version=4).hex
        assert found(minted) == [], minted
        assert found("call_" + minted[:24]) == [], minted
