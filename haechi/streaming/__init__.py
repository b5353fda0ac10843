# SPDX-License-Identifier: Apache-2.0
"""Inspection of streamed responses (server-sent events and newline-delimited JSON).

:class:`StreamInspector` is what the gateway runs for ``streaming.requestMode: inspect``;
the parsers and writers are public so that other surfaces can frame streams the same way.
See ``docs/streaming.md`` for the guarantees (ordering, limits, what a client sees on a
block).
"""

from __future__ import annotations

from haechi.streaming._lines import Frame
from haechi.streaming.detokenize import Resolver, StreamDetokenizer
from haechi.streaming.inspector import StreamInspector
from haechi.streaming.ndjson import NdjsonParser, encode_ndjson
from haechi.streaming.sse import SseParser, encode_sse

__all__ = [
    "Frame",
    "NdjsonParser",
    "Resolver",
    "SseParser",
    "StreamDetokenizer",
    "StreamInspector",
    "encode_ndjson",
    "encode_sse",
]
