# SPDX-License-Identifier: Apache-2.0
"""``haechi plugin-validate``, ``plugin-keygen``, ``plugin-sign`` and ``plugin-verify``.

``plugin-verify`` runs the very gate the runtime runs at load, so an envelope it accepts is
one the gateway accepts under the same trust settings, and a refusal is reported as
``haechi: plugin-verify refused: <reason> (<detail>)`` with exit code 1, never as valid.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from haechi._filelock import atomic_write, make_directories
from haechi._json_once import RepeatedKey, members_once
from haechi.cli._app import app, emit_json, exit_with, read_at_most
from haechi.errors import ConfigError, PluginLoadError
from haechi.plugins.manifest import (
    MAX_ENTRY_BYTES,
    MAX_MANIFEST_BYTES,
    read_plugin_files,
    validate_manifest,
)
from haechi.plugins.signing import (
    build_payload,
    generate_keypair,
    load_private_key,
    manifest_sha256,
    sign_payload,
)
from haechi.plugins.trust import (
    AUTH_PROVIDER_KIND,
    PluginPin,
    TrustPolicy,
    verify_auth_plugin,
)

__all__: list[str] = []

_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ONE_TRUST_SOURCE = "plugin-verify needs exactly one of --anchor or --config"
#: Largest PEM key file read (``--key``, ``--anchor``): an Ed25519 key is a few hundred bytes.
_MAX_PEM_BYTES: Final = 64 * 1024


def _parse_json(text: bytes | str, what: str) -> Any:
    """``text`` as JSON, or a :class:`ConfigError` naming ``what``.

    Besides malformed text, bytes that are not UTF-8, a number beyond ``int()``'s digit
    limit and nesting beyond the recursion limit are refused the same way: as the operator's
    mistake, never as an internal error. So is an object giving a key twice, as the gate
    refuses it in a manifest: what is signed or validated is the document read keeping the
    last value, and a reader keeping the first would not see what was checked. The key is
    not named: it may hold anything typed.
    """
    try:
        decoded = text.decode("utf-8") if isinstance(text, bytes) else text
        return json.loads(decoded, object_pairs_hook=members_once)
    except RepeatedKey:
        raise ConfigError(f"{what} gives a key twice in one object") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} is not JSON: {exc.msg}") from None
    except ValueError:
        raise ConfigError(f"{what} is not UTF-8 JSON") from None
    except RecursionError:
        raise ConfigError(f"{what} nests too deeply to be read as JSON") from None


def _read_file(path: Path, limit: int, what: str) -> bytes:
    """The bytes of the file at ``path``, refused (naming it as ``what``) past ``limit``.

    Never more than ``limit + 1`` bytes are read: a path may name a pipe or a device that
    never ends (``/dev/zero``, ``/dev/stdin`` fed by ``yes``).
    """
    with path.open("rb") as handle:
        data = read_at_most(handle, limit)
    if len(data) > limit:
        raise ConfigError(f"{what} is larger than {limit} bytes")
    return data


def _read_json(path: Path) -> Any:
    """The JSON document of the file at ``path`` (see :func:`_parse_json`), no larger than
    the gate reads a manifest."""
    return _parse_json(_read_file(path, MAX_MANIFEST_BYTES, str(path)), str(path))


@app.command("plugin-validate")
def plugin_validate_command(
    manifest: Annotated[Path, typer.Argument(help='Plugin manifest ({"haechiPlugin": ...}).')],
) -> None:
    """Check a plugin manifest's shape (exit 2 when invalid)."""
    errors = validate_manifest(_read_json(manifest))
    emit_json(
        {
            "ok": not errors,
            "command": "plugin-validate",
            "manifestPath": str(manifest),
            "result": {"valid": not errors, "errors": errors},
        }
    )
    if errors:
        exit_with(2)


def _create(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL: an existing signing key is never overwritten.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; choose another --key-id or --out-dir") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@app.command("plugin-keygen")
def plugin_keygen_command(
    key_id: Annotated[
        str, typer.Option("--key-id", help="Signer key id (names the files and the anchor).")
    ] = "haechi-plugin-signer",
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Directory for the key files.")] = Path(
        "."
    ),
) -> None:
    """Create an Ed25519 signing key: <id>.key (private, 0600) and <id>.pub (trust anchor)."""
    if not _KEY_ID.fullmatch(key_id):
        raise ConfigError("--key-id must be 1-128 of letters, digits, '.', '_' or '-'")
    # Whoever can write there can swap both files for a pair of their own before the public
    # key is handed out as a trust anchor: no directory made here is writable by others.
    make_directories(out_dir, 0o755)
    private_path, public_path = out_dir / f"{key_id}.key", out_dir / f"{key_id}.pub"
    pair = generate_keypair()
    _create(private_path, pair.private_pem, 0o600)
    _create(public_path, pair.public_pem.encode("ascii"), 0o644)
    emit_json(
        {
            "ok": True,
            "command": "plugin-keygen",
            "keyId": key_id,
            "privateKeyPath": str(private_path),
            "publicKeyPath": str(public_path),
            "publicKeyPem": pair.public_pem,
        }
    )


def _capabilities(raw: str) -> dict[str, Any]:
    value = _read_json(Path(raw[1:])) if raw.startswith("@") else _parse_json(raw, "--capabilities")
    if not isinstance(value, dict):
        raise ConfigError("--capabilities must be a JSON object (or @file holding one)")
    for name, granted in value.items():
        if not isinstance(granted, bool):
            raise ConfigError(f"capability {name!r} must be true or false")
    return value


def _entry_hint(entry: Path, out: Path) -> str | None:
    # Where the entry lies relative to the envelope, when it lies beside or below it.
    hint = os.path.relpath(entry.resolve(), out.resolve().parent)
    return None if hint.startswith("..") or os.path.isabs(hint) else Path(hint).as_posix()


@app.command("plugin-sign")
def plugin_sign_command(
    entry: Annotated[Path, typer.Argument(help="The plugin entry file (signed byte for byte).")],
    key: Annotated[Path, typer.Option("--key", help="PKCS#8 PEM private key file.")],
    signer_key_id: Annotated[str, typer.Option("--signer-key-id", help="Signer key id.")],
    plugin_id: Annotated[str, typer.Option("--plugin-id", help="Plugin id.")],
    kind: Annotated[str, typer.Option("--kind", help="Plugin kind (authProvider).")],
    plugin_version: Annotated[str, typer.Option("--plugin-version", help="Plugin version.")],
    core_range: Annotated[
        str, typer.Option("--core-range", help="Supported core versions: '>=A.B.C <D.E.F'.")
    ],
    capabilities: Annotated[
        str, typer.Option("--capabilities", help="JSON object of booleans, or @file.")
    ] = "{}",
    not_before: Annotated[
        int | None, typer.Option("--not-before", help="Valid from (epoch ms).")
    ] = None,
    not_after: Annotated[
        int | None, typer.Option("--not-after", help="Valid until (epoch ms).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Envelope file (default <plugin-id>.signed.json).")
    ] = None,
) -> None:
    """Sign an entry file: bind its SHA-256 and metadata under an Ed25519 key."""
    for flag, value in (
        ("--signer-key-id", signer_key_id),
        ("--plugin-id", plugin_id),
        ("--kind", kind),
        ("--plugin-version", plugin_version),
        ("--core-range", core_range),
    ):
        if not value.strip():
            raise ConfigError(f"{flag} must not be blank")
    granted = _capabilities(capabilities)
    if kind == AUTH_PROVIDER_KIND and granted.get("readsCredentials") is not True:
        raise ConfigError("an authProvider plugin must declare readsCredentials: true")
    pem = _read_file(key, _MAX_PEM_BYTES, f"--key {key}")
    try:
        private_key = load_private_key(pem)
    except ValueError as exc:
        raise ConfigError(f"--key {key}: {exc}") from None
    payload = build_payload(
        plugin_id=plugin_id,
        kind=kind,
        version=plugin_version,
        capabilities=granted,
        core_range=core_range,
        # No larger than the gate reads: a bigger entry could be signed, never loaded.
        entry=_read_file(entry, MAX_ENTRY_BYTES, str(entry)),
        not_before=not_before,
        not_after=not_after,
    )
    envelope = sign_payload(payload, private_key, signer_key_id)
    out_path = out or Path(f"{plugin_id}.signed.json")
    hint = _entry_hint(entry, out_path)
    if hint is not None:
        envelope["entrypoint"] = hint
    atomic_write(out_path, (json.dumps(envelope, indent=2) + "\n").encode("utf-8"), mode=0o644)
    emit_json(
        {
            "ok": True,
            "command": "plugin-sign",
            "outPath": str(out_path),
            "pluginId": plugin_id,
            "signerKeyId": signer_key_id,
            "entrySha256": payload["entrySha256"],
            "manifestSha256": manifest_sha256(payload),
            "kind": kind,
            "version": plugin_version,
        }
    )


def _policy_from_config(path: Path) -> TrustPolicy:
    from haechi import __version__
    from haechi.config import load_config

    settings = load_config(path).auth.plugin
    if settings is None:
        raise ConfigError(f"{path} has no auth.plugin section with trust anchors")
    # As the runtime: without auth.plugin.coreVersion the range must hold this haechi.
    return TrustPolicy.from_config(settings, core_version=__version__)


def _anchor_policy(
    envelope: Mapping[str, Any], anchor: Path | None, anchor_key_id: str | None
) -> TrustPolicy:
    """Trust in the one key of ``anchor``, under ``anchor_key_id`` or the envelope's signer."""
    if anchor is None:
        raise ConfigError(_ONE_TRUST_SOURCE)
    signer = anchor_key_id
    if signer is None:
        named = envelope.get("signerKeyId")
        signer = named if isinstance(named, str) else ""
    return TrustPolicy(anchors={signer: _read_file(anchor, _MAX_PEM_BYTES, f"--anchor {anchor}")})


@app.command("plugin-verify")
def plugin_verify_command(
    envelope: Annotated[Path, typer.Argument(help="Signed envelope (or haechiPlugin manifest).")],
    entry: Annotated[Path, typer.Option("--entry", help="The entry file the envelope binds.")],
    anchor: Annotated[
        Path | None, typer.Option("--anchor", help="Trust anchor: SPKI PEM public key file.")
    ] = None,
    anchor_key_id: Annotated[
        str | None,
        typer.Option("--anchor-key-id", help="Key id of --anchor (default: the envelope's)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Take trust settings from this config's auth.plugin."),
    ] = None,
    allow_capability: Annotated[
        list[str] | None,
        typer.Option("--allow-capability", help="Allowlisted capability (repeatable)."),
    ] = None,
    pin: Annotated[str | None, typer.Option("--pin", help="Required entrySha256.")] = None,
    core_version: Annotated[
        str | None, typer.Option("--core-version", help="Check the plugin's core range.")
    ] = None,
) -> None:
    """Verify an envelope and its entry exactly as the runtime would (exit 1 on refusal)."""
    if anchor is not None and config is not None:
        raise ConfigError(_ONE_TRUST_SOURCE)
    overrides: dict[str, Any] = {}
    if allow_capability:
        overrides["allow_capabilities"] = frozenset(allow_capability)
    if pin is not None:
        overrides["pin"] = PluginPin(entry_sha256=pin)
    if core_version is not None:
        overrides["core_version"] = core_version
    configured = None if config is None else _policy_from_config(config)
    try:
        # Read once, as the runtime reads them: what cannot be read is a refusal.
        files = read_plugin_files(envelope, entry)
        policy = (
            configured
            if configured is not None
            else _anchor_policy(files.envelope, anchor, anchor_key_id)
        )
        plugin = verify_auth_plugin(
            files.envelope, files.entry, dataclasses.replace(policy, **overrides)
        )
    except PluginLoadError as exc:
        sys.stderr.write(f"haechi: plugin-verify refused: {exc}\n")
        exit_with(1)
        return
    emit_json(
        {
            "ok": True,
            "command": "plugin-verify",
            "valid": True,
            "pluginId": plugin.plugin_id,
            "signerKeyId": plugin.signer_key_id,
            "entrySha256": plugin.entry_sha256,
            "manifestSha256": plugin.manifest_sha256,
            "kind": plugin.kind,
            "version": plugin.version,
            "capabilitiesGranted": plugin.capabilities_granted,
        }
    )
