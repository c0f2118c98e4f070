"""ifvip/wire/digest.py: the built-in MD5, SHA-1 and HMAC-SHA1 equal hashlib's and hmac's."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from ifvip.wire.digest import compare_digest, hmac_sha1, md5, sha1, sha256


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_hmac_sha1_is_hmacs(key: bytes, message: bytes) -> None:
    assert hmac_sha1(key, message) == hmac.new(key, message, hashlib.sha1).digest()


@given(st.binary(max_size=300))
def test_md5_sha1_and_sha256_are_hashlibs(data: bytes) -> None:
    assert md5(data) == hashlib.md5(data, usedforsecurity=False).digest()
    assert sha1(data) == hashlib.sha1(data).digest()
    assert sha256(data) == hashlib.sha256(data).digest()


def test_edges_of_the_key_block() -> None:
    for size in (0, 1, 19, 20, 63, 64, 65, 128, 1000):
        key = bytes(range(256))[:size] * (1 + size // 256)
        key = key[:size]
        assert hmac_sha1(key, b"ucarp") == hmac.new(key, b"ucarp", hashlib.sha1).digest()


def test_compare_digest() -> None:
    assert compare_digest(b"abc", b"abc")
    assert not compare_digest(b"abc", b"abd")


def test_no_libcrypto() -> None:
    code = (
        "import sys\n"
        "from ifvip.wire import carp\n"
        "from ifvip.daemon import compat\n"
        "carp.compute_md(b'secret', 1, '198.51.100.1', 7)\n"
        "compat.titpetric_vhid('198.51.100.1')\n"
        "maps = open('/proc/self/maps').read()\n"
        "print('libcrypto' in maps, '_hashlib' in sys.modules, 'hashlib' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "False", "False"], done.stderr
