# SPDX-License-Identifier: Apache-2.0
"""The identity an auth provider that is not haechi's own returns, held to the rules
haechi's own providers follow before anything uses or audits it: an injected provider
(``auth.provider: "external"``), or an installed plugin's selected by its name. (A signed
plugin run in the sandbox, ``auth.provider: "plugin"``, answers with claims the host turns
into an identity itself.)

Such a provider builds its :class:`~haechi.models.Identity` itself, and the audit log
writes its ``id``, ``type``, ``subjectHash``, ``issuerHash`` and ``provider`` with every
request. A provider may well use an e-mail address or the subject of a JWT as the id, which
would put that address in every record. So:

* an id is replaced by ``external:<16 hex>``, a keyed hash of it (the hash the plugin
  provider makes its ids of): one caller keeps one id, for its audit records, its rate
  budget and its MCP sessions, and the id tells nothing without the key. Only the identity
  of a gateway bearer token keeps its id (``tok_auth_<hex>``), when a provider hands on
  what the built-in bearer provider answered: provider ``bearer`` and, as subject hash, the
  keyed hash of that id, which nothing without the key can make. An id of that form is
  otherwise text like any other (a directory's subject may read ``tok_auth_…``): kept, it
  would be the id of the token's own caller, spending its rate budget and owning its MCP
  sessions, and the log could not tell the two apart;
* a subject or issuer hash that is not lowercase hex (the form of a keyed hash) is replaced
  by the keyed hash of it, and a provider name outside ``[a-z][a-z0-9._:-]{0,63}``, or
  ``bearer`` on any other identity than a bearer token's, by ``external``;
* the type and the labels, which choose a policy and cannot be renamed, are refused outside
  the rules the bearer tokens and the plugin provider follow (a type of ``user``,
  ``service`` or ``agent``; label keys of ``auth.allowedLabelKeys`` with values of 1 to 64
  characters; scopes as strings): the request is denied (``invalid_identity``, audited; a
  provider that raises is ``provider_error``), rather than served under a policy the
  configuration did not give it.
"""

from __future__ import annotations

import dataclasses
import hmac
import re
from collections.abc import Collection, Mapping
from typing import Any, ClassVar, Final

from haechi.auth import (
    IDENTITY_HASH_DOMAIN,
    TOKEN_TYPES,
    BearerAuthProvider,
    is_label_value,
    is_token_id,
)
from haechi.errors import IdentityError
from haechi.models import Identity
from haechi.providers import CryptoProvider

__all__ = ["EXTERNAL_ID_PREFIX", "ExternalAuthProvider"]

#: What an id outside the built-in form becomes, followed by 16 hex digits of its keyed hash.
EXTERNAL_ID_PREFIX: Final = "external:"
_HASH = re.compile(r"[0-9a-f]{16,128}")
_PROVIDER = re.compile(r"[a-z][a-z0-9._:-]{0,63}")


class ExternalAuthProvider:
    """Wraps an auth provider that is not haechi's own; its identities come out as
    described above."""

    name: ClassVar[str] = "external"

    def __init__(
        self, provider: Any, crypto: CryptoProvider, allowed_label_keys: Collection[str]
    ) -> None:
        self._provider = provider
        self._crypto = crypto
        self._allowed_label_keys = frozenset(allowed_label_keys)

    @property
    def provider(self) -> Any:
        """The provider wrapped."""
        return self._provider

    async def authenticate(self, headers: Mapping[str, str]) -> Identity | None:
        """The wrapped provider's identity, checked; ``None`` when it returns none.

        Raises :class:`~haechi.errors.IdentityError` (naming the field, never its value)
        for an answer that is no identity, or one whose type, scopes or labels break the
        rules.
        """
        identity = await self._provider.authenticate(headers)
        if identity is None:
            return None
        if not isinstance(identity, Identity):
            raise IdentityError("the auth provider returned no Identity")
        return self._checked(identity)

    def _checked(self, identity: Identity) -> Identity:
        if identity.type not in TOKEN_TYPES:
            raise IdentityError(f"an external identity's type must be one of {TOKEN_TYPES}")
        scopes = identity.scopes
        if not isinstance(scopes, tuple | list) or not all(isinstance(s, str) for s in scopes):
            raise IdentityError("an external identity's scopes must be a sequence of strings")
        labels = identity.labels
        if not isinstance(labels, Mapping) or not all(
            key in self._allowed_label_keys and is_label_value(value)
            for key, value in labels.items()
        ):
            raise IdentityError(
                "an external identity's labels must have keys of auth.allowedLabelKeys "
                "and values of 1 to 64 characters"
            )
        bearer = self._is_bearer_token(identity)
        provider = identity.provider
        named = _matches(_PROVIDER, provider) and (bearer or provider != BearerAuthProvider.name)
        return dataclasses.replace(
            identity,
            id=identity.id if bearer else self._pseudonym(identity.id),
            subject_hash=self._hash(identity.subject_hash),
            issuer_hash=self._hash(identity.issuer_hash),
            provider=provider if named else "external",
        )

    def _is_bearer_token(self, identity: Identity) -> bool:
        """Whether ``identity`` is one the built-in bearer provider made (see
        :func:`~haechi.auth.build_identity`): a token id, provider ``bearer``, and the keyed
        hash of the id as subject hash, under the active key or, for an identity made
        before a rotation, a retired one."""
        if identity.provider != BearerAuthProvider.name or not is_token_id(identity.id):
            return False
        retired = getattr(self._crypto, "retired_hmacs", None)
        hashes = [self._keyed(identity.id)]
        if retired is not None:
            hashes.extend(retired(identity.id, IDENTITY_HASH_DOMAIN))
        presented = str(identity.subject_hash).encode()  # a provider may put anything there
        return any(hmac.compare_digest(presented, hashed.encode()) for hashed in hashes)

    def _keyed(self, value: object) -> str:
        return self._crypto.hmac(str(value), IDENTITY_HASH_DOMAIN)

    def _pseudonym(self, value: object) -> str:
        return EXTERNAL_ID_PREFIX + self._keyed(value)[:16]

    def _hash(self, value: object) -> str:
        return value if isinstance(value, str) and _matches(_HASH, value) else self._keyed(value)


def _matches(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None
