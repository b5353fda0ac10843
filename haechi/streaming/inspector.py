# SPDX-License-Identifier: Apache-2.0
"""The stream inspector: protects one streamed upstream response on its way to the client.

The gateway hands it the upstream body as an async iterator of byte chunks and sends on
whatever it yields. Each yielded chunk holds complete, protected frames; a block or an error
ends the output at once (bytes already sent cannot be taken back, and the blocked value
itself never leaves the window). When the stream ends, for whatever reason, exactly one
audit event is written and the request counters are bumped.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, Final

import anyio

from haechi.audit import keyed_path_hash, stream_event
from haechi.errors import LimitError
from haechi.models import Identity, Mode
from haechi.protocols.token_ids import NO_TOKEN_IDS
from haechi.protocols.types import Route
from haechi.streaming._process import Blocked, FrameProcessor
from haechi.streaming.detokenize import StreamDetokenizer

if TYPE_CHECKING:
    from haechi.runtime import Runtime

__all__ = ["StreamInspector"]

#: Why a stream stopped on a limit, by the limit's error code (a frame too large otherwise).
_LIMIT_REASONS: Final = {
    "haechi_too_many_tokens": "stream_too_many_tokens",
    "haechi_inspection_budget_exceeded": "stream_inspection_budget_exceeded",
    "haechi_restored_too_large": "stream_restored_too_large",
}


class StreamInspector:
    """Protect one streamed response of ``route`` (which must have a stream descriptor).

    Args:
        runtime: the composed runtime (protector, audit sink, vault, metrics, config).
        route: the classified route; ``route.streaming`` says how the stream is framed.
        mode: the stream's enforcement mode (``streaming.responseMode``).
        identity, profile, correlation_id: the request's, for policy and the audit event.
        issued_tokens: the vault tokens minted while protecting this request.
        detokenize: restore the markers of ``issued_tokens`` in the streamed answer.
        several_choices: the request asked for several answers (OpenAI's ``n``, Gemini's
            ``generationConfig.candidateCount``, above 1; see
            ``haechi.protocols.asks_several_choices``); otherwise a frame naming an answer
            other than the first stops the stream, which clients reading ``choices[0]``
            (or ``candidates[0]``) would join to the answer.

    After :meth:`run` is exhausted (or closed) :attr:`blocked`, :attr:`reason`,
    :attr:`issued_tokens` and :meth:`summary` describe the stream; no per-stream state is
    kept beyond them. :attr:`reason` is one of ``stream_inspected``, ``stream_closed_early``
    (the consumer stopped reading), ``stream_policy_block``, ``stream_frame_too_large``,
    ``stream_invalid_utf8``, ``stream_inspection_error``, ``stream_upstream_error`` (the
    source raised; the error is re-raised) and the reason given to :meth:`stop`; all but the
    first two count as blocked.
    """

    def __init__(
        self,
        runtime: Runtime,
        route: Route,
        *,
        mode: Mode,
        identity: Identity | None = None,
        profile: str | None = None,
        correlation_id: str | None = None,
        issued_tokens: Iterable[str] = (),
        detokenize: bool = False,
        several_choices: bool = False,
    ) -> None:
        if route.streaming is None:
            raise ValueError(f"route {route.route_id!r} has no stream descriptor")
        self._runtime = runtime
        self._route = route
        self._mode: Mode = mode
        self._identity = identity
        self._profile = profile
        self._correlation_id = correlation_id
        self._restore = tuple(issued_tokens) if detokenize else ()
        self._several_choices = several_choices
        self._started = False
        self._summary: dict[str, Any] = {}
        self.blocked = False
        self.reason: str | None = None
        self.issued_tokens: tuple[str, ...] = ()
        self._stopped: str | None = None

    def stop(self, reason: str) -> None:
        """Have the stream recorded as stopped for ``reason`` (a block) when its consumer
        stops reading it, rather than as left early: call it before closing :meth:`run`'s
        iterator when the consumer ends the stream on purpose (the gateway ends the stream
        of a caller whose access was revoked: ``stream_auth_revoked``)."""
        self._stopped = reason

    def summary(self) -> dict[str, Any]:
        """The protector's tally of the stream: counts by type and action, never values."""
        return dict(self._summary)

    async def run(self, source: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
        """Yield the protected wire bytes of ``source``; callable once.

        The audit event is written before the last output (the end frame, or the frames
        before a block) is yielded, so a client never sees a complete stream whose record
        is missing; if the event cannot be written, that output is not sent.
        """
        if self._started:
            raise RuntimeError("a StreamInspector inspects one stream")
        self._started = True
        processor: FrameProcessor | None = None
        # A stream whose inspection cannot even be set up (an unknown profile) was not
        # inspected: it is recorded as failed, not as one the client left.
        reason = "stream_inspection_error"
        closed = False
        try:
            processor = self._processor()
            reason = "stream_closed_early"
            while True:
                try:
                    chunk = await anext(source)
                except StopAsyncIteration:
                    chunk = None
                except Exception:
                    reason = "stream_upstream_error"
                    raise
                reason = await self._advance(processor, chunk)
                output = processor.take()
                if processor.finished or reason != "stream_inspected":
                    closed = True
                    await self._close(processor, reason, source)
                    if output:
                        yield output
                    return
                if output:
                    yield output
        finally:
            if not closed:
                await self._close(processor, reason, source)

    def _processor(self) -> FrameProcessor:
        runtime = self._runtime
        descriptor = self._route.streaming
        if descriptor is None:  # checked in __init__; repeated for the type checker
            raise ValueError("route has no stream descriptor")
        protector = runtime.stream_protector(
            direction="response",
            protocol=self._route.protocol,
            operation=self._route.operation,
            mode=self._mode,
            identity=self._identity,
            profile=self._profile,
            correlation_id=self._correlation_id,
        )
        detokenizer = None
        if self._restore and runtime.token_vault is not None:
            detokenizer = StreamDetokenizer(
                self._restore,
                runtime.token_vault.detokenize,
                max_growth=runtime.config.response_protection.max_bytes,
                max_depth=runtime.config.limits.max_nesting_depth,
            )
        return FrameProcessor(
            protector,
            descriptor,
            max_frame_bytes=runtime.config.response_protection.max_bytes,
            detokenizer=detokenizer,
            token_ids=self._route.token_ids if self._mode == "enforce" else NO_TOKEN_IDS,
            several_choices=self._several_choices,
            restate=self._mode == "enforce",
        )

    async def _advance(self, processor: FrameProcessor, chunk: bytes | None) -> str:
        """Handle one chunk (``None`` at the end); return why the stream should stop."""
        try:
            if chunk is None:
                await processor.finish()
            else:
                await processor.feed(chunk)
        except Blocked:
            return "stream_policy_block"
        except LimitError as exc:
            return _LIMIT_REASONS.get(exc.error_code, "stream_frame_too_large")
        except UnicodeDecodeError:
            return "stream_invalid_utf8"
        except Exception:
            # Fail closed: whatever broke, nothing more is sent and the stream is audited.
            return "stream_inspection_error"
        return "stream_inspected"

    async def _close(
        self, processor: FrameProcessor | None, reason: str, source: AsyncIterator[bytes]
    ) -> None:
        """Record the one audit event and the counters, and close the upstream body."""
        finished = processor is not None and processor.finished
        if reason == "stream_inspected" and not finished:
            reason = "stream_closed_early"
        if reason == "stream_closed_early" and self._stopped is not None:
            reason = self._stopped
        self.reason = reason
        self.blocked = reason not in ("stream_inspected", "stream_closed_early")
        if processor is not None:
            self._summary = processor.summary()
            self.issued_tokens = processor.issued_tokens
        # Shielded: a client that goes away cancels the task, and the record must still land.
        with anyio.CancelScope(shield=True):
            try:
                await self._runtime.audit.record(
                    stream_event(
                        protocol=self._route.protocol,
                        route_id=self._route.route_id,
                        operation=self._route.operation,
                        mode=self._mode,
                        blocked=self.blocked,
                        summary=self._summary,
                        correlation_id=self._correlation_id,
                        identity=self._identity,
                        profile=self._profile,
                        path_hash=keyed_path_hash(self._runtime.crypto, self._route.path),
                        reason=reason,
                    )
                )
            finally:
                closer = getattr(source, "aclose", None)
                if closer is not None:
                    await closer()
        self._count()

    def _count(self) -> None:
        metrics = self._runtime.metrics
        decision = "stream_blocked" if self.blocked else "stream_inspected"
        labels = {"route": self._route.route_id, "mode": self._mode, "decision": decision}
        metrics.increment("haechi_requests_total", labels)
        if self.blocked:
            metrics.increment("haechi_blocks_total")
            metrics.increment("haechi_response_stream_truncated_total")
