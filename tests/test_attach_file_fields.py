# SPDX-License-Identifier: Apache-2.0
"""Base64 file fields without a media type, through a gateway on a real socket.

OpenAI's ``file_data`` (a chat ``file`` part, a Responses ``input_file``) may be the file's
raw base64 rather than a data URL, and Ollama's ``images`` and a Bedrock Converse block's
``source.bytes`` are raw base64: the protocol says the string is a file's content, so the
gateway decodes it, protects it when it is text and forwards it encoded as it came, and
refuses one that is not base64. Other base64-looking strings stay as they are. See
``docs/detection.md`` ("Text attachments").
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.upstream_server import Gateway, Reply, gateway_in_front

EMAIL = "jane.doe@example.com"
API_KEY = "sk-ant-api03-" + "Q7vT2mX9kR4pL8wZ" * 6
NOTE = f"contact {EMAIL} about the invoice"
REDACTED_NOTE = "contact [REDACTED:email] about the invoice"
#: A PDF with its text uncompressed: a reader extracts the key from it.
PDF_LIKE = f"%PDF-1.4\n1 0 obj << >> stream\nBT (deploy key {API_KEY}) Tj ET\nendstream\n%%EOF\n"
#: The start of a PNG image: not UTF-8, so binary whatever the field.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
OPENAI = {"target": {"type": "openai-compatible"}}
CHAT_PATH = "/v1/chat/completions"
CONVERSE_PATH = "/model/anthropic.claude-3-haiku/converse"


def _b64(raw: str | bytes) -> str:
    return base64.b64encode(raw.encode() if isinstance(raw, str) else raw).decode()


def _strict_text(data: str) -> str:
    """``data`` decoded the strict way (fails on anything but canonical base64)."""
    raw = base64.b64decode(data, validate=True)
    assert base64.b64encode(raw).decode() == data
    return raw.decode("utf-8")


def _openai(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-test", max_retries=0)


def _chat(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": list(parts)}]}


def _chat_file(file_data: str, filename: str = "note.txt") -> dict[str, Any]:
    return {"type": "file", "file": {"file_data": file_data, "filename": filename}}


def _converse(*blocks: dict[str, Any]) -> dict[str, Any]:
    """A Bedrock Converse request whose user message holds ``blocks``."""
    return {"messages": [{"role": "user", "content": [{"text": "summarise"}, *blocks]}]}


def _document(data: str, document_format: str = "txt") -> dict[str, Any]:
    return {"document": {"format": document_format, "name": "note", "source": {"bytes": data}}}


UTF16_NOTE = _b64(NOTE.encode("utf-16"))
#: Text in Windows-1252, which readers sniffing its content show as text.
LATIN1_NOTE = _b64(f"résumé: {NOTE}".encode("cp1252"))


def _assert_refused(gateway: Gateway, response: httpx.Response, by_type: dict[str, int]) -> None:
    """The request was blocked with a 403 naming ``by_type``, nothing reached the upstream
    and the audit log records the block without the values."""
    assert response.status_code == 403
    assert response.json()["error"] == "haechi_policy_block"
    assert response.json()["summary"]["byType"] == by_type
    assert gateway.upstream.received == []
    (record,) = [record for record in gateway.audit() if "detections" in record]
    assert record["blocked"] is True
    assert record["id"] == response.json()["auditId"]
    assert EMAIL not in gateway.audit_text()
    assert API_KEY not in gateway.audit_text()


def test_raw_base64_file_data_reaches_the_upstream_protected(tmp_path: Path) -> None:
    """The official client sends the file's base64 as it is; a function's argument named
    like the field and a text part holding base64 go upstream as written."""
    tool_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "store", "arguments": json.dumps({"file_data": _b64(NOTE)})},
    }
    messages: Any = [
        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "stored"},
        {
            "role": "user",
            "content": [{"type": "text", "text": _b64("hello")}, _chat_file(_b64(NOTE))],
        },
    ]
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        _openai(gateway).chat.completions.create(model="gpt-4o", messages=messages)
        sent = gateway.upstream.last.json()["messages"]
        assert sent[0]["tool_calls"] == [tool_call]
        text, file = sent[2]["content"]
        assert text == {"type": "text", "text": _b64("hello")}
        assert file["file"]["filename"] == "note.txt"
        assert _strict_text(file["file"]["file_data"]) == REDACTED_NOTE
        (record,) = [record for record in gateway.audit() if "detections" in record]
        assert record["summary"]["byType"] == {"email": 1}


def test_a_key_in_a_pdf_like_responses_input_file_blocks(tmp_path: Path) -> None:
    """Whatever the file name says, content that is UTF-8 is read as text."""
    part = {"type": "input_file", "filename": "report.pdf", "file_data": _b64(PDF_LIKE)}
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            _openai(gateway).responses.create(
                model="gpt-4o", input=[{"role": "user", "content": [part]}]
            )
        _assert_refused(gateway, refused.value.response, {"secret": 1})


@pytest.mark.parametrize(
    ("path", "body", "rule"),
    [
        (CHAT_PATH, _chat(_chat_file("plain text, not base64")), "attachment-invalid-base64"),
        (
            CHAT_PATH,
            _chat(_chat_file(base64.encodebytes(NOTE.encode()).decode())),
            "attachment-invalid-base64",
        ),
        (CHAT_PATH, _chat(_chat_file(UTF16_NOTE)), "attachment-invalid-utf8"),
        (CONVERSE_PATH, _converse(_document(UTF16_NOTE, "md")), "attachment-invalid-utf8"),
        (CHAT_PATH, _chat(_chat_file(LATIN1_NOTE, "notes.md")), "attachment-invalid-utf8"),
        (
            "/v1/responses",
            {
                "model": "gpt-4o",
                "input": [{"type": "input_file", "filename": "notes.pdf", "file_data": UTF16_NOTE}],
            },
            "attachment-invalid-utf8",
        ),
        (
            CONVERSE_PATH,
            _converse({"image": {"format": "png", "source": {"bytes": LATIN1_NOTE}}}),
            "attachment-invalid-utf8",
        ),
    ],
    ids=[
        "not-base64",
        "line-broken",
        "named-text-not-utf8",
        "converse-text-not-utf8",
        "latin1-text-named-outside-the-table",
        "utf16-text-named-pdf",
        "latin1-text-as-an-image",
    ],
)
def test_a_file_that_cannot_be_read_as_its_field_says_is_refused(
    tmp_path: Path, path: str, body: dict[str, Any], rule: str
) -> None:
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        response = httpx.post(f"{gateway.url}{path}", json=body)
        _assert_refused(gateway, response, {"undecodable_attachment": 1})
        (record,) = [record for record in gateway.audit() if "detections" in record]
        assert [(d["type"], d["ruleId"]) for d in record["detections"]] == [
            ("undecodable_attachment", rule)
        ]


def test_ollama_images_are_protected_and_binary_ones_left_alone(tmp_path: Path) -> None:
    """The official client encodes the images; text passed as one is protected, a real
    image goes upstream byte for byte."""
    with gateway_in_front(tmp_path, {"target": {"type": "ollama"}}) as gateway:
        client = ollama.Client(host=gateway.url)
        message = {"role": "user", "content": "describe", "images": [NOTE.encode(), PNG]}
        client.chat(model="llava", messages=[message])
        text, image = gateway.upstream.last.json()["messages"][0]["images"]
        assert _strict_text(text) == REDACTED_NOTE
        assert image == _b64(PNG)
        client.generate(model="llava", prompt="describe", images=[NOTE.encode()])
        assert [_strict_text(each) for each in gateway.upstream.last.json()["images"]] == [
            REDACTED_NOTE
        ]
        # Without a prompt, a system text makes Ollama run the model on the images too.
        client.generate(model="llava", system="describe", images=[NOTE.encode()])
        assert [_strict_text(each) for each in gateway.upstream.last.json()["images"]] == [
            REDACTED_NOTE
        ]


def test_converse_documents_are_protected_and_images_left_alone(tmp_path: Path) -> None:
    image = {"image": {"format": "png", "source": {"bytes": _b64(PNG)}}}
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        httpx.post(f"{gateway.url}{CONVERSE_PATH}", json=_converse(_document(_b64(NOTE)), image))
        _, document, sent_image = gateway.upstream.last.json()["messages"][0]["content"]
        assert _strict_text(document["document"]["source"]["bytes"]) == REDACTED_NOTE
        assert sent_image == image


def test_an_ollama_image_that_is_not_base64_is_refused(tmp_path: Path) -> None:
    """Ollama's decoder skips line breaks in base64, and would read the text."""
    body = {"model": "llava", "prompt": "describe", "stream": False, "images": [f"{_b64(NOTE)}\n"]}
    with gateway_in_front(tmp_path, {"target": {"type": "ollama"}}) as gateway:
        response = httpx.post(f"{gateway.url}/api/generate", json=body)
        _assert_refused(gateway, response, {"undecodable_attachment": 1})


def test_a_file_part_that_also_names_another_type_is_still_protected(tmp_path: Path) -> None:
    """A strict decoder reads ``"type": "file"`` and drops the ``"Type": "text"`` that a
    case-insensitive one binds: the part is a file to the first, so its content is read."""
    chat_part = {"type": "file", "Type": "text", "file": {"file_data": _b64(NOTE)}}
    input_file = {"type": "input_file", "TYPE": "input_text", "file_data": _b64(NOTE)}
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        client = _openai(gateway)
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": [chat_part]}]
        )
        (sent,) = gateway.upstream.last.json()["messages"][0]["content"]
        assert _strict_text(sent["file"]["file_data"]) == REDACTED_NOTE
        client.responses.create(model="gpt-4o", input=[{"role": "user", "content": [input_file]}])
        (sent,) = gateway.upstream.last.json()["input"][0]["content"]
        assert _strict_text(sent["file_data"]) == REDACTED_NOTE


def test_many_images_beside_many_members_are_located_in_linear_time(tmp_path: Path) -> None:
    """Whether an element of ``images`` is Ollama's depends on the request's members, read
    once for the array rather than once per element: 12,000 images beside 12,000 members
    (a quarter of a megabyte) once took minutes, holding the gateway."""
    count = 12_000
    body: dict[str, Any] = {f"m{index}": 0 for index in range(count)}
    body |= {"model": "llava", "prompt": "describe", "stream": False}
    body["images"] = [_b64(NOTE)] + [""] * count
    with gateway_in_front(tmp_path, {"target": {"type": "ollama"}}) as gateway:
        response = httpx.post(f"{gateway.url}/api/generate", json=body, timeout=10)
        assert response.status_code == 200
        images = gateway.upstream.last.json()["images"]
        assert _strict_text(images[0]) == REDACTED_NOTE
        assert images[1:] == [""] * count


def test_images_in_an_ollama_answer_are_protected(tmp_path: Path) -> None:
    """A chat answer's ``message`` is the type a request's messages are, images and all."""
    answer = {
        "model": "llava",
        "message": {"role": "assistant", "content": "here", "images": [_b64(NOTE), _b64(PNG)]},
        "done": True,
    }
    config = {"target": {"type": "ollama"}, "responseProtection": {"enabled": True}}
    body = {"model": "llava", "stream": False, "messages": [{"role": "user", "content": "draw"}]}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(body=json.dumps(answer).encode()))
        response = httpx.post(f"{gateway.url}/api/chat", json=body)
        assert response.status_code == 200
        text, image = response.json()["message"]["images"]
        assert _strict_text(text) == REDACTED_NOTE
        assert image == _b64(PNG)


def test_url_safe_base64_in_a_file_field_is_refused(tmp_path: Path) -> None:
    """The URL-safe reading of this file is binary (a NUL, then the bytes of ``-_-_``),
    while Python's default decoder skips the ``-`` and ``_`` and reads the key."""
    standard = _b64(f"\x00deploy key {API_KEY}")
    shadowed = f"{standard[:8]}-_-_{standard[8:]}"
    assert base64.b64decode(shadowed) == f"\x00deploy key {API_KEY}".encode()
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            _openai(gateway).chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": [_chat_file(shadowed, "notes.md")]}],
            )
        _assert_refused(gateway, refused.value.response, {"undecodable_attachment": 1})
        (record,) = [record for record in gateway.audit() if "detections" in record]
        assert record["detections"][0]["ruleId"] == "attachment-invalid-base64"


def test_a_data_url_of_a_file_named_as_text_is_read_as_text(tmp_path: Path) -> None:
    """A reader taking the file by its name reads notes.txt as text whatever its data URL
    says: the text is protected and goes back under the header it came with."""
    header = "data:application/octet-stream;base64,"
    part = _chat_file(f"{header}{_b64(NOTE)}", "notes.txt")
    with gateway_in_front(tmp_path, OPENAI) as gateway:
        _openai(gateway).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": [part]}]
        )
        (sent,) = gateway.upstream.last.json()["messages"][0]["content"]
        assert sent["file"]["file_data"].startswith(header)
        assert _strict_text(sent["file"]["file_data"].removeprefix(header)) == REDACTED_NOTE
