# SPDX-License-Identifier: Apache-2.0
"""What route classification returns: the route and, for streaming routes, how to read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from haechi.models import PathSegment

__all__ = ["Route", "StreamDescriptor"]


@dataclass(frozen=True, slots=True)
class StreamDescriptor:
    """How a streamed response of one route is framed and where its text delta lives.

    Attributes:
        format: ``"sse"`` (blank-line separated events) or ``"ndjson"`` (one JSON per line).
        delta_path: path of the incremental text inside each JSON frame, or ``None`` when
            every frame is protected on its own (no cross-frame window).
        flush_on_types: values of a frame's ``type`` field before which the held tail is
            flushed (Anthropic's ``content_block_stop``, ``message_delta``, ``message_stop``).
        terminal_types: values of ``type`` that end the stream (``message_stop``).
        done_field: a boolean field that marks the final frame (Ollama's ``done``).
    """

    format: Literal["sse", "ndjson"]
    delta_path: tuple[PathSegment, ...] | None
    flush_on_types: frozenset[str] = frozenset()
    terminal_types: frozenset[str] = frozenset()
    done_field: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """The classification of one request against the configured upstream protocol.

    ``streaming_by_default``: a body without ``"stream": false`` asks for a stream (Ollama).
    ``always_streaming``: the route answers with a stream whatever the body says (Gemini
    ``:streamGenerateContent`` has no ``stream`` field, so a ``"stream": false`` in its body
    must not send the answer down the non-streaming path).
    """

    adapter_id: str
    protocol: str
    route_id: str
    path: str
    operation: str
    protect_request: bool = True
    protect_response: bool = True
    streaming_by_default: bool = False
    always_streaming: bool = False
    streaming: StreamDescriptor | None = None
