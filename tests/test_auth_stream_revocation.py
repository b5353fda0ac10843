# SPDX-License-Identifier: Apache-2.0
"""A caller whose token is revoked loses the streams it holds open too.

The real gateway (uvicorn, real socket) with the built-in bearer store relays a slow
streamed answer of the upstream stand-in, or an MCP event stream of the official SDK
server; the token is revoked mid-stream with the store function ``haechi token-revoke``
calls. The stream ends within about ``auth.streamRecheckMs``, cut (no end frame, or a
dropped connection), and one ``stream_auth_revoked`` record says why.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from haechi.auth import add_token, list_tokens, revoke_token
from haechi.crypto import LocalCryptoProvider
from haechi.mcp import STDIO_ERROR
from haechi.models import Identity
from haechi.proxy._reauth import Rechecks
from haechi.testing import merge_config
from tests.mcp_servers.harness import TIMEOUT_S
from tests.plugins.auth.kit import plugin_config_document, sign_plugin
from tests.plugins.directory_auth import Directory
from tests.stream_fixtures import read_ndjson, read_sse
from tests.test_mcp_http import REQUEST, event, gateway_at, posting
from tests.test_mcp_http_sessions import BEARER, Front, front, open_session
from tests.test_plugin_gateway import MODE as PLUGIN_MODE
from tests.test_proxy_auth import bearer, new_token
from tests.test_proxy_streaming import HangUpAwareUpstream, assert_released, chat, stream_events
from tests.test_proxy_upstream import RawUpstream, answer
from tests.upstream_server import Gateway, Reply, gateway_in_front

SSE_FRAME = b'data: {"choices": [{"index": 0, "delta": {"content": "tick "}}]}\n\n'
NDJSON_FRAME = (
    b'{"model": "m", "message": {"role": "assistant", "content": "tick "}, "done": false}\n'
)
#: How long the gateway may take to cut a stream past the re-check interval of the tests.
LEEWAY_S = 1.5
RECHECK_MS = 200


def _config(request_mode: str, recheck_ms: int = RECHECK_MS, **extra: Any) -> dict[str, Any]:
    return merge_config(
        {
            "auth": {"provider": "bearer", "streamRecheckMs": recheck_ms},
            "streaming": {"requestMode": request_mode},
        },
        extra,
    )


def _revocations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("decision") == "stream_auth_revoked"]


def _revoking(gateway: Gateway, token_id: str) -> Callable[[], None]:
    """What ``haechi token-revoke token_id`` does to the gateway's store."""
    store = gateway.runtime.config.auth.store
    return lambda: revoke_token(store, token_id)


def _stream_after(
    gateway: Gateway, token: str, act: Callable[[], None], path: str = "/v1/chat/completions"
) -> tuple[bytes, float, bool]:
    """Stream a chat answer from ``path`` as ``token``; once the first chunk came, run
    ``act``. What came, how long the stream ran after ``act``, and whether it ended
    cleanly (a dropped connection does not)."""
    with httpx.stream(
        "POST", f"{gateway.url}{path}", json=chat(stream=True), headers=bearer(token), timeout=30
    ) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        received = [next(chunks)]
        act()
        started = time.monotonic()
        clean = True
        try:
            received.extend(chunks)
        except httpx.RemoteProtocolError:
            clean = False
        return b"".join(received), time.monotonic() - started, clean


@pytest.mark.parametrize(
    ("request_mode", "target", "path", "frame"),
    [
        ("inspect", "openai-compatible", "/v1/chat/completions", SSE_FRAME),
        ("inspect", "ollama", "/api/chat", NDJSON_FRAME),
        ("pass-through", "openai-compatible", "/v1/chat/completions", SSE_FRAME),
    ],
    ids=["sse", "ndjson", "pass-through"],
)
def test_a_revoked_callers_stream_is_cut(
    tmp_path: Path, request_mode: str, target: str, path: str, frame: bytes
) -> None:
    offered = 1000
    upstream = HangUpAwareUpstream()
    config = _config(request_mode, target={"type": target})
    with gateway_in_front(tmp_path, config, upstream=upstream) as gateway:
        token_id, token = new_token(gateway)
        # Without the cut this stream runs for 20 s.
        upstream.queue(Reply(wire=upstream.frames(offered, frame), chunk_delay=0.02))
        body, ran_s, clean = _stream_after(gateway, token, _revoking(gateway, token_id), path)
        assert ran_s < RECHECK_MS / 1000 + LEEWAY_S
        assert_released(upstream, gateway, offered, within=LEEWAY_S)
        records = gateway.audit()
        inspected = stream_events(gateway)
        metrics = gateway.metrics("haechi_auth_denied_total 1.0")
    (record,) = _revocations(records)
    assert (record["reason"], record["blocked"]) == ("revoked", True)
    assert record["identity"]["id"] == token_id
    assert token not in str(records)
    assert "haechi_auth_denied_total 1.0" in metrics
    if request_mode == "pass-through":
        # Cut as at the size cap: the connection is dropped mid-stream.
        assert not clean
        assert (frame * offered).startswith(body)
        assert 'decision="stream_auth_revoked"' in metrics
        return
    # Cut as a block cuts it: whole frames, and the response ends without its end frame.
    assert clean
    if frame is SSE_FRAME:
        frames = read_sse(body)
        assert frames
        assert all(f.data != "[DONE]" for f in frames)
    else:
        assert [value["done"] for value in read_ndjson(body)] == [False] * len(read_ndjson(body))
    assert [(e["reason"], e["blocked"]) for e in inspected] == [("stream_auth_revoked", True)]
    assert 'decision="stream_blocked"' in metrics


def test_a_silent_stream_is_cut_without_waiting_for_its_next_frame(tmp_path: Path) -> None:
    """The check runs when no frame comes for the interval too: an upstream that goes quiet
    for 3 s after its first frame loses its revoked caller well before that."""
    upstream = HangUpAwareUpstream()
    with gateway_in_front(tmp_path, _config("inspect"), upstream=upstream) as gateway:
        token_id, token = new_token(gateway)
        upstream.queue(Reply(wire=upstream.frames(3, SSE_FRAME), chunk_delay=3))
        body, ran_s, clean = _stream_after(gateway, token, _revoking(gateway, token_id))
        records = gateway.audit()
    assert ran_s < RECHECK_MS / 1000 + LEEWAY_S
    assert clean
    assert all(f.data != "[DONE]" for f in read_sse(body))
    assert [r["reason"] for r in _revocations(records)] == ["revoked"]


def test_a_store_that_cannot_be_read_cuts_the_stream(tmp_path: Path) -> None:
    """Fail closed: a provider that raises on the re-check (the store is no JSON any more)
    ends the stream as a revocation does, with reason ``provider_error``."""
    upstream = HangUpAwareUpstream()
    with gateway_in_front(tmp_path, _config("inspect"), upstream=upstream) as gateway:
        _token_id, token = new_token(gateway)
        upstream.queue(Reply(wire=upstream.frames(1000, SSE_FRAME), chunk_delay=0.02))
        store = Path(gateway.runtime.config.auth.store)

        def break_store() -> None:
            broken = store.with_suffix(".broken")
            broken.write_text("{not json")
            broken.replace(store)

        body, ran_s, _clean = _stream_after(gateway, token, break_store)
        records = gateway.audit()
    assert ran_s < RECHECK_MS / 1000 + LEEWAY_S
    assert all(f.data != "[DONE]" for f in read_sse(body))
    assert [r["reason"] for r in _revocations(records)] == ["provider_error"]


@pytest.mark.parametrize("recheck_ms", [50, 0], ids=["rechecked", "never"])
def test_a_stream_that_keeps_its_caller_runs_to_its_end(tmp_path: Path, recheck_ms: int) -> None:
    """Re-checked every 50 ms, the stream of a caller still accepted (another caller's token
    is revoked) is whole; with ``streamRecheckMs: 0`` even a revoked caller's stream runs to
    its end, as before the re-check existed."""
    pieces = ["tick "] * 40
    with gateway_in_front(tmp_path, _config("inspect", recheck_ms)) as gateway:
        kept_id, kept = new_token(gateway)
        other_id, _other = new_token(gateway)
        gateway.upstream.queue(Reply(text="".join(pieces), chunks=pieces, chunk_delay=0.02))
        revoked = other_id if recheck_ms else kept_id
        body, _ran_s, clean = _stream_after(gateway, kept, _revoking(gateway, revoked))
        records = gateway.audit()
        inspected = stream_events(gateway)
    assert clean
    assert read_sse(body)[-1].data == "[DONE]"
    assert _revocations(records) == []
    assert [e["reason"] for e in inspected] == ["stream_inspected"]


# -- MCP event streams ---------------------------------------------------------------------


def _hold_event_stream(gateway: Front, who: str, session: str, ended: threading.Event) -> None:
    """Open the server's event stream as ``who`` and read it until it ends (then set
    ``ended``); the SDK server sends nothing on it, so only the gateway ends it."""
    headers = {**gateway.bearer(who), "mcp-session-id": session, "accept": "text/event-stream"}
    with httpx.stream("GET", gateway.url, headers=headers, timeout=TIMEOUT_S) as response:
        assert response.status_code == 200
        for _chunk in response.iter_raw():
            pass
    ended.set()


def test_a_revoked_callers_mcp_event_stream_is_closed(tmp_path: Path) -> None:
    """``a``'s event stream, held open and silent, is closed once its token is revoked;
    ``b``'s stays open until its own token is."""
    overrides = merge_config(BEARER, {"auth": {"streamRecheckMs": RECHECK_MS}})
    with front(tmp_path, overrides, json_response=False) as gateway:
        sessions = {who: open_session(gateway, who) for who in ("a", "b")}
        ended = {who: threading.Event() for who in ("a", "b")}
        readers = [
            threading.Thread(
                target=_hold_event_stream,
                args=(gateway, who, sessions[who], ended[who]),
                daemon=True,
            )
            for who in ("a", "b")
        ]
        for reader in readers:
            reader.start()
        assert gateway.upstream.stream_opened.wait(TIMEOUT_S)
        time.sleep(3 * RECHECK_MS / 1000)  # both streams pass a few checks
        assert not ended["a"].is_set()
        store = tmp_path / ".haechi" / "auth.json"
        first = list_tokens(store)[0]["id"]  # a's: its token was added first
        revoke_token(store, first)
        started = time.monotonic()
        assert ended["a"].wait(RECHECK_MS / 1000 + LEEWAY_S), "the revoked caller's stream is open"
        assert time.monotonic() - started < RECHECK_MS / 1000 + LEEWAY_S
        assert not ended["b"].is_set()
        second = list_tokens(store)[1]["id"]
        revoke_token(store, second)
        assert ended["b"].wait(RECHECK_MS / 1000 + LEEWAY_S)
        records = gateway.refusals("revoked")
    assert [(r["decision"], r["identity"]["id"]) for r in records] == [
        ("stream_auth_revoked", first),
        ("stream_auth_revoked", second),
    ]
    assert records[0]["protocol"] == "mcp-http"


def test_a_posted_requests_stream_ends_with_an_error_for_it(tmp_path: Path) -> None:
    """The server's event stream answering a posted request sends a progress notification,
    then nothing (its connection stays open). Once the caller's token is revoked the stream
    ends, and the request gets its error instead of being waited for for ever."""
    progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}
    first = event(progress).encode()
    reply = answer(
        b"%x\r\n%s\r\n" % (len(first), first),
        "Content-Type: text/event-stream",
        "Transfer-Encoding: chunked",
    )
    upstream = RawUpstream(lambda _request: (reply, False))
    overrides = merge_config(BEARER, {"auth": {"streamRecheckMs": RECHECK_MS}})
    try:
        with gateway_at(upstream.url, tmp_path, overrides) as url:
            crypto = LocalCryptoProvider(tmp_path / ".haechi" / "dev.keys.json")
            store = tmp_path / ".haechi" / "auth.json"
            record, token = add_token(store, crypto, token_type="agent")
            with posting(url, REQUEST, authorization=f"Bearer {token}") as response:
                assert response.status_code == 200
                lines = response.iter_lines()
                assert (
                    json.loads(next(line for line in lines if line.startswith("data: "))[6:])
                    == progress
                )
                revoke_token(store, record["id"])
                started = time.monotonic()
                rest = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
                ran_s = time.monotonic() - started
    finally:
        upstream.close()
    assert ran_s < RECHECK_MS / 1000 + LEEWAY_S
    (refusal,) = rest
    assert refusal["id"] == REQUEST["id"]
    assert refusal["error"]["code"] == STDIO_ERROR
    assert refusal["error"]["data"] == {"reason": "the caller's credentials are no longer accepted"}
    assert token not in (tmp_path / ".haechi" / "audit.jsonl").read_text()


class _CountingDirectory(Directory):
    """The directory provider, counting the calls it gets and those it answers; every call
    after the first (the admission) waits ``later_delay`` seconds (``None``: for ever) once
    it is armed (at once unless ``armed`` is false: a test that arms it once the answer's
    head came makes the checks before the head, which a busy machine may reach, answer)."""

    def __init__(self, later_delay: float | None = 0.0, *, armed: bool = True) -> None:
        super().__init__(id="tok_auth_0a1b2c3d")
        self.calls = 0
        self.answered = 0
        self._later_delay = later_delay
        self._armed = armed

    def arm(self) -> None:
        self._armed = True

    async def authenticate(self, headers: Mapping[str, str]) -> Identity | None:
        self.calls += 1
        slow = self.calls > 1 and self._armed
        if slow and self._later_delay is None:
            await asyncio.Event().wait()
        if slow and self._later_delay:
            await asyncio.sleep(self._later_delay)
        identity = await super().authenticate(headers)
        self.answered += 1
        return identity


def test_the_streams_of_one_caller_share_their_checks(tmp_path: Path) -> None:
    """Six streams of one caller, each re-checked every 100 ms for about 1.5 s, would call
    the provider about 90 times on their own; sharing the checks, about 30 times at most."""
    streams, frames, delay = 6, 75, 0.02
    provider = _CountingDirectory()
    config = _config("inspect", recheck_ms=100, auth={"provider": "external"})
    with gateway_in_front(tmp_path, config, providers={"auth": provider}) as gateway:
        for _ in range(streams):
            gateway.upstream.queue(Reply(wire=[SSE_FRAME] * frames, chunk_delay=delay))

        async def one(client: httpx.AsyncClient) -> bytes:
            headers = {"authorization": "Bearer anything"}
            async with client.stream(
                "POST",
                f"{gateway.url}/v1/chat/completions",
                json=chat(stream=True),
                headers=headers,
            ) as response:
                assert response.status_code == 200
                return await response.aread()

        async def all_streams() -> list[bytes]:
            async with httpx.AsyncClient(timeout=30) as client:
                return await asyncio.gather(*(one(client) for _ in range(streams)))

        started = time.monotonic()
        bodies = asyncio.run(all_streams())
        ran_s = time.monotonic() - started
    assert all(body.count(b"tick") == frames for body in bodies)
    rechecks = provider.calls - streams  # each stream was admitted with one call
    assert ran_s > 1.2
    assert 0 < rechecks <= ran_s / 0.05 + 2


def test_a_recheck_given_up_on_is_left_to_finish(tmp_path: Path) -> None:
    """The stream stops waiting for a slow check (and ends, provider_error), the provider's
    call is not cancelled: it runs to its end, as a plugin provider's must to audit what its
    sandbox reported."""
    provider = _CountingDirectory(later_delay=2.5, armed=False)
    config = _config("inspect", auth={"provider": "external"})
    with gateway_in_front(tmp_path, config, providers={"auth": provider}) as gateway:
        gateway.upstream.queue(Reply(wire=[SSE_FRAME] * 250, chunk_delay=0.02))
        body, ran_s, _clean = _stream_after(gateway, "anything", provider.arm)
        records = gateway.audit()
        deadline = time.monotonic() + 5
        while provider.answered < provider.calls and time.monotonic() < deadline:
            time.sleep(0.05)
    assert ran_s < 2.2  # a second of waiting past the interval, not the provider's 2.5 s
    assert all(f.data != "[DONE]" for f in read_sse(body))
    assert [r["reason"] for r in _revocations(records)] == ["provider_error"]
    assert provider.calls > 1
    assert provider.answered == provider.calls


def test_a_plugin_is_waited_for_as_long_as_its_own_time_limit(tmp_path: Path) -> None:
    """A sandboxed plugin answering in 1.5 s under its ``timeoutMs`` of 4 s keeps its
    caller's stream, re-checked every 200 ms: the stream waits for a check as long as the
    plugin may take, not a second only."""
    signed = sign_plugin(tmp_path / "plugin", "slow_auth.py")
    plugin = plugin_config_document(signed, confinement=PLUGIN_MODE, timeoutMs=4000)
    pieces = ["tick "] * 100
    with gateway_in_front(tmp_path, merge_config(_config("inspect"), plugin)) as gateway:
        try:
            gateway.upstream.queue(Reply(text="".join(pieces), chunks=pieces, chunk_delay=0.03))
            body, _ran_s, clean = _stream_after(gateway, "let-me-in", lambda: None)
            records = gateway.audit()
        finally:
            gateway.runtime.auth.close()
    assert clean
    assert read_sse(body)[-1].data == "[DONE]"
    assert _revocations(records) == []


def test_a_provider_that_never_answers_a_recheck_ends_the_stream(tmp_path: Path) -> None:
    """Fail closed: a re-check that has not answered within twice the interval (a second
    at least) counts as the provider failing. Without that bound the stream stalled for
    good, neither relayed nor ended, its client and the upstream connection held open."""
    upstream = HangUpAwareUpstream()
    config = _config("inspect", auth={"provider": "external"})
    hanging = _CountingDirectory(later_delay=None, armed=False)
    with gateway_in_front(
        tmp_path, config, upstream=upstream, providers={"auth": hanging}
    ) as gateway:
        upstream.queue(Reply(wire=upstream.frames(1000, SSE_FRAME), chunk_delay=0.02))
        with httpx.stream(
            "POST",
            f"{gateway.url}/v1/chat/completions",
            json=chat(stream=True),
            headers={"authorization": "Bearer anything"},
            timeout=10,
        ) as response:
            assert response.status_code == 200
            hanging.arm()
            started = time.monotonic()
            body = response.read()
            ran_s = time.monotonic() - started
        assert_released(upstream, gateway, 1000, within=LEEWAY_S)
        records = gateway.audit()
        inspected = stream_events(gateway)
    assert ran_s < 3 * RECHECK_MS / 1000 + LEEWAY_S
    assert all(f.data != "[DONE]" for f in read_sse(body))
    assert [r["reason"] for r in _revocations(records)] == ["provider_error"]
    assert [e["reason"] for e in inspected] == ["stream_auth_revoked"]


@pytest.mark.parametrize("request_mode", ["inspect", "pass-through"])
def test_a_caller_revoked_while_the_head_is_awaited_gets_a_401(
    tmp_path: Path, request_mode: str
) -> None:
    """The interval runs from the request's admission, not from the upstream's answer: a
    caller revoked while a slow upstream prepares its answer is checked before the head
    goes out and gets the 401, none of the answer (which came whole, at once)."""
    with gateway_in_front(tmp_path, _config(request_mode)) as gateway:
        token_id, token = new_token(gateway)
        pieces = ["tick "] * 5
        gateway.upstream.queue(Reply(text="".join(pieces), chunks=pieces, delay=1.0))
        revoking = threading.Timer(0.3, _revoking(gateway, token_id))
        revoking.start()
        try:
            response = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                json=chat(stream=True),
                headers=bearer(token),
                timeout=10,
            )
        finally:
            revoking.join()
        records = gateway.audit()
        metrics = gateway.metrics('decision="stream_auth_revoked"')
    assert response.status_code == 401
    assert response.json()["error"] == "haechi_auth_denied"
    assert b"tick" not in response.content
    (record,) = _revocations(records)
    assert (record["reason"], record["identity"]["id"]) == ("revoked", token_id)
    assert "haechi_auth_denied_total 1.0" in metrics
    assert 'decision="stream_auth_revoked"' in metrics


def test_a_short_interval_leaves_a_slow_provider_a_second_to_answer(tmp_path: Path) -> None:
    """Re-checked every 20 ms, a provider answering in 100 ms (over twice the interval) is
    still given its time: a check is bounded by a second at least, so the stream of a
    caller it keeps accepting runs to its end."""
    pieces = ["tick "] * 40
    config = _config("inspect", recheck_ms=20, auth={"provider": "external"})
    slow = _CountingDirectory(later_delay=0.1)
    with gateway_in_front(tmp_path, config, providers={"auth": slow}) as gateway:
        gateway.upstream.queue(Reply(text="".join(pieces), chunks=pieces, chunk_delay=0.02))
        body, _ran_s, clean = _stream_after(gateway, "anything", lambda: None)
        records = gateway.audit()
    assert clean
    assert read_sse(body)[-1].data == "[DONE]"
    assert _revocations(records) == []


class _LookedAt(OrderedDict[bytes, Any]):
    """The held checks of a :class:`Rechecks`, counting every one pruning looks at."""

    looked = 0

    def items(self) -> Any:
        for pair in super().items():
            self.looked += 1
            yield pair

    def values(self) -> Any:
        for held in super().values():
            self.looked += 1
            yield held


def test_the_checks_of_many_callers_cost_each_the_same() -> None:
    """Each check started pruned the checks of every other credential by looking at all of
    them, so the checks of n callers' streams cost n² (12,000 callers took seconds of a
    core per interval); pruning looks at the stale checks only, and the first fresh one."""
    checks = Rechecks(Directory(), interval_s=60.0)
    held = _LookedAt()
    checks._checks = held
    callers = 2_000

    async def check_all() -> None:
        for caller in range(callers):
            assert await checks.identity_id({"authorization": f"Bearer {caller}"}) is not None

    asyncio.run(check_all())
    assert len(held) == callers
    # One look per check (the oldest, still fresh); each caller's made earlier on top of it
    # before the fix.
    assert held.looked <= callers
