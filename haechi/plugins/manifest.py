# SPDX-License-Identifier: Apache-2.0
"""Plugin manifests on disk: static validation, and reading a signed plugin's files once.

Two file shapes name a signed auth plugin:

* the envelope written by ``haechi plugin-sign`` (``{payload, signerKeyId, alg, signature}``,
  plus an unsigned ``entrypoint`` file name that only says where the entry lies), and
* a ``{"haechiPlugin": {...}}`` manifest with ``runtime``, ``entrypoint`` and the envelope under
  ``signed`` (or its parts as flat ``signedPayload``/``signerKeyId``/``alg``/``signature``).
  Flat copies of signed fields must equal the signed values: an unsigned field can never say
  something the signature does not.

The entry is read exactly once into memory. Its path comes from the operator's config, or
from the manifest, in which case it must stay inside the manifest's directory and must not
be a symbolic link. The bytes returned here are the ones the trust gate hashes and the sandbox
executes, so swapping the file afterwards changes nothing.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

from haechi._json_once import RepeatedKey, members_once
from haechi.errors import PluginLoadError

__all__ = [
    "DYNAMIC_RUNTIMES",
    "MAX_ENTRY_BYTES",
    "MAX_MANIFEST_BYTES",
    "PLUGIN_KINDS",
    "PluginFiles",
    "read_plugin_files",
    "validate_manifest",
]

#: Largest entry file the gate reads.
MAX_ENTRY_BYTES: Final = 4 * 1024 * 1024
#: Largest manifest or envelope file the gate reads.
MAX_MANIFEST_BYTES: Final = 1024 * 1024
#: Opening never waits: a named pipe where a plugin file belongs would block ``open`` until
#: a writer came, and a respawn reads the files holding the supervisor's lock. Only regular
#: files are then read.
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK

PLUGIN_KINDS: Final = (
    "crypto-provider",
    "key-provider",
    "policy-engine",
    "filter-engine",
    "token-vault",
    "audit-sink",
    "protocol-adapter",
    "classifier-plugin",
    "authProvider",
)
#: Runtimes that execute code; both run in the confined child process here.
DYNAMIC_RUNTIMES: Final = ("worker-isolated", "process-isolated")
_RUNTIMES: Final = ("manifest-only", *DYNAMIC_RUNTIMES)
_STATIC_CAPABILITIES: Final = (
    "readsPlaintext",
    "writesPlaintext",
    "networkEgress",
    "fileWrite",
    "auditWrite",
    "externalSecrets",
)
#: Flat manifest field -> signed payload field it must agree with.
_BOUND_FIELDS: Final = {
    "id": "pluginId",
    "version": "version",
    "kind": "kind",
    "entrySha256": "entrySha256",
    "capabilities": "capabilities",
    "notBefore": "notBefore",
    "notAfter": "notAfter",
}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_BASE64 = re.compile(r"[A-Za-z0-9+/=]+")


def _nonblank(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _validate_static(plugin: Mapping[str, Any], errors: list[str]) -> None:
    compatibility = plugin.get("compatibility")
    if not isinstance(compatibility, Mapping) or "haechiCore" not in compatibility:
        errors.append("compatibility.haechiCore is required")
    capabilities = plugin.get("capabilities")
    if not isinstance(capabilities, Mapping):
        errors.append("capabilities must be an object")
        capabilities = {}
    for name in _STATIC_CAPABILITIES:
        if not isinstance(capabilities.get(name), bool):
            errors.append(f"capabilities.{name} must be a boolean")
    handling = plugin.get("dataHandling")
    handling = handling if isinstance(handling, Mapping) else {}
    sends_plaintext = capabilities.get("networkEgress") is True and (
        capabilities.get("readsPlaintext") is True
    )
    if sends_plaintext and not _nonblank(handling.get("retention")):
        errors.append("dataHandling.retention is required when a plugin sends plaintext out")
    if handling.get("logsRawPayload") is True:
        errors.append("dataHandling.logsRawPayload must not be true")


def _validate_dynamic(plugin: Mapping[str, Any], errors: list[str]) -> None:
    if plugin.get("kind") != "authProvider":
        errors.append("only authProvider plugins may use an isolated runtime")
    signature = plugin.get("signature")
    if "signed" not in plugin and not (_nonblank(signature) and _BASE64.fullmatch(str(signature))):
        errors.append("signature must be non-empty standard base64")
    if "signed" not in plugin and not _nonblank(plugin.get("signerKeyId")):
        errors.append("signerKeyId is required")
    if not (isinstance(plugin.get("entrySha256"), str) and _HEX64.fullmatch(plugin["entrySha256"])):
        errors.append("entrySha256 must be 64 lowercase hex digits")
    if plugin.get("notBefore") is None and plugin.get("notAfter") is None:
        errors.append("at least one of notBefore/notAfter must be set")
    capabilities = plugin.get("capabilities")
    if not isinstance(capabilities, Mapping) or capabilities.get("readsCredentials") is not True:
        errors.append("capabilities.readsCredentials must be true")


def validate_manifest(document: object) -> list[str]:
    """Return the problems of a ``{"haechiPlugin": ...}`` manifest (empty when valid)."""
    if not isinstance(document, Mapping) or not isinstance(document.get("haechiPlugin"), Mapping):
        return ["the root key haechiPlugin must be an object"]
    plugin = document["haechiPlugin"]
    errors = [
        f"{key} must be a non-empty string"
        for key in ("id", "version", "kind", "runtime", "entrypoint")
        if not _nonblank(plugin.get(key))
    ]
    if _nonblank(plugin.get("kind")) and plugin["kind"] not in PLUGIN_KINDS:
        errors.append(f"kind must be one of {', '.join(PLUGIN_KINDS)}")
    runtime = plugin.get("runtime")
    if runtime in DYNAMIC_RUNTIMES:
        _validate_dynamic(plugin, errors)
    else:
        if runtime not in _RUNTIMES:
            errors.append("dynamic plugin execution is not supported; set runtime to manifest-only")
        _validate_static(plugin, errors)
    return errors


@dataclass(frozen=True, slots=True)
class PluginFiles:
    """The envelope and the entry bytes of one signed plugin, read once."""

    envelope: Mapping[str, Any]
    entry: bytes = field(repr=False)


def _invalid(detail: str) -> PluginLoadError:
    return PluginLoadError("manifest-invalid", detail)


def _read_json(path: Path) -> object:
    with os.fdopen(os.open(path, _OPEN_FLAGS), "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise _invalid(f"{path.name} is not a regular file")
        raw = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise _invalid(f"{path.name} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=members_once)
    except RepeatedKey:
        # The signature covers the payload as read here, keeping the last value: a reader
        # keeping the first would read another plugin than the one signed.
        raise _invalid(f"{path.name} gives a key twice in one object") from None
    except (ValueError, RecursionError):
        # Besides malformed text: a number beyond int()'s digit limit (ValueError) and
        # nesting beyond the recursion limit, which must refuse like any other bad file.
        raise _invalid(f"{path.name} is not UTF-8 JSON") from None


def _envelope_from_wrapper(plugin: Mapping[str, Any]) -> Mapping[str, Any]:
    signed = plugin.get("signed")
    if signed is None:
        signed = {
            "payload": plugin.get("signedPayload"),
            "signerKeyId": plugin.get("signerKeyId"),
            "alg": plugin.get("alg", "ed25519"),
            "signature": plugin.get("signature"),
        }
    if not isinstance(signed, Mapping) or not isinstance(signed.get("payload"), Mapping):
        raise _invalid("haechiPlugin carries no signed envelope")
    payload = signed["payload"]
    for flat, bound in _BOUND_FIELDS.items():
        # A field the payload leaves out is null there (no bound, for the window).
        if flat in plugin and plugin[flat] != payload.get(bound):
            raise _invalid(f"haechiPlugin.{flat} differs from the signed payload")
    if "signerKeyId" in plugin and plugin["signerKeyId"] != signed.get("signerKeyId"):
        raise _invalid("haechiPlugin.signerKeyId differs from the signed envelope")
    return signed


def _inside(directory: Path, name: object) -> Path:
    if not _nonblank(name):
        raise _invalid("the manifest names no entrypoint; set auth.plugin.entryPath")
    relative = PurePosixPath(str(name))
    if relative.is_absolute() or ".." in relative.parts or "\\" in str(name):
        raise _invalid("the entrypoint must be a relative path inside the manifest directory")
    return directory / relative


def _read_entry(path: Path, *, follow_links: bool, root: Path | None) -> bytes:
    flags = _OPEN_FLAGS | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if not follow_links and exc.errno == errno.ELOOP:
            raise PluginLoadError("tampered-entry", "the entry file is a symbolic link") from None
        raise _invalid(f"cannot open the entry file {path.name}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _invalid(f"the entry {path.name} is not a regular file")
        if root is not None and not Path(os.path.realpath(path)).is_relative_to(root):
            raise PluginLoadError("tampered-entry", "the entry resolves outside its directory")
        try:
            data = handle.read(MAX_ENTRY_BYTES + 1)
        except OSError as exc:
            raise _invalid(f"cannot read the entry file {path.name}: {exc.strerror}") from None
    if len(data) > MAX_ENTRY_BYTES:
        raise _invalid(f"the entry is larger than {MAX_ENTRY_BYTES} bytes")
    return data


def read_plugin_files(manifest_path: Path, entry_path: Path | None = None) -> PluginFiles:
    """Read the envelope (or manifest) at ``manifest_path`` and its entry bytes, once.

    ``entry_path`` is the operator's explicit choice (``auth.plugin.entryPath``) and is read
    as given; otherwise the manifest's entry name is resolved beside it, confined to its
    directory and refused when it is a symbolic link. Raises
    :class:`~haechi.errors.PluginLoadError` (``manifest-invalid`` or ``tampered-entry``).
    """
    try:
        document = _read_json(manifest_path)
    except OSError as exc:
        raise _invalid(f"cannot read {manifest_path.name}: {exc.strerror}") from None
    if isinstance(document, Mapping) and "haechiPlugin" in document:
        errors = validate_manifest(document)
        if errors:
            raise _invalid(errors[0])
        plugin = document["haechiPlugin"]
        if plugin["runtime"] not in DYNAMIC_RUNTIMES:
            raise _invalid("the manifest runtime does not execute code")
        envelope = _envelope_from_wrapper(plugin)
        entry_name: object = plugin["entrypoint"]
    elif isinstance(document, Mapping) and "payload" in document:
        envelope = document
        entry_name = document.get("entrypoint")
    else:
        raise _invalid(f"{manifest_path.name} is neither a signed envelope nor a manifest")
    if entry_path is not None:
        return PluginFiles(envelope, _read_entry(entry_path, follow_links=True, root=None))
    directory = manifest_path.parent
    entry = _read_entry(
        _inside(directory, entry_name),
        follow_links=False,
        root=Path(os.path.realpath(directory)),
    )
    return PluginFiles(envelope, entry)
