# SPDX-License-Identifier: Apache-2.0
"""Property tests: valid checksum tokens are found at their exact offsets wherever they are
embedded, and random token-like text never yields a checksum-validated finding."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from haechi.detect import checksums
from haechi.detect.catalog_secrets import SECRET_RULES
from haechi.detect.secrets_validators import is_placeholder, jwt_header_ok
from tests.test_secrets_scan import GENERATOR, scan

_PROSE = st.text(alphabet=st.sampled_from(" \n.,:;()abcdefgh XYZ-éü한글"), max_size=40)
_TOKEN_ALPHABET = st.sampled_from(GENERATOR.ALNUM)
_CHECKSUM_MAKERS = {
    "github-token": GENERATOR.github_token,
    "grafana-service-account-token": GENERATOR.grafana_token,
    "age-secret-key": GENERATOR.age_key,
    "bip32-extended-private-key": GENERATOR.xprv,
    "pypi-token": GENERATOR.pypi_token,
}
_VALIDATED = [rule for rule in SECRET_RULES if rule.id in _CHECKSUM_MAKERS]
#: GitHub server-to-server and refresh tokens longer than the classic 40 characters have no
#: published checksum and are accepted on their shape alone (see github_classic_token_ok).
_SHAPE_ONLY = frozenset({"ghs_", "ghr_"})


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    rule_id=st.sampled_from(sorted(_CHECKSUM_MAKERS)),
    before=_PROSE,
    after=_PROSE,
)
def test_valid_checksum_tokens_are_found_at_exact_offsets(
    seed: int, rule_id: str, before: str, after: str
) -> None:
    token = _CHECKSUM_MAKERS[rule_id](random.Random(seed))
    text = f"{before} {token} {after}"
    start = len(before) + 1
    hits = [(h.start, h.end) for h in scan(text) if h.type in ("secret", "api_key")]
    assert (start, start + len(token)) in hits


@settings(max_examples=120, deadline=None)
@given(
    prefix=st.sampled_from(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]),
    body=st.text(alphabet=_TOKEN_ALPHABET, min_size=36, max_size=36),
)
def test_random_github_bodies_fail_the_checksum(prefix: str, body: str) -> None:
    assert not checksums.github_classic_token_ok(prefix + body)


@settings(max_examples=120, deadline=None)
@given(
    body=st.text(alphabet=_TOKEN_ALPHABET, min_size=32, max_size=32),
    tail=st.text(alphabet=st.sampled_from("0123456789abcdef"), min_size=8, max_size=8),
)
def test_random_grafana_tokens_fail_the_checksum(body: str, tail: str) -> None:
    assert not checksums.grafana_service_account_token_ok(f"glsa_{body}_{tail}")


@settings(max_examples=80, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(GENERATOR.ALNUM + "_-. "), max_size=300))
def test_random_token_like_text_has_no_checksum_validated_finding(text: str) -> None:
    for rule in _VALIDATED:
        for prefix in rule.prefilter:
            if prefix in _SHAPE_ONLY:
                continue
            candidate = f"x {prefix}{text} y"
            hits = scan(candidate, local=True)
            assert not [h for h in hits if h.rule_id in _CHECKSUM_MAKERS]


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80))
def test_validators_never_raise(text: str) -> None:
    for rule in SECRET_RULES:
        if rule.validator is not None:
            rule.validator(text)
    jwt_header_ok(text)
    is_placeholder(text)
    checksums.bech32_decode(text)
    checksums.base58check_decode(text)
