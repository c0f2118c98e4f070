"""The CARP codec against packets captured from the real ucarp 1.5.2 (shared/vectors)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ifvip.errors import DecodeError
from ifvip.wire.carp import CarpAdvert, checksum, compute_md
from ifvip.wire.pcap import read_pcap
from tests.conftest import SHARED

VECTORS = SHARED / "vectors"
VIP = "198.51.100.100"


def _carp_packets(name: str) -> list[tuple[str, int, bytes]]:
    """(source IP, TTL, CARP payload) of every protocol-112 IPv4 packet in a capture."""
    path = VECTORS / name
    if not path.exists():
        pytest.skip(f"vector {path} not beside the checkout")
    packets = []
    for frame in read_pcap(path.read_bytes()):
        ip = frame.payload
        if frame.ethertype != 0x0800 or ip[9] != 112:
            continue
        ihl = (ip[0] & 0x0F) * 4
        packets.append((str(ipaddress.IPv4Address(ip[12:16])), ip[8], ip[ihl:]))
    assert packets, f"no CARP packet in {name}"
    return packets


@pytest.mark.parametrize("name", ["ucarp-vhid42-secret.pcap", "ucarp-vhid42-secret-takeover.pcap"])
def test_captured_adverts_round_trip_and_authenticate(name: str) -> None:
    for _src, ttl, payload in _carp_packets(name):
        advert = CarpAdvert.decode(payload)
        assert advert.encode() == payload[:36]
        assert (advert.vhid, advert.version, advert.type, advert.authlen) == (42, 2, 1, 7)
        assert ttl == 255
        assert advert.verify(b"secret", VIP)
        assert not advert.verify(b"secreT", VIP)
        assert not advert.verify(b"secret", "198.51.100.101")


def test_takeover_capture_shows_the_counter_carried_on() -> None:
    by_source: dict[str, list[int]] = {}
    for src, _ttl, payload in _carp_packets("ucarp-vhid42-secret-takeover.pcap"):
        by_source.setdefault(src, []).append(CarpAdvert.decode(payload).counter)
    assert len(by_source) == 2


def test_build_signs_like_ucarp() -> None:
    _src, _ttl, payload = _carp_packets("ucarp-vhid42-secret.pcap")[0]
    seen = CarpAdvert.decode(payload)
    rebuilt = CarpAdvert.build(
        vhid=seen.vhid,
        advskew=seen.advskew,
        advbase=seen.advbase,
        counter=seen.counter,
        password=b"secret",
        vip=VIP,
    )
    assert rebuilt.encode() == payload[:36]


def test_spec_hmac_vector() -> None:
    # specs/carp.md: password "secret", vhid 7, VIP 198.51.100.100, counter 0x0102030405060708.
    md = compute_md(b"secret", 7, VIP, 0x0102030405060708)
    message = bytes([2, 1, 7]) + bytes([198, 51, 100, 100]) + bytes(range(1, 9))
    assert md == hmac.new(b"secret", message, hashlib.sha1).digest()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p[:20], "too short"),
        (lambda p: bytes([0x31]) + p[1:], "version is 3"),
        (lambda p: p[:10] + bytes([p[10] ^ 1]) + p[11:], "bad CARP checksum"),
    ],
)
def test_invalid_packets_say_why(mutate: object, message: str) -> None:
    _src, _ttl, payload = _carp_packets("ucarp-vhid42-secret.pcap")[0]
    with pytest.raises(DecodeError, match=message):
        CarpAdvert.decode(mutate(payload))  # type: ignore[operator]


@given(st.binary(max_size=80))
def test_decode_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        CarpAdvert.decode(data)


@given(
    vhid=st.integers(0, 255),
    advskew=st.integers(0, 255),
    advbase=st.integers(0, 255),
    counter=st.integers(0, 2**64 - 1),
    md=st.binary(min_size=20, max_size=20),
    demote=st.integers(0, 255),
    kind=st.integers(0, 15),
)
def test_encode_then_decode_is_identity(
    vhid: int, advskew: int, advbase: int, counter: int, md: bytes, demote: int, kind: int
) -> None:
    advert = CarpAdvert(vhid, advskew, advbase, counter, md, type=kind, demote=demote)
    encoded = advert.encode()
    assert checksum(encoded) == 0
    assert CarpAdvert.decode(encoded) == advert


def test_gratuitous_arp_matches_the_captured_ucarp_frame() -> None:
    from ifvip.wire.announce import gratuitous_arp

    path = VECTORS / "ucarp-vhid42-secret.pcap"
    if not path.exists():
        pytest.skip("vectors not beside the checkout")
    arps = [f.data for f in read_pcap(path.read_bytes()) if f.ethertype == 0x0806]
    assert arps, "no ARP in the capture"
    mac = ":".join(f"{b:02x}" for b in arps[0][6:12])
    assert arps[0][:42] == gratuitous_arp(mac, VIP)
