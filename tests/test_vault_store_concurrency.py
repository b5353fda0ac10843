# SPDX-License-Identifier: Apache-2.0
"""The file token store under hostile timing: readers racing a writer in one process."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from haechi.testing.token_store import sample_record
from haechi.vault import FileTokenStore

pytestmark = pytest.mark.anyio


async def test_a_slow_reader_cannot_hand_a_writer_an_older_file(tmp_path: Path) -> None:
    """A read that parsed an older version of the file and finishes while a change is being
    made (under the lock, after it read the newest version) must not make that change start
    from the older version: the change would write the file back without the records
    another process added in between."""
    path = tmp_path / "vault.json"
    other = FileTokenStore(path)  # another process sharing the file
    await other.put("tok_email_00000000000000a1", sample_record("tok_email_00000000000000a1"))
    store = FileTokenStore(path)

    reader_parsed = threading.Event()
    writer_remembered = threading.Event()
    reader_remembered = threading.Event()
    remember = store._remember

    def interleaved(fd: int, created_at: str, tokens: dict[str, Any]) -> Any:
        if threading.current_thread().name == "slow-reader":
            # The reader parsed the first version; it finishes only after the writer read
            # the newer one.
            reader_parsed.set()
            assert writer_remembered.wait(10)
            snapshot = remember(fd, created_at, tokens)
            reader_remembered.set()
            return snapshot
        snapshot = remember(fd, created_at, tokens)
        if reader_parsed.is_set() and not writer_remembered.is_set():
            writer_remembered.set()
            assert reader_remembered.wait(10)
        return snapshot

    store._remember = interleaved  # type: ignore[method-assign]

    reader = threading.Thread(target=lambda: store._tokens(), name="slow-reader", daemon=True)
    reader.start()
    assert await anyio.to_thread.run_sync(reader_parsed.wait, 10)
    # Another process adds a record while the reader is still busy with the old version.
    await other.put("tok_email_00000000000000b2", sample_record("tok_email_00000000000000b2"))
    await store.put("tok_email_00000000000000c3", sample_record("tok_email_00000000000000c3"))
    reader.join(10)

    tokens = FileTokenStore(path)._tokens()
    assert sorted(tokens) == [
        "tok_email_00000000000000a1",
        "tok_email_00000000000000b2",
        "tok_email_00000000000000c3",
    ]
