# SPDX-License-Identifier: Apache-2.0
"""``haechi init``, ``haechi status`` and ``haechi config``."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final
from urllib.parse import urlsplit, urlunsplit

import typer

from haechi._filelock import make_directories, sync_directory
from haechi.cli._app import ConfigOption, app, emit_json
from haechi.config import (
    DEFAULT_CONFIG_PATH,
    HaechiConfig,
    config_reference,
    default_config,
    load_config,
    reference_markdown,
)
from haechi.errors import ConfigError, HaechiError

if TYPE_CHECKING:
    from haechi.crypto import KeyFileStatus

__all__: list[str] = []

_DEV_KEY_WARNING = (
    "the local key file is a development key store: protect it (mode 0600), back it up, "
    "and rotate with 'haechi init --force'"
)


#: Mode of a configuration file ``init`` writes (less when the umask asks for less).
_CONFIG_MODE: Final = 0o644


def _create_config(path: Path) -> bool:
    """Write the default configuration at ``path`` unless something is there; return whether
    it was written.

    The policy in that file decides what is protected, so neither it nor a directory made
    for it is ever writable by others, whatever the umask; and it is created exclusively, so
    a file another ``init`` (or the operator) put there in the meantime is never replaced.
    It is synced, then its directory: a power loss after ``init`` returned would otherwise
    leave an empty file, or none, and a later ``init`` does not replace an empty one. A file
    that cannot be written whole is removed.
    """
    make_directories(path.parent, 0o755)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _CONFIG_MODE)
    except FileExistsError:
        return False
    text = json.dumps(default_config().to_json_dict(), indent=2) + "\n"
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        # A part of the file (the disk filled up) is no configuration, and a later init
        # would keep it: the file this call created goes.
        path.unlink(missing_ok=True)
        raise OSError(f"cannot write the configuration {path}: {exc.strerror}") from None
    sync_directory(path.parent)
    return True


@app.command("init")
def init_command(
    config: Annotated[
        Path,
        typer.Option("--config", help="Path of the configuration (created when missing)."),
    ] = Path(DEFAULT_CONFIG_PATH),
    force: Annotated[
        bool, typer.Option("--force", help="Rotate the key: add a new active key, retire old ones.")
    ] = False,
) -> None:
    """Create the key file, a default config and the audit directory (idempotent)."""
    created = _create_config(config)
    settings = default_config() if created else load_config(config)
    key_status = _init_local_keys(settings, force=force)
    audit_dir = Path(settings.audit.path).parent
    make_directories(audit_dir, 0o700)
    warnings = [] if key_status is None else [_DEV_KEY_WARNING]
    if settings.effective_mode != "enforce":
        warnings.append(
            f"mode is {settings.effective_mode}: findings are audited but payloads are not "
            "modified or blocked; set policy.mode to enforce"
        )
    emit_json(
        {
            "ok": True,
            "command": "init",
            "configPath": str(config),
            "created": created,
            "keyFile": None if key_status is None else settings.keys.key_file,
            "keyCreated": key_status is not None and key_status.created,
            "rotated": key_status is not None and key_status.rotated,
            "activeKid": None if key_status is None else key_status.kid,
            "auditPath": settings.audit.path,
            "mode": settings.effective_mode,
            "warnings": warnings,
        }
    )


def _init_local_keys(settings: HaechiConfig, *, force: bool) -> KeyFileStatus | None:
    """Create (with ``force``, rotate) the key file of the ``local`` provider; ``None`` for
    another provider.

    Only ``local`` reads ``keys.keyFile``: for another provider a key file would be key
    material on disk that nothing uses, and rotating it would report keys rotated that were
    not, so ``force`` is refused there.
    """
    from haechi.crypto import init_key_file

    provider = settings.keys.provider
    if provider != "local":
        if force:
            raise ConfigError(
                f'init --force rotates the key file of keys.provider "local"; keys.provider is '
                f"{provider!r}, whose keys haechi does not hold"
            )
        return None
    key_file = Path(settings.keys.key_file)
    make_directories(key_file.parent, 0o700)
    return init_key_file(key_file, force=force)


def _key_state(settings: HaechiConfig, warnings: list[str]) -> dict[str, Any]:
    key_file = Path(settings.keys.key_file)
    state: dict[str, Any] = {
        "provider": settings.keys.provider,
        "keyFile": settings.keys.key_file if settings.keys.provider == "local" else None,
        "exists": key_file.exists() if settings.keys.provider == "local" else None,
        "permissions": None,
        "nonceBudget": None,
    }
    if settings.keys.provider != "local":
        return state
    if not key_file.exists():
        warnings.append(f"key file {key_file} is missing: run haechi init")
        return state
    from haechi.crypto._exposure import exposed_key_file, key_file_permissions

    state["permissions"] = key_file_permissions(key_file)
    exposed = exposed_key_file(settings)
    if exposed is not None:
        warnings.append(exposed)
    from haechi.crypto import read_nonce_budget

    try:
        budget = read_nonce_budget(key_file)
    except HaechiError as exc:
        warnings.append(f"key file {key_file} is unusable: {exc}")
        return state
    state["nonceBudget"] = {
        "kid": budget.kid,
        "used": budget.used,
        "limit": budget.limit,
        "remaining": budget.remaining,
        "usedPercent": round(budget.used_fraction * 100, 1),
        "exhausted": budget.exhausted,
    }
    if budget.exhausted:
        warnings.append("the active key reached its encryption limit: rotate now (init --force)")
    elif budget.used_fraction >= budget.warn_threshold:
        warnings.append("the active key used half its encryption budget: plan a rotation")
    return state


def _audit_state(settings: HaechiConfig, warnings: list[str]) -> dict[str, Any]:
    audit_path = Path(settings.audit.path)
    anchor = settings.audit.anchor
    state: dict[str, Any] = {
        "sink": settings.audit.sink,
        "path": settings.audit.path,
        "exists": audit_path.exists(),
        "chain": None,
        "anchor": {"mode": anchor.mode, "path": anchor.path if anchor.mode == "file" else None},
    }
    if settings.audit.sink == "jsonl" and audit_path.exists():
        from haechi.audit import verify_chain

        anchor_path = Path(anchor.path) if anchor.mode == "file" else None
        if anchor_path is not None and not anchor_path.exists():
            anchor_path = None
        try:
            result = verify_chain(audit_path, anchor_path=anchor_path)
        except HaechiError as exc:  # its message names the log as configured
            warnings.append(f"audit log cannot be verified: {exc}")
        else:
            state["chain"] = result.to_json()
            if not result.valid:
                warnings.append(f"audit chain is broken: {result.reason}")
    if anchor.mode == "none":
        warnings.append("audit anchoring is off: truncating the tail of the log is undetectable")
    elif anchor.mode == "file":
        warnings.append("the audit anchor file shares a filesystem with the log: keep a copy apart")
    return state


def _protection_warnings(settings: HaechiConfig, warnings: list[str]) -> None:
    if settings.effective_mode != "enforce":
        warnings.append(f"mode is {settings.effective_mode}: payloads are not modified or blocked")
    if not settings.response_protection.enabled:
        warnings.append("response protection is disabled: upstream answers are not inspected")
    if settings.streaming.request_mode == "pass-through":
        warnings.append("streaming pass-through forwards streamed responses uninspected")
    if settings.token_vault.reveal_policy != "disabled":
        warnings.append("token reveal is enabled (local-dev): plaintext can be recovered")
    if settings.token_vault.detokenize_responses and not settings.response_protection.enabled:
        warnings.append("detokenizeResponses needs response protection; it never runs now")


def _policy_warnings(settings: HaechiConfig, warnings: list[str]) -> None:
    """Compile the policy as the gateway does before it listens: a policy it refuses to start
    with (an unknown preset, an action weakening a preset's) is an error here too, rather than
    a state reported as valid, and the settings of one it runs that did not apply as written
    (kept by ``allowUnsafeOverrides``) are shown."""
    from haechi.policy import PolicySet

    policies = PolicySet.from_config(settings.policy, privacy_profile=settings.privacy.profile)
    warnings.extend(policies.warnings)


def _auth_warnings(settings: HaechiConfig, warnings: list[str]) -> None:
    """Say that authentication is off (``auth.provider: "none"``, the default) when that is
    likely not meant: the gateway listens beyond this machine, or bearer tokens were added
    (``token-add``), which the gateway then never checks."""
    if settings.auth.provider != "none":
        return
    from haechi.proxy.server import is_loopback

    host = settings.proxy.host
    if not is_loopback(host):
        warnings.append(
            f'authentication is off (auth.provider "none") and the gateway listens on {host}: '
            "whoever reaches it can use it"
        )
    if _holds_tokens(settings.auth.store):
        warnings.append(
            f"{settings.auth.store} holds bearer tokens, but authentication is off (auth.provider "
            '"none"): the gateway checks none of them; set auth.provider to "bearer"'
        )


def _holds_tokens(store: str) -> bool:
    """Whether the auth store holds a token not revoked; ``False`` when it cannot be read
    (the gateway does not read it either with authentication off)."""
    from haechi.auth import read_auth_store

    try:
        return any(not record.get("disabled") for record in read_auth_store(store))
    except (HaechiError, OSError):
        return False


def _check_providers(settings: HaechiConfig) -> None:
    """Select each provider the configuration names as the gateway does before it listens:
    a name it refuses to start with (an unknown ``rateLimit.provider``, ``keys.provider``
    or ``audit.sink``) is the same error here, rather than a state reported as valid."""
    from haechi.plugins.manager import load_registry

    load_registry().check_config(settings)


def _tls_state(settings: HaechiConfig) -> dict[str, Any] | None:
    tls = settings.proxy.tls
    if tls is None:
        return None
    # Only file names: key material and passphrases are never printed.
    return {
        "configured": True,
        "certFile": tls.cert_file,
        "keyFile": tls.key_file,
        "pfxFile": tls.pfx_file,
        "passphrase": None if tls.passphrase is None else "(set)",
    }


def _public_url(url: str) -> str:
    """``url`` without its user information (``user:password@``), query and fragment, which
    may carry the upstream's credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(not a URL)"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@app.command("status")
def status_command(config: ConfigOption = Path(DEFAULT_CONFIG_PATH)) -> None:
    """Print the effective protection state as JSON (never key material)."""
    settings = load_config(config)
    _check_providers(settings)
    warnings: list[str] = []
    _protection_warnings(settings, warnings)
    _policy_warnings(settings, warnings)
    _auth_warnings(settings, warnings)
    keys = _key_state(settings, warnings)
    audit = _audit_state(settings, warnings)
    vault = settings.token_vault
    emit_json(
        {
            "ok": True,
            "command": "status",
            "configPath": str(config),
            "protection": {
                "policyMode": settings.effective_mode,
                "enforced": settings.effective_mode == "enforce",
                "responseProtection": {
                    "enabled": settings.response_protection.enabled,
                    "mode": settings.response_protection.mode,
                    "failureMode": settings.response_protection.failure_mode,
                },
                "streamingRequestMode": settings.streaming.request_mode,
                "streamingResponseMode": settings.streaming.response_mode,
            },
            "target": {
                "type": settings.target.type,
                "adapter": settings.target.adapter_id,
                "upstream": _public_url(settings.target.upstream),
            },
            "proxy": {
                "host": settings.proxy.host,
                "port": settings.proxy.port,
                "tls": _tls_state(settings),
                "trustForwardedProto": settings.proxy.trust_forwarded_proto,
            },
            "auth": {"provider": settings.auth.provider},
            "tokenVault": {
                "provider": vault.provider,
                "revealPolicy": vault.reveal_policy,
                "retentionDays": vault.retention_days,
                "deterministic": vault.deterministic,
                "deterministicTypes": vault.deterministic_types,
                "detokenizeResponses": vault.detokenize_responses,
            },
            "privacyProfile": settings.privacy.profile,
            "keys": keys,
            "audit": audit,
            "warnings": warnings,
        }
    )


class ReferenceFormat(StrEnum):
    """Output formats of ``haechi config``."""

    text = "text"
    markdown = "markdown"
    json = "json"


@app.command("config")
def config_command(
    output_format: Annotated[
        ReferenceFormat, typer.Option("--format", help="text, markdown or json.")
    ] = ReferenceFormat.text,
) -> None:
    """Print every configuration key with its type, default and meaning."""
    keys = config_reference()
    if output_format is ReferenceFormat.json:
        emit_json([key.model_dump() for key in keys])
        return
    if output_format is ReferenceFormat.markdown:
        sys.stdout.write(reference_markdown())
        return
    lines = [
        "haechi.config.json keys (configVersion 1). Unknown keys are errors.",
        "Environment overlay: HAECHI_PROXY_PORT, HAECHI_PROXY_HOST, HAECHI_UPSTREAM, "
        "HAECHI_MODE, HAECHI_LOG_FORMAT. See docs/configuration.md.",
    ]
    for key in keys:
        lines.append("")
        lines.append(f"{key.key}  ({key.type})  default: {json.dumps(key.default)}")
        lines.append(f"    {key.description}")
    sys.stdout.write("\n".join(lines) + "\n")
