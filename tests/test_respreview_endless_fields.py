# SPDX-License-Identifier: Apache-2.0
"""An upstream answer with a header or trailer field that never ends.

The HTTP parser keeps a field's name and value until the field ends, so an upstream that
keeps writing one field would grow the gateway's memory until the upstream timeout. The
gateway sits in front of a raw upstream that writes 8 MiB of one field and then waits: the
exchange is broken off (502) long before the timeout (504).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_proxy_upstream import RawUpstream, answer
from tests.upstream_server import gateway_in_front

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
BODY = json.dumps({"text": "all good"}).encode()
ENDLESS = b"v" * (8 << 20)
JSON = "Content-Type: application/json"
REPLIES = {
    "header": answer(b"", JSON, "X-Pad: ")[:-4] + ENDLESS,
    "trailer": answer(
        b"%x\r\n%s\r\n0\r\nX-Pad: " % (len(BODY), BODY), JSON, "Transfer-Encoding: chunked"
    )
    + ENDLESS,
}


@pytest.fixture
def upstream() -> Iterator[RawUpstream]:
    server = RawUpstream(lambda request: (REPLIES[request.split(b"/")[1].decode()], False))
    yield server
    server.close()


@pytest.mark.parametrize("where", sorted(REPLIES))
def test_a_field_without_end_breaks_the_exchange_off(
    tmp_path: Path, upstream: RawUpstream, where: str
) -> None:
    config = {"limits": {"upstreamTimeoutMs": 30_000}}
    with gateway_in_front(tmp_path, config, upstream_url=upstream.url + "/" + where) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=60)
    assert response.status_code == 502
    assert response.json()["error"] == "haechi_upstream_unreachable"
