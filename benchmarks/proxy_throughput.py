# SPDX-License-Identifier: Apache-2.0
"""Gateway throughput and added latency, against calling the upstream directly.

Three processes on loopback: a stand-in OpenAI-compatible upstream, the gateway
(``haechi proxy``, a real subprocess with its own config, key file and audit log) and a load
generator (a small keep-alive HTTP/1.1 client on raw sockets, one connection per worker).
Each scenario sends a bounded number of 1 KiB chat requests (an email, a phone number and an
``api_key=`` secret in the text) and reports requests per second and p50/p99 latency; the
gateway rows also report the ratio to the direct row of the same concurrency and the latency
the gateway added. The streaming rows add time to first body byte. Gateway rows also show the
CPU time (user and system, read from ``/proc``) that the gateway's processes spent per
request of the run: a paced row's latency moves with what else the shared machine runs, its
CPU time much less.

Scenarios: direct and gateway enforce (request and response protection) at concurrency 1
(one request at a time: the latency the gateway adds when it is not saturated), 32 and 256;
a paced row at concurrency 32 that offers ``--rate`` requests per second (default 1,000, below
what the gateway answers when saturated), so that latency is a request's cost rather than
the queue in front of the gateway (``--rate 250,500,1000`` adds a direct and a gateway row
per rate; the other paced rows use the last); gateway dry-run (detect and audit only) at 32
and 256; gateway enforce with response protection off, as it is by default
(``responseProtection.enabled: false``; "req-only"), one request at a time, at 32 and paced; a
streamed answer (SSE, 16 frames) direct and through the gateway in ``inspect`` mode; and
enforce with the audit file fsynced before each append returns ("fsync-each",
``audit.fsyncIntervalMs: 0``) and with the in-memory audit store ("mem-audit"), both
saturated and paced. Every other row writes the audit file as configured by default: each
record is written (hash-chained, group-committed) before the request goes on, and the file
is fsynced within 200 ms.

The gateway runs ``--workers`` processes (``proxy.workers``, default: one per core); a
``w1`` enforce row at concurrency 32 shows what one process reaches on the same machine.

    python benchmarks/proxy_throughput.py [--requests 3000] [--warmup 200] [--workers N]
        [--rate R[,R...]] [--repeat N] [--pairs N [--requests-only]] [--stream-memory N]
        [--json]

Numbers are machine-relative: the three processes share the same cores. Percentiles are
nearest-rank over the counted requests; the warm-up excluded from them is at least one
request per connection (at concurrency 256 the whole first wave arrives at once, and would
otherwise be counted as the slowest tenth of the run).

A second table measures the gateway's own cost without the machine being shared: one process
calls the ASGI application directly (no HTTP server in front of it) while a trivial upstream
in the same process answers every request with a prepared reply. Its baseline row is the
upstream round trip alone through the gateway's upstream client; ``+us/req`` is what the
gateway adds to it, and ``detect us`` the part of that spent in the detection engine
(request and answer, measured separately in the same run). ``--in-process`` runs only this
table.

``--pairs N`` runs only the spread of the paced latency: N rounds, each a direct run then a
run through the enforce gateway (``--requests-only``: with response protection off, as by
default) at the (first) ``--rate``, printing every round's added p50/p99 and CPU time and
their medians. Paced latency moves with what else the
machine runs, from one minute to the next; pairs taken side by side show how much.

``--stream-memory N`` runs only N streamed answers (16 SSE frames each, inspected in enforce
mode, 32 at a time) through the gateway in ten equal parts, and prints the resident memory of
the gateway's processes after each part: a stream that left anything behind would make it
grow with the count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

_FILLER = "Summarise the following support ticket for the on-call engineer. " * 16
_TEXT = (
    "Customer jane.doe@example.com called from 010-1234-5678 about a failing deploy; "
    "their config had api_key=sk_live_4eC39HqLyjWDarjtT1zdp7dc in it. "
)
_PROMPT = (_TEXT + _FILLER)[: 1024 - 120]
_STREAM_FRAMES = 16


def _body(stream: bool) -> bytes:
    document: dict[str, Any] = {
        "model": "bench-model",
        "messages": [{"role": "user", "content": _PROMPT}],
    }
    if stream:
        document["stream"] = True
    return json.dumps(document).encode()


# --- the stand-in upstream (its own process) ----------------------------------------------


def _completion(text: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": "bench-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        }
    ).encode()


def _answer_text(body: bytes) -> tuple[str, bool]:
    """What the stand-in model answers to a chat request body, and whether it streams."""
    request = json.loads(body or b"{}")
    user = request.get("messages", [{}])[-1].get("content", "")
    return f"Noted. Reply sent to the customer about: {user[:200]}", bool(request.get("stream"))


def _stream_frames(answer: str) -> list[bytes]:
    """The answer as OpenAI chat-completion chunks (SSE frames), then ``[DONE]``."""
    piece = max(1, len(answer) // _STREAM_FRAMES)
    frames = []
    for start in range(0, len(answer), piece):
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": answer[start : start + piece]},
                    "finish_reason": None,
                }
            ],
        }
        frames.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return frames


class _StandInModel(asyncio.Protocol):
    """The stand-in upstream: keep-alive HTTP/1.1 with ``Content-Length`` request bodies.

    A plain asyncio protocol rather than an ASGI server, so that it takes as little as
    possible of the cores it shares with the gateway and the load generator. Non-streamed
    answers carry ``Content-Length``; streamed ones are chunked SSE, one chunk per frame.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            head = self._buffer[:end].lower()
            length = 0
            if (marker := head.find(b"content-length:")) >= 0:
                stop = head.find(b"\r\n", marker)
                length = int(head[marker + 15 : stop if stop >= 0 else None])
            if len(self._buffer) < end + 4 + length:
                return
            body = self._buffer[end + 4 : end + 4 + length]
            self._buffer = self._buffer[end + 4 + length :]
            self._answer(body, close=b"connection: close" in head)

    def _answer(self, body: bytes, *, close: bool) -> None:
        answer, stream = _answer_text(body)
        framing = b"connection: close\r\n" if close else b""
        if stream:
            chunks = [b"%x\r\n%s\r\n" % (len(f), f) for f in _stream_frames(answer)]
            self._transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n" + framing + b"\r\n"
            )
            for chunk in chunks:
                self._transport.write(chunk)
            self._transport.write(b"0\r\n\r\n")
        else:
            data = _completion(answer)
            self._transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n%s\r\n%s" % (len(data), framing, data)
            )
        if close:
            self._transport.close()


def _serve_upstream() -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_StandInModel, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    _install_uvloop()
    asyncio.run(serve())


# --- the load generator (its own process) ---------------------------------------------------


async def _one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[float, float, int]:
    started = time.perf_counter()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    first = 0.0
    if b"transfer-encoding: chunked" in lowered:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            if not first:
                first = time.perf_counter() - started
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            await reader.readexactly(size + 2)
    else:
        marker = lowered.index(b"content-length:") + len(b"content-length:")
        length = int(lowered[marker : lowered.index(b"\r\n", marker)])
        await reader.readexactly(length)
        first = time.perf_counter() - started
    close = b"connection: close" in lowered
    return time.perf_counter() - started, first, status if not close else -status


# --- the gateway's own cost, in one process ---------------------------------------------------


class _CannedUpstream(asyncio.Protocol):
    """Answers every HTTP/1.1 request on a keep-alive connection with one prepared reply."""

    def __init__(self, reply: bytes) -> None:
        self._reply = reply
        self._buffer = b""
        self._transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buffer[:end].lower()
            marker = head.find(b"content-length:")
            length = 0
            if marker >= 0:
                stop = head.find(b"\r\n", marker)
                length = int(head[marker + 15 : stop if stop >= 0 else None])
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length :]
            self._transport.write(self._reply)


async def _canned_reply(runtime: Any) -> bytes:
    """What the stand-in upstream answers to the request as the gateway forwards it."""
    protected = await runtime.protect(json.loads(_body(False)))
    answer, _stream = _answer_text(json.dumps(protected.payload).encode())
    data = _completion(answer)
    head = (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def _asgi_call(app: Any, scope: dict[str, Any], body: bytes) -> int:
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _per_request(call: Any, total: int, concurrency: int) -> float:
    """Seconds per request over ``total`` calls with ``concurrency`` in flight."""
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.perf_counter() - started) / total


_SCOPE_PATH = "/v1/chat/completions"


def _scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": _SCOPE_PATH,
        "raw_path": _SCOPE_PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 11016),
    }


def _detect_seconds(runtime: Any, reply: bytes, total: int) -> tuple[float, float]:
    """Detection time per request body and per upstream answer, alone."""
    from haechi.payload import collect_entries

    timings = []
    for document, direction in (
        (json.loads(_body(False)), "request"),
        (json.loads(reply.partition(b"\r\n\r\n")[2]), "response"),
    ):
        entries = collect_entries(document)
        for _ in range(100):
            runtime.engine.detect(entries, direction=direction)
        started = time.perf_counter()
        for _ in range(total):
            runtime.engine.detect(entries, direction=direction)
        timings.append((time.perf_counter() - started) / total)
    return timings[0], timings[1]


async def _in_process_rows(workdir: Path, total: int) -> list[dict[str, Any]]:
    from haechi import create_runtime
    from haechi.proxy.app import GatewayApp
    from haechi.proxy.upstream import read_capped

    def runtime(upstream: str, mode: str, audit: str) -> Any:
        config = _gateway_config(workdir, upstream, mode, audit)
        return create_runtime(json.loads(config.read_text()))

    body = _body(False)
    probe = runtime("http://127.0.0.1:9", "enforce", "memory")
    reply = await _canned_reply(probe)
    detect_request, detect_answer = _detect_seconds(probe, reply, total)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _CannedUpstream(reply), "127.0.0.1", 0)
    upstream = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    rows: list[dict[str, Any]] = []
    baseline = 0.0
    for mode, audit in (
        ("", ""),
        ("enforce", "jsonl"),
        ("enforce", "strict"),
        ("enforce", "memory"),
        ("dry-run", "jsonl"),
    ):
        app = GatewayApp(runtime(upstream, mode or "enforce", audit or "memory"))
        if not mode:
            url = app.upstream.url(_SCOPE_PATH.encode(), b"")
            headers = app.header_policy.upstream_headers(_scope(body)["headers"])

            async def call(app: Any = app, url: str = url, headers: Any = headers) -> None:
                response = await app.upstream.open("POST", url, headers, body)
                try:
                    await read_capped(response, 1 << 20)
                finally:
                    await response.aclose()

        else:

            async def call(app: Any = app) -> None:
                status = await _asgi_call(app, _scope(body), body)
                assert status == 200, status

        await _per_request(call, max(50, total // 10), 1)
        sequential = await _per_request(call, total, 1)
        parallel = await _per_request(call, total, 32)
        await app.aclose()
        row: dict[str, Any] = {
            "us": sequential * 1e6,
            "rps1": 1 / sequential,
            "rps32": 1 / parallel,
        }
        if not mode:
            baseline = sequential
            row["scenario"] = "upstream round trip only"
        else:
            row["scenario"] = f"gateway {mode} {_IN_PROCESS_AUDITS[audit]}"
            row["added_us"] = (sequential - baseline) * 1e6
            detect = detect_request + (detect_answer if mode == "enforce" else 0.0)
            row["detect_us"] = detect * 1e6
        rows.append(row)
    server.close()
    return rows


def _in_process_table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'in-process scenario':<34}{'us/req':>9}{'req/s c1':>10}{'req/s c32':>11}"
        f"{'+us/req':>9}{'detect us':>11}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        added = row.get("added_us")
        detect = row.get("detect_us")
        lines.append(
            f"{row['scenario']:<34}{row['us']:>9.0f}{row['rps1']:>10.0f}{row['rps32']:>11.0f}"
            f"{'' if added is None else f'{added:.0f}':>9}"
            f"{'' if detect is None else f'{detect:.0f}':>11}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class _Load:
    """One load run: ``total`` requests (the first ``warmup`` not counted) over
    ``concurrency`` keep-alive connections, each sent as soon as its connection is free, or
    with ``rate`` > 0 the n-th no earlier than n / rate seconds after the start (an offered
    load below saturation, so that latency shows the cost of a request rather than the
    queue in front of it)."""

    path: str
    stream: bool
    total: int
    warmup: int
    concurrency: int
    rate: float = 0.0


async def _load(host: str, port: int, load: _Load) -> dict[str, Any]:
    """Run ``load`` against ``host:port``; requests per second and latency percentiles."""
    path, stream, total = load.path, load.stream, load.total
    warmup, concurrency, rate = load.warmup, load.concurrency, load.rate
    body = _body(stream)
    request = (
        f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    issued = 0
    samples: list[tuple[float, float, float]] = []
    errors = 0

    async def worker() -> None:
        nonlocal issued, errors
        reader, writer = await asyncio.open_connection(host, port)
        while issued < total:
            issued += 1
            number = issued
            if rate > 0:
                delay = begun + number / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            latency, first, status = await _one(reader, writer, request)
            if status != 200:
                errors += 1
            if number > max(warmup, concurrency):  # the first wave is all cold starts
                samples.append((time.perf_counter(), latency, first))
            if status < 0:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
        writer.close()

    begun = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    ends = sorted(s[0] - s[1] for s in samples)
    span = max(s[0] for s in samples) - ends[0]
    latencies = sorted(s[1] for s in samples)
    firsts = sorted(s[2] for s in samples)
    return {
        "requests": len(samples),
        "errors": errors,
        "rps": len(samples) / span if span > 0 else 0.0,
        "p50": _rank(latencies, 50),
        "p99": _rank(latencies, 99),
        "ttfb50": _rank(firsts, 50),
    }


def _rank(values: list[float], percentile: float) -> float:
    return values[max(0, math.ceil(percentile / 100 * len(values)) - 1)] * 1000


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    uvloop.install()


def _run_in_process(argv: list[str]) -> None:
    workdir, total = argv
    _install_uvloop()
    rows = asyncio.run(_in_process_rows(Path(workdir), int(total)))
    print(json.dumps({"rows": rows}), flush=True)


def _run_load(argv: list[str]) -> None:
    host, port, load = argv
    _install_uvloop()
    result = asyncio.run(_load(host, int(port), _Load(**json.loads(load))))
    print(json.dumps(result), flush=True)


# --- orchestration ------------------------------------------------------------------------


def _python(*args: str) -> list[str]:
    return [sys.executable, __file__, *args]


@contextmanager
def _process(
    argv: list[str], cwd: Path | None = None, ready: str | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        while ready is not None and ready not in line:
            line = process.stdout.readline().strip()
            if not line and process.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited early")
        yield process, line
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


#: Audit variants of the gateway rows: the file as configured by default (an append returns
#: once written, the file is fsynced within 200 ms), the file fsynced before each append
#: returns (``audit.fsyncIntervalMs: 0``), and the in-memory store.
_AUDITS: Final = {
    "jsonl": {"sink": "jsonl"},
    "strict": {"sink": "jsonl", "fsyncIntervalMs": 0},
    "memory": {"sink": "memory"},
}
_AUDIT_LABELS: Final = {"jsonl": "", "strict": " fsync-each", "memory": " mem-audit"}
_MODE_LABELS: Final = {
    "enforce": "enforce",
    "enforce-requests": "enforce req-only",
    "dry-run": "dry-run",
}


_IN_PROCESS_AUDITS: Final = {
    "jsonl": "jsonl-audit",
    "strict": "jsonl-audit fsync-each",
    "memory": "memory-audit",
}


def _audit_config(audit: str, path: Path) -> dict[str, Any]:
    return {**_AUDITS[audit], "path": str(path)}


def _gateway_config(workdir: Path, upstream: str, mode: str, audit: str, workers: int = 1) -> Path:
    """A gateway configuration file; ``mode`` is ``enforce`` (requests and answers),
    ``enforce-requests`` (response protection off, its default) or ``dry-run``."""
    enforce = mode == "enforce"
    mode = mode.removesuffix("-requests")
    config = {
        "mode": mode,
        "target": {"type": "openai-compatible", "upstream": upstream},
        "proxy": {"workers": workers},
        "policy": {
            "mode": mode,
            "presets": ["llm-redact"],
            "actions": {
                "email": "redact",
                "phone": "mask",
                "secret": "redact",
                "api_key": "redact",
                "card": "block",
            },
        },
        "responseProtection": {"enabled": enforce},
        "streaming": {"requestMode": "inspect"},
        "limits": {"upstreamTimeoutMs": 30000},
        "keys": {"keyFile": str(workdir / "keys.json")},
        "audit": _audit_config(audit, workdir / f"audit-{mode}-{enforce}-{audit}.jsonl"),
        "tokenVault": {"path": str(workdir / "vault.json")},
    }
    path = workdir / f"haechi-{mode}-{enforce}-{audit}-w{workers}.json"
    path.write_text(json.dumps(config))
    return path


@contextmanager
def _gateway(
    workdir: Path, upstream: str, mode: str, audit: str, workers: int
) -> Iterator[tuple[int, int]]:
    """A gateway subprocess: its port and its process id."""
    config = _gateway_config(workdir, upstream, mode, audit, workers)
    argv = [sys.executable, "-m", "haechi", "proxy", "--config", str(config), "--port", "0"]
    env_cwd = workdir
    with _process(argv, cwd=env_cwd, ready="listening on") as (proc, line):
        yield int(line.rsplit(":", 1)[1]), proc.pid


def _cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of process ``pid`` and of its live descendants (the gateway's
    workers), from ``/proc``; ``None`` where ``/proc`` does not tell."""
    total = 0.0
    pending = [pid]
    try:
        while pending:
            current = pending.pop()
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            children = Path(f"/proc/{current}/task/{current}/children").read_text()
            pending.extend(int(child) for child in children.split())
    except (OSError, ValueError, IndexError):
        return None
    return total


def _measure(port: int, load: _Load, *, repeat: int = 1, pid: int | None = None) -> dict[str, Any]:
    """One load run against ``port`` in its own process, or with ``repeat`` > 1 the median
    run among that many (runs on a shared machine vary; the median resists one unlucky
    run): by throughput, or for a paced load (whose throughput is the offered rate) by p50
    latency. With ``pid``, the run also reports that process tree's CPU microseconds per
    request (warm-up included, as the CPU time is)."""
    argv = _python("--load", "127.0.0.1", str(port), json.dumps(asdict(load)))
    runs = []
    for _ in range(repeat):
        before = None if pid is None else _cpu_seconds(pid)
        output = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600)
        run = dict(json.loads(output.stdout.strip().splitlines()[-1]))
        after = None if pid is None else _cpu_seconds(pid)
        if before is not None and after is not None:
            run["cpu_us"] = (after - before) / load.total * 1e6
        runs.append(run)
    if load.rate:
        return sorted(runs, key=lambda run: float(run["p50"]))[len(runs) // 2]
    return sorted(runs, key=lambda run: float(run["rps"]))[len(runs) // 2]


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'scenario':<28}{'conc':>5}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'ttfb ms':>9}{'x direct':>10}{'+p50 ms':>9}{'+p99 ms':>9}{'cpu us':>8}{'errors':>8}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        lines.append(
            f"{row['scenario']:<28}{row['concurrency']:>5}{row['rps']:>9.0f}{row['p50']:>9.2f}"
            f"{row['p99']:>9.2f}{row.get('ttfb', float('nan')):>9.2f}"
            f"{row.get('ratio', 1.0):>10.2f}{row.get('added_p50', 0.0):>9.2f}"
            f"{row.get('added_p99', 0.0):>9.2f}{_cpu_text(row.get('cpu_us')):>8}{row['errors']:>8}"
        )
    return "\n".join(lines)


def _cpu_text(cpu_us: float | None) -> str:
    return "" if cpu_us is None else f"{cpu_us:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument(
        "--rate",
        type=_rates,
        default=(1000.0,),
        help=(
            "offered req/s of the paced rows (concurrency 32, below saturation; default 1000); "
            "several, comma-separated, give the default gateway row at each rate"
        ),
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per row; the row shows the median run: by req/s, paced rows by p50 (default 1)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="gateway worker processes (proxy.workers; default: the number of cores)",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="only measure the gateway's own cost"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="only N rounds of a paced direct run then a paced gateway run (the spread)",
    )
    parser.add_argument(
        "--stream-memory",
        type=int,
        default=0,
        metavar="N",
        help="only N streamed answers through the gateway, its resident memory every N/10",
    )
    parser.add_argument(
        "--requests-only",
        action="store_true",
        help="--pairs with response protection off, as it is by default (req-only)",
    )
    args = parser.parse_args()
    if args.pairs > 0:
        _run_pairs(args)
        return
    if args.stream_memory > 0:
        _run_stream_memory(args)
        return
    rows: list[dict[str, Any]] = []
    path = "/v1/chat/completions"
    from haechi.crypto import init_key_file

    with tempfile.TemporaryDirectory(prefix="haechi-bench-") as directory:
        workdir = Path(directory)
        init_key_file(workdir / "keys.json")
        argv = _python("--in-process-child", str(workdir), str(args.requests))
        child = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=900)
        own = json.loads(child.stdout.strip().splitlines()[-1])["rows"]
        if args.in_process:
            print(_in_process_table(own))
            if args.json:
                print(json.dumps({"in_process": own}))
            return
        with _process(_python("--serve-upstream")) as (_up, port_line):
            upstream_port = int(port_line)
            upstream = f"http://127.0.0.1:{upstream_port}"
            # (concurrency, streamed answer, offered req/s or 0 for as fast as answered)
            plan: list[tuple[int, bool, float]] = [(1, False, 0), (32, False, 0), (256, False, 0)]
            sweep = [(32, False, rate) for rate in args.rate]
            paced = sweep[-1]
            streamed = (32, True, 0.0)
            direct: dict[tuple[int, bool, float], dict[str, Any]] = {}
            for case in [*plan, *sweep, streamed]:
                concurrency, stream, rate = case
                load = _Load(path, stream, args.requests, args.warmup, concurrency, rate)
                result = _measure(upstream_port, load, repeat=args.repeat)
                direct[case] = result
                rows.append(_row(_name("direct", case), concurrency, result, None))
            workers = args.workers
            gateway_plan = [
                ("enforce", "jsonl", workers, [*plan, *sweep, streamed]),
                ("dry-run", "jsonl", workers, plan[1:]),
                ("enforce-requests", "jsonl", workers, [plan[0], plan[1], paced]),
                ("enforce", "strict", workers, [plan[0], plan[1], paced]),
                ("enforce", "memory", workers, [plan[1], paced]),
            ]
            if workers != 1:
                gateway_plan.append(("enforce", "jsonl", 1, [plan[1]]))
            for mode, audit, count, cases in gateway_plan:
                with _gateway(workdir, upstream, mode, audit, count) as (gateway_port, pid):
                    for case in cases:
                        concurrency, stream, rate = case
                        load = _Load(path, stream, args.requests, args.warmup, concurrency, rate)
                        result = _measure(gateway_port, load, repeat=args.repeat, pid=pid)
                        name = f"gateway w{count} {_MODE_LABELS[mode]}"
                        name += _AUDIT_LABELS[audit]
                        rows.append(_row(_name(name, case), concurrency, result, direct[case]))
    print(
        f"proxy throughput: {args.requests} requests per row ({args.warmup} warm-up), "
        f"1 KiB chat bodies, {os.cpu_count()} cores shared by upstream, gateway and load; "
        f"wN = N gateway worker processes; median of {args.repeat} run(s) per row"
    )
    print(_table(rows))
    print(
        f"\ngateway's own cost: one process, ASGI calls with no HTTP server, a prepared "
        f"upstream reply, {args.requests} requests per row"
    )
    print(_in_process_table(own))
    if args.json:
        print(json.dumps({"rows": rows, "in_process": own}))


def _run_pairs(args: argparse.Namespace) -> None:
    """``--pairs``: the paced rounds, each direct then through the enforce gateway."""
    from haechi.crypto import init_key_file

    rate = args.rate[0]
    mode = "enforce-requests" if args.requests_only else "enforce"
    load = _Load("/v1/chat/completions", False, args.requests, args.warmup, 32, rate)
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="haechi-bench-") as directory:
        workdir = Path(directory)
        init_key_file(workdir / "keys.json")
        with _process(_python("--serve-upstream")) as (_up, port_line):
            upstream_port = int(port_line)
            upstream = f"http://127.0.0.1:{upstream_port}"
            with _gateway(workdir, upstream, mode, "jsonl", args.workers) as (port, pid):
                for _ in range(args.pairs):
                    direct = _measure(upstream_port, load)
                    gateway = _measure(port, load, pid=pid)
                    rounds.append(_row("pair", 32, gateway, direct))
    print(
        f"paced pairs: {args.pairs} rounds of a direct run then a gateway w{args.workers} "
        f"{_MODE_LABELS[mode]} run, {rate:g} req/s offered over 32 connections, "
        f"{args.requests} requests each ({args.warmup} warm-up)"
    )
    print(f"{'round':>5}{'+p50 ms':>9}{'+p99 ms':>9}{'cpu us':>8}")
    for number, row in enumerate(rounds, 1):
        print(
            f"{number:>5}{row['added_p50']:>9.2f}{row['added_p99']:>9.2f}"
            f"{_cpu_text(row['cpu_us']):>8}"
        )
    added = [row["added_p50"] for row in rounds]
    tails = [row["added_p99"] for row in rounds]
    cpu = [row["cpu_us"] for row in rounds if row["cpu_us"] is not None]
    within = sum(value <= 1.0 for value in added)
    print(
        f"median +p50 {statistics.median(added):.2f} ms ({within} of {len(added)} rounds at "
        f"1 ms or less); median +p99 {statistics.median(tails):.2f} ms (highest "
        f"{max(tails):.2f}); median CPU {_cpu_text(statistics.median(cpu) if cpu else None)} us"
    )
    if args.json:
        print(json.dumps({"pairs": rounds}))


def _rss_kib(pid: int) -> int:
    """Resident memory (KiB) of process ``pid`` and of its live descendants, from ``/proc``."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        for line in Path(f"/proc/{current}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        children = Path(f"/proc/{current}/task/{current}/children").read_text()
        pending.extend(int(child) for child in children.split())
    return total


def _run_stream_memory(args: argparse.Namespace) -> None:
    """``--stream-memory N``: N streamed answers (SSE, inspected, 32 at a time) through the
    enforce gateway in tenths, and the gateway's resident memory after each tenth."""
    from haechi.crypto import init_key_file

    tenth = max(1, args.stream_memory // 10)
    load = _Load("/v1/chat/completions", True, tenth, 0, 32)
    readings: list[tuple[int, int, int]] = []
    with tempfile.TemporaryDirectory(prefix="haechi-bench-") as directory:
        workdir = Path(directory)
        init_key_file(workdir / "keys.json")
        with _process(_python("--serve-upstream")) as (_up, port_line):
            upstream = f"http://127.0.0.1:{int(port_line)}"
            with _gateway(workdir, upstream, "enforce", "jsonl", args.workers) as (port, pid):
                done = errors = 0
                for _ in range(10):
                    result = _measure(port, load)
                    done += tenth
                    errors += int(result["errors"])
                    readings.append((done, _rss_kib(pid), errors))
    print(
        f"stream memory: {done} streamed answers (16 SSE frames each, inspected) through a "
        f"gateway w{args.workers} enforce, 32 at a time; resident memory of its processes"
    )
    print(f"{'streams':>8}{'rss MiB':>9}{'since 1st KiB':>15}{'errors':>8}")
    first = readings[0][1]
    for count, rss, failed in readings:
        print(f"{count:>8}{rss / 1024:>9.1f}{rss - first:>15}{failed:>8}")
    grown = readings[-1][1] - first
    streams = done - readings[0][0]
    print(
        f"after the first {readings[0][0]} streams: {grown} KiB over {streams} more streams "
        f"({grown * 1024 / streams:.1f} bytes per stream)"
    )
    if args.json:
        print(json.dumps({"stream_memory": readings}))


def _rates(text: str) -> tuple[float, ...]:
    """``--rate``: one offered rate or several, comma-separated, each above zero."""
    try:
        rates = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a rate or list of rates: {text!r}") from None
    if not all(rate > 0 for rate in rates):
        raise argparse.ArgumentTypeError("every rate must be above zero")
    return rates


def _name(scenario: str, case: tuple[int, bool, float]) -> str:
    _concurrency, stream, rate = case
    if rate > 0:
        scenario += f" @{rate:g}/s"
    return scenario + (" (streamed)" if stream else "")


def _row(
    name: str, concurrency: int, result: dict[str, Any], baseline: dict[str, Any] | None
) -> dict[str, Any]:
    row = {
        "scenario": name,
        "concurrency": concurrency,
        "rps": result["rps"],
        "p50": result["p50"],
        "p99": result["p99"],
        "ttfb": result["ttfb50"],
        "errors": result["errors"],
        "cpu_us": result.get("cpu_us"),
    }
    if baseline is not None:
        row["ratio"] = result["rps"] / baseline["rps"] if baseline["rps"] else 0.0
        row["added_p50"] = result["p50"] - baseline["p50"]
        row["added_p99"] = result["p99"] - baseline["p99"]
    return row


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-upstream":
        _serve_upstream()
    elif len(sys.argv) > 1 and sys.argv[1] == "--load":
        _run_load(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--in-process-child":
        _run_in_process(sys.argv[2:])
    else:
        main()
