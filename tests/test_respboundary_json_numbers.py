# SPDX-License-Identifier: Apache-2.0
"""An answer holding a number JSON cannot write back (``1e400``, which Python reads as an
infinity) is never sent on rewritten with ``Infinity``: JavaScript's and Go's parsers refuse
that, and a client would get no answer it can read, or one read past the changed part."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.upstream_server import Reply, gateway_in_front

EMAIL = "jane.doe@example.com"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _answer(content: str) -> bytes:
    message = {"role": "assistant", "content": content}
    choice = {"index": 0, "finish_reason": "stop", "message": message}
    body = json.dumps({"id": "c", "object": "chat.completion", "choices": [choice]})
    return body[:-1].encode() + b', "usage": {"score": 1e400}}'


@pytest.mark.parametrize("failure_mode", ["fail-closed", "allow"])
def test_a_changed_answer_with_a_number_json_cannot_write_is_refused(
    tmp_path: Path, failure_mode: str
) -> None:
    config = {"responseProtection": {"enabled": True, "failureMode": failure_mode}}
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(
            Reply(body=_answer(f"mail {EMAIL}"), headers={"content-type": "application/json"})
        )
        answer = httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, timeout=30)
        decisions = [r.get("reason") for r in gateway.audit() if "decision" in r]
    assert answer.status_code == 502, answer.text
    assert EMAIL not in answer.text
    assert "Infinity" not in answer.text
    assert answer.json()["reason"] == "invalid_json_response"
    assert decisions[-1] == "invalid_json_response"


def test_an_unchanged_answer_with_such_a_number_goes_on_as_it_came(tmp_path: Path) -> None:
    config = {"responseProtection": {"enabled": True}}
    body = _answer("nothing to hide")
    with gateway_in_front(tmp_path, config) as gateway:
        gateway.upstream.queue(Reply(body=body, headers={"content-type": "application/json"}))
        answer = httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.content == body
