# SPDX-License-Identifier: Apache-2.0
"""Secret rules for the big cloud platforms: AWS, Google Cloud and Azure (and Alibaba Cloud).

AWS secret access keys and several Azure keys are plain base64 with no prefix, so those rules
are context-gated: they fire only after a key that names them (``aws_secret_access_key=``,
``AccountKey=``, ``SharedAccessKey=``) or, for AWS, right after an access key id in a CSV row.
"""

from __future__ import annotations

from typing import Final

from haechi.detect.patterns import word_start
from haechi.detect.rule import Rule
from haechi.detect.secrets_shapes import (
    API_KEY_TYPE,
    KEY_SEPARATOR,
    SECRET_TYPE,
    bounded,
    keyed,
    secret_rule,
)
from haechi.detect.secrets_validators import (
    assignment_secret_ok,
    aws_bedrock_key_ok,
    base64_bytes,
    sas_signature_ok,
)

__all__ = ["CLOUD_RULES"]


_AWS_SAK_KEY_NAME: Final = (
    r"aws[_.-]?secret(?:[_.-]?access)?(?:[_.-]?key)?|secret[_.-]?access[_.-]?key"
)
_AWS_SAK_VALUE: Final = r"[A-Za-z0-9/+]{40}"
_AWS_ACCESS_KEY_ID: Final = r"(?:AKIA|ASIA)[0-9A-Z]{16}"

_SAS_SIGNATURE: Final = r"(?:[A-Za-z0-9+/]|%2[BbFf]){40,}(?:=|%3[Dd]){0,2}"
_SAS_PARAM: Final = r"&[A-Za-z]{2,5}=[^&\s\"'<>]{0,256}"

AWS_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "aws-access-key-id",
        API_KEY_TYPE,
        word_start(_AWS_ACCESS_KEY_ID) + r"\b",
        ("AKIA", "ASIA"),
        "AWS access key id (long-term AKIA or temporary ASIA)",
    ),
    secret_rule(
        "aws-secret-access-key",
        SECRET_TYPE,
        rf"(?:(?<!\[)(?i:{_AWS_SAK_KEY_NAME}){KEY_SEPARATOR}"
        rf"|\b{_AWS_ACCESS_KEY_ID}[\"']?[ \t]*[,;:|\t][ \t]*[\"']?)"
        rf"(?P<value>{_AWS_SAK_VALUE})(?![A-Za-z0-9/+=])",
        ("secret", "AKIA", "ASIA"),
        "AWS secret access key after a key naming it or after an access key id (CSV rows)",
        validator=assignment_secret_ok,
        confidence=0.9,
    ),
    secret_rule(
        "aws-session-token",
        SECRET_TYPE,
        bounded(
            r"(?:IQoJb3JpZ2luX2Vj|FwoGZXIvYXdzE|FQoGZXIvYXdzE)[A-Za-z0-9/+]{80,}={0,2}",
            "A-Za-z0-9/+=",
        ),
        ("IQoJb3JpZ2luX2Vj", "FwoGZXIvYXdzE", "FQoGZXIvYXdzE"),
        "AWS STS session token (its serialized header is a fixed base64 prefix)",
    ),
    secret_rule(
        "aws-mws-auth-token",
        SECRET_TYPE,
        word_start(r"amzn\.mws\.")
        + r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        ("amzn.mws.",),
        "Amazon Marketplace Web Service auth token",
    ),
    secret_rule(
        "aws-bedrock-api-key",
        API_KEY_TYPE,
        bounded(r"ABSKQmVkcm9ja0FQSUtleS[A-Za-z0-9+/]{20,}={0,2}", "A-Za-z0-9+/="),
        ("ABSKQmVkcm9ja0FQSUtleS",),
        "Amazon Bedrock long-term API key (ABSK + base64 of BedrockAPIKey-...)",
        validator=aws_bedrock_key_ok,
    ),
    secret_rule(
        "aws-bedrock-short-term-key",
        SECRET_TYPE,
        bounded(
            r"bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/]{20,}={0,2}", "A-Za-z0-9+/="
        ),
        ("bedrock-api-key-",),
        "Amazon Bedrock short-term API key (a presigned bedrock.amazonaws.com request)",
    ),
)

GCP_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "google-api-key",
        API_KEY_TYPE,
        bounded(r"AIza[0-9A-Za-z_-]{35}", "0-9A-Za-z_-"),
        ("AIza",),
        "Google API key (Maps, Firebase, Gemini/Google AI Studio)",
        confidence=0.9,
    ),
    secret_rule(
        "google-oauth-client-secret",
        SECRET_TYPE,
        bounded(r"GOCSPX-[A-Za-z0-9_-]{28}", "A-Za-z0-9_-"),
        ("GOCSPX-",),
        "Google OAuth client secret",
    ),
    secret_rule(
        "google-oauth-access-token",
        SECRET_TYPE,
        bounded(r"ya29\.[0-9A-Za-z_-]{30,}", "0-9A-Za-z_-"),
        ("ya29.",),
        "Google OAuth 2.0 access token",
    ),
    secret_rule(
        "google-oauth-refresh-token",
        SECRET_TYPE,
        r"(?<![0-9A-Za-z/])1//0[0-9A-Za-z_-]{40,}(?![0-9A-Za-z_-])",
        ("1//0",),
        "Google OAuth 2.0 refresh token",
        confidence=0.9,
    ),
    secret_rule(
        "gcp-service-account-key",
        SECRET_TYPE,
        r"""\\?["']private_key\\?["'][ \t]*:[ \t]*\\?["']"""
        r"(?P<value>-----BEGIN PRIVATE KEY-----(?:[^-]|-(?!----)){16,16384}?"
        r"-----END PRIVATE KEY-----)",
        ("private_key",),
        "Google Cloud service-account JSON private_key (the whole PEM block)",
        confidence=0.99,
    ),
    secret_rule(
        "gcp-private-key-id",
        SECRET_TYPE,
        keyed("private_key_id", r"[0-9a-f]{40}"),
        ("private_key_id",),
        "Google Cloud service-account private_key_id",
        confidence=0.9,
    ),
    secret_rule(
        "firebase-cloud-messaging-key",
        API_KEY_TYPE,
        bounded(r"AAAA[A-Za-z0-9_-]{7}:APA91b[A-Za-z0-9_-]{134}", "A-Za-z0-9_-"),
        (":APA91b",),
        "Firebase Cloud Messaging legacy server key",
    ),
)

AZURE_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "azure-storage-account-key",
        SECRET_TYPE,
        keyed(
            r"AccountKey|account[_.-]?key|storage[_.-]?(?:account[_.-]?)?key",
            r"[A-Za-z0-9+/]{86}==",
            "A-Za-z0-9+/=",
        ),
        ("accountkey", "account_key", "account-key", "account.key", "storage"),
        "Azure storage account key (AccountKey= in a connection string, 64 bytes of base64)",
        validator=base64_bytes(64, name="base64_64_bytes"),
    ),
    secret_rule(
        "azure-shared-access-key",
        SECRET_TYPE,
        keyed(
            r"SharedAccessKey|shared[_.-]?access[_.-]?key", r"[A-Za-z0-9+/]{43}=", "A-Za-z0-9+/="
        ),
        ("sharedaccesskey", "shared_access_key", "shared-access-key", "shared.access.key"),
        "Azure Service Bus / Event Hubs / IoT Hub SharedAccessKey (32 bytes of base64)",
        validator=base64_bytes(32, name="base64_32_bytes"),
    ),
    secret_rule(
        "azure-sas-token",
        SECRET_TYPE,
        rf"(?:(?<![A-Za-z0-9_])s[ve]=[^&\s\"'<>]{{1,64}}(?:{_SAS_PARAM}){{0,16}}&sig="
        rf"|(?<![A-Za-z0-9_])sig=(?={_SAS_SIGNATURE}(?:{_SAS_PARAM}){{0,16}}&s[ve]=))"
        rf"(?P<value>{_SAS_SIGNATURE})(?![A-Za-z0-9+/%=])",
        ("sig=",),
        "Azure shared access signature: the sig= of a query that also has sv= or se=",
        validator=sas_signature_ok,
    ),
    secret_rule(
        "azure-ad-client-secret",
        SECRET_TYPE,
        bounded(r"[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}", "A-Za-z0-9_~.-"),
        ("Q~",),
        "Microsoft Entra ID (Azure AD) application client secret",
        confidence=0.9,
    ),
    secret_rule(
        "azure-apim-subscription-key",
        API_KEY_TYPE,
        keyed(r"(?:ocp-apim-)?subscription[_-]?key", r"[0-9a-fA-F]{32}"),
        ("subscription",),
        "Azure API Management / Cognitive Services subscription key",
        confidence=0.9,
    ),
    secret_rule(
        "azure-functions-key",
        SECRET_TYPE,
        keyed(r"x-functions-key", r"[A-Za-z0-9_/+-]{40,100}={0,2}", "A-Za-z0-9_/+=-"),
        ("x-functions-key",),
        "Azure Functions host or function key in an x-functions-key header",
        confidence=0.9,
    ),
)

ALIBABA_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "alibaba-access-key-id",
        API_KEY_TYPE,
        bounded(r"LTAI[A-Za-z0-9]{12,20}"),
        ("LTAI",),
        "Alibaba Cloud AccessKey id",
        confidence=0.9,
    ),
)

CLOUD_RULES: Final[tuple[Rule, ...]] = AWS_RULES + GCP_RULES + AZURE_RULES + ALIBABA_RULES
