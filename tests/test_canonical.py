# SPDX-License-Identifier: Apache-2.0
"""json-stable-v1: the fast encoder path gives the exact bytes of the element-by-element one.

The exact path is pinned to the reference by the audit vectors
(``tests/test_audit_vectors.py``); here every value is encoded both ways and must agree,
including the values the fast path must refuse (exponent and integral floats, keys that
sort differently in UTF-16, lone surrogates, non-string keys, cycles).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haechi import _canonical, create_runtime
from haechi._canonical import (
    _exact,
    _fast_encodable,
    canonical_json,
    compact_json_encoder,
    plain_canonical_json,
    plain_float,
    plain_json_encoder,
    plain_key,
    sha256_hex,
    short_hash,
)

VECTORS = Path(__file__).parent / "vectors" / "audit"

# Text drawn from every plane, surrogates included, plus the characters whose order differs
# between code points and UTF-16 (U+E000..U+FFFF against astral characters).
_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec=None, categories=None),
        st.sampled_from(["\ue000", "\uffff", "\ufb01", "😀", "\U0010ffff", "\ud83d", "\ude00"]),
    ),
    max_size=8,
)
_FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e-7, 1e-6, 1e21, 1e20, 2.0, 1e16, 123456789012345680.0, 0.1]),
)
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), _FLOATS, _TEXT)
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_TEXT, children, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=600, deadline=None)
@given(_JSON)
def test_fast_and_exact_paths_agree(value: Any) -> None:
    assert canonical_json(value) == _exact(value)


# Keys that sort differently by code point and by UTF-16 code unit, mixed with plain ones.
_KEYS = st.text(alphabet=st.sampled_from(["a", "é", "\ue000", "\uffff", "😀", "\U0010ffff"]))


@given(st.dictionaries(_KEYS, st.integers(), min_size=2, max_size=6))
def test_key_order_is_utf16_order(value: dict[str, int]) -> None:
    text = canonical_json(value)
    keys = list(json.loads(text))
    assert keys == sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
    assert text == _exact(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1e-7, "a": 2.0}, '{"a":2,"b":1e-7}'),
        ({"x": 1e21, "y": -0.0}, '{"x":1e+21,"y":0}'),
        ({"\uffff": 1, "😀": 2}, '{"😀":2,"\uffff":1}'),
        (["\ud83d"], '["\\ud83d"]'),
        (["\ud83d\ude00"], '["😀"]'),
        ({"é": [True, None, 0.5]}, '{"é":[true,null,0.5]}'),
    ],
)
def test_values_the_fast_path_refuses_are_still_exact(value: Any, expected: str) -> None:
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    "value",
    [{1: "a"}, {"a": {2: "b"}}, {"a": b"bytes"}, {"a": {1, 2}}, float("nan"), [float("inf")]],
)
def test_non_json_values_are_type_errors(value: Any) -> None:
    with pytest.raises(TypeError):
        canonical_json(value)


def test_a_cycle_is_refused_not_looped_on() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(RecursionError):
        canonical_json(cycle)


def test_audit_records_take_the_fast_path() -> None:
    # The audit vectors hold exponent floats on purpose; ordinary records are plain.
    records = [
        json.loads(line)
        for line in (VECTORS / "chain.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    plain = [record for record in records if "1e-07" not in json.dumps(record)]
    assert plain
    for record in plain:
        assert _fast_encodable(record)
        assert canonical_json(record) == _exact(record)


def test_sha256_of_a_lone_surrogate_hashes_the_replacement_character() -> None:
    assert sha256_hex("a\ud800b") == sha256_hex("a\ufffdb")
    assert short_hash("\udfff") == short_hash("\ufffd")


def test_a_key_with_a_lone_surrogate_is_protected_not_failed() -> None:
    runtime = create_runtime(
        {
            "policy": {"mode": "enforce"},
            "audit": {"sink": "memory"},
            "tokenVault": {"provider": "memory"},
        }
    )
    result = runtime.protect_sync({"k\ud800 minji.kim@example.com": "x"})
    assert result.payload == {"k\ud800 [REDACTED:email]": "x"}


@settings(max_examples=300, deadline=None)
@given(_JSON, st.booleans())
def test_the_prebuilt_encoder_writes_what_json_writes(value: Any, sort_keys: bool) -> None:
    encode = compact_json_encoder(sort_keys=sort_keys)
    reference = json.JSONEncoder(
        ensure_ascii=False, allow_nan=False, sort_keys=sort_keys, separators=(",", ":")
    ).encode
    try:
        expected = reference(value)
    except (TypeError, ValueError) as exc:  # keys that do not sort together, NaN
        with pytest.raises(type(exc)):
            encode(value)
        return
    assert encode(value) == expected


@settings(max_examples=400, deadline=None)
@given(_JSON, st.booleans())
def test_plain_values_encode_to_the_bytes_of_the_library_text(value: Any, sort_keys: bool) -> None:
    if not _fast_encodable(value) or not _within_64_bits(value):
        return
    expected = compact_json_encoder(sort_keys=sort_keys)(value).encode()
    assert plain_json_encoder(sort_keys=sort_keys)(value) == expected


def _within_64_bits(value: Any) -> bool:
    if type(value) is int:
        return -(2**63) <= value < 2**64
    if isinstance(value, dict):
        return all(_within_64_bits(item) for item in value.values())
    if isinstance(value, list):
        return all(_within_64_bits(item) for item in value)
    return True


class _MisspellingOrjson:
    """An orjson whose output differs from the standard library's (spaces after colons)."""

    OPT_SORT_KEYS = 0

    @staticmethod
    def dumps(value: Any, option: int = 0) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ": ")).encode()


def test_an_orjson_that_writes_another_text_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_canonical, "orjson", _MisspellingOrjson)
    encode = plain_json_encoder(sort_keys=True)
    assert encode({"b": 1, "a": [0.5, "é"]}) == '{"a":[0.5,"é"],"b":1}'.encode()


def test_plain_values_skip_the_check_and_keep_their_text() -> None:
    value = {"b": [0.5, "é", None, True], "a": {"z": 1, "y": "\U0001f600"}}
    assert _fast_encodable(value)
    assert plain_canonical_json(value) == canonical_json(value) == _exact(value)


@pytest.mark.parametrize("bad", [{"a": {1, 2}}, {"a": b"x"}, [float("nan")]])
def test_the_prebuilt_encoder_refuses_non_json(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        compact_json_encoder(sort_keys=False)(bad)


def test_without_the_c_encoder_the_library_encoder_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_canonical, "c_make_encoder", None)
    encode = compact_json_encoder(sort_keys=True)
    assert isinstance(getattr(encode, "__self__", None), json.JSONEncoder)
    assert encode({"b": 1, "a": [0.5]}) == '{"a":[0.5],"b":1}'


@pytest.mark.parametrize(
    ("key", "plain"), [("abc", True), ("é\uffff", True), ("😀", False), ("k\ud800", False)]
)
def test_plain_keys_sort_alike_in_code_points_and_utf16(key: str, plain: bool) -> None:
    assert plain_key(key) is plain


@pytest.mark.parametrize(
    ("number", "plain"), [(0.5, True), (-1.25, True), (2.0, False), (1e-7, False), (-0.0, False)]
)
def test_plain_floats_print_alike_in_python_and_javascript(number: float, plain: bool) -> None:
    assert plain_float(number) is plain
