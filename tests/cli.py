# SPDX-License-Identifier: Apache-2.0
"""Run the ``haechi`` command line as a user does: a real subprocess of this interpreter."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_haechi(
    *args: str | Path,
    cwd: Path,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``python -m haechi ARGS`` in ``cwd``, without any ``HAECHI_*`` variable of this shell."""
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("HAECHI_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "haechi", *map(str, args)],
        cwd=cwd,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_haechi_on_terminal(
    *args: str, cwd: Path
) -> tuple[subprocess.CompletedProcess[bytes], bytes]:
    """``python -m haechi ARGS`` in ``cwd`` with stderr on a terminal (a pseudo-terminal):
    the finished process, its stdout captured, and all the terminal was sent."""
    main, secondary = pty.openpty()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "haechi", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=secondary,
            timeout=120,
            check=False,
        )
        os.close(secondary)
        secondary = -1
        shown = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal is closed once the child is gone
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if secondary != -1:
            os.close(secondary)
        os.close(main)
    return process, shown


def json_output(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON document a successful command printed."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def plugin_sign_args(key: str, capabilities: str, *extra: str) -> list[str]:
    """``plugin-sign`` of ``auth.py`` as version 1.0.0 of the auth provider ``acme-auth``,
    with the key file ``key`` of signer ``acme`` and ``--capabilities capabilities``."""
    return [
        "plugin-sign",
        "auth.py",
        "--key",
        key,
        "--signer-key-id",
        "acme",
        "--plugin-id",
        "acme-auth",
        "--kind",
        "authProvider",
        "--plugin-version",
        "1.0.0",
        "--core-range",
        ">=0.0.0 <99.0.0",
        "--capabilities",
        capabilities,
        *extra,
    ]
