# SPDX-License-Identifier: Apache-2.0
"""``auth.provider: "plugin"``: a signed third-party auth provider run in the sandbox.

Construction (:func:`create_plugin_auth_provider`) is the load gate: kill switch, trust gate
over the envelope and the entry bytes (read once), then a confined child is started with
those bytes and must pass a small conformance run (random credentials must all be denied)
before the provider serves. Any refusal raises :class:`~haechi.errors.PluginLoadError` and
is audited as ``plugin.load.refused``; success is audited as ``plugin.load.accepted`` with
the kernel layers that hold. With ``auth.plugin.confinement: "required"`` (the default) a
kernel that cannot provide every layer is a refusal; ``"best-effort"`` starts anyway, logs a
warning and records the missing layers in the accepted event.

Per request only the ``Authorization`` header value crosses to the child. The answer is
untrusted: the claims sanitizer keeps ``subject``, ``issuer``, ``type``, ``scopes`` and
``labels`` within fixed bounds, and the host (never the plugin) turns them into an
:class:`~haechi.models.Identity` whose subject and issuer are keyed hashes. Every denial is
audited as ``plugin.authenticate.deny`` with a stable reason, within
``auth.deniedRecordsPerSecond`` as the gateway's own denials (past it denials are counted,
and one record a second says how many, by reason, so a client without a credential cannot
make the provider write one record per request); every killed child as
``plugin.worker.terminated``. A dead child is replaced lazily, after re-running the whole
gate from disk (which must find the very build accepted at start) and with exponential
backoff; too many kills in a short window trip the circuit breaker for good
(``respawn-storm``) and every later call is denied.

Calls run one at a time in the child (single occupancy) on worker threads, so the provider
works from any event loop; at most ``maxPendingCalls`` may wait, the rest are denied
``over-capacity``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol

import anyio.to_thread

from haechi.audit.events import SCHEMA_VERSION, iso_timestamp
from haechi.auth import IDENTITY_HASH_DOMAIN, TOKEN_TYPES
from haechi.errors import ConfigError, PluginLoadError
from haechi.models import Identity
from haechi.plugins.manifest import read_plugin_files
from haechi.plugins.sandbox import (
    BreakerPolicy,
    ConfinementReport,
    RespawnBreaker,
    SandboxLimits,
    SandboxProcess,
)
from haechi.plugins.trust import TrustPolicy, VerifiedPlugin, verify_auth_plugin
from haechi.proxy.denials import DenialRecords

if TYPE_CHECKING:
    from haechi.config import AuthPluginConfig, HaechiConfig
    from haechi.providers import CryptoProvider

__all__ = [
    "DENY_REASONS",
    "AuditRecorder",
    "Claims",
    "PluginAuthProvider",
    "create_plugin_auth_provider",
    "sanitize_claims",
]

#: Why a call was denied; written as ``reason`` of ``plugin.authenticate.deny``.
DENY_REASONS: Final = (
    "deny",
    "plugin-error",
    "invalid-claims",
    "missing-credential",
    "malformed-credential",
    "oversized",
    "over-capacity",
    "timeout",
    "crash",
    "protocol-error",
    "circuit-open",
    "unavailable",
    "closed",
)
_KILL_CAUSES: Final = frozenset({"timeout", "crash", "protocol-error", "oversized"})
_MAX_CLAIM_TEXT: Final = 1024
_MAX_SCOPES: Final = 64
_MAX_LABELS: Final = 32
_MAX_LABEL_VALUE: Final = 64
_LOG = logging.getLogger("haechi.plugins")
_PENDING_AUDITS: set[asyncio.Task[None]] = set()


class AuditRecorder(Protocol):
    """What the provider writes lifecycle events to (the runtime's audit sink)."""

    def record(self, event: Mapping[str, Any]) -> Coroutine[Any, Any, Any]:
        """Append one event to the audit chain."""
        ...


# --- audit events -------------------------------------------------------------------------


def _event(decision: str, *, operation: str, blocked: bool, **fields: Any) -> dict[str, Any]:
    return {
        "schemaVersion": SCHEMA_VERSION,
        "id": str(uuid.uuid4()),
        "correlationId": None,
        "timestamp": iso_timestamp(),
        "protocol": "plugin",
        "operation": f"plugin:{operation}",
        "identity": None,
        "mode": "n/a",
        "enforced": True,
        "blocked": blocked,
        "decision": decision,
        **fields,
        "summary": {"detectionCount": 0, "byType": {}, "byAction": {decision: 1}},
    }


def _refused_event(reason: str, plugin_id: str | None, signer: str | None) -> dict[str, Any]:
    return _event(
        "plugin.load.refused",
        operation="load",
        blocked=True,
        reason=reason,
        pluginId=plugin_id,
        signerKeyId=signer,
    )


def _accepted_event(
    plugin: VerifiedPlugin, report: ConfinementReport, mode: str, *, respawn: bool
) -> dict[str, Any]:
    return _event(
        "plugin.load.accepted",
        operation="load",
        blocked=False,
        reason=None,
        pluginId=plugin.plugin_id,
        version=plugin.version,
        entrySha256=plugin.entry_sha256,
        signerKeyId=plugin.signer_key_id,
        capabilitiesGranted=plugin.capabilities_granted,
        isolation="process",
        confinement=mode,
        kernel=report.to_json(),
        degraded=report.missing(),
        respawn=respawn,
    )


def _deny_event(plugin_id: str, reason: str) -> dict[str, Any]:
    return _event(
        "plugin.authenticate.deny",
        operation="authenticate",
        blocked=True,
        reason=reason,
        pluginId=plugin_id,
    )


def _deny_summary_event(plugin_id: str, counts: Mapping[str, int]) -> dict[str, Any]:
    event = _deny_event(plugin_id, "aggregated")
    event["summary"]["byAction"] = {"plugin.authenticate.deny": sum(counts.values())}
    event["summary"]["byReason"] = dict(counts)
    return event


def _terminated_event(plugin_id: str, cause: str) -> dict[str, Any]:
    return _event(
        "plugin.worker.terminated",
        operation="sandbox",
        blocked=False,
        reason=cause,
        pluginId=plugin_id,
        cause=cause,
        isolation="process",
    )


async def _record(audit: AuditRecorder, event: Mapping[str, Any]) -> None:
    # Lifecycle events never change an auth decision: a failing audit is logged, not raised.
    try:
        await audit.record(event)
    except Exception as exc:
        _LOG.warning("plugin lifecycle audit failed: %s", type(exc).__name__)


def _record_from_sync(audit: AuditRecorder, event: Mapping[str, Any]) -> asyncio.Task[None] | None:
    """Record ``event`` from synchronous code: at once when no event loop runs in this
    thread, else as a task on the running loop (returned, so that it can be awaited)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_record(audit, event))
        return None
    task = loop.create_task(_record(audit, event))
    _PENDING_AUDITS.add(task)
    task.add_done_callback(_PENDING_AUDITS.discard)
    return task


# --- claims -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claims:
    """A plugin's answer after sanitising: only these five fields survive."""

    subject: str = field(repr=False)
    issuer: str = field(repr=False)
    type: str = "user"
    scopes: tuple[str, ...] = field(default=(), repr=False)
    labels: Mapping[str, str] = field(default_factory=dict, repr=False)


def _text(value: object, name: str, limit: int = _MAX_CLAIM_TEXT) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ValueError(f"{name} must be a non-empty string of at most {limit} characters")
    return value


def sanitize_claims(raw: object, allowed_label_keys: frozenset[str]) -> Claims:
    """Validate a plugin answer; raise ``ValueError`` (naming fields, never values).

    Unknown keys are dropped. ``subject``/``issuer``: non-empty strings of at most 1024
    characters; ``type``: user, service or agent (default user); ``scopes``: at most 64
    non-empty strings of at most 1024; ``labels``: at most 32 entries whose keys are in
    ``auth.allowedLabelKeys`` and whose values are 1 to 64 characters.
    """
    if not isinstance(raw, Mapping):
        raise ValueError("claims must be an object")
    kind = raw.get("type", "user")
    if kind not in TOKEN_TYPES:
        raise ValueError(f"type must be one of {', '.join(TOKEN_TYPES)}")
    scopes = raw.get("scopes", [])
    if not isinstance(scopes, list) or len(scopes) > _MAX_SCOPES:
        raise ValueError(f"scopes must be a list of at most {_MAX_SCOPES} strings")
    labels = raw.get("labels", {})
    if not isinstance(labels, Mapping) or len(labels) > _MAX_LABELS:
        raise ValueError(f"labels must be an object with at most {_MAX_LABELS} entries")
    for key in labels:
        if key not in allowed_label_keys:
            raise ValueError("a label key is not in auth.allowedLabelKeys")
    return Claims(
        subject=_text(raw.get("subject"), "subject"),
        issuer=_text(raw.get("issuer"), "issuer"),
        type=str(kind),
        scopes=tuple(_text(scope, "a scope") for scope in scopes),
        labels={key: _text(value, "a label", _MAX_LABEL_VALUE) for key, value in labels.items()},
    )


def _authorization(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization")
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def _conformance_vectors() -> list[str]:
    # Fresh per start, so a plugin cannot special-case them: all must be denied.
    nonce = secrets.token_hex(8)
    return [
        f"~malformed~{nonce}",
        f"Bearer expired.{nonce}.{secrets.token_hex(16)}",
        f"Bearer notyet.{nonce}.{secrets.token_hex(16)}",
        f"Bearer throw.{nonce}",
        f"Bearer {secrets.token_urlsafe(32)}",
        "Basic " + base64.b64encode(secrets.token_bytes(24)).decode("ascii"),
    ]


# --- the supervisor (blocking; runs on worker threads) -------------------------------------


@dataclass(slots=True)
class _Outcome:
    claims: Any = field(default=None, repr=False)
    reason: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)


class _Supervisor:
    """Owns the child: single occupancy, lazy respawn through the gate, circuit breaker."""

    def __init__(
        self,
        *,
        gate: _Gate,
        limits: SandboxLimits,
        mode: str,
        breaker: RespawnBreaker,
    ) -> None:
        self._gate = gate
        self._limits = limits
        self._mode = mode
        self._breaker = breaker
        self._lock = threading.Lock()
        self._process: SandboxProcess | None = None
        self._unavailable = False
        self._closed = False
        self.plugin: VerifiedPlugin | None = None
        self._started: VerifiedPlugin | None = None
        self.report = ConfinementReport(False, False, False, False, 0)

    def start(self, plugin: VerifiedPlugin) -> None:
        """Start the first child from the construction-time verification."""
        with self._lock:
            self._started = plugin
            self._process = self._spawn(plugin)

    def _spawn(self, plugin: VerifiedPlugin) -> SandboxProcess:
        process = SandboxProcess.start(
            plugin.entry.decode("utf-8"),
            plugin.plugin_id,
            self._limits,
            required=self._mode == "required",
        )
        for vector in _conformance_vectors():
            reply = process.call(vector)
            if reply.outcome == "claims" or reply.killed:
                process.kill()
                failure = "accepted" if reply.outcome == "claims" else reply.outcome
                raise PluginLoadError(
                    "conformance-failed", f"a random credential was not denied ({failure})"
                )
        if not process.report.complete:
            _LOG.warning(
                "plugin %s runs without kernel confinement layers: %s",
                plugin.plugin_id,
                ", ".join(process.report.missing()),
            )
        self.plugin, self.report = plugin, process.report
        return process

    def _respawn(self, outcome: _Outcome) -> SandboxProcess | None:
        time.sleep(self._breaker.backoff())
        try:
            plugin = self._gate.load()
            started = self._started
            if started is not None and plugin.manifest_sha256 != started.manifest_sha256:
                # Another build its anchors signed, put in place while this one ran: the
                # operator started this one, and a crash must not swap it for another.
                raise PluginLoadError(
                    "pin-mismatch", "the plugin on disk is not the build this provider started"
                )
            process = self._spawn(plugin)
        except PluginLoadError as exc:
            # A build that no longer passes the gate stays refused until a restart.
            self._unavailable = True
            outcome.events.append(_refused_event(exc.reason, *self._gate.ids))
            return None
        outcome.events.append(_accepted_event(plugin, process.report, self._mode, respawn=True))
        return process

    def call(self, credential: str) -> _Outcome:
        """Run one call; the outcome carries claims or a deny reason, plus audit events."""
        outcome = _Outcome()
        with self._lock:
            if self._closed:
                outcome.reason = "closed"
            elif self._breaker.tripped:
                outcome.reason = "circuit-open"
            elif self._unavailable:
                outcome.reason = "unavailable"
            else:
                self._call_locked(credential, outcome)
        return outcome

    def _count_kill(self, outcome: _Outcome, cause: str) -> None:
        plugin_id = self.plugin.plugin_id if self.plugin else ""
        outcome.events.append(_terminated_event(plugin_id, cause))
        if self._breaker.record_kill():
            outcome.events.append(_terminated_event(plugin_id, "respawn-storm"))

    def _call_locked(self, credential: str, outcome: _Outcome) -> None:
        process = self._process
        if process is not None and not process.alive:
            # It died between calls (a timer it armed, its CPU budget): a kill like one
            # during a call, or a plugin that exits after each answer would cost a new
            # child per request without the breaker ever seeing it.
            self._process = process = None
            self._count_kill(outcome, "crash")
            if self._breaker.tripped:
                outcome.reason = "circuit-open"
                return
        if process is None:
            process = self._process = self._respawn(outcome)
            if process is None:
                outcome.reason = "unavailable"
                return
            if self._closed:
                # Closed while the child started: it is never used.
                process.kill()
                self._process = None
                outcome.reason = "closed"
                return
        reply = process.call(credential)
        if self._closed:
            # Closed while the call ran: the kill was ours, not the plugin's.
            outcome.reason = "closed"
            return
        if reply.outcome == "claims":
            outcome.claims = reply.claims
            return
        outcome.reason = reply.outcome
        if reply.killed:
            self._process = None
            self._count_kill(outcome, reply.outcome if reply.outcome in _KILL_CAUSES else "crash")

    def close(self) -> None:
        """Kill the child; every later call is denied ``closed``."""
        self._closed = True
        process = self._process
        if process is not None:
            process.kill()


# --- the provider --------------------------------------------------------------------------


class PluginAuthProvider:
    """An :class:`~haechi.providers.AuthProvider` backed by one sandboxed signed plugin."""

    name: ClassVar[str] = "plugin"

    def __init__(
        self,
        supervisor: _Supervisor,
        *,
        audit: AuditRecorder,
        crypto: CryptoProvider,
        allowed_label_keys: frozenset[str],
        max_pending_calls: int,
        max_message_bytes: int,
        denied_records_per_second: int,
    ) -> None:
        self._supervisor = supervisor
        self._audit = audit
        self._crypto = crypto
        self._allowed_label_keys = allowed_label_keys
        self._max_pending = max_pending_calls
        self._max_message_bytes = max_message_bytes
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._startup: asyncio.Task[None] | None = None
        self._denials = DenialRecords(denied_records_per_second, self._record_denials)

    @property
    def plugin_id(self) -> str:
        """Id of the plugin being served."""
        plugin = self._supervisor.plugin
        return plugin.plugin_id if plugin else ""

    @property
    def confinement(self) -> ConfinementReport:
        """Kernel layers that hold in the current (or last) child."""
        return self._supervisor.report

    async def authenticate(self, headers: Mapping[str, str]) -> Identity | None:
        """The identity the plugin vouches for, or ``None`` (denials are audited, within
        ``auth.deniedRecordsPerSecond``)."""
        startup, self._startup = self._startup, None
        if startup is not None and startup.get_loop() is asyncio.get_running_loop():
            # The load event goes into the chain before anything this provider decides.
            await asyncio.shield(startup)
        result = await self._decide(headers)
        if isinstance(result, Identity):
            return result
        if self._denials.admit(result):
            await _record(self._audit, _deny_event(self.plugin_id, result))
        return None

    async def _record_denials(self, counts: Mapping[str, int]) -> None:
        # Raises when the record cannot be written: the counts are then kept for the next.
        await self._audit.record(_deny_summary_event(self.plugin_id, counts))

    async def _decide(self, headers: Mapping[str, str]) -> Identity | str:
        credential = _authorization(headers)
        if credential is None:
            return "missing-credential"
        try:
            size = len(credential.encode("utf-8"))
        except UnicodeEncodeError:
            # A lone surrogate, which only a str handed to the library API can hold (the
            # gateway reads headers as bytes): no credential anyone could have been issued.
            return "malformed-credential"
        if size > self._max_message_bytes:
            return "oversized"
        with self._pending_lock:
            if self._pending >= self._max_pending:
                return "over-capacity"
            self._pending += 1
        try:
            outcome = await anyio.to_thread.run_sync(self._supervisor.call, credential)
        finally:
            with self._pending_lock:
                self._pending -= 1
        for event in outcome.events:
            await _record(self._audit, event)
        if outcome.reason is not None:
            return outcome.reason
        try:
            claims = sanitize_claims(outcome.claims, self._allowed_label_keys)
        except ValueError:
            return "invalid-claims"
        return self._identity(claims)

    def _identity(self, claims: Claims) -> Identity:
        subject_hash = self._crypto.hmac(claims.subject, IDENTITY_HASH_DOMAIN)
        provider = f"plugin:{self.plugin_id}"
        return Identity(
            id=f"{provider}:{subject_hash[:16]}",
            type=claims.type,
            subject_hash=subject_hash,
            issuer_hash=self._crypto.hmac(claims.issuer, IDENTITY_HASH_DOMAIN),
            provider=provider,
            scopes=claims.scopes,
            labels=dict(claims.labels),
        )

    def close(self) -> None:
        """Kill the child now; later calls are denied (the kill switch for a live provider)."""
        self._supervisor.close()

    async def aclose(self) -> None:
        """Async form of :meth:`close`, for the runtime's shutdown: also writes the record
        of the denials counted past the bound and not yet reported."""
        self.close()
        await self._denials.aclose()


# --- construction --------------------------------------------------------------------------


def _safe_label(value: object) -> str | None:
    # Ids from an envelope that failed the gate are untrusted: keep short plain ones only.
    if isinstance(value, str) and 0 < len(value) <= 128 and value.isprintable():
        return value
    return None


class _Gate:
    """The load gate, re-run on every respawn: read the files once, verify, check the kind.

    ``ids`` keeps the plugin and signer ids named by the last envelope read, so that a
    refusal can be audited with them (only short printable ids are kept: the envelope is
    untrusted until it passes).
    """

    def __init__(self, settings: AuthPluginConfig, policy: TrustPolicy) -> None:
        self._manifest = Path(settings.manifest_path)
        self._entry = Path(settings.entry_path) if settings.entry_path else None
        self._policy = policy
        self.ids: tuple[str | None, str | None] = (None, None)

    def load(self) -> VerifiedPlugin:
        """Return the verified plugin or raise :class:`~haechi.errors.PluginLoadError`."""
        files = read_plugin_files(self._manifest, self._entry)
        payload = files.envelope.get("payload")
        plugin_id = payload.get("pluginId") if isinstance(payload, Mapping) else None
        self.ids = (_safe_label(plugin_id), _safe_label(files.envelope.get("signerKeyId")))
        return verify_auth_plugin(files.envelope, files.entry, self._policy)


def _limits(settings: AuthPluginConfig) -> SandboxLimits:
    resources = settings.resource_limits
    return SandboxLimits(
        timeout_s=settings.timeout_ms / 1000.0,
        max_message_bytes=settings.max_message_bytes,
        memory_bytes=resources.max_memory_mb * 1024 * 1024,
        cpu_seconds=resources.cpu_seconds,
        max_open_files=resources.max_open_files,
    )


def create_plugin_auth_provider(
    config: HaechiConfig,
    audit: AuditRecorder,
    crypto: CryptoProvider,
    *,
    breaker: BreakerPolicy | None = None,
) -> PluginAuthProvider:
    """Verify, start and conformance-check the configured plugin; return its provider.

    Raises :class:`~haechi.errors.PluginLoadError` (audited as ``plugin.load.refused``) when
    plugins are disabled, the gate refuses, kernel confinement is required but unavailable,
    the entry fails to load or the plugin fails conformance; :class:`ConfigError` when the
    configuration has no ``auth.plugin`` section or the crypto provider cannot HMAC.
    """
    settings = config.auth.plugin
    if settings is None:
        raise ConfigError("auth.provider plugin needs an auth.plugin section")
    if not callable(getattr(crypto, "hmac", None)):
        raise ConfigError("auth.provider plugin needs a crypto provider with hmac")
    from haechi import __version__

    gate = _Gate(settings, TrustPolicy.from_config(settings, core_version=__version__))
    supervisor = _Supervisor(
        gate=gate,
        limits=_limits(settings),
        mode=settings.confinement,
        breaker=RespawnBreaker(breaker),
    )
    try:
        if not config.plugins.enabled:
            raise PluginLoadError("plugins-disabled", "plugins.enabled is false")
        plugin = gate.load()
        supervisor.start(plugin)
    except PluginLoadError as exc:
        _record_from_sync(audit, _refused_event(exc.reason, *gate.ids))
        raise
    provider = PluginAuthProvider(
        supervisor,
        audit=audit,
        crypto=crypto,
        allowed_label_keys=frozenset(config.auth.allowed_label_keys),
        max_pending_calls=settings.max_pending_calls,
        max_message_bytes=settings.max_message_bytes,
        denied_records_per_second=config.auth.denied_records_per_second,
    )
    provider._startup = _record_from_sync(
        audit, _accepted_event(plugin, supervisor.report, settings.confinement, respawn=False)
    )
    return provider
