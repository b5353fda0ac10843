# SPDX-License-Identifier: Apache-2.0
"""An event store for the SDK's streamable-HTTP server, kept in memory.

It is what makes the server resumable: every event a stream sends is kept with an id, and a
client that lost the stream asks (``GET`` with ``Last-Event-ID``) for the events after one.
Like the store of the SDK's examples it is one store for the whole server, and like them it
does not ask which session wants the events: any id it issued resumes its stream. The ids
count up from 1, so they are easy to guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.types import JSONRPCMessage


@dataclass
class MemoryEventStore(EventStore):
    """Every stored event as ``(event id, stream id, message)``, in the order stored."""

    events: list[tuple[str, str, JSONRPCMessage | None]] = field(default_factory=list)

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        event_id = str(len(self.events) + 1)
        self.events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(
        self, last_event_id: str, send_callback: EventCallback
    ) -> str | None:
        ids = [event_id for event_id, _stream, _message in self.events]
        if last_event_id not in ids:
            return None
        start = ids.index(last_event_id)
        stream = self.events[start][1]
        for event_id, stream_id, message in self.events[start + 1 :]:
            if stream_id == stream and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream
