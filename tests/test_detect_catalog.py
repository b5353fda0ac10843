# SPDX-License-Identifier: Apache-2.0
"""The built-in catalogue on the compatible edge cases and the new formats."""

from __future__ import annotations

import pytest

from haechi.detect import HARD_BLOCK_TYPES, DetectionEngine, default_rules
from haechi.models import Detection


@pytest.fixture(scope="module")
def engine() -> DetectionEngine:
    return DetectionEngine(default_rules())


def found(engine: DetectionEngine, text: str) -> set[tuple[str, str]]:
    detections: list[Detection] = engine.scan_text(text, direction="request")
    return {(d.type, d.value) for d in detections}


def kinds(engine: DetectionEngine, text: str) -> set[str]:
    return {t for t, _ in found(engine, text)}


def test_catalogue_shape() -> None:
    rules = default_rules()
    countries = {
        r.type.split("_", 1)[0]
        for r in rules
        if "_" in r.type and r.type not in HARD_BLOCK_TYPES | {"api_key", "ip_address"}
    }
    assert len(countries | {"kr", "jp", "fr", "es", "it", "sg", "de", "nl", "uk", "in"}) >= 30
    reference_types = {
        "email", "phone", "kr_rrn", "card", "api_key", "secret", "us_ssn", "iban",
        "jp_mynumber", "fr_nir", "es_dni", "uk_nino", "it_codice_fiscale", "sg_nric",
        "in_aadhaar", "de_steuer_id", "nl_bsn", "injection",
    }  # fmt: skip
    assert reference_types <= {r.type for r in rules}
    assert all(r.type == r.type.lower() and r.type.isidentifier() for r in rules)
    injection = [r for r in rules if r.type == "injection"]
    assert injection
    assert all(r.direction == "response" for r in injection)
    assert not [r for r in rules if r.type != "injection" and r.direction is not None]


class TestPhones:
    @pytest.mark.parametrize(
        "text",
        [
            "01012345678",
            "010-1234-5678",
            "+82 10 1234 5678",
            "+1 415 555 2671",
            "(415) 555-2671",
            "415-555-2671",
            "020 7946 0958",
            "01 23 45 67 89",
            "03-1234-5678",
            "(11) 91234-5678",
            "(02) 9876 5432",
            "98765 43210",
            "138 0013 8000",
            "tel: 4155552671",
            "Phone number: 07911 123456",
        ],
    )
    def test_phone_numbers(self, engine: DetectionEngine, text: str) -> None:
        assert "phone" in kinds(engine, f"reach me at {text} please")

    @pytest.mark.parametrize(
        "text",
        [
            "550e8400-e29b-41d4-a716-446655440000",
            "x01012345678x",
            "1781129892",
            "1719999999",
            "12345678901",
            "4155552671",
            "+1234",
            "on 2024-05-01 at 10:30",
            "invoice 10-1234-5678",
            "hotel 4155552671",
        ],
    )
    def test_phone_near_misses(self, engine: DetectionEngine, text: str) -> None:
        assert "phone" not in kinds(engine, f"value {text} here")

    def test_a_card_is_not_also_a_phone(self, engine: DetectionEngine) -> None:
        for card in ("4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111"):
            assert kinds(engine, f"card {card}") == {"card"}


class TestCards:
    @pytest.mark.parametrize(
        "card",
        ["4111111111111111", "4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005",
         "3782 822463 10005", "6011111111111117", "4222222222222"],
    )  # fmt: skip
    def test_cards(self, engine: DetectionEngine, card: str) -> None:
        assert found(engine, f"pay with {card}.") == {("card", card)}

    @pytest.mark.parametrize(
        "text",
        [
            "41111111111111111111111",
            "4111111111111112",
            "1781129892000",
            "7111111111111116",
        ],
    )
    def test_no_partial_or_invalid_cards(self, engine: DetectionEngine, text: str) -> None:
        assert "card" not in kinds(engine, f"ref {text} end")

    @pytest.mark.parametrize("text", ["4111 1111 1111 1111 2222", "1234 4111 1111 1111 1111"])
    def test_a_card_group_run_next_to_another_group_is_still_a_card(
        self, engine: DetectionEngine, text: str
    ) -> None:
        # A hard-block value is never lost to a longer run of digit groups around it.
        assert found(engine, f"ref {text} end") == {("card", "4111 1111 1111 1111")}


class TestIban:
    @pytest.mark.parametrize(
        "iban",
        [
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "de89 3704 0044 0532 0130 00",
            "GB82 WEST 1234 5698 7654 32",
            "gb82west12345698765432",
        ],
    )
    def test_print_and_electronic_forms(self, engine: DetectionEngine, iban: str) -> None:
        assert found(engine, f"IBAN: {iban}, thanks") == {("iban", iban)}

    def test_per_country_length_keeps_trailing_words_out(self, engine: DetectionEngine) -> None:
        assert found(engine, "send to GB82 WEST 1234 5698 7654 32 XYZW now") == {
            ("iban", "GB82 WEST 1234 5698 7654 32")
        }

    @pytest.mark.parametrize(
        "text", ["DE89370400440532013001", "DE8937040044053201300", "XX89370400440532013000"]
    )
    def test_near_misses(self, engine: DetectionEngine, text: str) -> None:
        assert "iban" not in kinds(engine, f"account {text}")


class TestIpAddresses:
    @pytest.mark.parametrize(
        "ip",
        ["192.168.1.10", "8.8.8.8", "10.0.0.1", "2001:db8::8a2e:370:7334", "fe80::1%eth0", "::1",
         "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "::ffff:192.0.2.1"],
    )  # fmt: skip
    def test_addresses(self, engine: DetectionEngine, ip: str) -> None:
        assert found(engine, f"host {ip}.") == {("ip_address", ip)}

    @pytest.mark.parametrize(
        "text",
        [
            "version 1.2.3.4",
            "Version: 10.0.0.1",
            "v1.2.3.4",
            "see section 1.2.3.4",
            "1.2.3.4.5",
            "999.1.1.1",
            "at 12:30:45",
            "std::vector",
            "cafe::babe",
            "2001:db8:1",
        ],
    )
    def test_versions_and_lookalikes(self, engine: DetectionEngine, text: str) -> None:
        assert "ip_address" not in kinds(engine, f"note {text} ok")


class TestUsIdentifiers:
    def test_ssn_and_itin(self, engine: DetectionEngine) -> None:
        assert kinds(engine, "ssn 078-05-1120") == {"us_ssn"}
        assert kinds(engine, "itin 912-70-1234") == {"us_itin"}
        assert kinds(engine, "SSN: 078051120") == {"us_ssn"}

    @pytest.mark.parametrize("text", ["666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000",
                                      "078051120", "1078-05-1120"])  # fmt: skip
    def test_ssn_rejections(self, engine: DetectionEngine, text: str) -> None:
        assert "us_ssn" not in kinds(engine, f"number {text}")


class TestKeywordGatedIdentifiers:
    @pytest.mark.parametrize(
        ("cue", "value", "kind"),
        [
            ("PESEL", "44051401359", "pl_pesel"),
            ("CPF", "52998224725", "br_cpf"),
            ("SIN", "130 692 544", "ca_sin"),
            ("NHS number", "943 476 5919", "gb_nhs"),
            ("TFN", "123 456 782", "au_tfn"),
        ],
    )
    def test_number_counts_only_after_its_keyword(
        self, engine: DetectionEngine, cue: str, value: str, kind: str
    ) -> None:
        assert kind in kinds(engine, f"{cue}: {value}")
        assert kind not in kinds(engine, f"order {value}")
        # The keyword is context, not part of the finding.
        assert (kind, value) in found(engine, f"{cue}: {value}")

    def test_everyday_words_do_not_open_case_sensitive_gates(self, engine: DetectionEngine) -> None:
        assert "ca_sin" not in kinds(engine, "using sin 130 692 544")
        assert "ca_sin" in kinds(engine, "SIN 130 692 544")


class TestStructuredIdentifiers:
    @pytest.mark.parametrize(
        ("text", "kind"),
        [
            ("123.456.789-09", "br_cpf"),
            ("11.222.333/0001-81", "br_cnpj"),
            ("AB 12 34 56 C", "uk_nino"),
            ("131052-308T", "fi_hetu"),
            ("756.9217.0769.85", "ch_ahv"),
            ("20-12345678-6", "ar_cuit"),
            ("12.345.678-5", "cl_rut"),
            ("2345 6789 0124", "in_aadhaar"),
            ("02 476 291 358", "de_steuer_id"),
            ("1 85 05 78 006 048 30", "fr_nir"),
        ],
    )
    def test_structured_formats(self, engine: DetectionEngine, text: str, kind: str) -> None:
        assert (kind, text) in found(engine, f"id {text} on file")

    def test_nino_and_cf_are_case_rules(self, engine: DetectionEngine) -> None:
        assert "uk_nino" not in kinds(engine, "ab123456c")
        assert "it_codice_fiscale" in kinds(engine, "rssmra85t10a562s")


class TestSecretAnchors:
    """Anchor and length near-misses of the compatible secret rules stay negative."""

    @pytest.mark.parametrize(
        "text",
        ["AKIA1234", "ghp_short", "AIzaShort", "xoxb-short", "sk-tooShort", "sk-ant-tiny",
         "GOCSPX-tooShortBody", "npm_short", "sk_live_short", "a private key was mentioned"],
    )  # fmt: skip
    def test_near_misses(self, engine: DetectionEngine, text: str) -> None:
        assert kinds(engine, f"value {text} here") == set()

    def test_underscore_key_is_api_key_and_hyphen_key_is_secret(
        self, engine: DetectionEngine
    ) -> None:
        assert kinds(engine, "sk_live_" + "a1B2c3D4e5F6g7H8i9J0k1L2") == {"api_key"}
        assert kinds(engine, "sk-" + "b1C2d3E4f5G6h7I8j9K0l1M2n3") == {"secret"}
