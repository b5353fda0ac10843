# SPDX-License-Identifier: Apache-2.0
"""The trust gate: decide whether a signed plugin envelope may run, or say why not.

Checks run in a fixed order and the first failure wins, so a given defect always produces
the same refusal reason (operators and tests rely on it)::

    0  shape of the envelope and payload          manifest-invalid
    a  alg is ed25519 (no agility)                 alg-not-ed25519
    b  signer is a trust anchor, and usable        unknown-signer      (before any crypto)
    c  signer not revoked                          revoked
    d  sha256(entry bytes) == payload.entrySha256  tampered-entry      (before the signature,
                                                                        so a swap reads as tamper)
    d2 entry hash not revoked                      revoked
    e  Ed25519 signature over canonical payload    invalid-signature
    f  now inside [notBefore, notAfter]            expired-window
                                                   (malformed bounds: manifest-invalid)
    g  version >= versionFloor[pluginId]           below-version-floor
    h  pin.version / entrySha256 / manifestSha256  pin-mismatch
    i  capabilities boolean and allowlisted;       capability-not-allowlisted
       authProvider declares readsCredentials      (non-boolean value: manifest-invalid)
    j  core version inside coreVersionRange        manifest-invalid

Verification raises :class:`~haechi.errors.PluginLoadError` and never returns a bool; on
success it returns a :class:`VerifiedPlugin` that carries the exact entry bytes that were
hashed, so nothing is read again between verification and execution.
"""

from __future__ import annotations

import hmac
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from haechi.errors import PluginLoadError
from haechi.plugins.signing import (
    ALG,
    entry_sha256,
    load_public_key,
    manifest_sha256,
    verify_signature,
)

if TYPE_CHECKING:
    from haechi.config import AuthPluginConfig

__all__ = [
    "AUTH_PROVIDER_KIND",
    "REFUSAL_REASONS",
    "PluginPin",
    "TrustPolicy",
    "VerifiedPlugin",
    "verify_auth_plugin",
    "verify_signed_plugin",
]

#: Every reason the gate can give, in check order. Stable: audit records and scripts use them.
REFUSAL_REASONS: Final = (
    "manifest-invalid",
    "alg-not-ed25519",
    "unknown-signer",
    "revoked",
    "tampered-entry",
    "invalid-signature",
    "expired-window",
    "below-version-floor",
    "pin-mismatch",
    "capability-not-allowlisted",
)
#: The only plugin kind that may be executed.
AUTH_PROVIDER_KIND: Final = "authProvider"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_BASE64 = re.compile(r"[A-Za-z0-9+/=]+")
_CORE_RANGE = re.compile(r">=(\d+)\.(\d+)\.(\d+) <(\d+)\.(\d+)\.(\d+)")
_CORE_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_REQUIRED_STRINGS: Final = ("pluginId", "kind", "version", "coreVersionRange", "entrySha256")


def _refuse(reason: str, detail: str) -> PluginLoadError:
    # Only reasons from the fixed list may leave the gate.
    if reason not in REFUSAL_REASONS:
        raise RuntimeError(f"off-contract refusal reason {reason!r}")
    return PluginLoadError(reason, detail)


@dataclass(frozen=True, slots=True)
class PluginPin:
    """An exact build the operator accepts; unset fields are not checked."""

    version: str | None = None
    entry_sha256: str | None = None
    manifest_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """What the operator trusts: signer keys, capabilities, revocations, pins and floors."""

    anchors: Mapping[str, object] = field(repr=False)
    allow_capabilities: frozenset[str] = frozenset()
    revoked_signers: frozenset[str] = frozenset()
    revoked_entries: frozenset[str] = frozenset()
    pin: PluginPin | None = None
    version_floor: Mapping[str, str] = field(default_factory=dict)
    core_version: str | None = None

    @classmethod
    def from_config(cls, settings: AuthPluginConfig, *, core_version: str | None) -> TrustPolicy:
        """Build the policy from ``auth.plugin``; ``core_version`` is used when the config
        does not name one."""
        anchors: dict[str, object]
        if isinstance(settings.trust_anchors, Mapping):
            anchors = dict(settings.trust_anchors)
        else:
            anchors = {anchor.key_id: anchor.public_key for anchor in settings.trust_anchors}
        pin = settings.pin
        return cls(
            anchors=anchors,
            allow_capabilities=frozenset(settings.allow_capabilities),
            revoked_signers=frozenset(settings.revoked.signer_key_ids),
            revoked_entries=frozenset(settings.revoked.entry_sha256),
            pin=None
            if pin is None
            else PluginPin(pin.version, pin.entry_sha256, pin.manifest_sha256),
            version_floor=dict(settings.version_floor),
            core_version=settings.core_version or core_version,
        )


@dataclass(frozen=True, slots=True)
class VerifiedPlugin:
    """A plugin that passed the gate, with the exact bytes that were verified."""

    plugin_id: str
    kind: str
    version: str
    signer_key_id: str
    entry_sha256: str
    manifest_sha256: str
    capabilities: Mapping[str, bool]
    entry: bytes = field(repr=False)

    @property
    def capabilities_granted(self) -> list[str]:
        """Names of the capabilities declared ``true``, sorted."""
        return sorted(name for name, granted in self.capabilities.items() if granted)


def _nonblank(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _check_shape(envelope: object) -> tuple[dict[str, Any], str, str, str]:
    if not isinstance(envelope, Mapping):
        raise _refuse("manifest-invalid", "the envelope is not a JSON object")
    payload = envelope.get("payload")
    if not isinstance(payload, Mapping):
        raise _refuse("manifest-invalid", "payload must be an object")
    signer = envelope.get("signerKeyId")
    if not _nonblank(signer):
        raise _refuse("manifest-invalid", "signerKeyId must be a non-empty string")
    signature = envelope.get("signature")
    if not _nonblank(signature) or not _BASE64.fullmatch(str(signature)):
        raise _refuse("manifest-invalid", "signature must be non-empty standard base64")
    for key in _REQUIRED_STRINGS:
        if not _nonblank(payload.get(key)):
            raise _refuse("manifest-invalid", f"payload.{key} must be a non-empty string")
    if not _HEX64.fullmatch(str(payload["entrySha256"])):
        raise _refuse("manifest-invalid", "payload.entrySha256 must be 64 lowercase hex digits")
    if not isinstance(payload.get("capabilities"), Mapping):
        raise _refuse("manifest-invalid", "payload.capabilities must be an object")
    try:
        manifest_sha256(payload)
    except (TypeError, ValueError):
        raise _refuse("manifest-invalid", "payload is not plain JSON (NaN, Infinity?)") from None
    except RecursionError:
        # Parsed a few calls higher up the stack than it is hashed: just within json.loads'
        # limit can be beyond the encoder's.
        raise _refuse("manifest-invalid", "payload is nested too deeply") from None
    alg = envelope.get("alg")
    return dict(payload), str(signer), str(signature), alg if isinstance(alg, str) else repr(alg)


def _bound_ms(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            bound = float(value)  # an integer too large for a float raises OverflowError
        except OverflowError:
            bound = math.inf
        if not math.isfinite(bound):
            raise _refuse("manifest-invalid", f"payload.{name} is not a finite number")
        return bound
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.timestamp() * 1000.0
    raise _refuse("manifest-invalid", f"payload.{name} must be null, epoch ms or an ISO date")


def _version_key(version: str) -> list[tuple[int, str, int, str]]:
    """Per dotted segment: its leading number, then whether text follows it, then the text.

    Text after the number marks a pre-release (``0-rc1``, ``0b2``) and sorts below the bare
    number; a segment without a number sorts below every number. Read otherwise, an old
    ``1.0.0-beta`` would pass a floor of ``1.0.3`` (a rollback the floor exists to refuse).
    Numbers compare by length, then digits, without ``int()`` (no limit on their size).
    """
    key: list[tuple[int, str, int, str]] = []
    for part in version.split("."):
        text = part.lstrip("0123456789")
        digits = part[: len(part) - len(text)]
        number = digits.lstrip("0")
        key.append((len(number) if digits else -1, number, 0 if text else 1, text))
    return key


def _version_below(version: str, floor: str) -> bool:
    left, right = _version_key(version), _version_key(floor)
    width = max(len(left), len(right))
    left += [(0, "", 1, "")] * (width - len(left))
    right += [(0, "", 1, "")] * (width - len(right))
    return left < right


def _same(expected: str, actual: str) -> bool:
    return hmac.compare_digest(expected.encode("utf-8"), actual.encode("utf-8"))


def _same_digest(configured: str, actual: str) -> bool:
    """Compare a hex digest from the operator's settings with a computed (lowercase) one.

    Tools print digests in either case (PowerShell's ``Get-FileHash`` in capitals): compared
    as written, a revocation pasted from one would miss its build and let it load.
    """
    return _same(configured.strip().lower(), actual)


def _check_capabilities(payload: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, bool]:
    capabilities: dict[str, bool] = {}
    for name, granted in payload["capabilities"].items():
        if not isinstance(granted, bool):
            raise _refuse("manifest-invalid", f"capability {name!r} must be true or false")
        capabilities[name] = granted
        if granted and name not in allowed:
            raise _refuse("capability-not-allowlisted", f"capability {name!r} is not allowlisted")
    if payload["kind"] == AUTH_PROVIDER_KIND and capabilities.get("readsCredentials") is not True:
        raise _refuse(
            "capability-not-allowlisted", "an authProvider must declare readsCredentials: true"
        )
    return capabilities


def _check_core_range(core_range: str, core_version: str) -> None:
    bounds = _CORE_RANGE.fullmatch(core_range)
    if bounds is None:
        raise _refuse("manifest-invalid", "coreVersionRange must look like '>=A.B.C <D.E.F'")
    current = _CORE_VERSION.match(core_version)
    if current is None:
        raise _refuse("manifest-invalid", f"core version {core_version!r} is not A.B.C")
    low = tuple(int(part) for part in bounds.groups()[:3])
    high = tuple(int(part) for part in bounds.groups()[3:])
    value = tuple(int(part) for part in current.groups())
    if not low <= value < high:
        raise _refuse(
            "manifest-invalid", f"plugin supports core {core_range}, this core is {core_version}"
        )


def verify_signed_plugin(
    envelope: object, entry: bytes, policy: TrustPolicy, *, now_ms: float | None = None
) -> VerifiedPlugin:
    """Run every check of the gate on ``envelope`` and the ``entry`` bytes it must bind.

    Raises :class:`~haechi.errors.PluginLoadError` with the first failing reason.
    """
    payload, signer, signature, alg = _check_shape(envelope)
    if alg != ALG:
        raise _refuse("alg-not-ed25519", f"alg {alg!r} is not ed25519")
    if signer not in policy.anchors:
        raise _refuse("unknown-signer", f"signer {signer!r} is not a trust anchor")
    try:
        public_key = load_public_key(policy.anchors[signer])
    except ValueError as exc:
        raise _refuse("unknown-signer", f"anchor {signer!r} is unusable: {exc}") from None
    if signer in policy.revoked_signers:
        raise _refuse("revoked", f"signer {signer!r} is revoked")
    actual_hash = entry_sha256(entry)
    if not _same(payload["entrySha256"], actual_hash):
        raise _refuse("tampered-entry", "the entry bytes do not match the signed entrySha256")
    if any(_same_digest(revoked, actual_hash) for revoked in policy.revoked_entries):
        raise _refuse("revoked", "this entry build is revoked")
    if not verify_signature(payload, signature, public_key):
        raise _refuse("invalid-signature", f"the signature does not verify under {signer!r}")
    not_before = _bound_ms("notBefore", payload.get("notBefore"))
    not_after = _bound_ms("notAfter", payload.get("notAfter"))
    now = time.time() * 1000.0 if now_ms is None else now_ms
    if (not_before is not None and now < not_before) or (not_after is not None and now > not_after):
        raise _refuse("expired-window", "now is outside the signed notBefore/notAfter window")
    plugin_id, version = payload["pluginId"], payload["version"]
    floor = policy.version_floor.get(plugin_id)
    if floor is not None and _version_below(version, floor):
        raise _refuse("below-version-floor", f"version {version} is below the floor {floor}")
    digest = manifest_sha256(payload)
    pin = policy.pin
    if pin is not None:
        if pin.version is not None and pin.version != version:
            raise _refuse("pin-mismatch", f"version {version} is not the pinned {pin.version}")
        if pin.entry_sha256 is not None and not _same_digest(pin.entry_sha256, actual_hash):
            raise _refuse("pin-mismatch", "the entry hash is not the pinned entrySha256")
        if pin.manifest_sha256 is not None and not _same_digest(pin.manifest_sha256, digest):
            raise _refuse("pin-mismatch", "the signed payload is not the pinned manifestSha256")
    capabilities = _check_capabilities(payload, policy.allow_capabilities)
    if policy.core_version is not None:
        _check_core_range(payload["coreVersionRange"], policy.core_version)
    return VerifiedPlugin(
        plugin_id=plugin_id,
        kind=payload["kind"],
        version=version,
        signer_key_id=signer,
        entry_sha256=actual_hash,
        manifest_sha256=digest,
        capabilities=capabilities,
        entry=entry,
    )


def verify_auth_plugin(
    envelope: object, entry: bytes, policy: TrustPolicy, *, now_ms: float | None = None
) -> VerifiedPlugin:
    """The whole load gate of a plugin that is to run: :func:`verify_signed_plugin`, then an
    ``authProvider`` kind and an entry of UTF-8 text, the only plugin the sandbox runs.

    The runtime and ``plugin-verify`` both call this, so that the command accepts exactly
    what the gateway starts. Raises :class:`~haechi.errors.PluginLoadError`.
    """
    plugin = verify_signed_plugin(envelope, entry, policy, now_ms=now_ms)
    if plugin.kind != AUTH_PROVIDER_KIND:
        raise _refuse("manifest-invalid", f"kind {plugin.kind!r} is not authProvider")
    try:
        entry.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse("manifest-invalid", "the entry is not UTF-8 text") from None
    return plugin
