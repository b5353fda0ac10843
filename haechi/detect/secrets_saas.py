# SPDX-License-Identifier: Apache-2.0
"""Secret rules for SaaS developer and productivity platforms.

Linear, Notion, Airtable, Figma, Postman, SonarQube, CircleCI, Buildkite, Contentful, Dropbox,
Mapbox, HubSpot, Twitter/X and Facebook all issue tokens with a registered prefix, so each rule
is a bounded prefix plus the documented body length and alphabet.
"""

from __future__ import annotations

from typing import Final

from haechi.detect.rule import Rule
from haechi.detect.secrets_shapes import (
    API_KEY_TYPE,
    SECRET_TYPE,
    TOKEN_CHARS,
    UUID,
    bounded,
    secret_rule,
)

__all__ = ["SAAS_RULES"]


SAAS_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "linear-api-key",
        API_KEY_TYPE,
        bounded(r"lin_api_[A-Za-z0-9]{40}"),
        ("lin_api_",),
        "Linear personal API key",
    ),
    secret_rule(
        "notion-token",
        API_KEY_TYPE,
        bounded(r"(?:secret_[A-Za-z0-9]{43}|ntn_[0-9]{11}[A-Za-z0-9]{35})"),
        ("secret_", "ntn_"),
        "Notion integration token (secret_ legacy or ntn_ format)",
    ),
    secret_rule(
        "airtable-pat",
        API_KEY_TYPE,
        bounded(r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}"),
        ("pat",),
        "Airtable personal access token",
    ),
    secret_rule(
        "figma-pat",
        API_KEY_TYPE,
        bounded(r"figd_[A-Za-z0-9_-]{40}", TOKEN_CHARS),
        ("figd_",),
        "Figma personal access token",
    ),
    secret_rule(
        "postman-api-key",
        API_KEY_TYPE,
        bounded(r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}", TOKEN_CHARS),
        ("PMAK-",),
        "Postman API key",
    ),
    secret_rule(
        "sonarqube-token",
        API_KEY_TYPE,
        bounded(r"sq[upa]_[a-f0-9]{40}"),
        ("squ_", "sqp_", "sqa_"),
        "SonarQube user, project or global analysis token",
    ),
    secret_rule(
        "circleci-pat",
        API_KEY_TYPE,
        bounded(r"CCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40}"),
        ("CCIPAT_",),
        "CircleCI personal API token",
    ),
    secret_rule(
        "buildkite-token",
        API_KEY_TYPE,
        bounded(r"bkua_[a-f0-9]{40}"),
        ("bkua_",),
        "Buildkite user API access token",
    ),
    secret_rule(
        "contentful-pat",
        API_KEY_TYPE,
        bounded(r"CFPAT-[A-Za-z0-9_-]{43}", TOKEN_CHARS),
        ("CFPAT-",),
        "Contentful personal access token",
    ),
    secret_rule(
        "dropbox-token",
        SECRET_TYPE,
        bounded(r"sl\.(?:u\.)?[A-Za-z0-9_-]{130,}", TOKEN_CHARS),
        ("sl.",),
        "Dropbox short-lived access token",
    ),
    secret_rule(
        "mapbox-secret-token",
        API_KEY_TYPE,
        bounded(r"sk\.eyJ1Ijoi[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{20,}", TOKEN_CHARS),
        ("sk.eyJ1Ijoi",),
        "Mapbox secret access token",
    ),
    secret_rule(
        "hubspot-private-app-token",
        API_KEY_TYPE,
        bounded(rf"pat-(?:na|eu)[0-9]-{UUID}", TOKEN_CHARS),
        ("pat-na", "pat-eu"),
        "HubSpot private app access token",
    ),
    secret_rule(
        "twitter-bearer-token",
        SECRET_TYPE,
        bounded(r"A{21,}[A-Za-z0-9%]{50,}", "A-Za-z0-9%+/="),
        ("AAAAAAAAAAAAAAAAAAAAA",),
        "Twitter / X app-only bearer token",
        confidence=0.9,
    ),
    secret_rule(
        "facebook-access-token",
        SECRET_TYPE,
        bounded(r"EAA[A-Za-z0-9]{90,}", "A-Za-z0-9+/="),
        ("EAA",),
        "Facebook / Meta Graph API access token",
        confidence=0.9,
    ),
)
