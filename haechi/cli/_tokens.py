# SPDX-License-Identifier: Apache-2.0
"""``haechi token-reveal``, ``haechi token-purge`` and ``haechi token-export``.

Each command composes the runtime from the configuration and works on its token vault, so
the configured store, crypto provider and audit log are the ones the gateway uses: every
reveal decision and purge lands in the same hash chain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar

import typer

from haechi.cli._app import ConfigOption, app, emit_json, refuse_stdout_anchor
from haechi.cli._composed import with_runtime
from haechi.config import DEFAULT_CONFIG_PATH, HaechiConfig, load_config
from haechi.errors import ConfigError, VaultError

if TYPE_CHECKING:
    from haechi.runtime import Runtime
    from haechi.vault import RevealedToken, TokenVault

__all__: list[str] = []

#: What ``token-purge`` prints in place of an argument that is not a token id.
NON_TOKEN: Final = "[REDACTED:non-token]"  # noqa: S105 - a placeholder, not a secret

_T = TypeVar("_T")


def _with_vault(settings: HaechiConfig, work: Callable[[TokenVault], Awaitable[_T]]) -> _T:
    """Run ``work`` on the vault of the runtime composed from ``settings``."""
    return with_runtime(settings, lambda runtime: work(_vault(runtime)))


def _vault(runtime: Runtime) -> TokenVault:
    """The runtime's vault; a runtime made without one (tokens as one-way labels) has no
    token to reveal, purge or list."""
    vault: TokenVault | None = runtime.token_vault
    if vault is None:
        raise VaultError("no token vault is configured", "vault_error")
    return vault


async def _reveal(runtime: Runtime, token: str, allow_dev_reveal: bool) -> RevealedToken:
    """Reveal ``token`` with the runtime's vault.

    A local key file that is missing or invalid fails the reveal as any envelope refused
    (audited ``decrypt_failed``), whose message says nothing of the file: the operator is then
    told which file, and what to do, as ``haechi proxy`` tells at start, rather than left to
    suspect the record.
    """
    try:
        return await _vault(runtime).reveal(token, dev_override=allow_dev_reveal)
    except VaultError as exc:
        from haechi.crypto import LocalCryptoProvider

        if exc.reason == "decrypt_failed" and isinstance(runtime.crypto, LocalCryptoProvider):
            runtime.crypto.load()
        raise


@app.command("token-reveal")
def token_reveal_command(
    token: Annotated[str, typer.Argument(help="The token id (tok_<type>_<hex>).")],
    allow_dev_reveal: Annotated[
        bool,
        typer.Option(
            "--allow-dev-reveal",
            help="Treat tokenVault.revealPolicy as local-dev for this call (development only).",
        ),
    ] = False,
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """Print a token's plaintext, if the reveal policy allows it (always audited)."""
    settings = load_config(config)
    refuse_stdout_anchor(settings, "token-reveal", "its JSON result")
    revealed = with_runtime(settings, lambda runtime: _reveal(runtime, token, allow_dev_reveal))
    emit_json(
        {
            "ok": True,
            "token": revealed.token,
            "type": revealed.type,
            "plaintext": revealed.plaintext,
        }
    )


@app.command("token-purge")
def token_purge_command(
    token: Annotated[
        str | None, typer.Argument(help="The token id to delete.", show_default=False)
    ] = None,
    expired: Annotated[
        bool, typer.Option("--expired", help="Delete every expired token instead.")
    ] = False,
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """Delete one token, or every expired token (audited)."""
    if expired == (token is not None):
        raise ConfigError("token-purge needs a TOKEN or --expired (not both)")
    settings = load_config(config)
    refuse_stdout_anchor(settings, "token-purge", "its JSON result")
    result: Mapping[str, Any]
    if token is None:
        result = _with_vault(settings, lambda vault: vault.purge_expired())
    else:
        from haechi.vault._tokens import shown_as_is

        purged = dict(_with_vault(settings, lambda vault: vault.purge(token)))
        if not shown_as_is(token):
            # Maybe a value pasted where its token belongs, or a token-shaped one carrying a
            # number: printed no more than it is audited (the vault records a keyed hash).
            purged["token"] = NON_TOKEN
        result = purged
    emit_json({"ok": True, "command": "token-purge", "result": dict(result)})


@app.command("token-export")
def token_export_command(
    token_type: Annotated[
        str | None,
        typer.Option("--type", help="Only tokens of this detection type.", show_default=False),
    ] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG_PATH),
) -> None:
    """List tokens with their metadata (never their values)."""
    settings = load_config(config)
    tokens = _with_vault(settings, lambda vault: vault.export_metadata(token_type))
    emit_json({"ok": True, "command": "token-export", "tokens": [dict(item) for item in tokens]})
