# SPDX-License-Identifier: Apache-2.0
"""NFKC folding with sound offsets, and opt-in decode-and-rescan."""

from __future__ import annotations

import base64
import random
from urllib.parse import quote

import pytest
from stdnum.kr import rrn

from haechi.detect import DetectionEngine, default_rules
from haechi.detect.unicode import fold
from haechi.models import Detection, Entry

CARD = "4111111111111111"
RRN_BODY = "850315" + "1" + "234" + "56"
RRN = RRN_BODY[:6] + "-" + RRN_BODY[6:] + rrn.calc_check_digit(RRN_BODY)


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def math_bold(text: str) -> str:
    return "".join(chr(0x1D7CE + int(c)) if c.isdigit() else c for c in text)


@pytest.fixture(scope="module")
def engine() -> DetectionEngine:
    return DetectionEngine(default_rules())


@pytest.fixture(scope="module")
def decoding() -> DetectionEngine:
    return DetectionEngine(default_rules(), decode_and_rescan=True)


def scan(engine: DetectionEngine, text: str) -> list[Detection]:
    return engine.scan_text(text, direction="request")


def test_rrn_fixture_is_valid() -> None:
    assert rrn.is_valid(RRN)


class TestFolding:
    def test_fold_cases(self) -> None:
        assert fold("plain ascii").case == "original"
        assert fold(fullwidth("010-1234-5678")) == fold(fullwidth("010-1234-5678"))
        assert fold(fullwidth("010-1234-5678")).case == "stable"
        assert fold(fullwidth("010-1234-5678")).text == "010-1234-5678"
        assert fold(math_bold("123")).case == "stable"
        assert fold("\u0132 ligature").case == "unstable"
        assert fold("e\u0301").case == "unstable"

    @pytest.mark.parametrize(
        ("plain", "expected"),
        [
            (f"card {CARD} now", "card"),
            ("call 010-1234-5678 now", "phone"),
            ("key sk_live_" + "a1B2c3D4e5F6g7H8i9J0k1L2" + " now", "api_key"),
            ("mail minji@example.com now", "email"),
        ],
    )
    def test_full_width_values_are_found_at_their_exact_span(
        self, engine: DetectionEngine, plain: str, expected: str
    ) -> None:
        text = plain.split(" ", 1)[0] + " " + fullwidth(plain.split(" ", 1)[1].rsplit(" ", 1)[0])
        text += " now"
        found = [d for d in scan(engine, text) if d.type == expected]
        assert len(found) == 1
        detection = found[0]
        assert text[detection.start : detection.end] == detection.value
        assert detection.value == fullwidth(plain.split(" ", 1)[1].rsplit(" ", 1)[0])

    def test_full_width_at_sign_alone_is_folded(self, engine: DetectionEngine) -> None:
        text = "write to minji\uff20example.com today"
        assert [d.value for d in scan(engine, text)] == ["minji\uff20example.com"]

    def test_mathematical_bold_digits_are_position_stable(self, engine: DetectionEngine) -> None:
        text = "rrn " + math_bold(RRN)
        found = scan(engine, text)
        assert [(d.type, d.value) for d in found] == [("kr_rrn", math_bold(RRN))]
        assert found[0].hard_block

    def test_unstable_fold_yields_one_whole_leaf_finding_per_type(
        self, engine: DetectionEngine
    ) -> None:
        text = "\U00010781 call 010-1234-5678 \u0132 or mail a@example.com \u0132"
        found = scan(engine, text)
        assert sorted(d.type for d in found) == ["email", "phone"]
        for detection in found:
            assert (detection.start, detection.end) == (0, len(text))
            assert text[detection.start : detection.end] == detection.value

    def test_unstable_fold_of_a_hard_block_type_stays_hard_block(
        self, engine: DetectionEngine
    ) -> None:
        text = f"\ufb01le {math_bold(RRN)}"
        found = scan(engine, text)
        assert [(d.type, d.start, d.end, d.hard_block) for d in found] == [
            ("kr_rrn", 0, len(text), True)
        ]

    def test_ligature_prose_is_not_a_finding(self, engine: DetectionEngine) -> None:
        assert scan(engine, "the \ufb01nal \ufb02ow of the o\ufb03ce") == []

    def test_decomposed_accents_without_pii_are_not_a_finding(
        self, engine: DetectionEngine
    ) -> None:
        assert scan(engine, "Jose\u0301 visited the cafe\u0301") == []


class TestDecodeAndRescan:
    @pytest.mark.parametrize(
        "encode",
        [
            lambda s: base64.b64encode(s.encode()).decode(),
            lambda s: base64.urlsafe_b64encode(s.encode()).rstrip(b"=").decode(),
            lambda s: quote(s, safe=""),
        ],
        ids=["base64", "base64url", "percent"],
    )
    @pytest.mark.parametrize(("secret", "kind"), [(f"card {CARD}", "card"), (RRN, "kr_rrn")])
    def test_encoded_leaks_become_whole_leaf_findings(
        self, decoding: DetectionEngine, encode: object, secret: str, kind: str
    ) -> None:
        leaf = encode(secret)  # type: ignore[operator]
        found = scan(decoding, leaf)
        assert [(d.type, d.start, d.end, d.value) for d in found] == [(kind, 0, len(leaf), leaf)]
        assert found[0].hard_block

    def test_keys_are_decoded_too(self, decoding: DetectionEngine) -> None:
        key = base64.b64encode(CARD.encode()).decode()
        found = decoding.detect([Entry((key,), key, "key")], direction="request")
        assert [(d.type, d.kind) for d in found] == [("card", "key")]

    def test_without_the_flag_encoded_leaks_pass(self, engine: DetectionEngine) -> None:
        for leaf in (base64.b64encode(CARD.encode()).decode(), quote(f"rrn {RRN}", safe="")):
            assert scan(engine, leaf) == []

    def test_decoded_phone_numbers_and_emails_do_not_fire(self, decoding: DetectionEngine) -> None:
        for secret in ("010-1234-5678", "+1 415 555 2671", "minji.kim@example.com"):
            leaf = base64.b64encode(secret.encode()).decode()
            assert scan(decoding, leaf) == [], secret

    def test_benign_encodings_add_nothing(
        self, engine: DetectionEngine, decoding: DetectionEngine
    ) -> None:
        rng = random.Random(7)
        leaves = [base64.b64encode(rng.randbytes(rng.randint(12, 90))).decode() for _ in range(500)]
        leaves += [
            base64.b64encode(b"the quick brown fox jumps over the lazy dog").decode(),
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJkZW1vIn0.",
            "plain prose that is long enough to be considered",
            "malformed %zz escape in a long enough leaf",
            "%E0%A4%A truncated escape sequence here",
        ]
        for leaf in leaves:
            assert scan(decoding, leaf) == scan(engine, leaf), leaf

    def test_only_leaves_of_16_to_8192_characters_are_decoded(self) -> None:
        local = DetectionEngine(
            [],
            custom_rules=[{"id": "pin", "type": "secret", "pattern": r"pin-[0-9]{4}"}],
            decode_and_rescan=True,
        )
        short = base64.b64encode(b"pin-1234").decode()
        assert len(short) < 16
        assert scan(local, short) == []
        window = base64.b64encode(b"pin-1234 in a window").decode()
        assert 16 <= len(window) <= 8192
        assert [d.type for d in scan(local, window)] == ["secret"]
        long_leaf = base64.b64encode(("x" * 7000 + " pin-1234").encode()).decode()
        assert len(long_leaf) > 8192
        assert scan(local, long_leaf) == []
