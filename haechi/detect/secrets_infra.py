# SPDX-License-Identifier: Apache-2.0
"""Secret rules for infrastructure platforms: hosting, secret managers, identity, data.

Covers DigitalOcean, Heroku, Cloudflare, HashiCorp Vault and Terraform Cloud, Pulumi, Doppler,
Fly.io, Netlify, Supabase, PlanetScale, Render, Tailscale, 1Password, Atlassian, Okta and
Databricks. Most of these vendors put a registered prefix on their tokens; the ones that do not
(legacy Heroku keys, Cloudflare tokens, Okta tokens outside an ``SSWS`` header) are
context-gated on a key naming the vendor.
"""

from __future__ import annotations

from typing import Final

from haechi.detect.rule import Rule
from haechi.detect.secrets_shapes import (
    API_KEY_TYPE,
    KEY_SEPARATOR,
    SECRET_TYPE,
    TOKEN_CHARS,
    UUID,
    bounded,
    keyed,
    secret_rule,
)
from haechi.detect.secrets_validators import b64_json_with

__all__ = ["INFRA_RULES"]

_CF_PREFILTER: Final = ("cloudflare", "cf_", "cf-", "cf.", "cfapi", "cftoken", "cfglobal")

INFRA_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "digitalocean-pat",
        API_KEY_TYPE,
        bounded(r"dop_v1_[a-f0-9]{64}"),
        ("dop_v1_",),
        "DigitalOcean personal access token",
    ),
    secret_rule(
        "digitalocean-oauth-token",
        SECRET_TYPE,
        bounded(r"doo_v1_[a-f0-9]{64}"),
        ("doo_v1_",),
        "DigitalOcean OAuth access token",
    ),
    secret_rule(
        "digitalocean-refresh-token",
        SECRET_TYPE,
        bounded(r"dor_v1_[a-f0-9]{64}"),
        ("dor_v1_",),
        "DigitalOcean OAuth refresh token",
    ),
    secret_rule(
        "heroku-api-key",
        API_KEY_TYPE,
        bounded(r"HRKU-[A-Za-z0-9_-]{20,}", TOKEN_CHARS),
        ("HRKU-",),
        "Heroku platform API key (HRKU- format)",
    ),
    secret_rule(
        "heroku-api-key-legacy",
        API_KEY_TYPE,
        keyed(r"heroku[A-Za-z0-9_.-]{0,24}(?:key|token|secret|password)", UUID, TOKEN_CHARS),
        ("heroku",),
        "Legacy Heroku API key (a UUID) after a key naming Heroku",
        confidence=0.85,
    ),
    secret_rule(
        "cloudflare-api-token",
        API_KEY_TYPE,
        keyed(r"(?:cloudflare|cf)[_.-]?(?:api[_.-]?)?token", r"[A-Za-z0-9_-]{40}", TOKEN_CHARS),
        _CF_PREFILTER,
        "Cloudflare API token after a key naming Cloudflare",
        confidence=0.85,
    ),
    secret_rule(
        "cloudflare-global-api-key",
        API_KEY_TYPE,
        keyed(
            r"(?:cloudflare|cf)[_.-]?(?:global[_.-]?)?api[_.-]?key|x-auth-key",
            r"[0-9a-f]{37}",
            TOKEN_CHARS,
        ),
        (*_CF_PREFILTER, "x-auth-key"),
        "Cloudflare global API key after a key naming it",
        confidence=0.85,
    ),
    secret_rule(
        "cloudflare-origin-ca-key",
        API_KEY_TYPE,
        bounded(r"v1\.0-[0-9a-f]{24}-[0-9a-f]{146}", "A-Za-z0-9_.-"),
        ("v1.0-",),
        "Cloudflare Origin CA key",
    ),
    secret_rule(
        "vault-service-token",
        SECRET_TYPE,
        bounded(r"hvs\.[A-Za-z0-9_-]{24,}", TOKEN_CHARS),
        ("hvs.",),
        "HashiCorp Vault service token",
    ),
    secret_rule(
        "vault-batch-token",
        SECRET_TYPE,
        bounded(r"hvb\.[A-Za-z0-9_-]{24,}", TOKEN_CHARS),
        ("hvb.",),
        "HashiCorp Vault batch token",
    ),
    secret_rule(
        "terraform-cloud-token",
        API_KEY_TYPE,
        bounded(r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}", "A-Za-z0-9_=-"),
        (".atlasv1.",),
        "Terraform Cloud / Enterprise API token",
    ),
    secret_rule(
        "pulumi-access-token",
        API_KEY_TYPE,
        bounded(r"pul-[a-f0-9]{40}", TOKEN_CHARS),
        ("pul-",),
        "Pulumi access token",
    ),
    secret_rule(
        "doppler-token",
        API_KEY_TYPE,
        bounded(
            r"dp\.(?:pt|st|sa|ct|scim|audit)\.(?:[a-z0-9_-]{1,40}\.)?[A-Za-z0-9]{40,44}",
            "A-Za-z0-9_.-",
        ),
        ("dp.pt.", "dp.st.", "dp.sa.", "dp.ct.", "dp.scim.", "dp.audit."),
        "Doppler personal, service, service-account, CLI, SCIM or audit token",
    ),
    secret_rule(
        "fly-io-token",
        API_KEY_TYPE,
        bounded(
            r"(?:fo1_[A-Za-z0-9_-]{43}|fm[12][ar]?_[A-Za-z0-9+/]{100,}={0,3})", "A-Za-z0-9_+/=-"
        ),
        ("fo1_", "fm1", "fm2"),
        "Fly.io access token (fo1_ or fm1/fm2 macaroon)",
    ),
    secret_rule(
        "netlify-pat",
        API_KEY_TYPE,
        bounded(r"nfp_[A-Za-z0-9]{36}"),
        ("nfp_",),
        "Netlify personal access token",
    ),
    secret_rule(
        "supabase-pat",
        API_KEY_TYPE,
        bounded(r"sbp_[a-f0-9]{40}"),
        ("sbp_",),
        "Supabase personal access token",
    ),
    secret_rule(
        "supabase-secret-key",
        API_KEY_TYPE,
        bounded(r"sb_secret_[A-Za-z0-9_-]{20,}", TOKEN_CHARS),
        ("sb_secret_",),
        "Supabase secret API key",
    ),
    secret_rule(
        "planetscale-token",
        SECRET_TYPE,
        bounded(r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_=-]{32,64}", "A-Za-z0-9_=-"),
        ("pscale_",),
        "PlanetScale service token, database password or OAuth token",
    ),
    secret_rule(
        "render-api-key",
        API_KEY_TYPE,
        bounded(r"rnd_[A-Za-z0-9]{32}"),
        ("rnd_",),
        "Render API key",
    ),
    secret_rule(
        "tailscale-key",
        API_KEY_TYPE,
        bounded(
            r"tskey-(?:api|auth|client|scim|webhook)-[A-Za-z0-9]{6,}-[A-Za-z0-9]{20,}", TOKEN_CHARS
        ),
        ("tskey-",),
        "Tailscale API, auth, OAuth client, SCIM or webhook key",
    ),
    secret_rule(
        "onepassword-service-account-token",
        SECRET_TYPE,
        bounded(r"ops_eyJ[A-Za-z0-9+/_-]{100,}={0,2}", "A-Za-z0-9+/=_-"),
        ("ops_eyJ",),
        "1Password service account token (ops_ + base64 JSON)",
        validator=b64_json_with(strip_prefix="ops_", name="base64_json_object"),
    ),
    secret_rule(
        "onepassword-secret-key",
        SECRET_TYPE,
        bounded(
            r"A3-[A-Z0-9]{6}-[A-Z0-9]{6}-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}",
            TOKEN_CHARS,
        ),
        ("A3-",),
        "1Password account Secret Key",
    ),
    secret_rule(
        "atlassian-api-token",
        API_KEY_TYPE,
        bounded(r"ATATT3[A-Za-z0-9_=-]{150,}", "A-Za-z0-9_=-"),
        ("ATATT3",),
        "Atlassian (Jira, Confluence) API token",
    ),
    secret_rule(
        "okta-api-token",
        API_KEY_TYPE,
        rf"(?:\bSSWS[ \t]+|(?<!\[)(?i:okta[A-Za-z0-9_.-]{{0,24}}(?:token|key)){KEY_SEPARATOR})"
        r"(?P<value>00[A-Za-z0-9_-]{40})(?![A-Za-z0-9_-])",
        ("SSWS", "okta"),
        "Okta API token in an SSWS authorization header or after a key naming Okta",
        confidence=0.9,
    ),
    secret_rule(
        "databricks-token",
        API_KEY_TYPE,
        bounded(r"dapi[a-f0-9]{32}(?:-[0-9])?", TOKEN_CHARS),
        ("dapi",),
        "Databricks personal access token",
    ),
)
