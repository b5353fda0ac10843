# SPDX-License-Identifier: Apache-2.0
"""``haechi token-add``, ``token-list`` and ``token-revoke``: gateway bearer tokens.

Tokens are stored hashed (keyed HMAC) in ``auth.store``; ``token-add`` prints the plaintext
token once and it cannot be recovered afterwards. Every token added or revoked is recorded in
the audit log of the configuration, the gateway's chain: a token whose record cannot be
written is taken out again, a revocation is kept all the same (see
:data:`haechi.auth.ChangeRecorder`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio.from_thread
import anyio.to_thread
import typer

from haechi.cli._app import ConfigOption, app, emit_json, refuse_stdout_anchor, standard_stream
from haechi.cli._composed import with_runtime
from haechi.config import DEFAULT_CONFIG_PATH, HaechiConfig, load_config
from haechi.errors import AuditError, ConfigError

if TYPE_CHECKING:
    from haechi.audit import AuthTokenChange
    from haechi.runtime import Runtime

__all__: list[str] = []

_SHOWN_ONCE = "store this token now: it is shown once and only its keyed hash is kept"

#: What ``token-add`` adds to its ``warnings`` under ``auth.provider: "none"`` (the default):
#: the token is stored, and the gateway lets every request through without looking at it.
_AUTH_OFF = (
    'auth.provider is "none": the gateway checks no bearer token, so this one is not '
    'required; set auth.provider to "bearer" to require it'
)

_T = TypeVar("_T")


def _audited(settings: HaechiConfig, work: Callable[[Runtime], _T]) -> _T:
    """Run ``work`` on a worker thread with the runtime composed from ``settings``: its
    crypto provider hashes tokens and its audit sink (the gateway's log) records each
    change, through :func:`_recorder`."""
    return with_runtime(settings, lambda runtime: anyio.to_thread.run_sync(work, runtime))


def _recorder(
    runtime: Runtime, change: AuthTokenChange, reason: str | None = None
) -> Callable[[Mapping[str, Any]], object]:
    """What records one change of the store in the audit log (called from the worker
    thread of :func:`_audited`; a record that cannot be written raises ``AuditError``)."""
    from haechi.audit import auth_token_event
    from haechi.auth import IDENTITY_HASH_DOMAIN, TOKEN_TYPES, is_token_id

    settings = runtime.config
    binding = settings.policy.profile_binding
    known_scopes = frozenset(binding.by_scope) if binding is not None else frozenset()

    def record(token: Mapping[str, Any]) -> object:
        scopes, labels, token_id = token.get("scopes"), token.get("labels"), token["id"]
        if not is_token_id(token_id):
            # A record edited by hand to another id (a name, an address) can still be
            # revoked by it: the log holds a keyed hash of that id, as the vault's of input
            # that is not a token.
            token_id = "nontoken_" + runtime.crypto.hmac(str(token_id), IDENTITY_HASH_DOMAIN)[:16]
        event = auth_token_event(
            change=change,
            token_id=token_id,
            token_type=token["type"] if token.get("type") in TOKEN_TYPES else None,
            scopes=scopes if isinstance(scopes, list) else [scopes],
            label_keys=labels if isinstance(labels, dict) else [labels],
            known_scopes=known_scopes,
            known_label_keys=settings.auth.allowed_label_keys,
            reason=reason,
        )
        try:
            return anyio.from_thread.run(runtime.audit.record, event)
        except AuditError as exc:
            # A revocation is kept whatever the record did (see ChangeRecorder).
            outcome = "no token was added:" if change == "added" else "the token is revoked, but"
            raise AuditError(f"{outcome} its audit record could not be written ({exc})") from exc

    return record


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
    """Create a gateway bearer token and print it once (audited)."""
    from haechi.auth import add_token

    # A token nobody can be shown would still be stored and accepted: refuse it first.
    standard_stream("stdout")
    settings = load_config(config)
    refuse_stdout_anchor(settings, "token-add", "the token")
    labels = _labels(list(label or []))

    def add(runtime: Runtime) -> tuple[dict[str, Any], str]:
        return add_token(
            settings.auth.store,
            runtime.crypto,
            token_type=token_type,
            scopes=list(scope or []),
            labels=labels,
            allowed_label_keys=settings.auth.allowed_label_keys,
            audit=_recorder(runtime, "added"),
        )

    record, token = _audited(settings, add)
    try:
        emit_json(
            {
                "ok": True,
                "command": "token-add",
                **{k: record[k] for k in ("id", "type", "scopes", "labels")},
                "token": token,
                "warning": _SHOWN_ONCE,
                "warnings": [_AUTH_OFF] if settings.auth.provider == "none" else [],
            }
        )
    except OSError:
        # Not shown (the reader of a pipe went away): disabled, not left working unknown.
        # Should its record fail, the token is disabled all the same, and the error shown
        # is still the one that made it so.
        _audited(settings, lambda runtime: _disable_unshown(runtime, record["id"]))
        raise


def _disable_unshown(runtime: Runtime, token_id: str) -> None:
    """Disable a token ``token-add`` could not show, recorded with reason
    ``token_not_shown`` (disabled all the same when the record cannot be written)."""
    from haechi.auth import revoke_token

    with contextlib.suppress(AuditError):
        revoke_token(
            runtime.config.auth.store,
            token_id,
            audit=_recorder(runtime, "revoked", "token_not_shown"),
        )


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
    """Disable a gateway bearer token; effective on the next request (audited)."""
    from haechi.auth import revoke_token

    settings = load_config(config)
    refuse_stdout_anchor(settings, "token-revoke", "its JSON result")
    result = _audited(
        settings,
        lambda runtime: revoke_token(
            settings.auth.store, token_id, audit=_recorder(runtime, "revoked")
        ),
    )
    emit_json({"ok": True, "command": "token-revoke", "result": result})
