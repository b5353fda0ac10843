# SPDX-License-Identifier: Apache-2.0
"""``haechi audit-verify`` and ``haechi report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from haechi.cli._app import ConfigOption, app, emit_json, exit_with
from haechi.config import DEFAULT_CONFIG_PATH, default_config, load_config
from haechi.errors import ConfigError

__all__: list[str] = []

_EXIT_BROKEN_CHAIN = 4

AuditPathOption = Annotated[
    Path | None,
    typer.Option(
        "--audit",
        "--path",
        help="Audit log to read (JSONL).",
        show_default=False,
    ),
]


@app.command("audit-verify")
def audit_verify_command(
    audit: AuditPathOption = None,
    anchor: Annotated[
        bool,
        typer.Option(
            "--anchor",
            help="Check anchors too: --anchor PATH, or a bare --anchor for the anchor file "
            "of the configuration (audit.anchor.mode file).",
        ),
    ] = False,
    anchor_file: Annotated[
        Path | None, typer.Argument(hidden=True, show_default=False, metavar="--anchor PATH")
    ] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """Verify the hash chain of an audit log (exit 4 when it is broken)."""
    from haechi.audit import verify_chain

    # ``--anchor`` takes an optional value, which the option parser cannot express: it is a
    # flag, and the path written after it arrives as the one (hidden) positional argument.

    if anchor_file is not None and not anchor:
        # Not quoted back, as no stray argument is: it may be a value pasted by mistake.
        raise ConfigError("unexpected argument (not shown); did you mean --anchor PATH?")
    audit_path = audit
    anchor_path = anchor_file
    if audit_path is None or (anchor and anchor_file is None):
        settings = load_config(config)
        if audit_path is None:
            audit_path = Path(settings.audit.path)
        if anchor and anchor_file is None and settings.audit.anchor.mode == "file":
            anchor_path = Path(settings.audit.anchor.path)
    result = verify_chain(audit_path, anchor_path=anchor_path)
    emit_json(
        {
            "ok": result.valid,
            "command": "audit-verify",
            "auditPath": str(audit_path),
            "anchorPath": None if anchor_path is None else str(anchor_path),
            "result": result.to_json(),
        }
    )
    if not result.valid:
        exit_with(_EXIT_BROKEN_CHAIN)


@app.command("report")
def report_command(audit: AuditPathOption = None) -> None:
    """Sum up an audit log: events, blocks, detections by type and by action.

    Without ``--audit`` the default log path is read; the configuration is not consulted.
    """
    from haechi.audit import read_summary

    audit_path = audit or Path(default_config().audit.path)
    emit_json({"ok": True, "auditPath": str(audit_path), "summary": read_summary(audit_path)})
