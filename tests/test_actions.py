# SPDX-License-Identifier: Apache-2.0
"""Exact replacement formats of every action, and how a payload is rewritten."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from haechi.actions import (
    Item,
    Transformer,
    apply_rewrites,
    encrypt_marker,
    mask,
    redact_marker,
    transform_payload,
    unvaulted_token_marker,
)
from haechi.crypto import LocalCryptoProvider, init_key_file
from haechi.models import Action, Detection, EntryKind, PathSegment
from haechi.payload import path_text


@pytest.fixture
def crypto(tmp_path: Path) -> LocalCryptoProvider:
    key_file = tmp_path / "keys.json"
    init_key_file(key_file)
    return LocalCryptoProvider(key_file)


def _item(
    detection_type: str,
    text: str,
    start: int,
    end: int,
    action: Action,
    path: tuple[PathSegment, ...] = (),
    kind: EntryKind = "value",
) -> Item:
    detection = Detection(
        detection_type, f"{detection_type}-rule", path, kind, start, end, 0.9, text[start:end]
    )
    return Item(detection, action)


def test_redact_marker() -> None:
    assert redact_marker("email") == "[REDACTED:email]"


@pytest.mark.parametrize(
    ("segment", "masked"),
    [
        ("PIN1234", "*******"),
        ("12345678", "********"),
        ("minji.kim@example.com", "mi" + "*" * 17 + "om"),
        ("010-1234-5678", "01*********78"),
        ("123456789", "12*****89"),  # 9 characters: at least four stars in the middle
        ("", ""),
    ],
)
def test_mask_keeps_the_length_and_at_most_four_characters(segment: str, masked: str) -> None:
    assert mask(segment) == masked
    assert len(mask(segment)) == len(segment)


def test_tokens_without_a_vault_are_one_way_labels() -> None:
    marker = unvaulted_token_marker("email", "a@b.co")
    assert marker == unvaulted_token_marker("email", "a@b.co")
    assert re.fullmatch(r"\[TOKEN:email:[0-9a-f]{12}\]", marker)
    assert "a@b.co" not in marker


def test_encrypt_marker_is_unpadded_base64url_of_compact_json() -> None:
    envelope = {"v": 2, "kid": "k", "ct": "é"}
    marker = encrypt_marker(envelope)
    match = re.fullmatch(r"\[HAECHI_ENC:([A-Za-z0-9_-]+)\]", marker)
    assert match is not None
    body = match.group(1)
    decoded = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")
    assert decoded == '{"v":2,"kid":"k","ct":"é"}'


@pytest.mark.anyio
async def test_encrypt_binds_context_path_type_and_rule(crypto: LocalCryptoProvider) -> None:
    context = {"direction": "request", "correlationId": "c-1"}
    transformer = Transformer(crypto=crypto, vault=None, context=context)
    text = "mail minji@example.com now"
    item = _item("email", text, 5, 22, "encrypt", path=("messages", 0))
    output = await transformer.transform_text(text, [item])
    match = re.fullmatch(r"mail \[HAECHI_ENC:([A-Za-z0-9_-]+)\] now", output)
    assert match is not None
    body = match.group(1)
    envelope = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    aad = {
        "context": context,
        "path": path_text(("messages", 0)),
        "type": "email",
        "ruleId": "email-rule",
    }
    assert crypto.decrypt(envelope, aad) == "minji@example.com"


@pytest.mark.anyio
async def test_a_context_function_is_called_once_and_only_for_encrypt_or_tokenize(
    crypto: LocalCryptoProvider,
) -> None:
    calls: list[int] = []

    def binding() -> dict[str, str]:
        calls.append(1)
        return {"direction": "request"}

    transformer = Transformer(crypto=crypto, vault=None, context=binding)
    text = "mail minji@example.com or seoul@example.com"
    redacted = await transformer.transform_text(text, [_item("email", text, 5, 22, "redact")])
    assert redacted == "mail [REDACTED:email] or seoul@example.com"
    assert calls == []
    items = [_item("email", text, 5, 22, "encrypt"), _item("email", text, 26, 43, "encrypt")]
    output = await transformer.transform_text(text, items)
    assert output.count("[HAECHI_ENC:") == 2
    assert calls == [1]


@pytest.mark.anyio
async def test_only_the_span_changes_and_allow_and_block_leave_text(
    crypto: LocalCryptoProvider,
) -> None:
    transformer = Transformer(crypto=crypto, vault=None, context={})
    text = "ping a@b.co at 010-1234-5678 before noon"
    items = [
        _item("email", text, 5, 11, "redact"),
        _item("phone", text, 15, 28, "mask"),
        _item("injection", text, 29, 35, "allow"),
        _item("card", text, 36, 40, "block"),
    ]
    assert await transformer.transform_text(text, items) == (
        "ping [REDACTED:email] at 01*********78 before noon"
    )
    assert transformer.issued_tokens == ()


@pytest.mark.anyio
async def test_overlapping_spans_are_replaced_once_with_the_strongest_action(
    crypto: LocalCryptoProvider,
) -> None:
    transformer = Transformer(crypto=crypto, vault=None, context={})
    text = "x AAAAABBBBBCCCCC y"
    items = [
        _item("email", text, 2, 12, "redact"),
        _item("secret", text, 7, 17, "tokenize"),
    ]
    output = await transformer.transform_text(text, items)
    assert output == "x " + unvaulted_token_marker("secret", "AAAAABBBBBCCCCC") + " y"


@pytest.mark.anyio
async def test_numbers_become_strings_and_keys_are_renamed_in_place(
    crypto: LocalCryptoProvider,
) -> None:
    payload: dict[str, Any] = {
        "before": 1,
        "a@b.co": "contact c@d.co",
        "[REDACTED:email]": "taken",
        "e@f.co": {"n": 4111111111111111},
        "after": 2,
    }
    original = copy.deepcopy(payload)
    items = [
        _item("email", "a@b.co", 0, 6, "redact", path=("a@b.co",), kind="key"),
        _item("email", "contact c@d.co", 8, 14, "redact", path=("a@b.co",)),
        _item("email", "e@f.co", 0, 6, "redact", path=("e@f.co",), kind="key"),
        _item("card", "4111111111111111", 0, 16, "mask", path=("e@f.co", "n"), kind="number"),
    ]
    transformer = Transformer(crypto=crypto, vault=None, context={})
    output = await transform_payload(payload, items, transformer)
    assert list(output) == [
        "before",
        "[REDACTED:email]#2",
        "[REDACTED:email]",
        "[REDACTED:email]#3",
        "after",
    ]
    assert output["[REDACTED:email]#2"] == "contact [REDACTED:email]"
    assert output["[REDACTED:email]#3"] == {"n": "41************11"}
    assert payload == original


@pytest.mark.anyio
async def test_nested_keys_are_renamed_deepest_first(crypto: LocalCryptoProvider) -> None:
    payload = {"a@b.co": {"c@d.co": {"e@f.co": "v"}}}
    items = [
        _item("email", key, 0, 6, "redact", path=path, kind="key")
        for key, path in (
            ("a@b.co", ("a@b.co",)),
            ("c@d.co", ("a@b.co", "c@d.co")),
            ("e@f.co", ("a@b.co", "c@d.co", "e@f.co")),
        )
    ]
    transformer = Transformer(crypto=crypto, vault=None, context={})
    marker = "[REDACTED:email]"
    assert await transform_payload(payload, items, transformer) == {marker: {marker: {marker: "v"}}}


@pytest.mark.anyio
async def test_a_bare_string_root_is_rewritten(crypto: LocalCryptoProvider) -> None:
    transformer = Transformer(crypto=crypto, vault=None, context={})
    items = [_item("email", "to a@b.co", 3, 9, "redact")]
    assert await transform_payload("to a@b.co", items, transformer) == "to [REDACTED:email]"


def test_unchanged_parts_are_shared_and_the_input_is_untouched() -> None:
    shared = {"deep": ["x"]}
    payload = {"keep": shared, "change": ["a", "b"]}
    output = apply_rewrites(payload, {("change", 1): "B"}, {})
    assert output == {"keep": {"deep": ["x"]}, "change": ["a", "B"]}
    assert output["keep"] is shared
    assert payload["change"] == ["a", "b"]
    assert apply_rewrites(payload, {}, {}) is payload
