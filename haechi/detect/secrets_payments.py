# SPDX-License-Identifier: Apache-2.0
"""Secret rules for payments and commerce: Stripe, Square, Braintree, Plaid, Flutterwave and
Shopify.

Stripe publishable keys (``pk_live_``) are not secrets and get no rule here; the reference
``openai-like-key`` rule still reports them, as it always did.
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

__all__ = ["PAYMENT_RULES"]


def _shopify(rule_id: str, prefix: str, rule_type: str, description: str) -> Rule:
    return secret_rule(
        rule_id, rule_type, bounded(rf"{prefix}[a-fA-F0-9]{{32}}"), (prefix,), description
    )


PAYMENT_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "stripe-secret-key",
        API_KEY_TYPE,
        bounded(r"sk_(?:live|test)_[A-Za-z0-9]{24,247}"),
        ("sk_live_", "sk_test_"),
        "Stripe secret API key (live or test mode)",
    ),
    secret_rule(
        "stripe-restricted-key",
        API_KEY_TYPE,
        bounded(r"rk_(?:live|test)_[A-Za-z0-9]{24,247}"),
        ("rk_live_", "rk_test_"),
        "Stripe restricted API key",
    ),
    secret_rule(
        "stripe-webhook-secret",
        SECRET_TYPE,
        bounded(r"whsec_[A-Za-z0-9+/]{32,}={0,2}", "A-Za-z0-9_+/="),
        ("whsec_",),
        "Stripe webhook signing secret",
    ),
    secret_rule(
        "square-access-token",
        API_KEY_TYPE,
        bounded(r"(?:EAAA[A-Za-z0-9_-]{60}|sq0atp-[A-Za-z0-9_-]{22})", TOKEN_CHARS),
        ("EAAA", "sq0atp-"),
        "Square access token",
    ),
    secret_rule(
        "square-oauth-secret",
        SECRET_TYPE,
        bounded(r"sq0csp-[A-Za-z0-9_-]{43}", TOKEN_CHARS),
        ("sq0csp-",),
        "Square OAuth application secret",
    ),
    secret_rule(
        "braintree-access-token",
        SECRET_TYPE,
        bounded(r"access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32}"),
        ("access_token$",),
        "PayPal Braintree access token",
    ),
    secret_rule(
        "plaid-access-token",
        SECRET_TYPE,
        bounded(rf"access-(?:sandbox|development|production)-{UUID}", TOKEN_CHARS),
        ("access-sandbox-", "access-development-", "access-production-"),
        "Plaid access token",
    ),
    secret_rule(
        "flutterwave-secret-key",
        API_KEY_TYPE,
        bounded(r"FLWSECK(?:_TEST)?-[a-fA-F0-9]{32}-X", TOKEN_CHARS),
        ("FLWSECK",),
        "Flutterwave secret key",
    ),
    _shopify("shopify-access-token", "shpat_", API_KEY_TYPE, "Shopify Admin API access token"),
    _shopify("shopify-custom-app-token", "shpca_", API_KEY_TYPE, "Shopify custom app access token"),
    _shopify(
        "shopify-private-app-token", "shppa_", API_KEY_TYPE, "Shopify private app access token"
    ),
    _shopify("shopify-shared-secret", "shpss_", SECRET_TYPE, "Shopify app shared secret"),
)
