# SPDX-License-Identifier: Apache-2.0
"""Secret rules for observability vendors: Datadog, New Relic, Sentry, Grafana, Dynatrace,
Splunk and PostHog.

Datadog keys are bare hex, so both Datadog rules are context-gated on a key naming Datadog.
Grafana service-account tokens carry a CRC-32 checksum; Sentry org tokens and Grafana Cloud
tokens embed a base64 JSON claim set that the validator decodes.
"""

from __future__ import annotations

from typing import Final

from haechi.detect.checksums import grafana_service_account_token_ok
from haechi.detect.patterns import word_start
from haechi.detect.rule import Rule
from haechi.detect.secrets_shapes import (
    API_KEY_TYPE,
    SECRET_TYPE,
    TOKEN_CHARS,
    UUID,
    bounded,
    keyed,
    secret_rule,
)
from haechi.detect.secrets_validators import b64_json_with

__all__ = ["OBSERVABILITY_RULES"]

_DD_PREFILTER: Final = ("datadog", "dd_", "dd-", "dd.")


def _newrelic(rule_id: str, body: str, prefix: str, description: str) -> Rule:
    return secret_rule(rule_id, API_KEY_TYPE, bounded(body, TOKEN_CHARS), (prefix,), description)


OBSERVABILITY_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "datadog-api-key",
        API_KEY_TYPE,
        keyed(r"(?:dd|datadog)[_.-]?api[_.-]?key", r"[a-f0-9]{32}"),
        (*_DD_PREFILTER, "ddapi"),
        "Datadog API key after a key naming Datadog (DD_API_KEY, DD-API-KEY header)",
        confidence=0.9,
    ),
    secret_rule(
        "datadog-app-key",
        API_KEY_TYPE,
        keyed(r"(?:dd|datadog)[_.-]?app(?:lication)?[_.-]?key", r"[a-f0-9]{40}"),
        (*_DD_PREFILTER, "ddapp"),
        "Datadog application key after a key naming Datadog",
        confidence=0.9,
    ),
    _newrelic("newrelic-user-api-key", r"NRAK-[A-Z0-9]{27}", "NRAK-", "New Relic user API key"),
    _newrelic("newrelic-admin-key", r"NRAA-[a-f0-9]{27}", "NRAA-", "New Relic admin API key"),
    _newrelic(
        "newrelic-insert-key", r"NRII-[A-Za-z0-9_-]{32}", "NRII-", "New Relic Insights insert key"
    ),
    _newrelic(
        "newrelic-query-key", r"NRIQ-[A-Za-z0-9_-]{32}", "NRIQ-", "New Relic Insights query key"
    ),
    _newrelic("newrelic-browser-key", r"NRJS-[a-f0-9]{19}", "NRJS-", "New Relic browser API token"),
    _newrelic(
        "newrelic-license-key",
        r"(?:[a-f0-9]{36}|eu01xx[a-f0-9]{30})NRAL",
        "NRAL",
        "New Relic ingest license key",
    ),
    secret_rule(
        "sentry-dsn",
        SECRET_TYPE,
        r"https?://[0-9a-f]{32}(?::[0-9a-f]{32})?@[A-Za-z0-9.-]*(?:sentry|ingest)[A-Za-z0-9.-]*"
        r"(?::[0-9]+)?/[0-9]+(?![0-9])",
        ("sentry", "ingest"),
        "Sentry DSN (the key that lets anyone post events to a project)",
        confidence=0.9,
    ),
    secret_rule(
        "sentry-org-token",
        SECRET_TYPE,
        bounded(r"sntrys_eyJ[A-Za-z0-9+/=]{30,}_[A-Za-z0-9+/]{43}", "A-Za-z0-9_+/="),
        ("sntrys_",),
        "Sentry organization auth token (sntrys_ + base64 JSON claims + secret)",
        validator=b64_json_with(strip_prefix="sntrys_", separator="_", name="sentry_claims_json"),
        confidence=0.98,
    ),
    secret_rule(
        "sentry-user-token",
        SECRET_TYPE,
        bounded(r"sntryu_[a-f0-9]{64}"),
        ("sntryu_",),
        "Sentry user auth token",
    ),
    secret_rule(
        "grafana-service-account-token",
        SECRET_TYPE,
        bounded(r"glsa_[A-Za-z0-9]{32}_[a-f0-9]{8}"),
        ("glsa_",),
        "Grafana service account token (CRC-32 checked)",
        validator=grafana_service_account_token_ok,
        confidence=0.99,
    ),
    secret_rule(
        "grafana-cloud-token",
        SECRET_TYPE,
        bounded(r"glc_eyJ[A-Za-z0-9+/_-]{30,}={0,2}", "A-Za-z0-9+/=_-"),
        ("glc_eyJ",),
        "Grafana Cloud access policy token (glc_ + base64 JSON)",
        validator=b64_json_with(strip_prefix="glc_", name="grafana_cloud_json"),
        confidence=0.98,
    ),
    secret_rule(
        "grafana-api-key",
        API_KEY_TYPE,
        bounded(r"eyJrIjoi[A-Za-z0-9+/_-]{40,}={0,2}", "A-Za-z0-9+/=_-"),
        ("eyJrIjoi",),
        "Grafana legacy API key (base64 JSON with a k field)",
        validator=b64_json_with("k", name="grafana_key_json"),
    ),
    secret_rule(
        "dynatrace-token",
        API_KEY_TYPE,
        bounded(r"dt0[a-z][0-9]{2}\.[A-Z0-9]{24}\.[A-Z0-9]{64}", "A-Za-z0-9_.-"),
        ("dt0",),
        "Dynatrace API or platform token",
    ),
    secret_rule(
        "splunk-hec-token",
        SECRET_TYPE,
        word_start("Splunk") + rf"[ \t]+(?P<value>{UUID})(?![A-Za-z0-9_-])",
        ("splunk",),
        "Splunk HTTP Event Collector token in a Splunk authorization header",
    ),
    secret_rule(
        "posthog-personal-api-key",
        API_KEY_TYPE,
        bounded(r"phx_[A-Za-z0-9]{43}"),
        ("phx_",),
        "PostHog personal API key",
    ),
)
