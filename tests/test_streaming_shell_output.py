# SPDX-License-Identifier: Apache-2.0
"""A Responses shell call's output streams as ``delta: {stdout, stderr}``, each a text the
SDK adds up per command: a value cut between two deltas is found joined."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stream_fixtures import streamed_through
from tests.test_streaming_opening_text import INSPECT, REQUEST, _event


@pytest.mark.parametrize("channel", ["stdout", "stderr"])
def test_a_shell_call_s_output_is_windowed_across_its_deltas(tmp_path: Path, channel: str) -> None:
    place = {"item_id": "sh_1", "output_index": 0, "command_index": 0}
    kind = "response.shell_call_output_content.delta"
    wire = "".join(
        _event(kind, sequence_number=n, delta={channel: piece}, **place)
        for n, piece in enumerate(["EMAIL=jane.doe@", "example.com\n"])
    ) + _event("response.completed", sequence_number=9, response={"id": "r", "output": []})
    body, event = streamed_through(tmp_path, INSPECT, "/v1/responses", REQUEST, wire)
    assert b"jane.doe" not in body
    assert b"EMAIL=" in body
    assert event["summary"]["byType"] == {"email": 1}
