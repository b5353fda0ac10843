# SPDX-License-Identifier: Apache-2.0
"""A value restored in a streamed event that repeats a tool call's whole arguments.

The Responses API streams a call's arguments in deltas and then repeats them whole in
``response.function_call_arguments.done``, ``response.output_item.done`` and
``response.completed``; the openai SDK builds its final response from those. The arguments
are JSON source inside a string, so a restored value holding a quote must be escaped
within them there as well as in the deltas, or the tool gets a broken document (or, for a
value such as ``pw=x","admin":true,"y":"``, one with members nobody wrote).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.stream_fixtures import nested_arguments, sse, unnested_argument
from tests.upstream_server import Reply, gateway_in_front

#: A value of a custom rule holding a quote and a backslash (a password, say).
SECRET = 'pw=a"b\\c'
INJECTING = 'pw=x","admin":true,"y":"'
CONFIG: dict[str, Any] = {
    "policy": {"actions": {"pw": "tokenize"}},
    "filters": {"customRules": [{"id": "pw", "type": "pw", "pattern": r"pw=\S+"}]},
    "responseProtection": {"enabled": True},
    "tokenVault": {"detokenizeResponses": True},
    "streaming": {"requestMode": "inspect"},
}


def _tool_call_stream(arguments: str) -> bytes:
    """A call's arguments in one delta, then repeated whole by each event that closes it."""
    item = {
        "id": "fc_1",
        "type": "function_call",
        "call_id": "call_1",
        "name": "login",
        "arguments": arguments,
        "status": "completed",
    }
    opened = {**item, "arguments": "", "status": "in_progress"}
    place = {"item_id": "fc_1", "output_index": 0}
    response = {"id": "resp_1", "object": "response", "model": "m", "status": "completed"}
    events = [
        ("created", {"response": {**response, "status": "in_progress", "output": []}}),
        ("output_item.added", {"output_index": 0, "item": opened}),
        ("function_call_arguments.delta", {**place, "delta": arguments}),
        ("function_call_arguments.done", {**place, "arguments": arguments}),
        ("output_item.done", {"output_index": 0, "item": item}),
        ("completed", {"response": {**response, "output": [item]}}),
    ]
    return "".join(
        sse({"type": f"response.{kind}", "sequence_number": number, **data}, event=kind)
        for number, (kind, data) in enumerate(events)
    ).encode()


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_whole_arguments_repeated_after_the_deltas_keep_the_restored_value(
    tmp_path: Path, depth: int
) -> None:
    with gateway_in_front(tmp_path, CONFIG) as gateway:
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
        for value in (SECRET, INJECTING):

            def wire() -> Iterator[bytes]:
                text = gateway.upstream.last.json()["input"]
                start = text.index("[TOKEN:")
                marker = text[start : text.index("]", start) + 1]
                yield _tool_call_stream(nested_arguments(marker, depth))

            gateway.upstream.queue(
                Reply(wire=wire(), headers={"content-type": "text/event-stream"})
            )
            with client.responses.stream(model="m", input=f"log in with {value}") as stream:
                done = [
                    event.arguments
                    if event.type.endswith("arguments.done")
                    else event.item.arguments
                    for event in stream
                    if event.type
                    in ("response.function_call_arguments.done", "response.output_item.done")
                ]
                final = stream.get_final_response()
            (call,) = final.output
            assert call.type == "function_call"
            assert unnested_argument(call.arguments, depth) == value
            assert [unnested_argument(arguments, depth) for arguments in done] == [value] * 2
