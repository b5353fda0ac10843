# SPDX-License-Identifier: Apache-2.0
"""A lone UTF-16 surrogate in a JSON body, on a real socket in front of a real upstream.

JSON lets a string escape half of a surrogate pair (``"\\ud800"``); decoders then keep it,
replace it or drop it, and UTF-8 cannot carry it. The gateway refuses such a request as
invalid JSON (400, not audited, like any body it cannot read) and treats such an answer as
uninspectable (fail closed), with or without a finding next to it, and never answers 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.upstream_server import Gateway, Reply, gateway_in_front

LOCAL = "jane.doe"
EMAIL = "jane.doe@example.com"


def _body(content: str) -> bytes:
    """A chat request whose user text is ``content``, already written as JSON string text
    (so that it can hold escapes ``json.dumps`` would never write)."""
    return b'{"model":"m","messages":[{"role":"user","content":"%s"}]}' % content.encode()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    with gateway_in_front(tmp_path, {"responseProtection": {"enabled": True}}) as running:
        yield running


@pytest.mark.parametrize(
    "content",
    [
        r"jane.doe\ud800@example.com jane.doe@example.com",  # the value found beside it
        r"jane.doe\udc00@example.com",  # a low half alone
        r"jane.doe\udc00\ud800@example.com",  # both halves, in the wrong order
        r"jane.doe\uD83D@example.com",  # upper-case hex
        r"jane.doe\ud83d",  # at the end of the string
    ],
)
def test_a_request_with_a_lone_surrogate_is_400_and_never_forwarded(
    gateway: Gateway, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        response = httpx.post(f"{gateway.url}/v1/chat/completions", content=_body(content))
    assert response.status_code == 400
    assert response.json()["error"] == "haechi_invalid_json_request"
    assert response.json()["reason"] == "lone_surrogate"
    assert LOCAL not in response.text
    assert gateway.upstream.received == []
    assert gateway.audit() == []
    assert all(LOCAL not in message for message in caplog.messages)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            b'{"messages": [{"content": "jane.doe\xff@example.com"}]}',
            "haechi_request_body_not_utf8",
        ),
        (b'{"messages": [{"content": "jane.doe@example.com"}]', "haechi_invalid_json_request"),
    ],
    ids=["not-utf8", "not-json"],
)
def test_every_body_the_gateway_cannot_read_is_refused_alike(
    gateway: Gateway, body: bytes, code: str
) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=body)
    assert response.status_code == 400
    assert response.json()["error"] == code
    assert LOCAL not in response.text
    assert gateway.audit() == []
    assert gateway.upstream.received == []


def test_a_lone_surrogate_in_a_key_is_refused_too(gateway: Gateway) -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"hi","\\ud800":"' + b'x"}]}'
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=body)
    assert response.status_code == 400
    assert response.json()["reason"] == "lone_surrogate"
    assert gateway.upstream.received == []


@pytest.mark.parametrize(
    ("content", "forwarded"),
    [
        (r"\ud83d\ude00 jane.doe@example.com", "\U0001f600 "),  # a pair: one character
        (r"\\ud800 jane.doe@example.com", "\\ud800 "),  # an escaped backslash, then text
    ],
)
def test_text_that_only_looks_like_a_surrogate_escape_is_protected_and_forwarded(
    gateway: Gateway, content: str, forwarded: str
) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=_body(content))
    assert response.status_code == 200
    sent = gateway.upstream.last.json()["messages"][0]["content"]
    assert sent == f"{forwarded}[REDACTED:email]"


def _answer(content: str) -> bytes:
    """A chat completion whose message text is ``content``, written as JSON string text."""
    return (
        b'{"id":"c","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,'
        b'"message":{"role":"assistant","content":"%s"},"finish_reason":"stop"}]}'
        % content.encode()
    )


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming-request"])
def test_an_answer_with_a_lone_surrogate_fails_closed(
    tmp_path: Path, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A protected answer with a lone surrogate beside an address is uninspectable: 502 and
    audited as blocked, whether it answers a plain request or a streaming one (an answer
    that is one JSON body is inspected like a protected response)."""
    config = {
        "responseProtection": {"enabled": True},
        "streaming": {"requestMode": "inspect"},
    }
    with gateway_in_front(tmp_path, config) as gateway:
        body = _answer(r"jane.doe\ud800@example.com jane.doe@example.com")
        gateway.upstream.queue(Reply(body=body, headers={"content-type": "application/json"}))
        request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        with caplog.at_level(logging.DEBUG):
            response = httpx.post(f"{gateway.url}/v1/chat/completions", json=request)
        assert response.status_code == 502
        assert response.json()["error"] == "haechi_response_unprotected"
        assert response.json()["reason"] == "invalid_json_response"
        assert LOCAL not in response.text
        decisions = [record["decision"] for record in gateway.audit() if "decision" in record]
        assert decisions == ["response_unprotected_blocked"]
        assert LOCAL not in gateway.audit_text()
        assert all(LOCAL not in message for message in caplog.messages)
        assert EMAIL not in response.text
