# SPDX-License-Identifier: Apache-2.0
"""Attachments declared as text, through ``runtime.protect`` and piece by piece.

The gateway side is in ``test_proxy_text_attachments``; here the library call (findings,
audit, dry-run, tokens), the strict codec, the data URL reading and a property: any text
with an e-mail address in it, attached in any recognised shape and base64 form, comes out
encoded the same way without the address.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haechi.attachments import UNDECODABLE_TYPE, parse_media_type
from haechi.attachments.codec import Base64Form, decode_base64, parse_data_url
from haechi.crypto import init_key_file
from haechi.runtime import Runtime, create_runtime

EMAIL = "jane.doe@example.com"
NOTE = f"contact {EMAIL} today"
TOKEN = re.compile(r"\[TOKEN:(tok_[a-z0-9_]+_[0-9a-f]{16,})\]")


def _b64(text: str, form: Base64Form | None = None) -> str:
    return (form or Base64Form()).encode(text.encode())


def _gemini(data: str, mime_type: str = "text/plain") -> dict[str, Any]:
    return {"contents": [{"parts": [{"inlineData": {"mimeType": mime_type, "data": data}}]}]}


def _inline_data(payload: Any) -> str:
    data: str = payload["contents"][0]["parts"][0]["inlineData"]["data"]
    return data


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("attachments") / "keys.json"
    init_key_file(path)
    return path


def _runtime(keys: Path, mode: str = "enforce", **sections: Any) -> Runtime:
    policy = {"mode": mode, **sections.pop("policy", {})}
    return create_runtime(
        {
            "policy": policy,
            "keys": {"keyFile": str(keys)},
            "audit": {"sink": "memory"},
            "tokenVault": {"provider": "memory"},
            **sections,
        }
    )


async def _audit_records(runtime: Runtime) -> list[dict[str, Any]]:
    return [record async for record in runtime.audit.store.records()]


# -- the library call -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_tokenized_value_inside_an_attachment_is_reversible(keys: Path) -> None:
    runtime = _runtime(keys, policy={"actions": {"email": "tokenize"}})
    payload = _gemini(_b64(NOTE))
    result = await runtime.protect(payload)
    assert payload == _gemini(_b64(NOTE))  # the input is not modified
    text = base64.b64decode(_inline_data(result.payload), validate=True).decode()
    (token,) = TOKEN.findall(text)
    assert result.issued_tokens == (token,)
    assert text == f"contact [TOKEN:{token}] today"
    assert await runtime.detokenize(text, result.issued_tokens) == NOTE
    (finding,) = result.findings
    assert finding.path == ("contents", 0, "parts", 0, "inlineData", "data")
    assert NOTE[finding.start : finding.end] == EMAIL  # offsets count in the decoded text
    records = await _audit_records(runtime)
    (record,) = [record for record in records if record["id"] == result.audit_id]
    assert record["summary"]["byType"] == {"email": 1}
    assert EMAIL not in json.dumps(records)


@pytest.mark.anyio
async def test_dry_run_reports_and_returns_the_payload_itself(keys: Path) -> None:
    runtime = _runtime(keys, mode="dry-run")
    payload = _gemini(_b64(NOTE))
    result = await runtime.protect(payload)
    assert result.payload is payload
    assert result.summary["byType"] == {"email": 1}
    undecodable = _gemini("!!")
    result = await runtime.protect(undecodable)
    assert result.payload is undecodable
    assert not result.blocked
    assert result.summary["byAction"] == {"block": 1}


@pytest.mark.anyio
async def test_an_undecodable_attachment_blocks_whatever_the_policy(keys: Path) -> None:
    """No action, allowlist or confidence floor turns the refusal off."""
    runtime = _runtime(
        keys,
        policy={"defaultAction": "allow", "presets": [], "actions": {UNDECODABLE_TYPE: "allow"}},
        filters={"minConfidence": 1, "allowlist": ["QR=="]},
    )
    result = await runtime.protect(_gemini("QR=="))
    assert result.blocked
    assert result.payload is None
    (finding,) = result.findings
    assert (finding.type, finding.rule_id, finding.action) == (
        UNDECODABLE_TYPE,
        "attachment-invalid-base64",
        "block",
    )


@pytest.mark.anyio
async def test_encrypted_values_and_a_protected_key_beside_an_attachment(keys: Path) -> None:
    """The attachment is rewritten in place even when the key holding it is renamed."""
    runtime = _runtime(keys, policy={"actions": {"email": "encrypt"}})
    payload = {"files": {EMAIL: f"data:text/plain;base64,{_b64(NOTE)}"}}
    result = await runtime.protect(payload)
    ((key, url),) = result.payload["files"].items()
    assert key.startswith("[HAECHI_ENC:")
    header, data = url.split(",", 1)
    assert header == "data:text/plain;base64"
    text = base64.b64decode(data, validate=True).decode()
    assert re.fullmatch(r"contact \[HAECHI_ENC:[A-Za-z0-9_-]+\] today", text)
    assert EMAIL not in json.dumps(result.payload)


@pytest.mark.anyio
async def test_what_is_not_an_attachment_stays_as_written(keys: Path) -> None:
    runtime = _runtime(keys)
    cases: list[Any] = [
        # Anthropic's plain-text source: ``data`` is the text itself.
        {"source": {"type": "text", "media_type": "text/plain", "data": "not base64"}},
        # Binary types are not decoded.
        _gemini("!!not base64", "image/png"),
        {"file": {"file_data": "data:application/pdf;base64,!!"}},
        # Chat text that merely starts like a data URL.
        {"messages": [{"role": "user", "content": "data:text/plain;base64,SGk= means what?"}]},
        {"parts": [{"text": "data:text/plain;base64,SGk= means"}, {"text": " what?"}]},
    ]
    for payload in cases:
        result = await runtime.protect(payload)
        assert not result.blocked, payload
        assert result.payload is payload


@pytest.mark.anyio
async def test_the_config_key_off_leaves_attachments_encoded(keys: Path) -> None:
    runtime = _runtime(keys, filters={"scanTextAttachments": False})
    payload = _gemini(_b64(NOTE))
    result = await runtime.protect(payload)
    assert result.payload is payload
    assert result.summary["detectionCount"] == 0
    assert not (await runtime.protect(_gemini("QR=="))).blocked


@pytest.mark.anyio
async def test_a_data_url_header_is_scanned_with_its_text(keys: Path) -> None:
    runtime = _runtime(keys)
    url = f"data:text/plain;name={EMAIL};base64,{_b64(NOTE)}"
    result = await runtime.protect({"file_data": url})
    header, data = result.payload["file_data"].split(",", 1)
    assert header == "data:text/plain;name=[REDACTED:email];base64"
    assert base64.b64decode(data).decode() == "contact [REDACTED:email] today"
    assert result.summary["byType"] == {"email": 2}


@pytest.mark.anyio
async def test_a_whole_leaf_finding_keeps_the_data_url_shape(keys: Path) -> None:
    """Text that folds without an offset map (a ligature) gets a whole-leaf finding, which
    covers the header too: only the header's parameters are rewritten, never its type."""
    runtime = _runtime(keys)
    text = f"ﬁle of {EMAIL}"
    result = await runtime.protect({"file_data": f"data:text/plain;base64,{_b64(text)}"})
    header, data = result.payload["file_data"].split(",", 1)
    assert header == "data:text/plain;base64"
    assert base64.b64decode(data, validate=True).decode() == "[REDACTED:email]"
    url = f"data:text/plain;name=x;base64,{_b64(text)}"
    result = await runtime.protect({"file_data": url})
    assert result.payload["file_data"].startswith("data:text/plain;[REDACTED:email];base64,")


@pytest.mark.anyio
async def test_a_percent_encoded_data_url_is_protected(keys: Path) -> None:
    runtime = _runtime(keys)
    result = await runtime.protect({"url": "data:,contact%20jane.doe%40example.com"})
    assert result.payload == {"url": "data:,contact%20%5BREDACTED:email%5D"}


def test_scan_reads_attachments_as_protect_does(keys: Path) -> None:
    runtime = _runtime(keys)
    payload = {"a": _gemini(_b64(NOTE)), "b": _gemini("QR==")}
    found = {(finding.type, finding.path[0]) for finding in runtime.scan(payload)}
    assert found == {("email", "a"), (UNDECODABLE_TYPE, "b")}
    assert _runtime(keys, filters={"scanTextAttachments": False}).scan(payload) == []


# -- the codec ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("aGk=", Base64Form(urlsafe=False, padded=True)),
        ("aGk", Base64Form(urlsafe=False, padded=False)),
        ("_-8", Base64Form(urlsafe=True, padded=False)),
        ("_-8=", Base64Form(urlsafe=True, padded=True)),
        ("+/8=", Base64Form(urlsafe=False, padded=True)),
        ("", Base64Form()),
    ],
)
def test_base64_forms_are_read_and_kept(text: str, form: Base64Form) -> None:
    decoded = decode_base64(text)
    assert decoded is not None
    raw, found = decoded
    assert found == form
    assert found.encode(raw) == text


@pytest.mark.parametrize(
    "text",
    ["aGk= ", "aG k=", "aGk==", "aGl=", "a", "+_8=", "aGk=\n", "é", "aGk=aGk=", "a==="],
)
def test_non_canonical_base64_is_refused(text: str) -> None:
    assert decode_base64(text) is None


@pytest.mark.parametrize(
    ("url", "media_type", "is_base64", "data"),
    [
        ("data:text/plain;base64,aGk=", "text/plain", True, "aGk="),
        ("  DATA:Text/Plain ; BASE64,aGk=\n", "Text/Plain", True, "aGk="),
        ("data:;base64,aGk=", "text/plain", True, "aGk="),
        ("data:;charset=utf-8,hi", "text/plain;charset=utf-8", False, "hi"),
        ("data:,a,b", "text/plain", False, "a,b"),
        ("data:text/csv;name=x;base64,aGk=", "text/csv;name=x", True, "aGk="),
    ],
)
def test_data_urls_are_read_as_the_url_standard_reads_them(
    url: str, media_type: str, is_base64: bool, data: str
) -> None:
    parsed = parse_data_url(url)
    assert parsed is not None
    assert (parsed.media_type, parsed.base64, parsed.data) == (media_type, is_base64, data)


@pytest.mark.parametrize("text", ["data", "data:text/plain;base64", "https://x/data:,a", ""])
def test_other_strings_are_not_data_urls(text: str) -> None:
    assert parse_data_url(text) is None


@pytest.mark.parametrize(
    ("declared", "text", "utf8"),
    [
        ("text/plain", True, True),
        ("TEXT/Markdown; charset=UTF-8", True, True),
        ("application/json", True, True),
        ("application/x-ndjson", True, True),
        ("application/vnd.api+json", True, True),
        ("image/svg+xml", True, True),
        ("text/plain; charset=iso-8859-1", True, False),
        ("image/png", False, True),
        ("application/pdf", False, True),
        ("application/octet-stream", False, True),
    ],
)
def test_media_types(declared: str, text: bool, utf8: bool) -> None:
    media = parse_media_type(declared)
    assert (media.is_text, media.is_utf8) == (text, utf8)


# -- the property ---------------------------------------------------------------------------

forms = st.builds(Base64Form, urlsafe=st.booleans(), padded=st.booleans())
texts = st.tuples(st.text(max_size=40), st.text(max_size=40)).map(
    lambda around: f"{around[0]} {EMAIL} {around[1]}"
)
SHAPES = (
    "gemini",
    "gemini-snake",
    "anthropic",
    "openai-file",
    "mcp-blob",
    "responses-file",
    "ollama-image",
    "converse-document",
)
#: The shapes whose data is a raw base64 file field.
RAW_FILE_SHAPES = frozenset({"responses-file", "ollama-image", "converse-document"})
MEDIA_TYPES = ("text/plain", "text/csv; charset=utf-8", "application/json", "text/markdown")


def _attach(shape: str, media_type: str, data: str) -> dict[str, Any]:
    if shape == "gemini":
        return {"parts": [{"inlineData": {"mimeType": media_type, "data": data}}]}
    if shape == "gemini-snake":
        return {"parts": [{"inline_data": {"mime_type": media_type, "data": data}}]}
    if shape == "anthropic":
        return {"source": {"type": "base64", "media_type": media_type, "data": data}}
    if shape == "mcp-blob":
        return {"resource": {"uri": "file:///a", "mimeType": media_type, "blob": data}}
    # Raw base64 file fields declare no media type: their UTF-8 content is text.
    if shape == "responses-file":
        return {"input": [{"type": "input_file", "filename": "a.bin", "file_data": data}]}
    if shape == "ollama-image":
        return {"messages": [{"role": "user", "images": [data]}]}
    if shape == "converse-document":
        return {"document": {"format": "txt", "name": "a", "source": {"bytes": data}}}
    return {"file": {"file_data": f"data:{media_type};base64,{data}"}}


def _attached(shape: str, payload: dict[str, Any]) -> str:
    if shape == "gemini":
        data: str = payload["parts"][0]["inlineData"]["data"]
    elif shape == "gemini-snake":
        data = payload["parts"][0]["inline_data"]["data"]
    elif shape == "anthropic":
        data = payload["source"]["data"]
    elif shape == "mcp-blob":
        data = payload["resource"]["blob"]
    elif shape == "responses-file":
        data = payload["input"][0]["file_data"]
    elif shape == "ollama-image":
        data = payload["messages"][0]["images"][0]
    elif shape == "converse-document":
        data = payload["document"]["source"]["bytes"]
    else:
        data = payload["file"]["file_data"].split(",", 1)[1]
    return data


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=texts,
    form=forms,
    shape=st.sampled_from(SHAPES),
    media_type=st.sampled_from(MEDIA_TYPES),
)
def test_an_attached_email_always_comes_out_encoded_without_it(
    keys: Path, text: str, form: Base64Form, shape: str, media_type: str
) -> None:
    runtime = _runtime(keys, policy={"presets": [], "defaultAction": "redact"})
    sent = _b64(text, form)
    result = runtime.protect_sync(_attach(shape, media_type, sent))
    if shape in RAW_FILE_SHAPES and ("-" in sent or "_" in sent):
        # Raw file fields are standard base64 by protocol: the URL-safe alphabet blocks.
        assert result.summary["byType"] == {"undecodable_attachment": 1}
        return
    assert not result.blocked
    assert result.summary["byType"].get("email", 0) >= 1
    data = _attached(shape, result.payload)
    decoded = decode_base64(data)
    assert decoded is not None
    raw, found = decoded
    # Same alphabet; padding kept wherever it was visible.
    assert found.urlsafe == (form.urlsafe and ("-" in data or "_" in data))
    if not form.padded and len(sent) % 4:
        assert "=" not in data
    protected = raw.decode("utf-8")
    assert EMAIL not in protected
    assert "[REDACTED:email]" in protected
