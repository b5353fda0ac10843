# SPDX-License-Identifier: Apache-2.0
"""``haechi rules``: the detection catalogue, as the engine will run it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from haechi.cli._app import ConfigOption, app, emit_json
from haechi.config import DEFAULT_CONFIG_PATH

__all__: list[str] = []


def _catalogue(config: Path) -> list[tuple[str, Any]]:
    """``(source, rule)`` for every rule: registered detectors (built-in first), then the
    ``filters.customRules`` of ``config`` (none when the default file does not exist; a
    ``--config`` naming a missing file is refused, as by every other command)."""
    from haechi.config import load_config
    from haechi.detect import BuiltinDetector, DetectionEngine
    from haechi.plugins.manager import load_registry
    from haechi.providers import ProviderContext

    settings = load_config(config)
    context = ProviderContext(config=settings)
    classes = sorted(
        load_registry().slots.get("detector", {}).values(),
        key=lambda cls: cls is not BuiltinDetector,
    )
    sourced = [
        (cls.name if cls is BuiltinDetector else f"plugin:{cls.name}", rule)
        for cls in classes
        for rule in cls.create(context).rules()
    ]
    custom = [rule.model_dump(by_alias=True) for rule in settings.filters.custom_rules]
    # Building the engine validates everything the runtime would refuse (custom patterns,
    # duplicate ids) before anything is listed.
    engine = DetectionEngine([rule for _source, rule in sourced], custom_rules=custom)
    custom_rules = engine.rules[len(sourced) :]
    return sourced + [("custom", rule) for rule in custom_rules]


def _describe(source: str, rule: Any) -> dict[str, Any]:
    return {
        "id": rule.id,
        "type": rule.type,
        "confidence": rule.confidence,
        "hardBlock": rule.is_hard_block,
        "validator": rule.validator_name,
        "direction": rule.direction or "both",
        "source": source,
        "summary": rule.description,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    width = shutil.get_terminal_size((120, 20)).columns
    header = f"{'id':<32} {'type':<18} {'conf':>4} {'HB':<3} {'validator':<28} summary"
    lines = [header]
    for row in rows:
        line = (
            f"{row['id']:<32} {row['type']:<18} {row['confidence']:>4.2f} "
            f"{'yes' if row['hardBlock'] else '':<3} {row['validator'] or '-':<28} "
            f"{row['summary']}"
        )
        lines.append(line if len(line) <= width else line[: width - 1] + "\u2026")
    return "\n".join(lines)


@app.command("rules")
def rules_command(
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List every detection rule: id, type, confidence, hard-block, validator, summary."""
    rows = [_describe(source, rule) for source, rule in _catalogue(config)]
    if as_json:
        emit_json(
            {
                "ok": True,
                "command": "rules",
                "count": len(rows),
                "types": sorted({row["type"] for row in rows}),
                "rules": rows,
            }
        )
        return
    typer.echo(_table(rows))
    typer.echo(f"{len(rows)} rules, {len({row['type'] for row in rows})} types")
