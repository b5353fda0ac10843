# SPDX-License-Identifier: Apache-2.0
"""An auth provider that is not haechi's own, as a directory service would answer: one
identity, whose fields a test chooses, for every request with a credential. The hook module
of a plugin too (:func:`install_directory_plugin` installs it through an entry point), so it
can be injected or selected by name (``auth.provider: "directory"``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import pytest

from haechi import hookimpl
from haechi.models import Identity
from haechi.providers import ProviderContext


class Directory:
    """Answers every request with a credential with one identity."""

    name: ClassVar[str] = "directory"
    #: The fields of the identity a provider built by name (:meth:`create`) answers with.
    fields: ClassVar[Mapping[str, Any]] = {}
    #: How many providers built by name were closed.
    closed: ClassVar[int] = 0

    def __init__(self, *, failing: bool = False, **fields: Any) -> None:
        """``failing``: raise on every request (a directory that is down)."""
        self.failing = failing
        self.identity = Identity(
            **{
                "id": "jane.doe@example.com",
                "type": "user",
                "subject_hash": "0" * 64,
                "issuer_hash": "1" * 64,
                "provider": "directory",
                **fields,
            }
        )

    @classmethod
    def create(cls, context: ProviderContext) -> Self:
        return cls(**cls.fields)

    async def authenticate(self, headers: Mapping[str, str]) -> Identity | None:
        if self.failing:
            raise ConnectionError("the directory is down")
        return self.identity if headers.get("authorization") else None

    async def aclose(self) -> None:
        type(self).closed += 1


@hookimpl
def haechi_register_auth_providers() -> list[type[Any]]:
    return [Directory]


def install_directory_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **fields: Any
) -> None:
    """Install this module as the plugin ``directory`` (an entry point of the ``haechi``
    group, as a distribution installs it), whose provider answers with ``fields``."""
    dist = tmp_path / "site" / "haechi_directory-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: haechi-directory\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[haechi]\ndirectory = {__name__}\n")
    monkeypatch.syspath_prepend(str(dist.parent))
    monkeypatch.setattr(Directory, "fields", fields)
    monkeypatch.setattr(Directory, "closed", 0)
