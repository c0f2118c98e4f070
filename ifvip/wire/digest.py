"""MD5, SHA-1, SHA-256 and HMAC-SHA1 from CPython's built-in hash modules, without OpenSSL.

`hashlib`, `hmac` and `secrets` load OpenSSL's libcrypto (about 5 MB of the daemon's
memory) for digests CPython also builds in (`_md5`, `_sha1`). CARP's advert HMAC and the
titpetric image's default VHID need only those two (and the interfaces reading cache
names its files by SHA-256); HMAC is RFC 2104 over the built-in
SHA-1, as the pure-Python branch of `hmac` computes it. tests/unit/test_digest.py checks
the results byte for byte against hashlib and hmac.
"""

from __future__ import annotations

from _md5 import md5 as _md5  # type: ignore[import-not-found, unused-ignore]
from _operator import _compare_digest as compare_digest
from _sha1 import sha1 as _sha1  # type: ignore[import-not-found, unused-ignore]
from _sha256 import sha256 as _sha256  # type: ignore[import-not-found, unused-ignore]
from typing import Final

__all__ = ["compare_digest", "hmac_sha1", "md5", "sha1", "sha256"]

_BLOCK: Final = 64  # SHA-1's block size in bytes
_INNER: Final = bytes(x ^ 0x36 for x in range(256))  # RFC 2104 ipad, as a translate table
_OUTER: Final = bytes(x ^ 0x5C for x in range(256))  # opad


def md5(data: bytes) -> bytes:
    digest: bytes = _md5(data).digest()
    return digest


def sha1(data: bytes) -> bytes:
    digest: bytes = _sha1(data).digest()
    return digest


def sha256(data: bytes) -> bytes:
    digest: bytes = _sha256(data).digest()
    return digest


def hmac_sha1(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA1(key, message) (RFC 2104), equal to hmac.new(key, message, sha1)."""
    if len(key) > _BLOCK:
        key = sha1(key)
    key = key.ljust(_BLOCK, b"\0")
    inner = _sha1(key.translate(_INNER))
    inner.update(message)
    return sha1(key.translate(_OUTER) + inner.digest())
