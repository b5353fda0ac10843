# SPDX-License-Identifier: Apache-2.0
"""Generate ``benchmarks/corpus/secrets.jsonl``: seeded, synthetic secrets and near misses.

Every rule of the secret catalogue has a factory here that builds a fake credential of the
documented shape (with a valid checksum where the format has one) inside a small snippet
(``DD_API_KEY=...``, ``Authorization: Bearer ...``), and a list of near misses (wrong
checksum, too short, wrong prefix casing, missing context). The corpus embeds those snippets
in prose, config, log and code lines. Nothing here is a real credential: all values come from
a seeded ``random.Random``.

Usage::

    python benchmarks/corpus/generate_secrets.py          # rewrite the corpus
    python benchmarks/corpus/generate_secrets.py --check  # verify it is up to date

Line format: ``{"id", "text", "direction": "request", "expect": {"secret", "api_key"}}``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import string
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

SEED = 20240611
CORPUS = Path(__file__).with_name("secrets.jsonl")

ALNUM = string.ascii_letters + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"
URLSAFE = ALNUM + "_-"
B64 = ALNUM + "+/"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def rand(rng: random.Random, alphabet: str, n: int) -> str:
    """``n`` characters drawn from ``alphabet``."""
    return "".join(rng.choice(alphabet) for _ in range(n))


def alnum_end(rng: random.Random, alphabet: str, n: int) -> str:
    """Like :func:`rand` but the last character is alphanumeric (tokens end cleanly)."""
    return rand(rng, alphabet, n - 1) + rng.choice(ALNUM)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def uuid(rng: random.Random) -> str:
    return "-".join(rand(rng, HEX, n) for n in (8, 4, 4, 4, 12))


def base62(number: int, width: int) -> str:
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = BASE62[rest] + digits
    return digits.rjust(width, "0")


def github_token(rng: random.Random, prefix: str = "ghp") -> str:
    body = rand(rng, ALNUM, 30)
    return f"{prefix}_{body}{base62(zlib.crc32(body.encode()), 6)}"


def grafana_token(rng: random.Random) -> str:
    key = "glsa_" + rand(rng, ALNUM, 32)
    return f"{key}_{zlib.crc32(key.encode()).to_bytes(4, 'little').hex()}"


def pypi_token(rng: random.Random, host: bytes = b"pypi.org") -> str:
    identifier = json.dumps({"version": 1, "nonce": rand(rng, HEX, 32)}).encode()
    macaroon = (
        b"\x02\x01" + bytes([len(host)]) + host + b"\x02" + bytes([len(identifier)]) + identifier
    )
    return "pypi-" + b64url(macaroon + rng.randbytes(40))


def _bech32_polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= generator[i] if (top >> i) & 1 else 0
    return chk


def age_key(rng: random.Random) -> str:
    hrp = "age-secret-key-"
    bits = int.from_bytes(rng.randbytes(32), "big") << 4  # 256 bits padded to 260
    data = [(bits >> (5 * i)) & 31 for i in reversed(range(52))]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    polymod = _bech32_polymod([*expanded, *data, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return (hrp + "1" + "".join(BECH32[d] for d in data + checksum)).upper()


def base58check(payload: bytes) -> str:
    raw = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number = int.from_bytes(raw, "big")
    text = ""
    while number:
        number, rest = divmod(number, 58)
        text = BASE58[rest] + text
    return "1" * (len(raw) - len(raw.lstrip(b"\x00"))) + text


def xprv(rng: random.Random) -> str:
    payload = (
        bytes.fromhex("0488ade4")
        + bytes([rng.randrange(1, 5)])
        + rng.randbytes(8)
        + rng.randbytes(32)
        + b"\x00"
        + rng.randbytes(32)
    )
    return base58check(payload)


def jwt(rng: random.Random) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": rand(rng, LOWER_ALNUM, 10), "iat": rng.randrange(1_600_000_000, 1_800_000_000)}
    return f"{header}.{b64url(json.dumps(claims).encode())}.{rand(rng, URLSAFE, 43)}"


def discord_token(rng: random.Random) -> str:
    snowflake = str(rng.randrange(10**17, 10**18 * 2))
    return f"{b64url(snowflake.encode())}.{rand(rng, URLSAFE, 6)}.{alnum_end(rng, URLSAFE, 38)}"


def flip(token: str, rng: random.Random, start: int) -> str:
    """Change one alphanumeric character at or after ``start``."""
    while True:
        index = rng.randrange(start, len(token))
        if token[index].isalnum():
            replacement = rng.choice([c for c in ALNUM if c != token[index]])
            return token[:index] + replacement + token[index + 1 :]


@dataclass(frozen=True)
class Spec:
    """How to build one rule's samples: ``positive`` returns ``(snippet, finding_text)``."""

    positive: Callable[[random.Random], tuple[str, str]]
    negatives: Callable[[random.Random], list[str]]


def plain(make: Callable[[random.Random], str]) -> Callable[[random.Random], tuple[str, str]]:
    def build(rng: random.Random) -> tuple[str, str]:
        value = make(rng)
        return value, value

    return build


def ctx(
    template: str, make: Callable[[random.Random], str]
) -> Callable[[random.Random], tuple[str, str]]:
    """A snippet where ``{v}`` in ``template`` is the finding."""

    def build(rng: random.Random) -> tuple[str, str]:
        value = make(rng)
        return template.format(v=value), value

    return build


def near(*makers: Callable[[random.Random], str]) -> Callable[[random.Random], list[str]]:
    return lambda rng: [make(rng) for make in makers]


def r_(alphabet: str, n: int, prefix: str = "", suffix: str = "") -> Callable[[random.Random], str]:
    """A maker: ``prefix`` + ``n`` random chars + ``suffix``."""
    return lambda rng: prefix + rand(rng, alphabet, n) + suffix


def lit(text: str) -> Callable[[random.Random], str]:
    return lambda rng: text


def prefixed(prefix: str, alphabet: str, n: int, minimum: int | None = None) -> Spec:
    """A plain prefixed token of ``n`` body chars; near misses: a body 5 chars shorter than
    the format's ``minimum`` (default ``n``), and the prefix in the wrong case."""
    wrong_case = prefix.swapcase() if prefix.swapcase() != prefix else "x" + prefix
    short = max(1, (n if minimum is None else minimum) - 5)
    return Spec(
        plain(r_(alphabet, n, prefix)),
        near(r_(alphabet, short, prefix), r_(alphabet, n, wrong_case)),
    )


def keyed_spec(key: str, alphabet: str, n: int, sep: str = "=") -> Spec:
    """A context-gated value; near misses: the bare value without its key, and the key with a
    template reference instead of a value."""
    return Spec(
        ctx(f"{key}{sep}{{v}}", r_(alphabet, n)),
        near(r_(alphabet, n, "value "), lit(f"{key}{sep}${{{key.upper().replace('-', '_')}}}")),
    )


def _azure_sas(rng: random.Random) -> str:
    return quote(b64(rng.randbytes(32)), safe="")


def _sntrys(rng: random.Random) -> str:
    claims = {
        "iat": rng.randrange(1_690_000_000, 1_700_000_000),
        "url": "https://sentry.io",
        "region_url": "https://us.sentry.io",
        "org": rand(rng, LOWER_ALNUM, 8),
    }
    return f"sntrys_{b64(json.dumps(claims).encode()).rstrip('=')}_{rand(rng, ALNUM, 43)}"


def _b64_json(prefix: str, payload: dict[str, object], url: bool = False) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return prefix + (b64url(raw) if url else b64(raw).rstrip("="))


def _glc(rng: random.Random) -> str:
    return _b64_json(
        "glc_",
        {
            "o": str(rng.randrange(10**5, 10**6)),
            "n": "stack-deploy",
            "k": rand(rng, ALNUM, 24),
            "m": {"r": "prod-us-east-0"},
        },
    )


def _grafana_legacy(rng: random.Random) -> str:
    return _b64_json("", {"k": rand(rng, ALNUM, 32), "n": "deploy", "id": rng.randrange(1, 99)})


def _ops(rng: random.Random) -> str:
    return _b64_json(
        "ops_",
        {
            "signInAddress": "my.1password.com",
            "email": f"{rand(rng, LOWER_ALNUM, 10)}@1passwordserviceaccounts.com",
            "srpX": rand(rng, HEX, 64),
            "deviceUuid": rand(rng, LOWER_ALNUM, 26),
        },
        url=True,
    )


def _bedrock(rng: random.Random) -> str:
    account = rand(rng, "0123456789", 12)
    return "ABSK" + b64(
        f"BedrockAPIKey-{rand(rng, LOWER_ALNUM, 4)}-at-{account}:".encode() + rng.randbytes(30)
    )


def _bedrock_short(rng: random.Random) -> str:
    url = (
        "bedrock.amazonaws.com/?Action=CallWithBearerToken&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential=ASIA{rand(rng, UPPER_ALNUM, 16)}&X-Amz-Signature={rand(rng, HEX, 64)}"
    )
    return "bedrock-api-key-" + b64(url.encode())


def _session_token(rng: random.Random) -> str:
    return "IQoJb3JpZ2luX2Vj" + rand(rng, B64, 300)


def _pem(rng: random.Random, kind: str = "RSA ") -> str:
    lines = "\n".join(rand(rng, B64, 64) for _ in range(6))
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{lines}\n-----END {kind}PRIVATE KEY-----"


def _gcp_key(rng: random.Random) -> str:
    body = "\\n".join(rand(rng, B64, 64) for _ in range(4))
    return f"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----"


def _putty(rng: random.Random) -> str:
    public = "\n".join(rand(rng, B64, 64) for _ in range(2))
    private = "\n".join(rand(rng, B64, 64) for _ in range(3))
    return (
        f"PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy@build\n"
        f"Public-Lines: 2\n{public}\nPrivate-Lines: 3\n{private}\n"
        f"Private-MAC: {rand(rng, HEX, 64)}"
    )


def _pgp(rng: random.Random) -> str:
    lines = "\n".join(rand(rng, B64, 64) for _ in range(5))
    return (
        f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{lines}\n=abcd\n"
        "-----END PGP PRIVATE KEY BLOCK-----"
    )


def _basic(rng: random.Random) -> str:
    return "Basic " + b64(f"{rand(rng, LOWER_ALNUM, 6)}:{rand(rng, ALNUM, 14)}".encode())


def _docker_auth(rng: random.Random) -> str:
    return b64(f"{rand(rng, LOWER_ALNUM, 7)}:{rand(rng, ALNUM, 16)}".encode())


def _password(rng: random.Random) -> str:
    return rand(rng, ALNUM, 10) + rng.choice("!#%^*") + rand(rng, ALNUM, 3)


def _url_password(rng: random.Random) -> str:
    return rand(rng, ALNUM, 10) + rng.choice("!*-_.~") + rand(rng, ALNUM, 3)


def _db(scheme: str, host: str) -> Spec:
    return Spec(
        ctx(f"{scheme}://app_user:{{v}}@{host}", _url_password),
        near(
            lit(f"{scheme}://{host}/app"),
            lit(f"{scheme}://app_user:${{DB_PASSWORD}}@{host}"),
            lit(f"{scheme}://app_user@{host}"),
        ),
    )


SPECS: dict[str, Spec] = {
    # Source hosting.
    "github-token": Spec(
        plain(github_token),
        lambda rng: [
            flip(github_token(rng), rng, 4),
            "ghp_short",
            "ghp_" + rand(rng, ALNUM, 36),
            github_token(rng, "ghx"),
        ],
    ),
    "github-fine-grained-pat": Spec(
        plain(lambda rng: f"github_pat_{rand(rng, ALNUM, 22)}_{rand(rng, ALNUM, 59)}"),
        near(
            lambda rng: f"github_pat_{rand(rng, ALNUM, 22)}_{rand(rng, ALNUM, 40)}",
            lambda rng: f"GITHUB_PAT_{rand(rng, ALNUM, 22)}_{rand(rng, ALNUM, 59)}",
        ),
    ),
    "gitlab-pat": prefixed("glpat-", ALNUM, 20),
    "gitlab-pipeline-trigger-token": prefixed("glptt-", HEX, 40),
    "gitlab-runner-token": prefixed("glrt-", ALNUM, 20),
    "gitlab-deploy-token": prefixed("gldt-", ALNUM, 20),
    "gitlab-feed-token": prefixed("glft-", ALNUM, 20),
    "gitlab-oauth-secret": prefixed("gloas-", ALNUM, 64),
    "gitlab-scim-token": prefixed("glsoat-", ALNUM, 20),
    "gitlab-ci-job-token": Spec(
        plain(lambda rng: f"glcbt-{rand(rng, ALNUM, 2)}_{rand(rng, ALNUM, 20)}"),
        near(
            lambda rng: f"glcbt-{rand(rng, ALNUM, 2)}_{rand(rng, ALNUM, 12)}",
            lambda rng: f"GLCBT-{rand(rng, ALNUM, 2)}_{rand(rng, ALNUM, 20)}",
        ),
    ),
    "gitlab-incoming-email-token": prefixed("glimt-", ALNUM, 25),
    "gitlab-agent-token": prefixed("glagent-", ALNUM, 50),
    "gitlab-feature-flags-token": prefixed("glffct-", ALNUM, 20),
    "bitbucket-app-password": prefixed("ATBB", ALNUM, 32),
    "bitbucket-access-token": prefixed("ATCTT3xFfGN0", ALNUM, 120, 80),
    # Cloud.
    "aws-access-key-id": Spec(
        plain(r_(UPPER_ALNUM, 16, "AKIA")), near(lit("AKIA1234"), r_(UPPER_ALNUM, 16, "akia"))
    ),
    "aws-secret-access-key": Spec(
        ctx("aws_secret_access_key = {v}", r_(ALNUM, 40)),
        near(r_(ALNUM, 40, "value "), lit("aws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}")),
    ),
    "aws-session-token": Spec(
        plain(_session_token),
        near(r_(B64, 300, "IQoJb3JpZ2luX2Vi"), r_(B64, 40, "IQoJb3JpZ2luX2Vj")),
    ),
    "aws-mws-auth-token": Spec(
        plain(lambda rng: "amzn.mws." + uuid(rng)), near(lambda rng: "amzn.mws." + uuid(rng)[:20])
    ),
    "aws-bedrock-api-key": Spec(
        plain(_bedrock),
        near(
            lambda rng: "ABSK" + b64(b"BedrockAPIKey" + rng.randbytes(40)).replace("=", ""),
            r_(B64, 60, "ABSK"),
        ),
    ),
    "aws-bedrock-short-term-key": Spec(
        plain(_bedrock_short), near(r_(B64, 10, "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t"))
    ),
    "google-api-key": Spec(
        plain(r_(URLSAFE[:-2] + "A", 35, "AIza")), near(lit("AIzaShort"), r_(ALNUM, 35, "AIZA"))
    ),
    "google-oauth-client-secret": Spec(
        plain(r_(ALNUM, 28, "GOCSPX-")), near(lit("GOCSPX-tooShortBody"), r_(ALNUM, 28, "gocspx-"))
    ),
    "google-oauth-access-token": prefixed("ya29.", ALNUM, 120, 30),
    "google-oauth-refresh-token": Spec(
        plain(r_(ALNUM, 60, "1//0")), near(r_(ALNUM, 20, "1//0"), r_(ALNUM, 60, "2//0"))
    ),
    "gcp-service-account-key": Spec(
        ctx('{{"type": "service_account", "private_key": "{v}"}}', _gcp_key),
        near(lit('{"private_key": "${GCP_PRIVATE_KEY}"}')),
    ),
    "gcp-private-key-id": Spec(
        ctx('"private_key_id": "{v}"', r_(HEX, 40)),
        near(r_(HEX, 40, '"key_id": "'), r_(HEX, 20, '"private_key_id": "')),
    ),
    "firebase-cloud-messaging-key": Spec(
        plain(lambda rng: f"AAAA{rand(rng, ALNUM, 7)}:APA91b{rand(rng, ALNUM, 134)}"),
        near(lambda rng: f"AAAA{rand(rng, ALNUM, 7)}:APA91b{rand(rng, ALNUM, 60)}"),
    ),
    "azure-storage-account-key": Spec(
        ctx(
            "DefaultEndpointsProtocol=https;AccountName=acmedata;AccountKey={v};"
            "EndpointSuffix=core.windows.net",
            lambda rng: b64(rng.randbytes(64)),
        ),
        near(
            lambda rng: "AccountName=" + rand(rng, LOWER_ALNUM, 12),
            lit("AccountKey=${STORAGE_ACCOUNT_KEY}"),
        ),
    ),
    "azure-shared-access-key": Spec(
        ctx(
            "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=RootManage;"
            "SharedAccessKey={v}",
            lambda rng: b64(rng.randbytes(32)),
        ),
        near(
            lambda rng: "SharedAccessKeyName=" + b64(rng.randbytes(32)),
            lit("SharedAccessKey=<shared-access-key>"),
        ),
    ),
    "azure-sas-token": Spec(
        ctx(
            "https://acme.blob.core.windows.net/c/report.csv?sv=2022-11-02&ss=b&srt=co&sp=r"
            "&se=2025-01-01T00:00:00Z&spr=https&sig={v}",
            _azure_sas,
        ),
        near(
            lambda rng: "https://example.com/a?sig=" + _azure_sas(rng),
            lambda rng: "https://x.blob.core.windows.net/c?sv=2022-11-02&sig=" + rand(rng, HEX, 20),
        ),
    ),
    "azure-ad-client-secret": Spec(
        plain(
            lambda rng: (
                rand(rng, ALNUM, 3)
                + str(rng.randrange(10))
                + "Q~"
                + alnum_end(rng, ALNUM + "_~.-", 34)
            )
        ),
        near(
            lambda rng: rand(rng, ALNUM, 3) + "xQ~" + rand(rng, ALNUM, 34),
            lambda rng: rand(rng, ALNUM, 3) + "8Q~" + rand(rng, ALNUM, 20),
        ),
    ),
    "azure-apim-subscription-key": keyed_spec("Ocp-Apim-Subscription-Key", HEX, 32, ": "),
    "azure-functions-key": keyed_spec("x-functions-key", ALNUM, 56, ": "),
    "alibaba-access-key-id": prefixed("LTAI", ALNUM, 20, 12),
    # Infrastructure.
    "digitalocean-pat": prefixed("dop_v1_", HEX, 64),
    "digitalocean-oauth-token": prefixed("doo_v1_", HEX, 64),
    "digitalocean-refresh-token": prefixed("dor_v1_", HEX, 64),
    "heroku-api-key": prefixed("HRKU-", ALNUM, 60, 20),
    "heroku-api-key-legacy": Spec(
        ctx("HEROKU_API_KEY={v}", uuid), near(lambda rng: "request id " + uuid(rng))
    ),
    "cloudflare-api-token": keyed_spec("CLOUDFLARE_API_TOKEN", ALNUM, 40),
    "cloudflare-global-api-key": keyed_spec("CF_API_KEY", HEX, 37),
    "cloudflare-origin-ca-key": Spec(
        plain(lambda rng: f"v1.0-{rand(rng, HEX, 24)}-{rand(rng, HEX, 146)}"),
        near(lambda rng: f"v1.0-{rand(rng, HEX, 24)}-{rand(rng, HEX, 40)}"),
    ),
    "vault-service-token": prefixed("hvs.", ALNUM, 90, 24),
    "vault-batch-token": prefixed("hvb.", ALNUM, 138, 24),
    "terraform-cloud-token": Spec(
        plain(lambda rng: f"{rand(rng, ALNUM, 14)}.atlasv1.{rand(rng, ALNUM, 67)}"),
        near(
            lambda rng: f"{rand(rng, ALNUM, 14)}.atlasv2.{rand(rng, ALNUM, 67)}",
            lambda rng: f"{rand(rng, ALNUM, 14)}.atlasv1.{rand(rng, ALNUM, 20)}",
        ),
    ),
    "pulumi-access-token": prefixed("pul-", HEX, 40),
    "doppler-token": prefixed("dp.pt.", ALNUM, 43),
    "fly-io-token": prefixed("fo1_", ALNUM, 43),
    "netlify-pat": prefixed("nfp_", ALNUM, 36),
    "supabase-pat": prefixed("sbp_", HEX, 40),
    "supabase-secret-key": prefixed("sb_secret_", ALNUM, 31, 20),
    "planetscale-token": prefixed("pscale_tkn_", ALNUM, 43, 32),
    "render-api-key": prefixed("rnd_", ALNUM, 32),
    "tailscale-key": Spec(
        plain(lambda rng: f"tskey-auth-{rand(rng, ALNUM, 12)}-{rand(rng, ALNUM, 32)}"),
        near(
            lambda rng: f"tskey-test-{rand(rng, ALNUM, 12)}-{rand(rng, ALNUM, 32)}",
            lambda rng: f"tskey-auth-{rand(rng, ALNUM, 12)}",
        ),
    ),
    "onepassword-service-account-token": Spec(plain(_ops), near(r_(ALNUM, 160, "ops_eyJ"))),
    "onepassword-secret-key": Spec(
        plain(lambda rng: "A3-" + "-".join(rand(rng, UPPER_ALNUM, n) for n in (6, 6, 5, 5, 5, 5))),
        near(lambda rng: "A3-" + "-".join(rand(rng, UPPER_ALNUM, n) for n in (6, 6, 5))),
    ),
    "atlassian-api-token": prefixed("ATATT3", ALNUM, 186, 150),
    "okta-api-token": Spec(
        ctx("Authorization: SSWS {v}", r_(ALNUM, 40, "00")),
        near(r_(ALNUM, 40, "SSWS 01"), r_(ALNUM, 20, "SSWS 00")),
    ),
    "databricks-token": prefixed("dapi", HEX, 32),
    # SaaS.
    "linear-api-key": prefixed("lin_api_", ALNUM, 40),
    "notion-token": Spec(
        plain(lambda rng: "ntn_" + rand(rng, "0123456789", 11) + rand(rng, ALNUM, 35)),
        near(r_(ALNUM, 30, "ntn_"), r_(ALNUM, 43, "SECRET_")),
    ),
    "airtable-pat": Spec(
        plain(lambda rng: f"pat{rand(rng, ALNUM, 14)}.{rand(rng, HEX, 64)}"),
        near(lambda rng: f"pat{rand(rng, ALNUM, 14)}.{rand(rng, HEX, 30)}"),
    ),
    "figma-pat": prefixed("figd_", ALNUM, 40),
    "postman-api-key": Spec(
        plain(lambda rng: f"PMAK-{rand(rng, HEX, 24)}-{rand(rng, HEX, 34)}"),
        near(lambda rng: f"PMAK-{rand(rng, HEX, 24)}-{rand(rng, HEX, 10)}"),
    ),
    "sonarqube-token": prefixed("squ_", HEX, 40),
    "circleci-pat": Spec(
        plain(lambda rng: f"CCIPAT_{rand(rng, ALNUM, 22)}_{rand(rng, HEX, 40)}"),
        near(lambda rng: f"CCIPAT_{rand(rng, ALNUM, 22)}_{rand(rng, HEX, 12)}"),
    ),
    "buildkite-token": prefixed("bkua_", HEX, 40),
    "contentful-pat": prefixed("CFPAT-", ALNUM, 43),
    "dropbox-token": prefixed("sl.", ALNUM, 140, 130),
    "mapbox-secret-token": Spec(
        plain(
            lambda rng: (
                "sk.eyJ1Ijoi"
                + b64url(f'{rand(rng, LOWER_ALNUM, 8)}","a":"x"}}'.encode())
                + "."
                + rand(rng, ALNUM, 22)
            )
        ),
        near(lambda rng: "pk.eyJ1Ijoi" + rand(rng, ALNUM, 30) + "." + rand(rng, ALNUM, 22)),
    ),
    "hubspot-private-app-token": Spec(
        plain(lambda rng: "pat-na1-" + uuid(rng)), near(lambda rng: "pat-xx1-" + uuid(rng))
    ),
    "twitter-bearer-token": Spec(
        plain(r_(ALNUM + "%", 80, "A" * 22 + "MLhe")), near(r_(ALNUM, 80, "A" * 10 + "MLhe"))
    ),
    "facebook-access-token": Spec(plain(r_(ALNUM, 150, "EAAB")), near(r_(ALNUM, 40, "EAAB"))),
    # Payments.
    "stripe-secret-key": Spec(
        plain(r_(ALNUM, 24, "sk_live_")), near(lit("sk_live_short"), r_(ALNUM, 24, "SK_LIVE_"))
    ),
    "stripe-restricted-key": prefixed("rk_live_", ALNUM, 24, 12),
    "stripe-webhook-secret": prefixed("whsec_", ALNUM, 32),
    "square-access-token": prefixed("EAAA", ALNUM, 60),
    "square-oauth-secret": prefixed("sq0csp-", ALNUM, 43),
    "braintree-access-token": Spec(
        plain(
            lambda rng: f"access_token$production${rand(rng, LOWER_ALNUM, 16)}${rand(rng, HEX, 32)}"
        ),
        near(lambda rng: f"access_token$staging${rand(rng, LOWER_ALNUM, 16)}${rand(rng, HEX, 32)}"),
    ),
    "plaid-access-token": Spec(
        plain(lambda rng: "access-production-" + uuid(rng)),
        near(lambda rng: "access-preview-" + uuid(rng)),
    ),
    "flutterwave-secret-key": Spec(
        plain(lambda rng: f"FLWSECK-{rand(rng, HEX, 32)}-X"),
        near(lambda rng: f"FLWPUBK-{rand(rng, HEX, 32)}-X"),
    ),
    "shopify-access-token": prefixed("shpat_", HEX, 32),
    "shopify-custom-app-token": prefixed("shpca_", HEX, 32),
    "shopify-private-app-token": prefixed("shppa_", HEX, 32),
    "shopify-shared-secret": prefixed("shpss_", HEX, 32),
    # Messaging.
    "slack-token": Spec(
        plain(lambda rng: f"xoxb-{rand(rng, '0123456789', 12)}-{rand(rng, ALNUM, 24)}"),
        near(lit("xoxb-short"), r_(ALNUM, 20, "xoxe-")),
    ),
    "slack-config-token": Spec(
        plain(r_(ALNUM, 160, "xoxe.xoxp-1-")), near(r_(ALNUM, 24, "xoxe-1-"))
    ),
    "slack-app-token": Spec(
        plain(
            lambda rng: (
                f"xapp-1-A{rand(rng, UPPER_ALNUM, 10)}-{rand(rng, '0123456789', 13)}-"
                + rand(rng, HEX, 64)
            )
        ),
        near(lambda rng: f"xapp-1-{rand(rng, HEX, 20)}"),
    ),
    "slack-webhook-url": Spec(
        plain(
            lambda rng: (
                f"https://hooks.slack.com/services/T{rand(rng, UPPER_ALNUM, 8)}/"
                f"B{rand(rng, UPPER_ALNUM, 10)}/{rand(rng, ALNUM, 24)}"
            )
        ),
        near(lit("https://hooks.slack.com/services/"), lit("https://api.slack.com/apps")),
    ),
    "discord-bot-token": Spec(
        ctx("Authorization: Bot {v}", discord_token),
        near(
            lambda rng: (
                "Bot "
                + flip(discord_token(rng), rng, 0)[:3]
                + "x" * 20
                + "."
                + rand(rng, ALNUM, 6)
                + "."
                + rand(rng, ALNUM, 30)
            )
        ),
    ),
    "discord-webhook-url": Spec(
        plain(
            lambda rng: (
                f"https://discord.com/api/webhooks/{rand(rng, '0123456789', 18)}/"
                f"{rand(rng, ALNUM, 68)}"
            )
        ),
        near(lambda rng: f"https://discord.com/api/webhooks/{rand(rng, '0123456789', 18)}"),
    ),
    "telegram-bot-token": Spec(
        plain(lambda rng: f"{rand(rng, '0123456789', 10)}:AA{alnum_end(rng, URLSAFE, 33)}"),
        near(
            lambda rng: f"{rand(rng, '0123456789', 10)}:BB{rand(rng, ALNUM, 33)}",
            lambda rng: f"{rand(rng, '0123456789', 10)}:AA{rand(rng, ALNUM, 20)}",
        ),
    ),
    "teams-webhook-url": Spec(
        plain(
            lambda rng: (
                f"https://acme.webhook.office.com/webhookb2/{uuid(rng)}@{uuid(rng)}"
                f"/IncomingWebhook/{rand(rng, HEX, 32)}/{uuid(rng)}"
            )
        ),
        near(lit("https://acme.webhook.office.com/webhookb2/")),
    ),
    "google-chat-webhook": Spec(
        plain(
            lambda rng: (
                f"https://chat.googleapis.com/v1/spaces/{rand(rng, ALNUM, 11)}/messages"
                f"?key={rand(rng, ALNUM, 20)}&token={rand(rng, ALNUM, 43)}"
            )
        ),
        near(lambda rng: f"https://chat.googleapis.com/v1/spaces/{rand(rng, ALNUM, 11)}/messages"),
    ),
    "zapier-webhook-url": Spec(
        plain(
            lambda rng: (
                f"https://hooks.zapier.com/hooks/catch/{rand(rng, '0123456789', 7)}/"
                f"{rand(rng, LOWER_ALNUM, 6)}/"
            )
        ),
        near(lit("https://hooks.zapier.com/hooks/")),
    ),
    "twilio-sid": Spec(
        plain(r_(HEX, 32, "AC")), near(r_("ghijklmnopqrstuvwxyz", 32, "AC"), r_(HEX, 20, "AC"))
    ),
    "twilio-auth-token": keyed_spec("TWILIO_AUTH_TOKEN", HEX, 32),
    "sendgrid-api-key": Spec(
        plain(lambda rng: f"SG.{rand(rng, URLSAFE, 22)}.{alnum_end(rng, URLSAFE, 43)}"),
        near(lambda rng: f"SG.{rand(rng, ALNUM, 22)}.SHORT"),
    ),
    "mailgun-api-key": prefixed("key-", HEX, 32),
    "mailchimp-api-key": Spec(
        plain(lambda rng: f"{rand(rng, HEX, 32)}-us{rng.randrange(1, 21)}"),
        near(lambda rng: f"{rand(rng, HEX, 32)}-eu1", r_(HEX, 32)),
    ),
    "brevo-api-key": Spec(
        plain(lambda rng: f"xkeysib-{rand(rng, HEX, 64)}-{rand(rng, ALNUM, 16)}"),
        near(lambda rng: f"xkeysib-{rand(rng, HEX, 64)}"),
    ),
    "mailersend-api-key": prefixed("mlsn.", HEX, 64),
    "resend-api-key": Spec(
        plain(lambda rng: f"re_{rand(rng, ALNUM, 8)}_{rand(rng, ALNUM, 24)}"),
        near(lambda rng: f"re_{rand(rng, ALNUM, 8)}_{rand(rng, ALNUM, 10)}"),
    ),
    # LLM and ML providers.
    "anthropic-admin-key": Spec(
        plain(lambda rng: f"sk-ant-admin01-{rand(rng, URLSAFE, 93)}AA"),
        near(r_(ALNUM, 7, "sk-ant-admin01-")),
    ),
    "anthropic-api-key": Spec(
        plain(lambda rng: f"sk-ant-api03-{rand(rng, URLSAFE, 93)}AA"),
        near(lit("sk-ant-tiny"), r_(ALNUM, 30, "SK-ANT-")),
    ),
    "openai-project-key": Spec(
        plain(lambda rng: f"sk-proj-{rand(rng, URLSAFE, 74)}T3BlbkFJ{alnum_end(rng, URLSAFE, 74)}"),
        near(lambda rng: f"sk-proj-{rand(rng, URLSAFE, 10)}"),
    ),
    "openai-service-account-key": Spec(
        plain(
            lambda rng: f"sk-svcacct-{rand(rng, URLSAFE, 74)}T3BlbkFJ{alnum_end(rng, URLSAFE, 74)}"
        ),
        near(lambda rng: f"SK-SVCACCT-{rand(rng, ALNUM, 74)}T3BlbkFJ"),
    ),
    "openai-admin-key": Spec(
        plain(
            lambda rng: f"sk-admin-{rand(rng, URLSAFE, 60)}T3BlbkFJ{alnum_end(rng, URLSAFE, 60)}"
        ),
        near(lambda rng: f"sk-admin-{rand(rng, ALNUM, 10)}"),
    ),
    "openrouter-api-key": prefixed("sk-or-v1-", HEX, 64, 13),
    "openai-api-key": Spec(
        plain(r_(ALNUM, 48, "sk-")), near(lit("sk-tooShort"), r_(ALNUM, 48, "SK-"))
    ),
    "openai-like-key": Spec(
        plain(r_(ALNUM, 48, "sk_")), near(r_(ALNUM, 10, "sk_"), r_(ALNUM, 48, "xk_"))
    ),
    "huggingface-token": prefixed("hf_", string.ascii_letters, 34),
    "huggingface-org-token": prefixed("api_org_", string.ascii_letters, 34),
    "groq-api-key": prefixed("gsk_", ALNUM, 52),
    "replicate-api-token": prefixed("r8_", ALNUM, 37),
    "perplexity-api-key": prefixed("pplx-", ALNUM, 48),
    "xai-api-key": prefixed("xai-", ALNUM, 80),
    "together-api-key": prefixed("tgp_v1_", ALNUM, 43),
    "langsmith-api-key": Spec(
        plain(lambda rng: f"lsv2_pt_{rand(rng, HEX, 32)}_{rand(rng, HEX, 10)}"),
        near(lambda rng: f"lsv2_pt_{rand(rng, HEX, 32)}"),
    ),
    "pinecone-api-key": Spec(
        plain(lambda rng: f"pcsk_{rand(rng, ALNUM, 5)}_{rand(rng, ALNUM, 64)}"),
        near(lambda rng: f"pcsk_{rand(rng, ALNUM, 5)}_{rand(rng, ALNUM, 20)}"),
    ),
    "nvidia-api-key": prefixed("nvapi-", ALNUM, 64),
    "cohere-api-key": keyed_spec("COHERE_API_KEY", ALNUM, 40),
    "mistral-api-key": keyed_spec("MISTRAL_API_KEY", ALNUM, 32),
    "wandb-api-key": keyed_spec("WANDB_API_KEY", HEX, 40),
    # Package registries.
    "npm-token": Spec(plain(r_(ALNUM, 36, "npm_")), near(lit("npm_short"), r_(ALNUM, 36, "NPM_"))),
    "npmrc-auth-token": Spec(
        ctx("//registry.example.com/:_authToken={v}", lambda rng: uuid(rng)),
        near(lit("//registry.example.com/:_authToken=${NPM_TOKEN}")),
    ),
    "pypi-token": Spec(
        plain(pypi_token),
        lambda rng: ["pypi-AgE" + rand(rng, URLSAFE, 60), "pypi-" + rand(rng, URLSAFE, 80)],
    ),
    "rubygems-api-key": prefixed("rubygems_", HEX, 48),
    "nuget-api-key": prefixed("oy2", LOWER_ALNUM, 43),
    "dockerhub-token": prefixed("dckr_pat_", ALNUM, 27),
    "jfrog-api-key": prefixed("AKCp", ALNUM, 69),
    "jfrog-reference-token": prefixed("cmVmdGtuOjAxOj", ALNUM, 50),
    "clojars-token": prefixed("CLOJARS_", LOWER_ALNUM, 60),
    "crates-io-token": prefixed("cio", ALNUM, 32),
    "docker-config-auth": Spec(
        ctx('{{"auths": {{"registry.example.com": {{"auth": "{v}"}}}}}}', _docker_auth),
        near(lambda rng: '{"auth": "' + b64(rand(rng, ALNUM, 20).encode()) + '"}'),
    ),
    # Observability.
    "datadog-api-key": keyed_spec("DD_API_KEY", HEX, 32),
    "datadog-app-key": keyed_spec("DD_APP_KEY", HEX, 40),
    "newrelic-user-api-key": prefixed("NRAK-", UPPER_ALNUM, 27),
    "newrelic-admin-key": prefixed("NRAA-", HEX, 27),
    "newrelic-insert-key": prefixed("NRII-", ALNUM, 32),
    "newrelic-query-key": prefixed("NRIQ-", ALNUM, 32),
    "newrelic-browser-key": prefixed("NRJS-", HEX, 19),
    "newrelic-license-key": Spec(plain(r_(HEX, 36, "", "NRAL")), near(r_(HEX, 20, "", "NRAL"))),
    "sentry-dsn": Spec(
        plain(
            lambda rng: (
                f"https://{rand(rng, HEX, 32)}@o{rand(rng, '0123456789', 6)}"
                f".ingest.sentry.io/{rand(rng, '0123456789', 7)}"
            )
        ),
        near(lambda rng: f"https://{rand(rng, HEX, 20)}@o1.ingest.sentry.io/1"),
    ),
    "sentry-org-token": Spec(plain(_sntrys), near(r_(ALNUM, 90, "sntrys_eyJ", "_short"))),
    "sentry-user-token": prefixed("sntryu_", HEX, 64),
    "grafana-service-account-token": Spec(
        plain(grafana_token),
        lambda rng: [
            flip(grafana_token(rng), rng, 5),
            "glsa_" + rand(rng, ALNUM, 32) + "_" + rand(rng, HEX, 8),
        ],
    ),
    "grafana-cloud-token": Spec(plain(_glc), near(r_(ALNUM, 80, "glc_eyJ"))),
    "grafana-api-key": Spec(plain(_grafana_legacy), near(r_(ALNUM, 60, "eyJrIjoi"))),
    "dynatrace-token": Spec(
        plain(lambda rng: f"dt0c01.{rand(rng, UPPER_ALNUM, 24)}.{rand(rng, UPPER_ALNUM, 64)}"),
        near(lambda rng: f"dt0c01.{rand(rng, UPPER_ALNUM, 24)}.{rand(rng, UPPER_ALNUM, 30)}"),
    ),
    "splunk-hec-token": Spec(
        ctx("Authorization: Splunk {v}", uuid),
        near(lambda rng: "Authorization: Splunk " + uuid(rng)[:23]),
    ),
    "posthog-personal-api-key": prefixed("phx_", ALNUM, 43),
    # Private key material.
    "private-key-block": Spec(
        plain(_pem), near(lit("Keep the private key in a vault, never in git."))
    ),
    "pem-private-key": Spec(
        ctx(
            "{v}\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC (truncated)", lit("-----BEGIN PRIVATE KEY-----")
        ),
        near(lit("-----BEGIN PUBLIC KEY-----"), lit("paste your private key here")),
    ),
    "putty-private-key": Spec(plain(_putty), near(lit("Convert the key with PuTTYgen first."))),
    "pgp-private-key-block": Spec(plain(_pgp), near(lit("-----BEGIN PGP PUBLIC KEY BLOCK-----"))),
    "age-secret-key": Spec(
        plain(age_key),
        lambda rng: [
            flip(age_key(rng), rng, 16).upper(),
            "AGE-SECRET-KEY-1" + rand(rng, BECH32.upper(), 58),
        ],
    ),
    "bip32-extended-private-key": Spec(
        plain(xprv), lambda rng: [flip(xprv(rng), rng, 4), "xprv" + rand(rng, BASE58, 107)]
    ),
    # Headers and tokens.
    "jwt": Spec(
        plain(jwt),
        near(
            lambda rng: (
                "eyJ"
                + rand(rng, ALNUM, 20)
                + "."
                + rand(rng, ALNUM, 20)
                + "."
                + rand(rng, ALNUM, 20)
            ),
            lit("abc.def.ghi"),
        ),
    ),
    "bearer-token": Spec(
        ctx("Authorization: {v}", r_(ALNUM, 40, "Bearer ")),
        near(
            lit("Authorization: Bearer <token>"),
            lit("Bearer YOUR_ACCESS_TOKEN"),
            lit("the bearer of this letter is a friend"),
        ),
    ),
    "http-basic-auth": Spec(
        ctx("Authorization: {v}", _basic),
        near(lit("Basic information about the service"), lit("Basic dXNlcm5hbWU=")),
    ),
    # URLs with passwords.
    "postgres-url-password": _db("postgresql", "db.internal:5432/app"),
    "mysql-url-password": _db("mysql", "mysql.internal:3306/shop"),
    "mongodb-url-password": _db("mongodb+srv", "cluster0.example.mongodb.net/app"),
    "redis-url-password": _db("rediss", "cache.internal:6380/0"),
    "amqp-url-password": _db("amqps", "mq.internal:5671/vhost"),
    "mssql-url-password": _db("mssql+pyodbc", "sql.internal:1433/crm"),
    "snowflake-url-password": _db("snowflake", "acme-xy12345/analytics"),
    "url-embedded-credentials": _db("https", "git.example.com/org/repo.git"),
    # Assignments.
    "assignment-secret": Spec(
        ctx("my_api_key: {v}", r_(ALNUM, 24)),
        near(
            lit("token_count=123456789012"),
            lit("api_key=${OPENAI_API_KEY}"),
            lit('eos_token: "<|endoftext|>"'),
            lit("next_page_token: CiAKGjBpNDd2Nmp2Zml2cXRwYjBp"),
        ),
    ),
    "assignment-password": Spec(
        ctx("db_password={v}", _password),
        near(
            lit('password = os.environ["DB_PASSWORD"]'),
            lit("password: ********"),
            lit('"password": ""'),
            lit("password_policy: strict-mode-enabled"),
        ),
    ),
    "xml-secret-element": Spec(
        ctx("<server><id>central</id><password>{v}</password></server>", _password),
        near(lit("<password></password>"), lit("<passwordPolicy>strong</passwordPolicy>")),
    ),
    "cli-secret-flag": Spec(
        ctx("mysql --host db --password {v} shop", _password),
        near(lit("deploy --token $DEPLOY_TOKEN"), lit("login --password-stdin")),
    ),
}

#: Near misses that belong to no single rule: hashes, ids, blobs, versions, prose.
GENERIC_NEGATIVES: tuple[Callable[[random.Random], str], ...] = (
    lambda rng: "request " + uuid(rng) + " finished",
    lambda rng: "commit " + rand(rng, HEX, 40),
    lambda rng: "sha256:" + rand(rng, HEX, 64),
    lambda rng: "md5 " + rand(rng, HEX, 32),
    lambda rng: "blob " + b64(rng.randbytes(90)),
    lambda rng: "release v" + ".".join(str(rng.randrange(20)) for _ in range(3)) + "-rc.1",
    lambda rng: "image registry.example.com/app@sha256:" + rand(rng, HEX, 64),
    lambda rng: "The private key never leaves the hardware module.",
    lambda rng: "Rotate the api key and the bearer token every 90 days; passwords too.",
    lambda rng: "max_tokens: 4096, prompt_tokens: 1200, token_type: bearer",
    lambda rng: "[TOKEN:tok_email_" + rand(rng, HEX, 16) + "] and [REDACTED:secret]",
    lambda rng: "postgres://localhost:5432/app",
    lambda rng: "is_secret: false, has_password: true",
    lambda rng: "version 1.2.3.4 build " + rand(rng, "0123456789", 12),
)

TEMPLATES: tuple[str, ...] = (
    "I pasted {s} into the settings page and the call still fails.",
    "config:\n  upstream: {s}\n  region: eu-west-1\n",
    "2024-05-01T10:00:00Z INFO loaded {s} for the upstream",
    "Can you check this line for me?\n{s}\nThanks!",
    '{{"note": "rotate {s} tomorrow"}}',
)


def embed(snippet: str, rng: random.Random) -> tuple[str, int]:
    """Place ``snippet`` in a random template; return the text and the snippet's offset."""
    choices = [t for t in TEMPLATES if '"' not in snippet or '"' not in t]
    template = rng.choice(choices)
    text = template.format(s=snippet)
    return text, template.index("{s}") - template[: template.index("{s}")].count("{{")


def rule_types() -> dict[str, str]:
    """Rule id -> detection type, from the catalogue."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from haechi.detect.catalog_secrets import SECRET_RULES

    return {rule.id: rule.type for rule in SECRET_RULES}


def _expect(kind: str | None) -> dict[str, bool]:
    return {"secret": kind == "secret", "api_key": kind == "api_key"}


def build_corpus(seed: int = SEED, per_rule: int = 2) -> list[dict[str, object]]:
    """Every corpus line, deterministic for ``seed``."""
    rng = random.Random(seed)
    types = rule_types()
    lines: list[dict[str, object]] = []
    for rule_id in sorted(SPECS):
        spec = SPECS[rule_id]
        for n in range(per_rule):
            snippet, _ = spec.positive(rng)
            text, _ = embed(snippet, rng)
            lines.append(
                {
                    "id": f"{rule_id}/pos/{n}",
                    "text": text,
                    "direction": "request",
                    "expect": _expect(types[rule_id]),
                }
            )
        for n, negative in enumerate(spec.negatives(rng)):
            text, _ = embed(negative, rng)
            lines.append(
                {
                    "id": f"{rule_id}/neg/{n}",
                    "text": text,
                    "direction": "request",
                    "expect": _expect(None),
                }
            )
    for n, make in enumerate(GENERIC_NEGATIVES):
        lines.append(
            {
                "id": f"generic/neg/{n}",
                "text": make(rng),
                "direction": "request",
                "expect": _expect(None),
            }
        )
    return lines


def render(lines: list[dict[str, object]]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False, sort_keys=False) + "\n" for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the corpus is stale")
    args = parser.parse_args(argv)
    content = render(build_corpus())
    if args.check:
        if CORPUS.read_text(encoding="utf-8") != content:
            print(f"{CORPUS.name} is stale; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    CORPUS.write_text(content, encoding="utf-8")
    print(f"wrote {content.count(chr(10))} cases to {CORPUS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
