# SPDX-License-Identifier: Apache-2.0
"""``haechi proxy`` (the gateway) and ``haechi demo`` (a guided round trip through it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from haechi.cli._app import ConfigOption, app, exit_with
from haechi.config import DEFAULT_CONFIG_PATH, load_config

__all__: list[str] = []


def _standard_descriptors_held() -> None:
    """Open the null device on each of descriptors 0, 1 and 2 that is closed.

    A process started with one closed (``<&-``) would get it back as its next file or socket
    (the lowest free descriptor): the listening socket as 0, the event loop's poller as 1,
    and uvloop aborts the process when it closes a descriptor up to 2, so the gateway died
    (SIGABRT) as it stopped instead of draining. Whatever the process or its children write
    to a standard stream would also land in that file or socket.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            # The lowest free descriptor: ``fd`` itself, those below it being open now. It is
            # inherited, as a standard descriptor is: the workers start with it.
            os.set_inheritable(os.open(os.devnull, os.O_RDWR), True)


@app.command("proxy")
def proxy_command(
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
    host: Annotated[
        str | None,
        typer.Option("--host", help="Listen address (default proxy.host).", show_default=False),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", min=0, max=65535, help="Listen port (default proxy.port).", show_default=False
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Gateway processes sharing the socket (default proxy.workers).",
            show_default=False,
        ),
    ] = None,
    allow_remote_bind: Annotated[
        bool,
        typer.Option(
            "--allow-remote-bind",
            help="Allow a non-loopback --host; also needs proxy.tls or proxy.trustForwardedProto.",
        ),
    ] = False,
) -> None:
    """Run the gateway in front of target.upstream until SIGTERM, SIGINT or SIGHUP."""
    from haechi.proxy.server import plan_listen, run_proxy

    if host is not None and not host.strip():
        # As proxy.host and HAECHI_PROXY_HOST are: a blank host (a variable left unset in
        # --host "$HOST") is no address, and the server would listen on every interface.
        raise typer.BadParameter("must not be blank", param_hint="'--host'")
    _standard_descriptors_held()
    settings = load_config(config)
    plan = plan_listen(
        settings,
        host=host if host is not None else settings.proxy.host,
        port=port if port is not None else settings.proxy.port,
        allow_remote_bind=allow_remote_bind,
    )
    run_proxy(settings, plan, workers=workers)


@app.command("demo")
def demo_command() -> None:
    """Send PII through a gateway in enforce mode and show what the model received."""
    from haechi.proxy.demo import run_demo

    exit_with(run_demo())
