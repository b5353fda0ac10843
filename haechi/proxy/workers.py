# SPDX-License-Identifier: Apache-2.0
"""Several gateway processes on one listening socket (``proxy.workers`` > 1).

One Python process runs one request at a time on one core, so a gateway on a multi-core
host serves more traffic as several processes. The supervisor (the ``haechi proxy``
process) listens on the port and starts the workers with the ``spawn`` start method: each
is a fresh interpreter that builds its own runtime from the same configuration. The
supervisor accepts every connection and hands it to the workers in turn (see
:mod:`haechi.proxy._handoff`), so each worker serves the same number of connections; the
requests on a connection go to its worker directly.

What the workers share, and what they do not:

- The audit file and the token vault file are shared safely: every write holds the file's
  ``flock`` and a worker reads the chain head under it, so one chain comes out. The key
  file's nonce windows are reserved under the same lock.
- ``/__haechi/metrics`` sums every worker's counters (``prometheus-client`` multi-process
  mode, in a private temporary directory the supervisor removes at exit), whichever worker
  answers the scrape.
- The built-in rate limiter, ``limits.maxInFlight`` and the in-memory audit and vault
  stores are per worker process.

Lifecycle: the supervisor announces ``proxy_listening`` once every worker is ready; a
worker that fails to start stops them all (exit 1, with the worker's one-line reason). A
worker that dies later is replaced (``worker_exited`` then ``worker_started``), unless
workers keep dying: more than ``2 x workers`` unexpected exits within a minute stop the
gateway with exit 1. On SIGTERM, SIGINT or SIGHUP the supervisor deals no more connections
and closes the listener at once, then sends SIGTERM to every worker, which drains within
``limits.shutdownGraceMs``; workers still alive a few seconds after that are killed.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Final

from haechi.errors import HaechiError
from haechi.proxy._handoff import ConnectionDealer, hand_off_pair
from haechi.proxy.logs import configure_logging, log_event

__all__ = ["MULTIPROC_ENV", "serve_workers"]

#: The environment variable ``prometheus-client`` reads for its multi-process directory.
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
_STARTUP_TIMEOUT_S: Final = 60.0
_KILL_MARGIN_S: Final = 5.0
_RESTART_WINDOW_S: Final = 60.0
_POLL_S: Final = 0.5
#: Connections that may wait to be accepted (uvicorn's default for its own listeners).
_BACKLOG: Final = 2048


def _worker_main(config: Any, plan: Any, hand_off: socket.socket, channel: Connection) -> None:
    """A worker's body: build a runtime, serve the connections handed over until told to
    stop, report how it went."""
    from haechi.proxy.server import serve_socket
    from haechi.runtime import create_runtime

    configure_logging(config.logging.format)
    try:
        runtime = create_runtime(config)
    except HaechiError as exc:
        channel.send(("failed", str(exc)))
        raise SystemExit(1) from None
    except Exception as exc:
        channel.send(("failed", f"the runtime could not be built ({type(exc).__name__})"))
        raise SystemExit(1) from None
    try:
        serve_socket(
            config,
            runtime,
            plan,
            hand_off,
            on_started=lambda: channel.send(("ready", "")),
            handed_off=True,
        )
    except HaechiError as exc:  # the reason, for the supervisor to report, not a traceback
        with contextlib.suppress(OSError):
            channel.send(("failed", str(exc)))
        raise SystemExit(1) from None
    finally:
        hand_off.close()
        channel.close()


@dataclass(slots=True)
class _Worker:
    process: BaseProcess
    channel: Connection
    #: The supervisor's end of the socket pair connections are handed over on.
    hand_off: socket.socket
    ready: bool = False


@dataclass(slots=True)
class _Supervisor:
    config: Any
    plan: Any
    dealer: ConnectionDealer
    count: int
    context: Any = field(default_factory=lambda: multiprocessing.get_context("spawn"))
    workers: list[_Worker] = field(default_factory=list)
    exits: deque[float] = field(default_factory=deque)
    stop_signal: str | None = None
    #: Written to when a stop signal comes, so that a wait ends at once: a signal does not
    #: end one (it goes on after the handler ran), and the supervisor went on dealing the
    #: connections that came meanwhile, after the listener should have closed.
    wake: tuple[socket.socket, socket.socket] = field(default_factory=socket.socketpair)
    #: Whether the workers were told to stop (see :meth:`pass_stop`).
    stopped_workers: bool = False

    def request_stop(self, name: str) -> None:
        """Stop at the next turn (from the signal handler): deal no more connections."""
        if self.stop_signal is None:
            self.stop_signal = name
            with contextlib.suppress(OSError):
                self.wake[1].send(b"\0")

    def start_one(self) -> _Worker:
        receive, send = self.context.Pipe(duplex=False)
        dealer_end, worker_end = hand_off_pair()
        process = self.context.Process(
            target=_worker_main,
            args=(self.config, self.plan, worker_end, send),
            name="haechi-proxy-worker",
        )
        try:
            process.start()
        finally:
            send.close()
            worker_end.close()
        worker = _Worker(process, receive, dealer_end)
        self.workers.append(worker)
        return worker

    def serve(self) -> None:
        """Until a stop signal: deal connections to the ready workers, replace dead ones."""
        while self.stop_signal is None:
            ready = [w for w in self.workers if w.ready]
            handles: list[Any] = [self.wake[0], *(w.process.sentinel for w in self.workers)]
            handles += [w.channel for w in self.workers if not w.ready]
            if ready:
                handles.append(self.dealer.listener)
            woken = wait(handles, timeout=_POLL_S)
            if self.dealer.listener in woken and self.stop_signal is None:
                self.dealer.deal([w.hand_off for w in ready if w.process.is_alive()])
            if self.stop_signal is None:
                self.replace_dead()
                self.drain_messages()

    def read(self, worker: _Worker) -> tuple[str, str] | None:
        """The worker's next message, or ``None`` when its end of the pipe is closed."""
        try:
            message: tuple[str, str] = worker.channel.recv()
        except (EOFError, OSError):
            return None
        return message

    def wait_ready(self) -> None:
        """Block until every worker is ready; stop them all if one fails or stalls."""
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not all(worker.ready for worker in self.workers):
            if self.stop_signal is not None:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HaechiError("proxy workers did not start within 60 seconds")
            pending = [w for w in self.workers if not w.ready]
            handles = [w.channel for w in pending] + [w.process.sentinel for w in pending]
            for handle in wait([*handles, self.wake[0]], timeout=min(remaining, _POLL_S)):
                if handle is self.wake[0]:
                    continue  # a stop signal: seen at the top of the loop
                worker = next(w for w in pending if handle in (w.channel, w.process.sentinel))
                # Its reason, when it sent one before exiting (either may be seen first).
                message = self.read(worker) if worker.channel.poll() else None
                if message is not None and message[0] == "ready":
                    worker.ready = True
                    continue
                reason = message[1] if message is not None else "it exited during startup"
                raise HaechiError(f"a proxy worker failed to start: {reason}")

    def replace_dead(self) -> None:
        """Replace workers that died; give up when they keep dying."""
        for worker in [w for w in self.workers if not w.process.is_alive()]:
            self.workers.remove(worker)
            worker.channel.close()
            worker.hand_off.close()
            log_event(
                logging.WARNING,
                "worker_exited",
                text=f"Haechi proxy worker {worker.process.pid} exited "
                f"(code {worker.process.exitcode}); starting a new one",
                pid=worker.process.pid,
                exitCode=worker.process.exitcode,
            )
            now = time.monotonic()
            self.exits.append(now)
            while self.exits and now - self.exits[0] > _RESTART_WINDOW_S:
                self.exits.popleft()
            if len(self.exits) > 2 * self.count:
                raise HaechiError("proxy workers keep exiting; the gateway stops")
            replacement = self.start_one()
            log_event(logging.INFO, "worker_started", pid=replacement.process.pid)

    def drain_messages(self) -> None:
        """Consume late ``ready`` messages of replacement workers."""
        for worker in self.workers:
            while not worker.ready and worker.channel.poll():
                message = self.read(worker)
                if message is None:
                    break
                worker.ready = message[0] == "ready"

    def pass_stop(self) -> None:
        """Stop listening and pass the stop on to every worker, once: a second SIGTERM would
        make a worker end at once instead of draining."""
        self.dealer.close()
        if self.stopped_workers:
            return
        self.stopped_workers = True
        for worker in self.workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        """Stop listening, pass the stop on to every worker, wait out the drain, kill what
        remains."""
        for end in self.wake:
            end.close()
        self.pass_stop()
        grace = self.config.limits.shutdown_grace_ms / 1000 + _KILL_MARGIN_S
        deadline = time.monotonic() + grace
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.channel.close()
            worker.hand_off.close()


def serve_workers(
    config: Any, plan: Any, listener: socket.socket, count: int, announce: Any
) -> None:
    """Run ``count`` worker processes serving the connections of the bound ``listener``
    until SIGTERM, SIGINT or SIGHUP (see the module doc).

    ``announce()`` is called once every worker is ready; connections made before wait in
    the listen queue. Raises :class:`HaechiError` when a worker cannot start or workers
    keep dying; the workers are stopped first.
    """
    listener.listen(_BACKLOG)
    supervisor = _Supervisor(config, plan, ConnectionDealer(listener), count)

    def on_signal(signum: int, _frame: Any) -> None:
        supervisor.request_stop(signal.Signals(signum).name)

    metrics_dir = tempfile.mkdtemp(prefix="haechi-metrics-")
    previous_env = os.environ.get(MULTIPROC_ENV)
    previous_handlers = {
        signum: signal.signal(signum, on_signal)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        for _ in range(count):
            supervisor.start_one()
        supervisor.wait_ready()
        if supervisor.stop_signal is None:
            announce()
        supervisor.serve()
        # Before the line: once it is out, connections are refused, and a connection the
        # workers hold that is set up only now is closed unserved.
        supervisor.pass_stop()
        log_event(
            logging.INFO,
            "proxy_shutdown",
            text=f"Haechi proxy shutting down ({supervisor.stop_signal})",
            signal=supervisor.stop_signal,
        )
    finally:
        supervisor.stop()
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
        if previous_env is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous_env
        shutil.rmtree(metrics_dir, ignore_errors=True)
