# SPDX-License-Identifier: Apache-2.0
"""The one error tree of haechi.

Every failure haechi reports on purpose is a :class:`HaechiError`::

    HaechiError
    ├── ConfigError            invalid configuration (also a ValueError)
    ├── PluginError
    │   ├── PluginConflictError  two providers share one name
    │   ├── PluginLoadError      a plugin failed to import or was refused by the trust gate
    │   └── ProviderError        a provider raised while doing its job (wrapped at the seam)
    │       └── IdentityError      an auth provider answered with an identity the rules refuse
    ├── CryptoError            key file, envelope, AAD or nonce-budget failure
    ├── VaultError             token vault refusal (unknown, expired, reveal disabled, ...)
    ├── AuditError             the audit chain could not be read or written
    │   └── AuditRepeatedKey     a line of the log or of its anchors gives a key twice
    ├── DetectionError         a rule could not be compiled, or a match ran out of time
    ├── LimitError             input over a configured bound (carries an HTTP status and code)
    ├── AuthRejected           a credential was presented and refused (an outcome)
    └── PolicyViolation        a payload was blocked by policy (an outcome)

Misuse by a caller (wrong argument types, calling in the wrong order) raises ``TypeError``
or ``RuntimeError`` instead, so that a ``HaechiError`` always means "the input or the
environment was refused", never "the program is wrong".

Messages never contain inspected values: they name keys, types and rule ids only.
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "AuditRepeatedKey",
    "AuthRejected",
    "ConfigError",
    "CryptoError",
    "DetectionError",
    "HaechiError",
    "IdentityError",
    "LimitError",
    "PluginConflictError",
    "PluginError",
    "PluginLoadError",
    "PolicyViolation",
    "ProviderError",
    "VaultError",
]


class HaechiError(Exception):
    """Root of every error haechi raises on purpose."""

    def diagnostics(self) -> str:
        """Return the one-line text the CLI prints after ``haechi: ``."""
        return str(self)


class ConfigError(HaechiError, ValueError):
    """The configuration (file, environment overlay or flags) is invalid."""


class PluginError(HaechiError):
    """A plugin or provider could not be registered, loaded or used."""


class PluginConflictError(PluginError):
    """Two providers registered the same name for one slot."""


class PluginLoadError(PluginError):
    """A plugin failed to import, or the trust gate refused it.

    ``reason`` is a stable machine-readable refusal code (for example
    ``"invalid-signature"``); ``detail`` is a human explanation that never carries secrets.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason} ({detail})" if detail else reason)


class ProviderError(PluginError):
    """A provider raised while inspecting, storing or counting; haechi failed closed."""


class IdentityError(ProviderError):
    """An auth provider that is not haechi's own answered with an identity whose type,
    scopes or labels break the rules the built-in ones follow. A class of its own so that
    the denial can say so (``invalid_identity``): the provider works, its output does not
    fit, which an operator fixes elsewhere than a provider that fails."""


class CryptoError(HaechiError):
    """Key material, an envelope, its AAD or the nonce budget was refused."""


class VaultError(HaechiError):
    """The token vault refused an operation.

    ``reason`` is the stable code recorded in the audit log (``unknown_token``,
    ``token_expired``, ``decrypt_failed``, ``reveal_policy_disabled``, ...).
    """

    def __init__(self, message: str, reason: str = "vault_error") -> None:
        self.reason = reason
        super().__init__(message)


class AuditError(HaechiError):
    """The audit log could not be written or read; callers must fail closed."""


class AuditRepeatedKey(AuditError):
    """A line of the log or of an anchor file gives a key twice in one object.

    Readers differ on such a line (Python and jq keep the last value, others the first, or
    both), and a record's hash vouches for one reading only: a value written in front of
    the hashed one would pass verification and be what such a reader reports. Verification
    therefore counts it as a broken chain (``reason``), not as an unreadable file. The
    message names the file and the line, never the key, which may hold anything typed.
    """

    def __init__(self, file: str, where: str) -> None:
        self.reason = f"key given twice at {where}"
        super().__init__(f"{file}: {where} gives a key twice in one object")


class DetectionError(HaechiError):
    """A detection rule is invalid, or evaluating it exceeded its time budget."""


class LimitError(HaechiError):
    """Input exceeded a configured limit.

    ``status_code`` and ``error_code`` are what the gateway answers with (for example
    413 and ``haechi_request_too_deeply_nested``).
    """

    def __init__(self, message: str, *, status_code: int, error_code: str) -> None:
        self.status_code = status_code
        self.error_code = error_code
        super().__init__(message)


class AuthRejected(HaechiError):
    """A credential was presented and refused.

    Named for the outcome rather than ending in ``Error``: it is a decision, not a fault.
    """


class PolicyViolation(HaechiError):
    """A payload was blocked by policy in enforce mode.

    Named for the outcome rather than ending in ``Error``. ``audit_id`` points at the
    audit record that explains the block.
    """

    def __init__(self, message: str, *, audit_id: str | None = None) -> None:
        self.audit_id = audit_id
        super().__init__(message)
