# SPDX-License-Identifier: Apache-2.0
"""The secret catalogue: every rule finds its generated credential with the right type and
exact span, rejects its near misses, and the corpus agrees with the catalogue."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from haechi.detect import checksums
from haechi.detect.catalog_secrets import SECRET_RULES
from haechi.detect.rule import Rule
from tests.test_secrets_scan import GENERATOR, Hit, scan, scan_rule

RULES = {rule.id: rule for rule in SECRET_RULES}
REFERENCE_TYPES = {
    "openai-like-key": "api_key",
    "aws-access-key-id": "api_key",
    "github-token": "secret",
    "google-api-key": "api_key",
    "slack-token": "secret",
    "anthropic-api-key": "secret",
    "openai-api-key": "secret",
    "google-oauth-client-secret": "secret",
    "sendgrid-api-key": "api_key",
    "twilio-sid": "api_key",
    "npm-token": "secret",
    "jwt": "secret",
    "pem-private-key": "secret",
    "bearer-token": "secret",
    "assignment-secret": "secret",
}


def _positive(rule_id: str, seed: int) -> tuple[str, int, int]:
    rng = random.Random(seed)
    snippet, value = GENERATOR.SPECS[rule_id].positive(rng)
    text, offset = GENERATOR.embed(snippet, rng)
    start = offset + snippet.index(value)
    return text, start, start + len(value)


def _secret_hits(text: str) -> list[Hit]:
    return [hit for hit in scan(text) if hit.type in ("secret", "api_key")]


def test_catalogue_has_over_100_rules_with_unique_kebab_ids() -> None:
    ids = [rule.id for rule in SECRET_RULES]
    assert len(ids) >= 100
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", rule_id) for rule_id in ids)


@pytest.mark.parametrize("rule", SECRET_RULES, ids=lambda rule: rule.id)
def test_rule_metadata(rule: Rule) -> None:
    assert rule.type in ("secret", "api_key")
    assert rule.is_hard_block
    assert rule.description
    assert "\n" not in rule.description
    assert rule.prefilter
    assert all(p == p.lower() for p in rule.prefilter)
    assert (rule.validator is None) == (rule.validator_name is None)
    assert 0 < rule.confidence <= 1


def test_reference_rules_keep_their_ids_and_types() -> None:
    assert {rid: RULES[rid].type for rid in REFERENCE_TYPES} == REFERENCE_TYPES


def test_every_rule_has_generated_samples() -> None:
    assert set(GENERATOR.SPECS) == set(RULES)


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_rule_finds_generated_credential_with_exact_span(rule_id: str) -> None:
    rule = RULES[rule_id]
    for seed in range(3):
        text, start, end = _positive(rule_id, seed)
        assert any(p in text.lower() for p in rule.prefilter), "prefilter would skip it"
        assert (start, end) in scan_rule(rule, text)
        hits = _secret_hits(text)
        assert any((h.start, h.end, h.type) == (start, end, rule.type) for h in hits), hits


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_rule_wins_its_own_sample_in_catalogue_order(rule_id: str) -> None:
    """Specific rules precede broad ones, so every rule is reachable (never shadowed)."""
    text, start, end = _positive(rule_id, 7)
    assert any((h.start, h.end, h.rule_id) == (start, end, rule_id) for h in scan(text, local=True))


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_rule_near_misses_are_not_secrets(rule_id: str) -> None:
    rng = random.Random(11)
    negatives = GENERATOR.SPECS[rule_id].negatives(rng)
    assert negatives
    for negative in negatives:
        text, _ = GENERATOR.embed(negative, rng)
        assert _secret_hits(text) == [], text


@pytest.mark.parametrize(
    "text",
    [
        "AKIA1234",
        "ghp_short",
        "AIzaShort",
        "xoxb-short",
        "xoxe-1234567890-abcdefghij",
        "sk-tooShort",
        "sk-ant-tiny",
        "GOCSPX-tooShortBody",
        "SG.abcdefghijklmnopqrstuv.SHORT",
        "AC" + "g" * 32,
        "ACzz1234567890abcdef1234567890abcdef",
        "npm_short",
        "sk_live_short",
        "Store the private key in the HSM and never paste your private key into chat.",
        "abc.def.ghi and aGVsbG8.d29ybGQ.Zm9v",
    ],
)
def test_reference_near_misses_stay_negative(text: str) -> None:
    assert _secret_hits(text) == []


@pytest.mark.parametrize(
    ("generator", "validator", "start"),
    [
        (GENERATOR.github_token, checksums.github_classic_token_ok, 4),
        (GENERATOR.grafana_token, checksums.grafana_service_account_token_ok, 5),
        (GENERATOR.age_key, checksums.age_secret_key_ok, 16),
        (GENERATOR.xprv, checksums.bip32_private_key_ok, 4),
    ],
    ids=["github", "grafana", "age", "bip32"],
)
def test_checksum_tokens_with_one_flipped_character_are_rejected(
    generator: object, validator: object, start: int
) -> None:
    rng = random.Random(3)
    for _ in range(40):
        token = generator(rng)  # type: ignore[operator]
        assert validator(token)  # type: ignore[operator]
        flipped = GENERATOR.flip(token, rng, start)
        if generator is GENERATOR.age_key:
            flipped = flipped.upper()
        assert not validator(flipped)  # type: ignore[operator]
        assert _secret_hits(f"key {flipped} end") == []


def test_github_checksum_catches_every_single_position_change() -> None:
    token = GENERATOR.github_token(random.Random(5))
    for index in range(4, len(token)):
        for replacement in "0aZ":
            if replacement != token[index]:
                changed = token[:index] + replacement + token[index + 1 :]
                assert not checksums.github_classic_token_ok(changed)


def test_checksum_known_vectors() -> None:
    # BIP-173 valid Bech32 test strings, BIP-32 test vector 1 master key, a Base58Check address.
    assert checksums.bech32_decode("A12UEL5L") == ("a", [])
    assert checksums.bech32_decode("a12uel5l") == ("a", [])
    assert checksums.bech32_decode("A12uEL5L") is None
    assert checksums.bech32_decode("a12uel5m") is None
    assert checksums.bip32_private_key_ok(
        "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"
    )
    assert checksums.base58check_decode("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2") is not None
    assert checksums.base58check_decode("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3") is None
    assert checksums.base62_encode(0, 6) == "000000"
    assert checksums.base62_encode(61, 2) == "0z"


def test_pypi_macaroon_validation() -> None:
    rng = random.Random(9)
    assert checksums.pypi_macaroon_ok(GENERATOR.pypi_token(rng))
    assert checksums.pypi_macaroon_ok(GENERATOR.pypi_token(rng, b"test.pypi.org"))
    assert not checksums.pypi_macaroon_ok("pypi-AgE" + "A" * 60)
    assert not checksums.pypi_macaroon_ok("pypi-" + GENERATOR.b64url(b"\x01\x01\x08pypi.org" * 6))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("connect with db_password=Tr0ub4dor&3 later", "Tr0ub4dor"),
        ("settings my_api_key: abcdEFGH1234ijkl and more", "abcdEFGH1234ijkl"),
        ('the body was {"password": "correct horse battery"} ok', "correct horse battery"),
        ('escaped {\\"password\\": \\"s3cr3t-Passw0rd\\"} inside', "s3cr3t-Passw0rd"),
        ("'client_secret' => 'zZ9yY8xX7wW6vV5u'", "zZ9yY8xX7wW6vV5u"),
        ('apiToken := "Qw3rTy8UiOp0AsDf"', "Qw3rTy8UiOp0AsDf"),
        ("export GITLAB_ACCESS_TOKEN=q1w2e3r4t5y6u7i8o9p0.", "q1w2e3r4t5y6u7i8o9p0"),
        ("DB_PASSWD: hunter22", "hunter22"),
        ("X-Api-Key: 0123abcd4567efgh89ij", "0123abcd4567efgh89ij"),
        ("https://example.com/cb?access_token=Zx81Kq02Lm93Np47&state=1", "Zx81Kq02Lm93Np47"),
        ("Server=db;User Id=sa;Pwd=Pa55word!;Database=crm", "Pa55word!"),
    ],
)
def test_assignment_forms_are_caught_with_exact_value_span(text: str, value: str) -> None:
    start = text.index(value)
    hits = _secret_hits(text)
    assert [(h.start, h.end, h.type) for h in hits] == [(start, start + len(value), "secret")]


@pytest.mark.parametrize(
    "text",
    [
        "password: ********",
        "api_key=${OPENAI_API_KEY}",
        "password = os.environ['DB_PASSWORD']",
        "password = getpass()",
        "token = settings.GITHUB_TOKEN_VALUE",
        "api_key: YOUR_API_KEY_HERE",
        "secret_key = <your-secret-key>",
        '"password": "{{ .Values.dbPassword }}"',
        "token_count = 1234567890123",
        "max_tokens: 409600000000",
        "password_policy: at-least-twelve",
        'eos_token: "<|endoftext|>"',
        "next_page_token: CiAKGjBpNDd2Nmp2Zml2cXRwYjBp",
        "id token is [TOKEN:tok_email_a6d376389bb21964]",
        "[REDACTED:secret] was here",
        "PWD=/home/builder/projects/app",
        '"password": "string"',
    ],
)
def test_assignment_placeholders_and_look_alikes_are_not_secrets(text: str) -> None:
    assert _secret_hits(text) == []


def test_placeholder_never_hides_a_provider_secret() -> None:
    token = GENERATOR.github_token(random.Random(1))
    hits = _secret_hits(f"api_key=${{{token}}}")
    assert [(h.start, h.end) for h in hits] == [(10, 10 + len(token))]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_token_any_casing(scheme: str) -> None:
    text = f"Authorization: {scheme} abc123DEF456ghi789"
    hits = _secret_hits(text)
    assert [(h.start, h.end, h.rule_id) for h in hits] == [(15, len(text), "bearer-token")]


def test_bearer_in_prose_is_not_a_secret() -> None:
    assert _secret_hits("the bearer internationalization committee met") == []


def test_private_key_block_is_found_whole_and_truncated_header_still_blocks() -> None:
    pem = GENERATOR._pem(random.Random(2), "OPENSSH ")
    text = f"here:\n{pem}\nbye"
    assert [(h.start, h.end) for h in _secret_hits(text)] == [(6, 6 + len(pem))]
    truncated = pem[: pem.index("\n", 40)]
    hits = _secret_hits(truncated)
    assert [h.rule_id for h in hits] == ["pem-private-key"]
    mismatched = pem.replace("END OPENSSH", "END RSA")
    assert [h.rule_id for h in _secret_hits(mismatched)] == ["pem-private-key"]


@pytest.mark.parametrize("maker", ["_pgp", "_putty"])
def test_pgp_and_putty_blocks_whole_or_header_only(maker: str) -> None:
    block = getattr(GENERATOR, maker)(random.Random(4))
    assert [(h.start, h.end) for h in _secret_hits(block)] == [(0, len(block))]
    header = block.splitlines()[0]
    assert [(h.start, h.end) for h in _secret_hits(header + "\n(cut)")] == [(0, len(header))]


def test_database_url_finding_is_the_password_only() -> None:
    text = "DATABASE_URL=postgres://svc:p@ss:w0rd@db.example.com:5432/app?sslmode=require"
    hits = _secret_hits(text)
    assert [(text[h.start : h.end], h.rule_id) for h in hits] == [
        ("p@ss:w0rd", "postgres-url-password")
    ]


def test_redis_url_without_user_and_sas_token_in_either_order() -> None:
    text = "redis://:Sup3rS3cret@cache:6379/0"
    assert [text[h.start : h.end] for h in _secret_hits(text)] == ["Sup3rS3cret"]
    sig = GENERATOR._azure_sas(random.Random(1))
    reordered = f"https://a.blob.core.windows.net/c?sig={sig}&sp=r&sv=2022-11-02&sr=b"
    assert [reordered[h.start : h.end] for h in _secret_hits(reordered)] == [sig]


CORPUS = Path(__file__).resolve().parents[1] / "benchmarks" / "corpus" / "secrets.jsonl"


def test_corpus_is_reproducible_from_its_generator() -> None:
    assert CORPUS.read_text(encoding="utf-8") == GENERATOR.render(GENERATOR.build_corpus())


def test_corpus_expectations_match_the_catalogue() -> None:
    lines = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    assert len(lines) > 2 * len(SECRET_RULES)
    wrong = []
    for case in lines:
        found = {h.type for h in scan(case["text"])}
        got = {kind: kind in found for kind in ("secret", "api_key")}
        if got != case["expect"]:
            wrong.append(case["id"])
    assert wrong == []


def test_catalogue_document_lists_every_rule() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "secrets-catalogue.md").read_text(
        encoding="utf-8"
    )
    assert [rule.id for rule in SECRET_RULES if f"| `{rule.id}` |" not in doc] == []
    assert f"haechi ships {len(SECRET_RULES)} secret rules" in doc
