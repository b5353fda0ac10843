# SPDX-License-Identifier: Apache-2.0
"""Attachments declared as text, through a gateway on a real socket.

LLM APIs take text files as base64 (Gemini ``inlineData``, Anthropic ``base64`` document
sources, OpenAI ``file_data`` data URLs) and the model reads them as text. The gateway
decodes them, protects them like any other text and forwards them encoded as they came; one
that does not decode as declared is refused. See ``docs/detection.md`` ("Text attachments").
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.upstream_server import Gateway, Reply, gateway_in_front

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
NOTE = f"contact {EMAIL} about the invoice"
REDACTED_NOTE = "contact [REDACTED:email] about the invoice"
GEMINI = {"target": {"type": "gemini"}}
GEMINI_PATH = "/v1beta/models/gemini-pro:generateContent"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _strict_text(data: str) -> str:
    """``data`` decoded the strict way (fails on anything but canonical base64)."""
    raw = base64.b64decode(data, validate=True)
    assert base64.b64encode(raw).decode() == data
    return raw.decode("utf-8")


def _gemini_body(mime_type: str, data: str) -> dict[str, Any]:
    attachment = {"inlineData": {"mimeType": mime_type, "data": data}}
    return {"contents": [{"role": "user", "parts": [{"text": "summarise"}, attachment]}]}


def _gemini_data(gateway: Gateway) -> dict[str, Any]:
    inline: dict[str, Any] = gateway.upstream.received[-1].json()["contents"][0]["parts"][1][
        "inlineData"
    ]
    return inline


def _protect_records(gateway: Gateway) -> list[dict[str, Any]]:
    return [record for record in gateway.audit() if "detections" in record]


def test_a_card_in_a_gemini_text_attachment_blocks(tmp_path: Path) -> None:
    """The reviewer's bypass: the same text as a plain part is blocked, so as an
    attachment too, and nothing reaches the upstream."""
    body = _gemini_body("text/plain", _b64(f"{NOTE}, card {CARD}, call +1 415 555 0132"))
    with gateway_in_front(tmp_path, GEMINI) as gateway:
        response = httpx.post(f"{gateway.url}{GEMINI_PATH}", json=body)
        assert response.status_code == 403
        assert response.json()["error"] == "haechi_policy_block"
        assert response.json()["summary"]["byType"]["card"] == 1
        assert gateway.upstream.received == []
        (record,) = _protect_records(gateway)
        assert record["blocked"] is True
        assert {d["type"] for d in record["detections"]} >= {"card", "email"}
        assert EMAIL not in gateway.audit_text()
        assert "4111" not in gateway.audit_text()


def test_a_gemini_text_attachment_goes_upstream_protected(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, GEMINI) as gateway:
        body = _gemini_body("text/plain; charset=utf-8", _b64(NOTE))
        response = httpx.post(f"{gateway.url}{GEMINI_PATH}", json=body)
        assert response.status_code == 200
        inline = _gemini_data(gateway)
        assert inline["mimeType"] == "text/plain; charset=utf-8"
        assert _strict_text(inline["data"]) == REDACTED_NOTE
        (record,) = _protect_records(gateway)
        assert record["summary"]["byType"] == {"email": 1}


def test_a_tokenized_value_is_vaulted_inside_the_attachment(tmp_path: Path) -> None:
    config = {**GEMINI, "policy": {"actions": {"email": "tokenize"}}}
    with gateway_in_front(tmp_path, config) as gateway:
        body = _gemini_body("text/markdown", _b64(NOTE))
        assert httpx.post(f"{gateway.url}{GEMINI_PATH}", json=body).status_code == 200
        text = _strict_text(_gemini_data(gateway)["data"])
        assert EMAIL not in text
        assert text.startswith("contact [TOKEN:")
        token = text.split("[TOKEN:", 1)[1].split("]", 1)[0]
        assert text == f"contact [TOKEN:{token}] about the invoice"
        assert token in Path(gateway.runtime.config.token_vault.path).read_text()


def test_an_openai_file_data_url_goes_upstream_protected(tmp_path: Path) -> None:
    part = {
        "type": "file",
        "file": {"filename": "note.txt", "file_data": f"data:text/plain;base64,{_b64(NOTE)}"},
    }
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": [part]}]}
    with gateway_in_front(tmp_path, {"target": {"type": "openai-compatible"}}) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body)
        assert response.status_code == 200
        sent = gateway.upstream.received[-1].json()["messages"][0]["content"][0]["file"]
        header, data = sent["file_data"].split(",", 1)
        assert header == "data:text/plain;base64"
        assert _strict_text(data) == REDACTED_NOTE
        assert sent["filename"] == "note.txt"


def test_an_anthropic_base64_document_goes_upstream_protected(tmp_path: Path) -> None:
    source = {"type": "base64", "media_type": "text/plain", "data": _b64(NOTE)}
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": [{"type": "document", "source": source}]}],
    }
    with gateway_in_front(tmp_path, {"target": {"type": "anthropic"}}) as gateway:
        response = httpx.post(f"{gateway.url}/v1/messages", json=body)
        assert response.status_code == 200
        sent = gateway.upstream.received[-1].json()["messages"][0]["content"][0]["source"]
        assert sent["media_type"] == "text/plain"
        assert sent["type"] == "base64"
        assert _strict_text(sent["data"]) == REDACTED_NOTE


def _post_raw(gateway: Gateway, raw: bytes) -> httpx.Response:
    """POST ``raw`` as it is, so that the test can compare it with what the upstream got."""
    headers = {"content-type": "application/json"}
    return httpx.post(f"{gateway.url}{GEMINI_PATH}", content=raw, headers=headers)


def test_a_binary_media_type_is_left_alone(tmp_path: Path) -> None:
    """An image is not text: its bytes go upstream exactly as sent."""
    with gateway_in_front(tmp_path, GEMINI) as gateway:
        body = _gemini_body("image/png", _b64(NOTE))
        raw = json.dumps(body).encode()
        assert _post_raw(gateway, raw).status_code == 200
        assert gateway.upstream.received[-1].body == raw


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        ("not base64 at all!", "attachment-invalid-base64"),
        (_b64(NOTE) + "\n", "attachment-invalid-base64"),  # whitespace is not base64
        ("QR==", "attachment-invalid-base64"),  # stray bits: not what an encoder writes
        (base64.b64encode(b"\xff\xfe jane").decode(), "attachment-invalid-utf8"),
    ],
)
def test_an_undecodable_text_attachment_is_refused_and_audited(
    tmp_path: Path, data: str, rule: str
) -> None:
    with gateway_in_front(tmp_path, GEMINI) as gateway:
        response = httpx.post(f"{gateway.url}{GEMINI_PATH}", json=_gemini_body("text/csv", data))
        assert response.status_code == 403
        assert response.json()["error"] == "haechi_policy_block"
        assert response.json()["summary"]["byType"] == {"undecodable_attachment": 1}
        assert gateway.upstream.received == []
        (record,) = _protect_records(gateway)
        assert record["blocked"] is True
        assert [(d["type"], d["ruleId"], d["action"]) for d in record["detections"]] == [
            ("undecodable_attachment", rule, "block")
        ]


def test_an_attachment_in_another_charset_is_refused(tmp_path: Path) -> None:
    body = _gemini_body("text/plain;charset=ISO-8859-1", _b64("jane"))
    with gateway_in_front(tmp_path, GEMINI) as gateway:
        response = httpx.post(f"{gateway.url}{GEMINI_PATH}", json=body)
        assert response.status_code == 403
        assert gateway.upstream.received == []
        (record,) = _protect_records(gateway)
        assert record["detections"][0]["ruleId"] == "attachment-unsupported-charset"


def test_dry_run_counts_attachment_findings_and_changes_nothing(tmp_path: Path) -> None:
    config = {**GEMINI, "mode": "dry-run", "policy": {"mode": "dry-run"}}
    with gateway_in_front(tmp_path, config) as gateway:
        raw = json.dumps(_gemini_body("text/plain", _b64(f"{NOTE}, card {CARD}"))).encode()
        assert _post_raw(gateway, raw).status_code == 200
        assert gateway.upstream.received[-1].body == raw
        (record,) = _protect_records(gateway)
        assert record["enforced"] is False
        assert record["blocked"] is False
        assert record["summary"]["byType"] == {"email": 1, "card": 1}


def test_the_config_key_off_forwards_attachments_as_before(tmp_path: Path) -> None:
    config = {**GEMINI, "filters": {"scanTextAttachments": False}}
    with gateway_in_front(tmp_path, config) as gateway:
        data = _b64(f"{NOTE}, card {CARD}")
        response = httpx.post(f"{gateway.url}{GEMINI_PATH}", json=_gemini_body("text/plain", data))
        assert response.status_code == 200
        assert _gemini_data(gateway)["data"] == data
        garbage = "not base64 at all!"
        body = _gemini_body("text/plain", garbage)
        assert httpx.post(f"{gateway.url}{GEMINI_PATH}", json=body).status_code == 200
        assert _gemini_data(gateway)["data"] == garbage


def test_a_text_attachment_in_an_answer_is_protected(tmp_path: Path) -> None:
    """Answers go through the same protect step: a model's text attachment is decoded and
    protected before the client sees it."""
    answer = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"inlineData": {"mimeType": "text/plain", "data": _b64(NOTE)}}],
                },
                "index": 0,
                "finishReason": "STOP",
            }
        ]
    }
    config = {**GEMINI, "responseProtection": {"enabled": True}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(body=json.dumps(answer).encode()))
        body = {"contents": [{"role": "user", "parts": [{"text": "write the note"}]}]}
        response = httpx.post(f"{gateway.url}{GEMINI_PATH}", json=body)
        assert response.status_code == 200
        part = response.json()["candidates"][0]["content"]["parts"][0]
        assert part["inlineData"]["mimeType"] == "text/plain"
        assert _strict_text(part["inlineData"]["data"]) == REDACTED_NOTE
