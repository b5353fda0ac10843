# SPDX-License-Identifier: Apache-2.0
"""Secret rules for messaging and e-mail: Slack, Discord, Telegram, Microsoft Teams, Google
Chat, Zapier, Twilio, SendGrid, Mailgun, Mailchimp, Brevo, MailerSend and Resend.

Incoming-webhook URLs are secrets in their own right: whoever holds one can post into the
channel, so the whole URL is the finding.
"""

from __future__ import annotations

from typing import Final

from haechi.detect.rule import Rule
from haechi.detect.secrets_shapes import (
    API_KEY_TYPE,
    SECRET_TYPE,
    TOKEN_CHARS,
    bounded,
    keyed,
    secret_rule,
)
from haechi.detect.secrets_validators import discord_bot_token_ok

__all__ = ["MESSAGING_RULES"]


MESSAGING_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "slack-token",
        SECRET_TYPE,
        bounded(r"xox[baprs]-[0-9A-Za-z-]{10,}", TOKEN_CHARS),
        ("xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-"),
        "Slack bot, app, user, refresh or legacy token",
        confidence=0.9,
    ),
    secret_rule(
        "slack-config-token",
        SECRET_TYPE,
        bounded(r"xoxe(?:\.xox[bp])?-[0-9]-[A-Za-z0-9]{140,}", TOKEN_CHARS),
        ("xoxe",),
        "Slack app configuration access or refresh token",
    ),
    secret_rule(
        "slack-app-token",
        SECRET_TYPE,
        bounded(r"xapp-[0-9]-[A-Z0-9]{8,}-[0-9]{8,}-[a-f0-9]{32,}", TOKEN_CHARS),
        ("xapp-",),
        "Slack app-level token",
    ),
    secret_rule(
        "slack-webhook-url",
        SECRET_TYPE,
        r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,}",
        ("hooks.slack.com/",),
        "Slack incoming webhook, workflow or trigger URL",
    ),
    secret_rule(
        "discord-bot-token",
        SECRET_TYPE,
        bounded(r"[MNO][A-Za-z0-9_-]{22,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}", TOKEN_CHARS),
        ("discord", "bot"),
        "Discord bot token, where the text mentions Discord or a Bot authorization",
        validator=discord_bot_token_ok,
    ),
    secret_rule(
        "discord-webhook-url",
        SECRET_TYPE,
        r"https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/(?:v[0-9]+/)?webhooks/"
        r"[0-9]{17,20}/[A-Za-z0-9_-]{60,68}(?![A-Za-z0-9_-])",
        ("discord",),
        "Discord webhook URL",
    ),
    secret_rule(
        "telegram-bot-token",
        SECRET_TYPE,
        r"(?<![A-Za-z0-9_])[0-9]{8,10}:AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])",
        (":AA",),
        "Telegram Bot API token",
    ),
    secret_rule(
        "teams-webhook-url",
        SECRET_TYPE,
        r"https://(?:[A-Za-z0-9-]+\.webhook|outlook)\.office(?:365)?\.com/webhook(?:b2)?/"
        r"[A-Za-z0-9@/_-]{40,}",
        ("office.com/webhook", "office365.com/webhook"),
        "Microsoft Teams incoming webhook URL",
    ),
    secret_rule(
        "google-chat-webhook",
        SECRET_TYPE,
        r"https://chat\.googleapis\.com/v1/spaces/[A-Za-z0-9_-]+/messages\?"
        r"key=[A-Za-z0-9_-]+&token=[A-Za-z0-9_%=-]+",
        ("chat.googleapis.com",),
        "Google Chat incoming webhook URL",
    ),
    secret_rule(
        "zapier-webhook-url",
        SECRET_TYPE,
        r"https://hooks\.zapier\.com/hooks/catch/[0-9]+/[A-Za-z0-9]+/?",
        ("hooks.zapier.com",),
        "Zapier catch hook URL",
    ),
    secret_rule(
        "twilio-sid",
        API_KEY_TYPE,
        # Starts with a plain class of the two capitals so the regex engine skips to them.
        r"[AS](?<!\w[AS])(?:(?<=A)C|(?<=S)K)[0-9a-fA-F]{32}\b",
        ("AC", "SK"),
        "Twilio account SID (AC) or API key SID (SK)",
        confidence=0.9,
        anchored=True,
    ),
    secret_rule(
        "twilio-auth-token",
        SECRET_TYPE,
        keyed(r"twilio[A-Za-z0-9_.-]{0,24}(?:token|secret)", r"[0-9a-f]{32}"),
        ("twilio",),
        "Twilio auth token after a key naming Twilio",
        confidence=0.85,
    ),
    secret_rule(
        "sendgrid-api-key",
        API_KEY_TYPE,
        bounded(r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}", TOKEN_CHARS),
        ("SG.",),
        "SendGrid API key",
    ),
    secret_rule(
        "mailgun-api-key",
        API_KEY_TYPE,
        bounded(r"key-[0-9a-f]{32}", TOKEN_CHARS),
        ("key-",),
        "Mailgun API key (key- format)",
        confidence=0.9,
    ),
    secret_rule(
        "mailchimp-api-key",
        API_KEY_TYPE,
        bounded(r"[0-9a-f]{32}-us[0-9]{1,2}", TOKEN_CHARS),
        ("-us",),
        "Mailchimp API key with its data-centre suffix",
    ),
    secret_rule(
        "brevo-api-key",
        API_KEY_TYPE,
        bounded(r"x(?:keysib|smtpsib)-[a-f0-9]{64}-[A-Za-z0-9]{16}", TOKEN_CHARS),
        ("xkeysib-", "xsmtpsib-"),
        "Brevo (Sendinblue) API or SMTP key",
    ),
    secret_rule(
        "mailersend-api-key",
        API_KEY_TYPE,
        bounded(r"mlsn\.[a-f0-9]{64}", "A-Za-z0-9_.-"),
        ("mlsn.",),
        "MailerSend API token",
    ),
    secret_rule(
        "resend-api-key",
        API_KEY_TYPE,
        bounded(r"re_[A-Za-z0-9]{8}_[A-Za-z0-9]{24}"),
        ("re_",),
        "Resend API key",
    ),
)
