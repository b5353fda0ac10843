# SPDX-License-Identifier: Apache-2.0
"""A Responses shell call's output streams as ``delta: {stdout, stderr}``, each a text the
SDK adds up per command: a value cut between two deltas is found joined."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.test_streaming_opening_text import INSPECT, _event
from tests.upstream_server import Reply, gateway_in_front


@pytest.mark.parametrize("channel", ["stdout", "stderr"])
def test_a_shell_call_s_output_is_windowed_across_its_deltas(tmp_path: Path, channel: str) -> None:
    place = {"item_id": "sh_1", "output_index": 0, "command_index": 0}
    kind = "response.shell_call_output_content.delta"
    wire = "".join(
        _event(kind, sequence_number=n, delta={channel: piece}, **place)
        for n, piece in enumerate(["EMAIL=jane.doe@", "example.com\n"])
    ) + _event("response.completed", sequence_number=9, response={"id": "r", "output": []})
    body = {"model": "m", "input": "hi", "stream": True}
    with gateway_in_front(tmp_path, INSPECT) as gw:
        gw.upstream.queue(
            Reply(wire=[wire.encode()], headers={"content-type": "text/event-stream"})
        )
        response = httpx.post(f"{gw.url}/v1/responses", json=body, timeout=30)
        (event,) = [e for e in gw.audit() if e["operation"].startswith("response-stream:")]
    assert "jane.doe" not in response.text
    assert "EMAIL=" in response.text
    assert event["summary"]["byType"] == {"email": 1}
