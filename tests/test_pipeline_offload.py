# SPDX-License-Identifier: Apache-2.0
"""A large payload is scanned in a worker thread, so the event loop keeps serving.

A scan is CPU work: a pasted table of numbers of a few hundred kilobytes takes a good part
of a second, and while it ran on the event loop every other request of the process waited.
"""

from __future__ import annotations

import asyncio
import base64
import random
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import haechi
from haechi.crypto import init_key_file
from haechi.models import Detection, Direction, Entry
from haechi.pipeline import CallContext, Protector
from haechi.policy import Policy
from haechi.runtime import Runtime


class _Timed:
    """The real engine, remembering on which thread and when each scan ran."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.scans: list[tuple[threading.Thread, float, float]] = []

    def detect(
        self, entries: Sequence[Entry], *, direction: Direction, scan_numbers: bool = False
    ) -> list[Detection]:
        began = time.perf_counter()
        found: list[Detection] = self._engine.detect(
            entries, direction=direction, scan_numbers=scan_numbers
        )
        self.scans.append((threading.current_thread(), began, time.perf_counter()))
        return found

    def scan_text(self, text: str, **options: Any) -> list[Detection]:
        found: list[Detection] = self._engine.scan_text(text, **options)
        return found


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    init_key_file(tmp_path / "keys.json")
    built = haechi.create_runtime(
        {
            "mode": "enforce",
            "audit": {"sink": "memory"},
            "tokenVault": {"provider": "memory"},
            "keys": {"keyFile": str(tmp_path / "keys.json")},
        }
    )
    yield built
    built.close()


def _protector(runtime: Runtime, detector: _Timed) -> Protector:
    return Protector(
        detector=detector,
        audit=runtime.audit,
        crypto=runtime.crypto,
        vault=runtime.token_vault,
    )


def _table(rows: int) -> str:
    rng = random.Random(11)
    cells = (str(rng.randint(1000, 9999)) for _ in range(8 * rows))
    return "\n".join("\t".join(row) for row in zip(*[cells] * 8, strict=True))


def _policy(runtime: Runtime) -> Policy:
    return runtime.policies.base.policy


def _context() -> CallContext:
    return CallContext(direction="request", mode="enforce")


@pytest.mark.anyio
async def test_a_small_payload_is_scanned_on_the_event_loop(runtime: Runtime) -> None:
    detector = _Timed(runtime.engine)
    protector = _protector(runtime, detector)

    result = await protector.protect(
        {"text": "mail jane.doe@example.com"}, context=_context(), policy=_policy(runtime)
    )

    assert result.payload == {"text": "mail [REDACTED:email]"}
    assert [thread for thread, _, _ in detector.scans] == [threading.current_thread()]


@pytest.mark.anyio
async def test_a_large_payload_is_scanned_off_the_loop_which_keeps_serving(
    runtime: Runtime,
) -> None:
    detector = _Timed(runtime.engine)
    protector = _protector(runtime, detector)
    payload = {"table": _table(8000), "note": "mail jane.doe@example.com"}
    ticks: list[float] = []

    protecting = protector.protect(payload, context=_context(), policy=_policy(runtime))
    task = asyncio.ensure_future(protecting)
    while not task.done():
        await asyncio.sleep(0.005)
        ticks.append(time.perf_counter())
    result = await task

    assert result.payload["note"] == "mail [REDACTED:email]"
    [(thread, began, ended)] = detector.scans
    assert thread is not threading.current_thread()
    # The loop ran other work while the scan was under way (it could not, on the loop).
    assert any(began < tick < ended for tick in ticks)


class _TimedProtector(Protector):
    """The real protector, remembering on which thread and when each payload's attachments
    were located (the walk's work besides detection)."""

    located: list[tuple[threading.Thread, float, float]]

    def text_attachments(self, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        found = super().text_attachments(*args, **kwargs)
        self.located.append((threading.current_thread(), began, time.perf_counter()))
        return found


@pytest.mark.anyio
@pytest.mark.parametrize(("images", "off_loop"), [(1, False), (60000, True)])
async def test_attachments_of_a_large_payload_are_located_off_the_loop(
    runtime: Runtime, images: int, off_loop: bool
) -> None:
    """Sixty thousand small images take a good part of a second to locate and decode: the
    loop keeps serving meanwhile, and the text among them is still protected."""
    protector = _TimedProtector(
        detector=runtime.engine,
        audit=runtime.audit,
        crypto=runtime.crypto,
        vault=runtime.token_vault,
    )
    protector.located = []
    text = base64.b64encode(b"mail jane.doe@example.com").decode()
    payload = {"model": "m", "prompt": "describe", "images": [text] * images}
    ticks: list[float] = []

    task = asyncio.ensure_future(
        protector.protect(payload, context=_context(), policy=_policy(runtime))
    )
    while not task.done():
        await asyncio.sleep(0.005)
        ticks.append(time.perf_counter())
    result = await task

    redacted = base64.b64decode(result.payload["images"][-1]).decode()
    assert redacted == "mail [REDACTED:email]"
    [(thread, began, ended)] = protector.located
    assert (thread is not threading.current_thread()) is off_loop
    if off_loop:
        assert any(began < tick < ended for tick in ticks)
