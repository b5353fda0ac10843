# SPDX-License-Identifier: Apache-2.0
"""The library facade: :func:`create_runtime` composes haechi, :class:`Runtime` uses it.

Composition follows the configuration through the plugin registry, crypto first (stores,
the vault and auth need its keyed hashing): ``keys.provider`` (a provider other than the
built-in ``local`` one, configured or injected, must pass a conformance probe first), then
the token store (``tokenVault.provider``), the audit store (``audit.sink``), the detectors
(every registered detector, built-ins first, plus ``filters.customRules``) and the policy
(presets, privacy profile, named profiles). The rate limiter (``rateLimit.provider``), metrics
(``metrics.provider``) and auth (``auth.provider``) are built on first use, so protecting
payloads never depends on them.

Injected providers always win over configured ones: ``crypto``, ``token_store``,
``audit_store``, ``rate_limiter``, ``metrics``, ``auth``, and the whole-object replacements
``token_vault`` (``None`` = no vault: tokens become one-way ``[TOKEN:<type>:<hex>]`` labels)
and ``audit_sink``.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, Final, ParamSpec, TypeVar, cast

from haechi._markers import MarkerRestorer
from haechi._sync_loop import SyncLoop
from haechi.audit import AuditSink
from haechi.config import HaechiConfig, default_config, parse_config
from haechi.crypto import LocalCryptoProvider, assert_crypto_conformance
from haechi.errors import CryptoError, ProviderError
from haechi.models import (
    DIRECTIONS,
    Direction,
    Finding,
    Identity,
    Mode,
    ProtectResult,
)
from haechi.payload import PathTexts, collect_entries
from haechi.pieces import find_piece_runs
from haechi.pipeline import CallContext, PrecisionDials, Protector, TextResult
from haechi.plugins.manager import ProviderRegistry, external_needs_injection, load_registry
from haechi.policy import PolicySet, ResolvedPolicy
from haechi.providers import (
    AuditStore,
    AuthProvider,
    CryptoProvider,
    Metrics,
    ProviderContext,
    RateLimiter,
    TokenStore,
)
from haechi.stream_window import TextStreamProtector

if TYPE_CHECKING:
    from haechi._external_auth import ExternalAuthProvider
    from haechi.detect import DetectionEngine
    from haechi.vault import TokenVault

__all__ = ["INJECTABLE_PROVIDERS", "Runtime", "create_runtime"]

#: Keys of the ``providers`` mapping :func:`create_runtime` accepts.
INJECTABLE_PROVIDERS: Final = frozenset(
    {
        "crypto",
        "token_store",
        "audit_store",
        "rate_limiter",
        "metrics",
        "auth",
        "token_vault",
        "audit_sink",
    }
)

#: The contract each injected provider is held to (the whole-object replacements
#: ``token_vault`` and ``audit_sink`` have none).
_CONTRACTS: Final[Mapping[str, type]] = {
    "crypto": CryptoProvider,
    "token_store": TokenStore,
    "audit_store": AuditStore,
    "rate_limiter": RateLimiter,
    "metrics": Metrics,
    "auth": AuthProvider,
}

_UNSET: Final = object()

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _synchronous(
    method: Callable[Concatenate[Runtime, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[Runtime, _P], _R]:
    """``method`` for synchronous code, run on the runtime's private loop. It takes exactly
    the options of ``method``, so that a type checker sees them (a misspelt mode or an
    unknown option) and ``inspect.signature`` and ``help()`` show them."""

    def synchronous(self: Runtime, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        self._no_running_loop()
        # Looked up on the instance, as a subclass or a test may replace the method.
        bound: Callable[_P, Coroutine[Any, Any, _R]] = getattr(self, method.__name__)
        return self._sync.run(bound(*args, **kwargs))

    functools.update_wrapper(synchronous, method, assigned=("__module__",))
    synchronous.__name__ = f"{method.__name__}_sync"
    synchronous.__qualname__ = f"{method.__qualname__}_sync"
    synchronous.__doc__ = (
        f":meth:`{method.__name__}` for synchronous code (not from inside a running event loop)."
    )
    return synchronous


#: The actions that use no key (``allow`` passes the value on, the others remove it).
_KEYLESS_ACTIONS: Final = frozenset({"allow", "redact", "mask", "block"})


class Runtime:
    """A composed haechi: protect payloads and text, scan, de-tokenize, resolve policy.

    Attributes:
        config: the effective configuration.
        crypto: the crypto provider.
        token_vault: the token vault, or ``None`` when it was injected as ``None``.
        audit: the audit sink (one event per protect call).
        engine: the detection engine.
        policies: the compiled base policy, named profiles and their binding.
    """

    config: HaechiConfig
    crypto: CryptoProvider
    token_vault: TokenVault | None
    audit: AuditSink
    engine: DetectionEngine
    policies: PolicySet

    def __init__(
        self,
        *,
        config: HaechiConfig,
        crypto: CryptoProvider,
        token_vault: TokenVault | None,
        audit: AuditSink,
        engine: DetectionEngine,
        policies: PolicySet,
        registry: ProviderRegistry,
        injected: Mapping[str, Any],
    ) -> None:
        self.config = config
        self.crypto = crypto
        self.token_vault = token_vault
        self.audit = audit
        self.engine = engine
        self.policies = policies
        self._unmatched = _unmatched_actions(config.policy, engine) + _unmatched_labels(config)
        self._registry = registry
        self._injected = dict(injected)
        self._lazy: dict[str, Any] = {}
        self._external_auth: ExternalAuthProvider | None = None
        self._building = threading.Lock()
        self._protector = Protector(
            detector=engine,
            audit=audit,
            crypto=crypto,
            vault=token_vault,
            dials=PrecisionDials.from_config(
                config.filters.min_confidence, config.filters.allowlist
            ),
            max_depth=config.limits.max_nesting_depth,
            text_attachments=config.filters.scan_text_attachments,
            block_binary_attachments=config.filters.binary_attachments == "block",
            max_tokens=config.token_vault.max_tokens_per_payload,
            max_inspection_ms=config.limits.max_inspection_ms,
            max_detections=config.audit.max_detections_per_record,
        )
        self._sync = SyncLoop()
        # Per-call defaults, read once (the configuration is immutable).
        self._mode: Mode = config.effective_mode
        self._scan_numbers = config.response_protection.scan_numbers

    # --- providers built on first use -----------------------------------------------------

    @property
    def rate_limiter(self) -> RateLimiter:
        """The rate limiter (``rateLimit.provider``, default ``memory``)."""
        return cast("RateLimiter", self._provider("rate_limiter", self.config.rate_limit.provider))

    @property
    def metrics(self) -> Metrics:
        """The metrics sink (``metrics.provider``, default ``prometheus``)."""
        return cast("Metrics", self._provider("metrics", self.config.metrics.provider))

    @property
    def auth(self) -> AuthProvider | None:
        """The auth provider, or ``None`` when ``auth.provider`` is ``none``. One that is not
        haechi's own (injected, or an installed plugin's selected by name) is wrapped so that
        its identities keep to the rules of the built-in ones (see
        :mod:`haechi._external_auth`)."""
        if "auth" in self._injected:
            return self._checked_auth(self._injected["auth"])
        name = self.config.auth.provider
        if name == "none":
            return None
        if name == "plugin":
            from haechi.plugins.auth_plugin import create_plugin_auth_provider

            provider = self._built(
                "auth", lambda: create_plugin_auth_provider(self.config, self.audit, self.crypto)
            )
            return cast("AuthProvider", provider)
        from haechi.auth import BearerAuthProvider

        provider = self._provider("auth", name)
        return provider if type(provider) is BearerAuthProvider else self._checked_auth(provider)

    def _checked_auth(self, provider: Any) -> ExternalAuthProvider:
        """``provider`` wrapped, once. The wrapper is kept apart from the providers this
        runtime built: :meth:`aclose` closes the provider a plugin made (it is in
        ``_lazy``), never one it was handed."""
        if self._external_auth is None:
            from haechi._external_auth import ExternalAuthProvider

            with self._building:
                if self._external_auth is None:
                    self._external_auth = ExternalAuthProvider(
                        provider, self.crypto, self.config.auth.allowed_label_keys
                    )
        return self._external_auth

    @property
    def warnings(self) -> tuple[str, ...]:
        """Policy settings that did not take effect as written (see ``docs/policy.md``): a
        weaker action kept from raising, an action for a type no rule reports, a profile bound
        to a label no caller can hold."""
        return self.policies.warnings + self._unmatched

    def _provider(self, slot: str, name: str) -> Any:
        if slot in self._injected:
            return self._injected[slot]
        return self._built(slot, lambda: self._create(slot, name))

    def _create(self, slot: str, name: str) -> Any:
        """A new provider of ``slot``: the registered class named ``name``, built."""
        return self._registry.select(slot, name).create(ProviderContext(self.config, self.crypto))

    def _built(self, slot: str, build: Callable[[], Any]) -> Any:
        """The provider of ``slot`` this runtime built, made by ``build`` on first use. Made
        under a lock, so that threads asking for it first at once get one provider rather
        than one each: a second rate limiter would count their requests apart, and what a
        second provider holds (a connection, a plugin's child process) nothing would close."""
        if slot not in self._lazy:
            with self._building:
                if slot not in self._lazy:
                    self._lazy[slot] = build()
        return self._lazy[slot]

    # --- policy -------------------------------------------------------------------------

    def resolve_policy(self, identity: Identity | None) -> ResolvedPolicy:
        """The policy in effect for ``identity`` (scope, then label, then default)."""
        return self.policies.resolve(identity)

    def _policy(self, identity: Identity | None, profile: str | None) -> ResolvedPolicy:
        if profile is not None:
            return self.policies.named(profile)
        return self.policies.resolve(identity)

    def _context(
        self,
        *,
        direction: Direction,
        protocol: str,
        operation: str,
        mode: Mode | None,
        identity: Identity | None,
        profile: str | None,
        correlation_id: str | None,
        scan_numbers: bool | None,
    ) -> CallContext:
        return CallContext(
            direction=direction,
            mode=mode or self._mode,
            protocol=protocol,
            operation=operation,
            identity=identity,
            profile=profile,
            correlation_id=correlation_id,
            scan_numbers=self._scan_numbers if scan_numbers is None else scan_numbers,
        )

    # --- protect ------------------------------------------------------------------------

    async def protect(
        self,
        payload: Any,
        *,
        direction: Direction = "request",
        protocol: str = "custom",
        operation: str = "protect",
        mode: Mode | None = None,
        identity: Identity | None = None,
        profile: str | None = None,
        correlation_id: str | None = None,
        scan_numbers: bool | None = None,
    ) -> ProtectResult:
        """Protect one JSON payload and write one audit event.

        ``mode`` defaults to the configuration's effective mode; ``profile`` names a policy
        profile explicitly, otherwise ``identity`` selects one through the binding.
        ``scan_numbers`` defaults to ``responseProtection.scanNumbers`` (it only matters for
        responses). Raises :class:`~haechi.errors.LimitError` for a payload nested too
        deeply or holding an integer too long to scan (before anything is inspected or
        audited), :class:`~haechi.errors.ProviderError` when inspection failed (audited as
        an internal-error block) and :class:`~haechi.errors.AuditError` when the audit log
        could not be written.
        """
        resolved = self._policy(identity, profile)
        context = self._context(
            direction=direction,
            protocol=protocol,
            operation=operation,
            mode=mode,
            identity=identity,
            profile=resolved.profile,
            correlation_id=correlation_id,
            scan_numbers=scan_numbers,
        )
        return await self._protector.protect(payload, context=context, policy=resolved.policy)

    protect_sync = _synchronous(protect)

    @staticmethod
    def _no_running_loop() -> None:
        if asyncio._get_running_loop() is not None:
            raise RuntimeError("protect_sync cannot run inside an event loop: await protect()")

    def stream_protector(
        self,
        *,
        direction: Direction = "response",
        protocol: str,
        operation: str,
        mode: Mode | None = None,
        identity: Identity | None = None,
        profile: str | None = None,
        correlation_id: str | None = None,
    ) -> TextStreamProtector:
        """A protector for one streamed response (no audit: the caller writes one event
        per stream from its ``summary()``)."""
        resolved = self._policy(identity, profile)
        context = self._context(
            direction=direction,
            protocol=protocol,
            operation=operation,
            mode=mode,
            identity=identity,
            profile=resolved.profile,
            correlation_id=correlation_id,
            scan_numbers=None,
        )
        return TextStreamProtector(
            protector=self._protector,
            policy=resolved.policy,
            context=context,
            max_match=self.config.streaming.max_match_bytes,
        )

    async def protect_text(
        self,
        text: str,
        *,
        direction: Direction,
        protocol: str,
        operation: str,
        mode: Mode | None = None,
        identity: Identity | None = None,
        profile: str | None = None,
        correlation_id: str | None = None,
    ) -> TextResult:
        """Protect one piece of text at once, without an audit event (MCP stderr lines,
        non-JSON frames); ``text`` is ``None`` in the result when it blocks."""
        protector = self.stream_protector(
            direction=direction,
            protocol=protocol,
            operation=operation,
            mode=mode,
            identity=identity,
            profile=profile,
            correlation_id=correlation_id,
        )
        output = await protector.protect_text(text)
        return TextResult(output, protector.blocked, protector.summary())

    # --- scan, detokenize ---------------------------------------------------------------

    def scan(self, value: Any, *, direction: Direction = "request") -> list[Finding]:
        """Findings in ``value`` after the precision dials, without audit or transform."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be request or response, not {direction!r}")
        entries = collect_entries(value, max_depth=self.config.limits.max_nesting_depth)
        runs = find_piece_runs(value, answer=direction == "response")
        attachments = self._protector.text_attachments(value, entries, runs)
        if attachments is not None:
            entries = attachments.entries(entries)
        detections = self.engine.detect(
            entries,
            direction=direction,
            scan_numbers=self.config.response_protection.scan_numbers,
        )
        passed = self._protector.dials.passed(detections, PathTexts())
        findings = [Finding.from_detection(detection) for detection in passed]
        if attachments is not None:
            findings.extend(Finding.from_detection(item.detection) for item in attachments.blocks())
        return findings

    async def detokenize(self, payload: Any, tokens: Iterable[str]) -> Any:
        """Restore ``[TOKEN:<id>]`` markers of exactly ``tokens`` in every string and key.

        Other markers, and tokens the vault cannot restore, stay as they are; the vault
        audits how many were not restored. The input is not modified. In a string that is
        itself JSON source (:func:`~haechi._documents.begins_json_container`: a tool call's
        arguments, an answer in JSON mode), where a marker can only stand inside a string
        literal, a value is written escaped once for every string it lies in there (a string
        of the arguments can hold JSON again), as the model would have written it: a quote
        in it neither breaks any level of the document nor adds members to one. A marker
        outside every string of the source, or after an escape JSON does not have, stays.

        Restoring may add at most ``responseProtection.maxBytes`` characters to the payload
        (a value is longer than its marker, and the payload decides how often it repeats
        one); past that it raises :class:`~haechi.errors.LimitError`
        (``haechi_restored_too_large``) and returns nothing.

        Raises :class:`TypeError` for one token id given as a string (or bytes): iterated,
        it would be its characters, none of which is a token, so nothing would be restored
        without a word, and the vault would audit them as tokens it could not restore.
        """
        if isinstance(tokens, str | bytes):
            raise TypeError("tokens must be an iterable of token ids, not one string")
        wanted = list(dict.fromkeys(tokens))
        if not wanted or self.token_vault is None:
            return payload
        restored: Mapping[str, str] = await self.token_vault.detokenize(wanted)
        if not restored:
            return payload
        restorer = MarkerRestorer(restored, self.config.response_protection.max_bytes)
        return restorer.restore_document(payload, self.config.limits.max_nesting_depth)

    # --- lifecycle ----------------------------------------------------------------------

    def needs_keys(self) -> bool:
        """Whether a call can need the crypto provider's keys: an action of the policy or of
        a profile tokenizes or encrypts, or an auth provider hashes bearer tokens and
        identities. Redacting, masking and blocking need none (an audit event's ``pathHash``
        is then left out)."""
        if self.config.auth.provider != "none":
            return True
        for resolved in (self.policies.base, *self.policies.profiles.values()):
            policy = resolved.policy
            if not _KEYLESS_ACTIONS.issuperset((policy.default_action, *policy.actions.values())):
                return True
        return False

    def require_keys(self) -> None:
        """Read the local key file now, when a call can need a key (see :meth:`needs_keys`),
        rather than at the first call that needs one: ``haechi proxy`` and the MCP commands
        call this before they serve, so a missing or invalid key file stops them at start,
        named, instead of failing each such call.

        Raises:
            CryptoError: the key file cannot be read or is invalid.
        """
        if self.needs_keys() and isinstance(self.crypto, LocalCryptoProvider):
            self.crypto.load()

    async def ready(self) -> dict[str, bool]:
        """Whether the audit log and the token store can take writes now, and, when a call
        can need keys (see :meth:`needs_keys`), the crypto provider has them."""
        state = {"audit": await _ready(self.audit)}
        if self.needs_keys():
            state["keys"] = await _ready(self.crypto)
        if self.token_vault is not None:
            state["tokenVault"] = await _ready(getattr(self.token_vault, "store", self.token_vault))
        return state

    async def aclose(self) -> None:
        """Release what the providers hold (files, child processes, connections)."""
        try:
            await self._close_providers()
        finally:
            if self._sync.started:
                # The private loop of protect_sync cannot be closed from inside another
                # running loop on this thread; closing it on a worker thread is safe (it is
                # idle).
                await asyncio.to_thread(self._sync.close)

    def close(self) -> None:
        """:meth:`aclose` for synchronous code (the counterpart of :meth:`protect_sync`)."""
        self._no_running_loop()
        try:
            self._sync.run(self._close_providers())
        finally:
            self._sync.close()

    async def _close_providers(self) -> None:
        """Close each provider this runtime is to close, also when one before it failed to.

        Raises:
            ProviderError: naming the class of each error a provider raised, not its message
                (a connection's error may quote its URL, credentials included).
        """
        failures: list[str] = []
        for provider in self._closable():
            try:
                await _close(provider)
            except Exception as exc:
                failures.append(type(exc).__name__)
        if failures:
            raise ProviderError(f"closing providers failed: {', '.join(failures)}")

    def _closable(self) -> list[Any]:
        """The providers :meth:`aclose` closes, each once: those this runtime built (the
        vault, the audit sink, crypto, the stores, those built on first use); one passed in
        ``providers`` is its owner's to close."""
        built_store = not {"audit_sink", "audit_store"} & self._injected.keys()
        store = self.audit.store if built_store else None
        built_vault = not {"token_vault", "token_store"} & self._injected.keys()
        tokens = self.token_vault.store if built_vault and self.token_vault is not None else None
        candidates = (
            *self._lazy.values(),
            self.token_vault,
            tokens,
            self.audit,
            store,
            self.crypto,
        )
        given = {id(provider) for provider in self._injected.values()}
        unique = {
            id(provider): provider
            for provider in candidates
            if provider is not None and id(provider) not in given
        }
        return list(unique.values())


async def _close(provider: Any) -> None:
    """Close ``provider`` through its ``aclose()``, or else its ``close()`` (awaited when it
    returns a coroutine); one with neither holds nothing to release."""
    closer = getattr(provider, "aclose", None)
    if closer is not None:
        await closer()
        return
    closer = getattr(provider, "close", None)
    if closer is not None:
        result = closer()
        if asyncio.iscoroutine(result):
            await result


async def _ready(provider: Any) -> bool:
    check = getattr(provider, "ready", None)
    if check is None:
        return True
    try:
        state = await check()
    except Exception:
        return False
    ok = state.get("ok") if isinstance(state, Mapping) else getattr(state, "ok", state)
    return ok is True  # only a true answer: "false" or an object saying nothing is not ready


def _as_config(config: HaechiConfig | Mapping[str, Any] | None) -> HaechiConfig:
    if config is None:
        return default_config()
    if isinstance(config, HaechiConfig):
        return config
    return parse_config(dict(config))


def _injected(providers: Mapping[str, Any] | None) -> dict[str, Any]:
    """The providers to use instead of the configured ones.

    ``None`` means "no vault" for ``token_vault`` only; for any other key it is the same as
    leaving the key out, as it is for the crypto provider and the stores. Taken as "none",
    an auth provider of ``None`` would let every request through a gateway configured for
    bearer tokens, and a metrics sink or rate limiter of ``None`` would fail every request.

    Raises:
        TypeError: a key that names no provider.
    """
    given = dict(providers or {})
    unknown = set(given) - INJECTABLE_PROVIDERS
    if unknown:
        raise TypeError(f"unknown provider keys: {', '.join(sorted(unknown))}")
    return {
        key: provider
        for key, provider in given.items()
        if provider is not None or key == "token_vault"
    }


def create_runtime(
    config: HaechiConfig | Mapping[str, Any] | None = None,
    providers: Mapping[str, Any] | None = None,
) -> Runtime:
    """Compose a :class:`Runtime` from ``config`` (defaults when ``None``; a mapping is
    validated like a configuration file) and optionally injected ``providers``."""
    settings = _as_config(config)
    injected = _injected(providers)
    for key, provider in injected.items():
        _check_contract(key, provider)
    if settings.auth.provider == "external" and injected.get("auth") is None:
        raise external_needs_injection("auth")
    registry = load_registry()
    crypto = injected.get("crypto")
    if crypto is None:
        if settings.keys.provider == "external":
            raise external_needs_injection("crypto")
        crypto = registry.select("crypto", settings.keys.provider).create(ProviderContext(settings))
        _probe_crypto(crypto, f"keys.provider {settings.keys.provider!r}")
    else:
        _probe_crypto(crypto, "the injected crypto provider")
    context = ProviderContext(settings, crypto)
    audit = injected.get("audit_sink")
    if audit is None:
        store = injected.get("audit_store") or registry.select(
            "audit_store", settings.audit.sink
        ).create(context)
        audit = AuditSink.from_config(settings, store)
    vault = injected.get("token_vault", _UNSET)
    if vault is _UNSET:
        vault = _token_vault(settings, registry, context, injected, audit, crypto)
    return Runtime(
        config=settings,
        crypto=crypto,
        token_vault=vault,
        audit=audit,
        engine=_engine(settings, registry, context),
        policies=PolicySet.from_config(settings.policy, privacy_profile=settings.privacy.profile),
        registry=registry,
        injected=injected,
    )


def _unmatched_actions(policy: Any, engine: Any) -> tuple[str, ...]:
    """A warning for each ``actions`` entry of the policy or a profile naming a type no rule
    of ``engine`` reports (``Email``, ``api-key``, ``emial``): it can never apply, and the
    operator meant another type, which keeps its weaker action without a word. Not refused:
    a detector added later may report it."""
    known = {rule.type for rule in engine.rules} | {"secret"}  # also a secret's key name
    sections = [("policy.actions", policy.actions or {})]
    sections += [
        (f"policy.profiles.{name}.actions", profile.actions or {})
        for name, profile in (policy.profiles or {}).items()
    ]
    return tuple(
        f"{where}.{kind}: no rule reports the type {kind!r}, so this action never applies "
        "(see haechi rules for the types)"
        for where, actions in sections
        for kind in actions
        if kind not in known
    )


def _unmatched_labels(config: HaechiConfig) -> tuple[str, ...]:
    """A warning for each ``profileBinding.byLabel`` entry whose label key is not one of
    ``auth.allowedLabelKeys``: no provider hands a caller such a label (a token cannot carry
    it, a plugin's and an external provider's are refused), so the profile is never chosen
    by it, and its callers get the default profile."""
    binding = config.policy.profile_binding
    if binding is None:
        return ()
    allowed = set(config.auth.allowed_label_keys)
    return tuple(
        f"policy.profileBinding.byLabel.{label}: no caller can hold the label key "
        f"{label.partition('=')[0]!r} (not in auth.allowedLabelKeys), so this binding never "
        "applies"
        for label in binding.by_label
        if label.partition("=")[0] not in allowed
    )


def _check_contract(key: str, provider: Any) -> None:
    """Refuse an injected provider that lacks a method of its contract, now rather than on
    the first request that needs it (the gateway would then answer 500 to every request)."""
    contract = _CONTRACTS.get(key)
    if contract is None:
        return
    missing = [
        name
        for name, member in vars(contract).items()
        if not name.startswith("_")
        and callable(member)
        and not callable(getattr(provider, name, None))
    ]
    if missing:
        methods = ", ".join(f"{name}()" for name in sorted(missing))
        raise TypeError(f"the injected {key} provider lacks {methods}")


def _probe_crypto(crypto: Any, source: str) -> None:
    """Refuse a crypto provider that is not haechi's own unless it passes
    :func:`~haechi.crypto.assert_crypto_conformance`, before anything is encrypted with it.

    A provider that reuses nonces, leaves the plaintext readable in its envelopes or
    decrypts under another AAD still round-trips: trusted unchecked, it would leak what the
    vault and the ``encrypt`` action hand it. The probe costs a few encryptions, once per
    composition. The built-in local provider is left out: the suite holds it to the whole
    contract, and probing it would read the key file (and reserve encryptions in it) while
    composing, which must not need one.

    Raises:
        ProviderError: naming ``source`` and every check that failed, never a key or a
            plaintext (see :mod:`haechi.crypto._conformance`).
    """
    if type(crypto) is LocalCryptoProvider:
        return
    try:
        assert_crypto_conformance(crypto)
    except CryptoError as exc:
        raise ProviderError(f"{source} is refused: {exc}") from None
    except Exception as exc:
        # Fail closed on anything the probe itself could not handle, named by type only.
        message = f"{source} is refused: its conformance probe raised {type(exc).__name__}"
        raise ProviderError(message) from None


def _token_vault(
    settings: HaechiConfig,
    registry: ProviderRegistry,
    context: ProviderContext,
    injected: Mapping[str, Any],
    audit: Any,
    crypto: Any,
) -> Any:
    from haechi.vault import TokenVault

    store = injected.get("token_store") or registry.select(
        "token_store", settings.token_vault.provider
    ).create(context)
    return TokenVault.from_config(settings, store=store, crypto=crypto, audit=audit)


def _engine(settings: HaechiConfig, registry: ProviderRegistry, context: ProviderContext) -> Any:
    from haechi.detect import BuiltinDetector, DetectionEngine

    classes = list(registry.slots.get("detector", {}).values())
    classes.sort(key=lambda cls: cls is not BuiltinDetector)
    rules = [rule for cls in classes for rule in cls.create(context).rules()]
    return DetectionEngine(
        rules,
        custom_rules=[rule.model_dump(by_alias=True) for rule in settings.filters.custom_rules],
        decode_and_rescan=settings.filters.decode_and_rescan,
    )
