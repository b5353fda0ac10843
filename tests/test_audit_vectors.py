# SPDX-License-Identifier: Apache-2.0
"""Interoperability vectors for the audit chain, computed without haechi's code.

``tests/vectors/audit/chain.canonical.txt`` holds, one per line, the canonical text of each
record (the event plus ``auditIntegrity`` without ``eventHash``) written out by hand:
keys sorted by UTF-16 code units (so ``😀`` sorts before ``｡``), non-ASCII kept raw, ``1e-7``
written as JavaScript writes it. Each ``eventHash`` in ``chain.jsonl`` is the unpadded
base64url SHA-256 of that line, computed with ``openssl dgst -sha256 -binary | basenc
--base64url``. ``chain.jsonl`` itself is written in deliberately varied JSON (escapes,
spaces, ``1e-07``, a blank line): the hash covers the canonical form, not the bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from haechi._canonical import canonical_json
from haechi.audit import build_integrity_record, payload_shape_hash, verify_chain, verify_records

VECTORS = Path(__file__).parent / "vectors" / "audit"
HASHES = [
    "LXIJ7GfhCZIPWe_LAM9fIT0pukWkZLXjCoJQdTmG5SI",
    "4s5lgskLMqBzv4lqHX4tCsrKxvHbPMDmJXjwiYsUqZI",
    "OyeHnsmv13h5UIlC1qkv-JOZv43gOxSmepFJ3jgo038",
]


def _records() -> list[dict[str, Any]]:
    lines = (VECTORS / "chain.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _canonical_lines() -> list[str]:
    return (VECTORS / "chain.canonical.txt").read_text(encoding="utf-8").splitlines()


def test_hand_computed_hashes_match_the_canonical_text() -> None:
    for line, expected in zip(_canonical_lines(), HASHES, strict=True):
        digest = hashlib.sha256(line.encode("utf-8")).digest()
        assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == expected


def test_our_canonical_form_is_the_hand_written_one() -> None:
    for record, line in zip(_records(), _canonical_lines(), strict=True):
        block = {k: v for k, v in record["auditIntegrity"].items() if k != "eventHash"}
        assert canonical_json({**record, "auditIntegrity": block}) == line


def test_verifier_accepts_the_vector_chain() -> None:
    result = verify_chain(VECTORS / "chain.jsonl")
    assert result.to_json() == {"valid": True, "records": 3, "headHash": HASHES[-1]}


def test_verifier_accepts_the_vector_anchors_and_skips_the_torn_line() -> None:
    result = verify_chain(VECTORS / "chain.jsonl", anchor_path=VECTORS / "chain.anchor.jsonl")
    assert result.valid
    assert result.to_json()["anchored"] == {"count": 3, "lastSequence": 3}


def test_builder_reproduces_every_vector_record() -> None:
    previous = None
    for record, expected in zip(_records(), HASHES, strict=True):
        event = {k: v for k, v in record.items() if k != "auditIntegrity"}
        rebuilt = build_integrity_record(previous, event)
        assert rebuilt["auditIntegrity"]["eventHash"] == expected
        assert rebuilt == record
        previous = rebuilt["auditIntegrity"]


def test_builder_output_verifies_through_the_independent_recipe() -> None:
    # Chain three events with our builder, then check each hash with the recipe alone.
    events: list[dict[str, Any]] = [
        {"id": "a", "text": "주민 데이터 — données", "deep": {"x": [{"y": {"z": [1, 2]}}]}},
        {"id": "b", "n": 0.000001, "big": 1e21, "neg": -0.0},
        {"id": "c", "keys": {"\U0001f600": 1, "\uff61": 2, "A": 3, "a": 4}},
    ]
    previous = None
    chain = []
    for event in events:
        record = build_integrity_record(previous, event)
        block = dict(record["auditIntegrity"])
        claimed = block.pop("eventHash")
        text = _independent_canonical({**record, "auditIntegrity": block})
        digest = hashlib.sha256(text.encode("utf-8")).digest()
        assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == claimed
        assert len(claimed) == 43
        chain.append(record)
        previous = record["auditIntegrity"]
    assert verify_records(chain).valid


def _independent_canonical(value: Any) -> str:
    """A second, deliberately different canonicalizer for the values used above."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: [unit for unit in k.encode("utf-16-be")])
        return (
            "{"
            + ",".join(
                f"{json.dumps(k, ensure_ascii=False)}:{_independent_canonical(value[k])}"
                for k in keys
            )
            + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(_independent_canonical(item) for item in value) + "]"
    if isinstance(value, float):
        # The three floats used above, as JavaScript's Number#toString writes them.
        return {0.000001: "0.000001", 1e21: "1e+21", 0.0: "0"}[value]
    return json.dumps(value, ensure_ascii=False)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # sha256 of the hand-written JSON.stringify text of the shape, first 12 hex:
        # {"1":{"type":"string","length":2},"2":[{"type":"number"},{"type":"boolean"},
        #  {"type":"null"}],"b":{"type":"string","length":3},"a":{"😀":{"type":"string",
        #  "length":1}}}  (integer-like keys first, UTF-16 string lengths)
        (
            {"b": "h\U0001f600", "2": [1, True, None], "a": {"\U0001f600": "x"}, "1": "ab"},
            "2182cc41d881",
        ),
    ],
)
def test_payload_shape_hash_vector(payload: Any, expected: str) -> None:
    assert payload_shape_hash(payload) == expected
