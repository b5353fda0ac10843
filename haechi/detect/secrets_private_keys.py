# SPDX-License-Identifier: Apache-2.0
"""Secret rules for private key material: PEM, OpenSSH, PuTTY and PGP blocks, age keys and
BIP-32 extended private keys.

Whole blocks are the finding, from the armor header through the matching footer, so a
redaction removes the key body and not just its first line. When the footer is missing (a key
cut off by a size limit or a chat window) the header alone still matches: a truncated private
key is still a leaked private key. PEM keeps the header-only reference rule
``pem-private-key`` for that; PuTTY and PGP fall back inside their own pattern.
"""

from __future__ import annotations

from typing import Final

from haechi.detect.checksums import age_secret_key_ok, bip32_private_key_ok
from haechi.detect.rule import Rule
from haechi.detect.secrets_shapes import SECRET_TYPE, bounded, secret_rule

__all__ = ["PRIVATE_KEY_RULES"]

#: One character of an armored body: anything but the start of a ``-----`` armor line, so a
#: search for the footer stops at the next header and many headers cost linear time.
_ARMOR_BODY: Final = r"(?:[^-]|-(?!----))"

PRIVATE_KEY_RULES: Final[tuple[Rule, ...]] = (
    secret_rule(
        "private-key-block",
        SECRET_TYPE,
        rf"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----{_ARMOR_BODY}{{16,65536}}?"
        r"-----END \1PRIVATE KEY-----",
        ("PRIVATE KEY-----",),
        "PEM or OpenSSH private key, header through matching footer",
        confidence=0.99,
    ),
    secret_rule(
        "pem-private-key",
        SECRET_TYPE,
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        ("PRIVATE KEY-----",),
        "PEM private key armor header (also catches a truncated key)",
        confidence=0.98,
    ),
    secret_rule(
        "putty-private-key",
        SECRET_TYPE,
        r"PuTTY-User-Key-File-[0-9]+:[ \t]*[A-Za-z0-9@.-]+"
        r"(?:(?:(?!PuTTY-User-Key-File-)[\s\S]){1,65536}?"
        r"Private-(?:MAC|Hash):[ \t]*[0-9a-fA-F]{20,})?",
        ("PuTTY-User-Key-File-",),
        "PuTTY .ppk private key, whole file or its header line",
        confidence=0.98,
    ),
    secret_rule(
        "pgp-private-key-block",
        SECRET_TYPE,
        r"-----BEGIN PGP PRIVATE KEY BLOCK-----"
        rf"(?:{_ARMOR_BODY}{{16,262144}}?-----END PGP PRIVATE KEY BLOCK-----)?",
        ("PGP PRIVATE KEY BLOCK",),
        "OpenPGP private key block, or its armor header when truncated",
        confidence=0.99,
    ),
    secret_rule(
        "age-secret-key",
        SECRET_TYPE,
        bounded(r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", "A-Za-z0-9_-"),
        ("AGE-SECRET-KEY-1",),
        "age encryption secret key (Bech32 checksum verified)",
        validator=age_secret_key_ok,
        confidence=0.99,
    ),
    secret_rule(
        "bip32-extended-private-key",
        SECRET_TYPE,
        bounded(r"[xt]prv[1-9A-HJ-NP-Za-km-z]{107,108}"),
        ("xprv", "tprv"),
        "BIP-32 extended private key (Base58Check verified)",
        validator=bip32_private_key_ok,
        confidence=0.99,
    ),
)
