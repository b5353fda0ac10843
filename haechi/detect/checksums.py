# SPDX-License-Identifier: Apache-2.0
"""Checksums and self-describing encodings that credential formats carry.

A token format with a built-in checksum lets the detector tell a real credential from a string
that merely has the right prefix and alphabet: the chance that a random string passes a 32-bit
check is about one in four billion. Each function here takes the matched text and answers
``True`` only when the embedded check holds; none of them raises on malformed input and none of
them ever puts the inspected text into an exception or a log line.

Formats covered:

* GitHub classic tokens (``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_``): 30 random characters
  followed by the CRC-32 of those characters, written as 6 base-62 digits.
* Grafana service-account tokens (``glsa_``): CRC-32 of the token body, 8 hex digits.
* PyPI API tokens (``pypi-``): a base64url macaroon whose first field is the issuing location.
* Bech32 (BIP-173) strings such as age secret keys.
* Base58Check (Bitcoin) strings such as BIP-32 extended private keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from typing import Final

__all__ = [
    "BASE62_ALPHABET",
    "age_secret_key_ok",
    "base58check_decode",
    "base62_encode",
    "bech32_decode",
    "bip32_private_key_ok",
    "crc32_base62",
    "github_classic_token_ok",
    "grafana_service_account_token_ok",
    "pypi_macaroon_ok",
]

#: The base-62 digit order GitHub's token checksum is written in.
BASE62_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: The other digit order in common use; accepted too (see :func:`github_classic_token_ok`).
_BASE62_LOWER_FIRST: Final = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

_GITHUB_RANDOM_LEN: Final = 30
_GITHUB_CHECKSUM_LEN: Final = 6


def base62_encode(number: int, width: int, alphabet: str = BASE62_ALPHABET) -> str:
    """Write ``number`` in base 62, left-padded with the zero digit to ``width`` characters."""
    if number < 0:
        raise ValueError("base62_encode takes a non-negative integer")
    digits: list[str] = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(alphabet[rest])
    return "".join(reversed(digits)).rjust(width, alphabet[0])


def crc32_base62(data: str, alphabet: str = BASE62_ALPHABET) -> str:
    """CRC-32 (IEEE) of ``data`` as the 6 base-62 digits GitHub appends to its tokens."""
    return base62_encode(zlib.crc32(data.encode("ascii")), _GITHUB_CHECKSUM_LEN, alphabet)


def github_classic_token_ok(token: str) -> bool:
    """Check the CRC-32 of a 40-character GitHub token (``ghp_`` + 30 random + 6 checksum).

    Longer ``ghs_``/``ghr_`` tokens have no published checksum layout and are accepted on shape
    alone. The checksum is compared in both base-62 digit orders seen in the wild, which keeps the
    false-accept rate of a random string near 2 / 62**6 (about 4e-11) while not depending on a
    digit order GitHub never wrote down.
    """
    _, sep, body = token.partition("_")
    if not sep or not body.isascii() or not body.isalnum():
        return False
    if len(body) != _GITHUB_RANDOM_LEN + _GITHUB_CHECKSUM_LEN:
        return len(body) > _GITHUB_RANDOM_LEN + _GITHUB_CHECKSUM_LEN and token[:3] in ("ghs", "ghr")
    random_part, checksum = body[:_GITHUB_RANDOM_LEN], body[_GITHUB_RANDOM_LEN:]
    return checksum in (
        crc32_base62(random_part),
        crc32_base62(random_part, _BASE62_LOWER_FIRST),
    )


def grafana_service_account_token_ok(token: str) -> bool:
    """Check ``glsa_<32 alphanumerics>_<8 hex>``: the hex is the CRC-32 of ``glsa_<secret>``.

    Grafana writes the 32-bit value as little-endian bytes in hex; the big-endian rendering is
    accepted as well (false-accept rate 2 / 2**32).
    """
    key, sep, checksum = token.rpartition("_")
    if not sep or len(checksum) != 8:
        return False
    crc = zlib.crc32(key.encode("ascii", "replace"))
    little = crc.to_bytes(4, "little").hex()
    return checksum.lower() in (little, f"{crc:08x}")


def _b64url_decode(text: str) -> bytes | None:
    """Decode unpadded base64url; ``None`` when the text is not valid base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _read_varint(data: bytes, offset: int) -> tuple[int, int] | None:
    """Read an unsigned LEB128 varint; return ``(value, next_offset)`` or ``None``."""
    value = shift = 0
    while offset < len(data) and shift < 35:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
    return None


def pypi_macaroon_ok(token: str) -> bool:
    """Check that a ``pypi-`` token's body is a version-2 macaroon issued by a PyPI host.

    The binary macaroon starts with the version byte ``0x02``, then field type ``0x01``
    (location), a varint length and the location itself (``pypi.org``, ``test.pypi.org`` or a
    private index host). Only the first bytes are decoded: that is enough to reject look-alikes.
    """
    body = token[5:] if token.startswith("pypi-") else token
    head = _b64url_decode(body[: min(len(body), 64) // 4 * 4])
    if head is None or len(head) < 4 or head[0] != 0x02 or head[1] != 0x01:
        return False
    parsed = _read_varint(head, 2)
    if parsed is None:
        return False
    length, start = parsed
    location = head[start : start + length]
    if not 3 <= length <= 253 or len(location) != length:
        return False
    try:
        host = location.decode("ascii")
    except UnicodeDecodeError:
        return False
    return "." in host and all(c.isalnum() or c in ".-:" for c in host)


_BECH32_CHARSET: Final = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GENERATOR: Final = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _bech32_polymod(values: list[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_BECH32_GENERATOR):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def bech32_decode(text: str) -> tuple[str, list[int]] | None:
    """Decode a Bech32 (BIP-173, constant 1) string of any length into ``(hrp, data)``.

    Mixed case is invalid, as the specification requires. The six checksum symbols are
    stripped from ``data``. Returns ``None`` when the string is not valid Bech32.
    """
    if text.lower() != text and text.upper() != text:
        return None
    lowered = text.lower()
    hrp, sep, payload = lowered.rpartition("1")
    if not sep or not hrp or len(payload) < 6:
        return None
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        return None
    data: list[int] = []
    for char in payload:
        index = _BECH32_CHARSET.find(char)
        if index < 0:
            return None
        data.append(index)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    if _bech32_polymod(expanded + data) != 1:
        return None
    return hrp, data[:-6]


def age_secret_key_ok(text: str) -> bool:
    """Check an ``AGE-SECRET-KEY-1...`` string: Bech32 checksum over 32 bytes of key."""
    decoded = bech32_decode(text)
    return decoded is not None and decoded[0] == "age-secret-key-" and len(decoded[1]) == 52


_BASE58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX: Final = {c: i for i, c in enumerate(_BASE58_ALPHABET)}


def base58check_decode(text: str) -> bytes | None:
    """Decode Base58Check and verify its 4-byte double-SHA-256 checksum; return the payload."""
    number = 0
    for char in text:
        digit = _BASE58_INDEX.get(char)
        if digit is None:
            return None
        number = number * 58 + digit
    leading_zeros = len(text) - len(text.lstrip("1"))
    raw = b"\x00" * leading_zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")
    if len(raw) < 5:
        return None
    payload, checksum = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
        return None
    return payload


#: BIP-32 version bytes of extended *private* keys: mainnet ``xprv`` and testnet ``tprv``.
_BIP32_PRIVATE_VERSIONS: Final = (bytes.fromhex("0488ade4"), bytes.fromhex("04358394"))


def bip32_private_key_ok(text: str) -> bool:
    """Check a BIP-32 extended private key: Base58Check, 78 bytes, private version, 0x00 pad."""
    payload = base58check_decode(text)
    return (
        payload is not None
        and len(payload) == 78
        and payload[:4] in _BIP32_PRIVATE_VERSIONS
        and payload[45] == 0
    )
