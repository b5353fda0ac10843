# SPDX-License-Identifier: Apache-2.0
"""Secret rules for package registries and artifact stores: npm, PyPI, RubyGems, NuGet,
Docker Hub, JFrog, Clojars and crates.io, plus credentials in ``.npmrc`` and Docker
``config.json`` files.

PyPI tokens are macaroons; the validator decodes the first bytes and checks that they carry a
version-2 macaroon issued for a PyPI host (see :mod:`haechi.detect.checksums`).
"""

from __future__ import annotations

from typing import Final

from haechi.detect.checksums import pypi_macaroon_ok
from haechi.detect.rule import Rule
from haechi.detect.secrets_shapes import (
    API_KEY_TYPE,
    SECRET_TYPE,
    TOKEN_CHARS,
    bounded,
    secret_rule,
)
from haechi.detect.secrets_validators import docker_auth_ok, not_placeholder

__all__ = ["REGISTRY_RULES"]


REGISTRY_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "npm-token",
        SECRET_TYPE,
        bounded(r"npm_[A-Za-z0-9]{36}"),
        ("npm_",),
        "npm access token",
    ),
    secret_rule(
        "npmrc-auth-token",
        SECRET_TYPE,
        r"(?<![A-Za-z0-9])_(?:authToken|auth|password)[ \t]*=[ \t]*[\"']?"
        r"(?P<value>[A-Za-z0-9._~+/=-]{10,})(?![A-Za-z0-9._~+/=-])",
        ("_auth", "_password"),
        "npm registry credential in an .npmrc file (_authToken, _auth, _password)",
        validator=not_placeholder,
        confidence=0.9,
    ),
    secret_rule(
        "pypi-token",
        API_KEY_TYPE,
        bounded(r"pypi-AgE[A-Za-z0-9_-]{50,}", TOKEN_CHARS),
        ("pypi-AgE",),
        "PyPI API token (a macaroon issued by a PyPI host)",
        validator=pypi_macaroon_ok,
        confidence=0.99,
    ),
    secret_rule(
        "rubygems-api-key",
        API_KEY_TYPE,
        bounded(r"rubygems_[a-f0-9]{48}"),
        ("rubygems_",),
        "RubyGems API key",
    ),
    secret_rule(
        "nuget-api-key",
        API_KEY_TYPE,
        bounded(r"oy2[a-z0-9]{43}"),
        ("oy2",),
        "NuGet.org API key",
        confidence=0.9,
    ),
    secret_rule(
        "dockerhub-token",
        SECRET_TYPE,
        bounded(r"dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,}", TOKEN_CHARS),
        ("dckr_pat_", "dckr_oat_"),
        "Docker Hub personal or organization access token",
    ),
    secret_rule(
        "jfrog-api-key",
        API_KEY_TYPE,
        bounded(r"AKCp[A-Za-z0-9]{69}"),
        ("AKCp",),
        "JFrog Artifactory API key",
    ),
    secret_rule(
        "jfrog-reference-token",
        SECRET_TYPE,
        bounded(r"cmVmdGtuOjAxOj[A-Za-z0-9]{50,}"),
        ("cmVmdGtuOjAxOj",),
        "JFrog reference token (base64 of reftkn:01:...)",
    ),
    secret_rule(
        "clojars-token",
        API_KEY_TYPE,
        bounded(r"CLOJARS_[a-z0-9]{60}"),
        ("CLOJARS_",),
        "Clojars deploy token",
    ),
    secret_rule(
        "crates-io-token",
        API_KEY_TYPE,
        bounded(r"cio[A-Za-z0-9]{32}"),
        ("cio",),
        "crates.io API token",
        confidence=0.9,
    ),
    secret_rule(
        "docker-config-auth",
        SECRET_TYPE,
        r"""\\?"auth\\?"[ \t]*:[ \t]*\\?"(?P<value>[A-Za-z0-9+/]{6,}={0,2})\\?\"""",
        ('"auth',),
        "Docker config.json auth entry (base64 of user:password)",
        validator=docker_auth_ok,
    ),
)
