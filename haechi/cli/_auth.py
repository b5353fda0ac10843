# SPDX-License-Identifier: Apache-2.0
"""``haechi token-add``, ``token-list`` and ``token-revoke``: gateway bearer tokens.

Tokens are stored hashed (keyed HMAC) in ``auth.store``; ``token-add`` prints the plaintext
token once and it cannot be recovered afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from haechi.cli._app import ConfigOption, app, emit_json, standard_stream
from haechi.config import DEFAULT_CONFIG_PATH, HaechiConfig, load_config
from haechi.errors import ConfigError

__all__: list[str] = []

_SHOWN_ONCE = "store this token now: it is shown once and only its keyed hash is kept"


def _crypto(settings: HaechiConfig) -> Any:
    from haechi.plugins.manager import load_registry
    from haechi.providers import ProviderContext

    if settings.keys.provider == "external":
        raise ConfigError('token commands need keys.provider "local" (or a registered plugin)')
    cls = load_registry().select("crypto", settings.keys.provider)
    return cls.create(ProviderContext(settings))


def _labels(pairs: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for number, pair in enumerate(pairs, 1):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            # Not quoted back: what was typed may be a value, not a label.
            raise ConfigError(f"invalid --label number {number} (expected key=value)")
        labels[key] = value
    return labels


@app.command("token-add")
def token_add_command(
    token_type: Annotated[
        str, typer.Option("--type", help="Identity type: user, service or agent.")
    ],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="A scope (repeatable).", show_default=False)
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="A key=value label (repeatable).", show_default=False),
    ] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """Create a gateway bearer token and print it once."""
    from haechi.auth import add_token, revoke_token

    # A token nobody can be shown would still be stored and accepted: refuse it first.
    standard_stream("stdout")
    settings = load_config(config)
    record, token = add_token(
        settings.auth.store,
        _crypto(settings),
        token_type=token_type,
        scopes=list(scope or []),
        labels=_labels(list(label or [])),
        allowed_label_keys=settings.auth.allowed_label_keys,
    )
    try:
        emit_json(
            {
                "ok": True,
                "command": "token-add",
                **{k: record[k] for k in ("id", "type", "scopes", "labels")},
                "token": token,
                "warning": _SHOWN_ONCE,
            }
        )
    except OSError:
        # Not shown (the reader of a pipe went away): disabled, not left working unknown.
        revoke_token(settings.auth.store, record["id"])
        raise


@app.command("token-list")
def token_list_command(config: ConfigOption = Path(DEFAULT_CONFIG_PATH)) -> None:
    """List gateway bearer tokens (ids, types, scopes, labels; never tokens or hashes)."""
    from haechi.auth import list_tokens

    settings = load_config(config)
    emit_json({"ok": True, "command": "token-list", "tokens": list_tokens(settings.auth.store)})


@app.command("token-revoke")
def token_revoke_command(
    token_id: Annotated[str, typer.Argument(help="Token id (tok_auth_...).")],
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """Disable a gateway bearer token; effective on the next request."""
    from haechi.auth import revoke_token

    settings = load_config(config)
    result = revoke_token(settings.auth.store, token_id)
    emit_json({"ok": True, "command": "token-revoke", "result": result})
