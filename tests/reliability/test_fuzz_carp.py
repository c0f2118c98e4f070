"""Fuzzing the CARP receive path: raw IPv4 bytes → parse_ipv4 → CarpAdvert.decode → verify.

Every input, arbitrary or a mutation of a packet captured from the real ucarp (and, on the
same protocol 112, from keepalived), either decodes or raises DecodeError: nothing else
escapes, so nothing a LAN sends can stop the daemon's reader. What decodes re-encodes to
the same 36 bytes (up to the two one's-complement spellings of a zero checksum).
"""

from __future__ import annotations

import contextlib
import ipaddress
import struct

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ifvip.daemon.transport import parse_ipv4
from ifvip.errors import DecodeError
from ifvip.wire.carp import CARP_LEN, CarpAdvert, checksum
from ifvip.wire.pcap import read_pcap
from tests.conftest import SHARED
from tests.reliability._fuzz import fuzz

VECTORS = SHARED / "vectors"
VIP = "198.51.100.100"


def _ip_packets() -> list[bytes]:
    """Every protocol-112 IPv4 packet (IP header included) of every captured vector."""
    if not VECTORS.is_dir():
        return []
    found = []
    for path in sorted(VECTORS.glob("*.pcap")):
        for frame in read_pcap(path.read_bytes()):
            ip = frame.payload
            if frame.ethertype == 0x0800 and len(ip) > 20 and ip[9] == 112:
                found.append(ip)
    return found


PACKETS = _ip_packets()
UCARP = [p for p in PACKETS if p[20] == 0x21 and len(p) - 20 >= CARP_LEN]


def _needs_vectors() -> None:
    if not UCARP:
        pytest.skip(f"captured vectors not beside the checkout ({VECTORS})")


def _mutate(data: bytes, draw: st.DrawFn) -> bytes:
    """One to four of: flip a bit, set a byte, cut, extend, splice a random run."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "extend", "splice"]))
        if op == "flip" and buf:
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
        elif op == "cut":
            del buf[draw(st.integers(0, len(buf))) :]
        elif op == "extend":
            buf += draw(st.binary(max_size=1500))
        elif op == "splice" and buf:
            i = draw(st.integers(0, len(buf) - 1))
            run = draw(st.binary(min_size=1, max_size=16))
            buf[i : i + len(run)] = run
    return bytes(buf)


@st.composite
def mutated_packets(draw: st.DrawFn) -> bytes:
    return _mutate(draw(st.sampled_from(PACKETS)), draw)


def _receive(ip: bytes) -> CarpAdvert | None:
    """What the runtime does with a packet off the raw socket, up to the HMAC."""
    packet = parse_ipv4(ip)
    if packet is None:
        return None
    try:
        advert = CarpAdvert.decode(packet.payload)
    except DecodeError as exc:
        assert str(exc), "a DecodeError says why"
        return None
    advert.verify(b"secret", VIP)
    return advert


def _round_trips(payload: bytes, advert: CarpAdvert) -> None:
    encoded = advert.encode()
    assert CarpAdvert.decode(encoded) == advert
    if encoded != payload[:CARP_LEN]:
        # The only freedom: a zero checksum written as 0xffff (one's complement -0).
        assert encoded[:6] == payload[:6] and encoded[8:] == payload[8:CARP_LEN]
        assert {payload[6:8], encoded[6:8]} == {b"\xff\xff", b"\x00\x00"}


@fuzz(400)
@given(st.binary(max_size=1600))
def test_arbitrary_ip_bytes_never_escape_the_receive_path(data: bytes) -> None:
    _receive(data)


@fuzz(400)
@given(st.binary(min_size=0, max_size=200))
def test_arbitrary_payloads_decode_or_raise_decode_error(payload: bytes) -> None:
    try:
        advert = CarpAdvert.decode(payload)
    except DecodeError:
        return
    _round_trips(payload, advert)


@fuzz(600)
@given(st.data())
def test_mutated_captured_packets_never_escape(data: st.DataObject) -> None:
    _needs_vectors()
    ip = data.draw(mutated_packets())
    advert = _receive(ip)
    packet = parse_ipv4(ip)
    if advert is not None and packet is not None:
        _round_trips(packet.payload, advert)


@fuzz(300)
@given(st.data())
def test_a_mutation_inside_the_hmac_fields_never_authenticates(data: st.DataObject) -> None:
    # vhid (byte 1), counter (8-15) and md (16-35) are what the HMAC covers or is (§1.5):
    # change any of them, fix the checksum so the packet decodes, and it must not verify.
    _needs_vectors()
    ip = data.draw(st.sampled_from([p for p in UCARP if p[21] == 42]))
    payload = bytearray(ip[20 : 20 + CARP_LEN])
    offset = data.draw(st.sampled_from([1, *range(8, CARP_LEN)]))
    new = data.draw(st.integers(0, 255))
    assume(payload[offset] != new)
    payload[offset] = new
    payload[6:8] = b"\0\0"
    payload[6:8] = struct.pack("!H", checksum(bytes(payload)))
    advert = CarpAdvert.decode(bytes(payload))
    assert not advert.verify(b"secret", VIP)


def test_every_captured_ucarp_advert_passes_and_every_vrrp_packet_fails_as_carp() -> None:
    _needs_vectors()
    for ip in PACKETS:
        advert = _receive(ip)
        src = ipaddress.IPv4Address(ip[12:16])
        if ip[20] == 0x21 and len(ip) - 20 == CARP_LEN:  # ucarp's own: 36-byte payloads
            assert advert is not None and advert.verify(b"secret", VIP), src
        elif advert is not None:
            # A VRRPv2 packet from keepalived happens to start with 0x21 too; as CARP it
            # must never authenticate (DESIGN §5: the decoder follows the configured protocol).
            assert not advert.verify(b"secret", VIP)


@fuzz(300)
@given(st.binary(max_size=300))
def test_pcap_reader_raises_only_decode_error(data: bytes) -> None:
    header = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")
    for blob in (data, header + data):
        with contextlib.suppress(DecodeError):
            for frame in read_pcap(blob):
                _ = frame.ethertype, frame.payload
