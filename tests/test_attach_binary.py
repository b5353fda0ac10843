# SPDX-License-Identifier: Apache-2.0
"""Binary attachments under ``filters.binaryAttachments``, through a gateway on a real socket.

Detection cannot read an image, audio or a PDF: a PDF declared ``application/pdf`` whose
text is not compressed carries its text to the model all the same. With ``forward`` (the
default) such attachments go upstream as sent; with ``block`` every one of them refuses the
request or answer holding it, audited by where it was (the rule id), never by what it held.
Text attachments are still protected, and base64-looking strings outside the fields that
hold files are no attachments. See ``docs/detection.md`` ("Text attachments").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import anyio
import httpx
import ollama
import openai
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from haechi.config import ConfigError, default_config, parse_config
from haechi.mcp import POLICY_BLOCK
from tests.mcp_servers.harness import TIMEOUT_S
from tests.mcp_servers.tool_server import http_app
from tests.stream_fixtures import streamed_through
from tests.test_attach_file_fields import (
    CHAT_PATH,
    CONVERSE_PATH,
    NOTE,
    PDF_LIKE,
    PNG,
    REDACTED_NOTE,
    _assert_refused,
    _b64,
    _chat,
    _chat_file,
    _converse,
    _openai,
    _strict_text,
)
from tests.test_mcp_http import gateway_before
from tests.upstream_server import Gateway, Reply, gateway_in_front

GEMINI_PATH = "/v1beta/models/gemini-pro:generateContent"
#: The start of a WAV file, as OpenAI's ``input_audio`` carries it.
WAV = b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00" + bytes(range(128, 256))
PDF_URL = f"data:application/pdf;base64,{_b64(PDF_LIKE)}"
PNG_URL = f"data:image/png;base64,{_b64(PNG)}"
UNINSPECTABLE = {"uninspectable_attachment": 1}

Send = Callable[[Gateway], httpx.Response]


def _binary(setting: str, target: str = "openai-compatible") -> dict[str, Any]:
    return {"target": {"type": target}, "filters": {"binaryAttachments": setting}}


def _gemini(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": "summarise"}, *parts]}]}


def _post(path: str, body: dict[str, Any]) -> Send:
    """Send ``body`` to ``path`` as it is."""
    return lambda gateway: httpx.post(f"{gateway.url}{path}", json=body)


def _openai_chat(part: dict[str, Any]) -> Send:
    """Send ``part`` in a user message with the official OpenAI client."""

    def send(gateway: Gateway) -> httpx.Response:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            _openai(gateway).chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": [part]}]
            )
        return refused.value.response

    return send


def _openai_responses(part: dict[str, Any]) -> Send:
    """Send ``part`` in a Responses input with the official OpenAI client."""

    def send(gateway: Gateway) -> httpx.Response:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            _openai(gateway).responses.create(
                model="gpt-4o", input=[{"role": "user", "content": [part]}]
            )
        return refused.value.response

    return send


def _anthropic_document(media_type: str, data: str) -> Send:
    """Send a ``base64`` document source with the official Anthropic client."""

    def send(gateway: Gateway) -> httpx.Response:
        client = anthropic.Anthropic(base_url=gateway.url, api_key="sk-test", max_retries=0)
        source = {"type": "base64", "media_type": media_type, "data": data}
        with pytest.raises(anthropic.PermissionDeniedError) as refused:
            client.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=64,
                messages=[{"role": "user", "content": [{"type": "document", "source": source}]}],
            )
        return refused.value.response

    return send


BINARY_SHAPES = [
    pytest.param(
        _openai_chat({"type": "image_url", "image_url": {"url": PNG_URL}}),
        "attachment-binary-data-url",
        id="openai-image-url",
    ),
    pytest.param(
        _openai_chat(_chat_file(PDF_URL, "report.pdf")),
        "attachment-binary-data-url",
        id="openai-pdf-data-url",
    ),
    pytest.param(
        _openai_chat({"type": "input_audio", "input_audio": {"data": _b64(WAV), "format": "wav"}}),
        "attachment-binary-input-audio",
        id="openai-input-audio",
    ),
    pytest.param(
        _openai_responses({"type": "input_file", "filename": "a.png", "file_data": _b64(PNG)}),
        "attachment-binary-file-data",
        id="openai-raw-file-data",
    ),
    pytest.param(
        _anthropic_document("application/pdf", _b64(PDF_LIKE)),
        "attachment-binary-inline-data",
        id="anthropic-pdf",
    ),
    pytest.param(
        _post(
            GEMINI_PATH,
            _gemini({"inlineData": {"mimeType": "application/pdf", "data": _b64(PDF_LIKE)}}),
        ),
        "attachment-binary-inline-data",
        id="gemini-pdf",
    ),
    pytest.param(
        _post(
            GEMINI_PATH, _gemini({"inline_data": {"mime_type": "audio/mpeg", "data": _b64(WAV)}})
        ),
        "attachment-binary-inline-data",
        id="gemini-audio",
    ),
    pytest.param(
        _post(
            CONVERSE_PATH, _converse({"image": {"format": "png", "source": {"bytes": _b64(PNG)}}})
        ),
        "attachment-binary-bytes",
        id="converse-image",
    ),
]


def _binary_leaves() -> list[str]:
    """The base64 of every binary content the tests send."""
    return [_b64(content) for content in (PNG, WAV, PDF_LIKE)]


def _assert_blocked_without_content(gateway: Gateway, response: httpx.Response, rule: str) -> None:
    """Refused with nothing forwarded, audited with the rule and none of the content."""
    _assert_refused(gateway, response, UNINSPECTABLE)
    (record,) = [record for record in gateway.audit() if "detections" in record]
    assert [(d["type"], d["ruleId"], d["action"]) for d in record["detections"]] == [
        ("uninspectable_attachment", rule, "block")
    ]
    audit = gateway.audit_text()
    assert all(leaf[:24] not in audit for leaf in _binary_leaves())


def test_binary_attachments_go_upstream_as_sent_by_default(tmp_path: Path) -> None:
    """``forward`` is the default and keeps what was sent byte for byte: the PDF's key
    too, which is why ``block`` exists."""
    assert default_config().filters.binary_attachments == "forward"
    body = _chat(
        {"type": "image_url", "image_url": {"url": PNG_URL}},
        {"type": "input_audio", "input_audio": {"data": _b64(WAV), "format": "wav"}},
        _chat_file(PDF_URL, "report.pdf"),
        _chat_file(_b64(PNG), "a.png"),
    )
    raw = json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    with gateway_in_front(tmp_path, _binary("forward")) as gateway:
        response = httpx.post(f"{gateway.url}{CHAT_PATH}", content=raw, headers=headers)
        assert response.status_code == 200
        assert gateway.upstream.last.body == raw


@pytest.mark.parametrize(("send", "rule"), BINARY_SHAPES)
def test_a_binary_attachment_blocks_under_block(tmp_path: Path, send: Send, rule: str) -> None:
    with gateway_in_front(tmp_path, _binary("block")) as gateway:
        _assert_blocked_without_content(gateway, send(gateway), rule)


def test_ollama_images_that_are_not_text_block_and_text_ones_are_protected(
    tmp_path: Path,
) -> None:
    with gateway_in_front(tmp_path, _binary("block", "ollama")) as gateway:
        client = ollama.Client(host=gateway.url)
        client.generate(model="llava", prompt="describe", images=[NOTE.encode()])
        (image,) = gateway.upstream.last.json()["images"]
        assert _strict_text(image) == REDACTED_NOTE
        message = {"role": "user", "content": "describe", "images": [NOTE.encode(), PNG]}
        with pytest.raises(ollama.ResponseError) as refused:
            client.chat(model="llava", messages=[message])
        assert refused.value.status_code == 403
        assert len(gateway.upstream.received) == 1
        records = [record for record in gateway.audit() if "detections" in record]
        assert [(d["type"], d["ruleId"]) for d in records[-1]["detections"]] == [
            ("email", "email"),
            ("uninspectable_attachment", "attachment-binary-images"),
        ]
        assert _b64(PNG)[:24] not in gateway.audit_text()


def test_text_attachments_are_still_protected_under_block(tmp_path: Path) -> None:
    text_file = {"inlineData": {"mimeType": "text/plain", "data": _b64(NOTE)}}
    with gateway_in_front(tmp_path, _binary("block", "gemini")) as gateway:
        assert _post(GEMINI_PATH, _gemini(text_file))(gateway).status_code == 200
        sent = gateway.upstream.last.json()["contents"][0]["parts"][1]["inlineData"]
        assert _strict_text(sent["data"]) == REDACTED_NOTE
        _openai(gateway).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": [_chat_file(_b64(NOTE))]}]
        )
        (part,) = gateway.upstream.last.json()["messages"][0]["content"]
        assert _strict_text(part["file"]["file_data"]) == REDACTED_NOTE


def test_base64_outside_file_fields_is_not_an_attachment_under_block(tmp_path: Path) -> None:
    """A text part, a tool's argument named like a file field and a message's text that
    starts like a data URL are read as written, whatever their base64 holds."""
    tool_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "store", "arguments": json.dumps({"file_data": _b64(PNG)})},
    }
    messages = [
        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": "call_1", "content": _b64(PNG)},
        {"role": "user", "content": [{"type": "text", "text": _b64(PNG)}]},
        {"role": "user", "content": PNG_URL},
    ]
    raw = json.dumps({"model": "gpt-4o", "messages": messages}).encode()
    headers = {"content-type": "application/json"}
    with gateway_in_front(tmp_path, _binary("block")) as gateway:
        response = httpx.post(f"{gateway.url}{CHAT_PATH}", content=raw, headers=headers)
        assert response.status_code == 200
        assert gateway.upstream.last.body == raw


def test_a_binary_attachment_in_a_protected_answer_is_refused(tmp_path: Path) -> None:
    image = {"inlineData": {"mimeType": "image/png", "data": _b64(PNG)}}
    answer = {"candidates": [{"content": {"role": "model", "parts": [image]}, "index": 0}]}
    config = {**_binary("block", "gemini"), "responseProtection": {"enabled": True}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(body=json.dumps(answer).encode()))
        response = _post(GEMINI_PATH, _gemini())(gateway)
        assert response.status_code == 502
        assert response.json()["error"] == "haechi_response_policy_block"
        assert response.json()["summary"]["byType"] == UNINSPECTABLE
        assert _b64(PNG)[:24] not in response.text
        record = [record for record in gateway.audit() if "detections" in record][-1]
        assert record["operation"].startswith("response:")
        assert record["blocked"] is True
        assert [(d["type"], d["ruleId"]) for d in record["detections"]] == [
            ("uninspectable_attachment", "attachment-binary-inline-data")
        ]
        assert _b64(PNG)[:24] not in gateway.audit_text()


@pytest.mark.anyio
async def test_an_image_a_tool_returns_is_refused_under_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The official MCP server sends the image as base64 beside its ``mimeType``; the
    official client gets a policy block, and the session goes on."""
    monkeypatch.setenv("HAECHI_TEST_RECORD", str(tmp_path / "received.jsonl"))
    overrides = {"filters": {"binaryAttachments": "block"}}
    with gateway_before(http_app(), tmp_path, overrides) as url, anyio.fail_after(TIMEOUT_S):
        async with (
            streamable_http_client(url) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            with pytest.raises(MCPError) as blocked:
                await session.call_tool("image", {})
            assert blocked.value.code == POLICY_BLOCK
            echoed = await session.call_tool("echo", {"text": "still here"})
            assert echoed.content[0].text == "still here"
    audit = (tmp_path / ".haechi" / "audit.jsonl").read_text()
    assert "attachment-binary-inline-data" in audit
    assert _b64(PNG)[:24] not in audit


def test_block_is_a_setting_and_one_that_cannot_hold_is_refused() -> None:
    filters = parse_config({"filters": {"binaryAttachments": "block"}}).filters
    assert filters.binary_attachments == "block"
    unlocated = {"binaryAttachments": "block", "scanTextAttachments": False}
    with pytest.raises(ConfigError, match="binaryAttachments: block needs scanTextAttachments"):
        parse_config({"filters": unlocated})
    with pytest.raises(ConfigError, match="binaryAttachments: Input should be 'forward' or"):
        parse_config({"filters": {"binaryAttachments": "drop"}})


_CHAT_AUDIO = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {
                "role": "assistant",
                "content": None,
                "audio": {"id": "audio_1", "data": _b64(WAV), "transcript": "hello"},
            },
        }
    ],
}
_GENERATED_IMAGE = {
    "id": "resp_1",
    "object": "response",
    "status": "completed",
    "output": [{"type": "image_generation_call", "id": "ig_1", "result": _b64(PNG)}],
}


@pytest.mark.parametrize(
    ("path", "answer", "leaf", "rule"),
    [
        ("/v1/chat/completions", _CHAT_AUDIO, _b64(WAV), "attachment-binary-audio"),
        ("/v1/responses", _GENERATED_IMAGE, _b64(PNG), "attachment-binary-image-generation"),
    ],
    ids=["chat-audio", "generated-image"],
)
@pytest.mark.parametrize("setting", ["forward", "block"])
def test_audio_and_images_a_model_answers_with_follow_the_setting(
    tmp_path: Path, path: str, answer: dict[str, Any], leaf: str, rule: str, setting: str
) -> None:
    """A model's spoken answer and an image it generated carry no media type, yet are
    binary: forwarded as they came by default, refused under ``block``."""
    config = {**_binary(setting), "responseProtection": {"enabled": True}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(body=json.dumps(answer).encode()))
        response = httpx.post(f"{gateway.url}{path}", json={"model": "m", "input": "hi"})
        if setting == "forward":
            assert response.status_code == 200
            assert response.json() == answer
            return
        assert response.status_code == 502
        assert response.json()["error"] == "haechi_response_policy_block"
        assert response.json()["summary"]["byType"] == UNINSPECTABLE
        assert leaf[:24] not in response.text
        record = [record for record in gateway.audit() if "detections" in record][-1]
        assert [(d["type"], d["ruleId"]) for d in record["detections"]] == [
            ("uninspectable_attachment", rule)
        ]
        assert leaf[:24] not in gateway.audit_text()


def _audio_chunk(delta: dict[str, Any]) -> str:
    choices = [{"index": 0, "delta": delta}]
    chunk = {"id": "c", "object": "chat.completion.chunk", "choices": choices}
    return f"data: {json.dumps(chunk)}\n\n"


@pytest.mark.parametrize("setting", ["forward", "block"])
def test_a_streamed_spoken_answer_follows_the_setting(tmp_path: Path, setting: str) -> None:
    wire = "".join(
        [
            _audio_chunk({"role": "assistant", "audio": {"id": "a1", "transcript": "hel"}}),
            _audio_chunk({"audio": {"data": _b64(WAV)}}),
            _audio_chunk({"audio": {"transcript": "lo"}}),
            "data: [DONE]\n\n",
        ]
    )
    config = {
        **_binary(setting),
        "responseProtection": {"enabled": True},
        "streaming": {"requestMode": "inspect"},
    }
    request = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    body, event = streamed_through(tmp_path, config, "/v1/chat/completions", request, wire)
    if setting == "forward":
        assert event["decision"] == "stream_inspected"
        assert _b64(WAV) in body.decode()
        assert body.endswith(b"data: [DONE]\n\n")
    else:
        assert event["decision"] == "stream_blocked"
        assert _b64(WAV)[:24] not in body.decode()
