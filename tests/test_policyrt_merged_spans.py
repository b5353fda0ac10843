# SPDX-License-Identifier: Apache-2.0
"""Overlapping findings are rewritten once, and no character of a finding to redact survives
the rewrite: a mask, as strong as a redaction, keeps two characters at each end of what it
covers, so it never speaks for a merged span that holds a finding to redact.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.upstream_server import gateway_in_front

CHAT = "/v1/chat/completions"
#: A phone number (masked by default) running into an address (redacted by default).
SENT = "reach +82 10-1234-5678.kim@example.com today"


def test_a_phone_number_running_into_an_address_keeps_none_of_the_address(
    tmp_path: Path,
) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": SENT}]}
    with gateway_in_front(tmp_path) as gateway:
        reply = httpx.post(gateway.url + CHAT, json=body, timeout=30.0)
        forwarded = gateway.upstream.last.json()["messages"][0]["content"]
    assert reply.status_code == 200, reply.text
    assert forwarded == "reach [REDACTED:email] today"
