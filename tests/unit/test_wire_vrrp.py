"""The VRRP codec against packets captured from the real keepalived 2.2.7 (shared/vectors)."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ifvip.errors import DecodeError
from ifvip.wire.announce import unsolicited_na
from ifvip.wire.pcap import read_pcap
from ifvip.wire.vrrp import (
    AuthType,
    ChecksumForm,
    Vrrp2Advert,
    Vrrp3Advert,
    decode,
    pass_auth_data,
)
from tests.conftest import SHARED

VECTORS = SHARED / "vectors"
VIP = ipaddress.IPv4Address("198.51.100.100")
MCAST = ipaddress.IPv4Address("224.0.0.18")
A = ipaddress.IPv4Address("198.51.100.1")


@dataclass(frozen=True)
class Packet:
    src: ipaddress.IPv4Address | ipaddress.IPv6Address
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address
    ttl: int
    payload: bytes
    family: int


def _vector(name: str) -> Path:
    path = VECTORS / name
    if not path.exists():
        pytest.skip(f"vector {path} not beside the checkout")
    return path


def _vrrp_packets(name: str) -> list[Packet]:
    """Every protocol-112 packet of a capture, with the IP facts the checksums need."""
    packets = []
    for frame in read_pcap(_vector(name).read_bytes()):
        ip = frame.payload
        if frame.ethertype == 0x0800 and ip[9] == 112:
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack_from("!H", ip, 2)[0]
            packets.append(
                Packet(
                    ipaddress.IPv4Address(ip[12:16]),
                    ipaddress.IPv4Address(ip[16:20]),
                    ip[8],
                    ip[ihl:total],
                    4,
                )
            )
        elif frame.ethertype == 0x86DD and ip[6] == 112:
            length = struct.unpack_from("!H", ip, 4)[0]
            packets.append(
                Packet(
                    ipaddress.IPv6Address(ip[8:24]),
                    ipaddress.IPv6Address(ip[24:40]),
                    ip[7],
                    ip[40 : 40 + length],
                    6,
                )
            )
    assert packets, f"no VRRP packet in {name}"
    return packets


V2_FILES = [
    "ka227-v2-noauth.pcap",
    "keepalived-vrrp2-vrid51-pass.pcap",
    "keepalived-vrrp2-vrid51-pass-takeover.pcap",
]
V3_FILES = [
    "ka227-v3-ipv4-mcast-failover.pcap",
    "ka227-v3-ipv4-unicast-0.5s.pcap",
    "ka227-v3-ipv6-mcast.pcap",
    "keepalived-vrrp3-vrid51.pcap",
    "keepalived-vrrp3-vrid51-takeover.pcap",
    "keepalived-vrrp3-vrid51-ipv6.pcap",
]


@pytest.mark.parametrize("name", V2_FILES)
def test_captured_v2_adverts_round_trip_byte_for_byte(name: str) -> None:
    for packet in _vrrp_packets(name):
        advert = Vrrp2Advert.decode(packet.payload)
        assert advert.encode() == packet.payload
        assert advert.vrid == 51 and packet.ttl == 255
        assert advert.adver_int == 1


@pytest.mark.parametrize("name", V3_FILES)
def test_captured_v3_adverts_round_trip_byte_for_byte(name: str) -> None:
    for packet in _vrrp_packets(name):
        advert = Vrrp3Advert.decode(
            packet.payload, family=packet.family, src=packet.src, dst=packet.dst
        )
        assert advert.encode(packet.src, packet.dst) == packet.payload
        assert advert.family == packet.family
        assert advert.vrid == 51 and packet.ttl == 255


def test_injected_capture_every_packet_decodes_except_the_one_with_trailing_bytes() -> None:
    # specs/vrrp.md Appendix A: hand-made packets keepalived rejected. Only the one with 4
    # trailing bytes is wire-invalid; the others (2 VIPs, another VIP, 2 s interval, wrong
    # password, TTL 64, auth none) are judged later, by the speaker and the election.
    decoded, refused = [], []
    for packet in _vrrp_packets("ka227-v2-pass-preempt-and-injected-bad.pcap"):
        try:
            advert = Vrrp2Advert.decode(packet.payload)
        except DecodeError as exc:
            refused.append(str(exc))
            continue
        assert advert.encode() == packet.payload
        decoded.append(advert)
    assert refused == ["VRRPv2 packet of 24 bytes, expect 20 for 1 addresses"]
    assert {a.count_ip_addrs for a in decoded} == {1, 2}
    assert {a.adver_int for a in decoded} == {1, 2}
    assert {a.auth_type for a in decoded} == {AuthType.NONE, AuthType.PASS}
    assert pass_auth_data(b"secret12") in {a.auth_data for a in decoded}
    assert pass_auth_data(b"wrongpw!") in {a.auth_data for a in decoded}
    assert {p.ttl for p in _vrrp_packets("ka227-v2-pass-preempt-and-injected-bad.pcap")} == {
        64,
        255,
    }


def test_spec_example_a_pseudo_header_and_message_only_forms() -> None:
    advert = Vrrp3Advert(51, 100, (VIP,), 100)
    assert advert.encode(A, MCAST).hex() == "313364010064350bc6336464"
    message_only = advert.encode(A, MCAST, form=ChecksumForm.MESSAGE_ONLY)
    assert message_only.hex() == "313364010064" + "3fcf" + "c6336464"
    # Unicast: the pseudo-header carries the peer as destination (Example B).
    peer = ipaddress.IPv4Address("198.51.100.2")
    assert Vrrp3Advert(51, 100, (VIP,), 50).encode(A, peer).hex() == "313364010032eb19c6336464"
    assert Vrrp3Advert(51, 100, (VIP,), 50).encode(A, MCAST).hex()[12:16] == "353d"


def test_v3_checksum_forms_are_selectable_on_receive() -> None:
    message_only = Vrrp3Advert(51, 100, (VIP,)).encode(A, MCAST, form=ChecksumForm.MESSAGE_ONLY)
    assert Vrrp3Advert.decode(message_only, family=4, src=A, dst=MCAST).priority == 100
    with pytest.raises(DecodeError, match=r"bad VRRPv3 checksum 0x3fcf; should be 0x350b"):
        Vrrp3Advert.decode(
            message_only, family=4, src=A, dst=MCAST, forms=(ChecksumForm.PSEUDO_HEADER,)
        )
    pseudo = Vrrp3Advert(51, 100, (VIP,)).encode(A, MCAST)
    with pytest.raises(DecodeError, match=r"should be 0x3fcf \(message-only\)"):
        Vrrp3Advert.decode(pseudo, family=4, src=A, dst=MCAST, forms=(ChecksumForm.MESSAGE_ONLY,))


def test_spec_example_d_pass_auth() -> None:
    advert = Vrrp2Advert(51, 100, (VIP,), 1, AuthType.PASS, pass_auth_data(b"secret12"))
    assert advert.encode().hex() == "213364010101e1b3c63364647365637265743132"
    # keepalived truncates to 8 bytes and NUL-pads.
    assert pass_auth_data(b"secret") == b"secret\0\0"
    assert pass_auth_data(b"secret1234") == b"secret12"


def test_the_password_never_shows_in_repr() -> None:
    advert = Vrrp2Advert(51, 100, (VIP,), 1, AuthType.PASS, pass_auth_data(b"hunter22"))
    assert "hunter" not in repr(advert) and "hunter" not in advert.describe()


def test_spec_example_e_ipv6() -> None:
    src = ipaddress.IPv6Address("fe80::ff:fe00:a")
    dst = ipaddress.IPv6Address("ff02::12")
    vips = (ipaddress.IPv6Address("fe80::5e:51"), ipaddress.IPv6Address("2001:db8::51"))
    wire = Vrrp3Advert(51, 100, vips).encode(src, dst)
    assert wire[:8].hex() == "3133640200643ff4"
    assert Vrrp3Advert(51, 100, vips).encode()[6:8] == b"\0\0"  # kernel fills it in


def test_reasons_carry_values() -> None:
    good = Vrrp3Advert(51, 100, (VIP,)).encode(A, MCAST)
    with pytest.raises(DecodeError, match="too short: 3 bytes, want 8"):
        Vrrp3Advert.decode(good[:3], family=4)
    with pytest.raises(DecodeError, match="wrong VRRP version: received 3, expect 2"):
        Vrrp2Advert.decode(good)
    with pytest.raises(DecodeError, match="VRRPv3 packet of 16 bytes, expect 12"):
        Vrrp3Advert.decode(good + b"\0" * 4, family=4)
    with pytest.raises(DecodeError, match="expect 24 for 1 IPv6 addresses"):
        Vrrp3Advert.decode(good, family=6)
    with pytest.raises(DecodeError, match="VRRP type is 2; should be 1"):
        Vrrp3Advert.decode(bytes([0x32]) + good[1:], family=4)
    zero = Vrrp3Advert(51, 100, (VIP,)).encode()[:4] + b"\xf0\x00" + good[6:]
    with pytest.raises(DecodeError, match="max_adver_int is 0 cs"):
        Vrrp3Advert.decode(zero, family=4)
    v2 = Vrrp2Advert(51, 100, (VIP,)).encode()
    with pytest.raises(DecodeError, match=r"bad VRRPv2 checksum 0x0000; should be 0x[0-9a-f]{4}"):
        Vrrp2Advert.decode(v2[:6] + b"\0\0" + v2[8:])
    with pytest.raises(DecodeError, match="VRRPv2 is IPv4 only"):
        decode(v2, version=2, family=6)


def test_rsvd_nibble_is_masked_as_keepalived_does() -> None:
    raw = bytearray(Vrrp3Advert(51, 100, (VIP,)).encode())
    raw[4] |= 0xF0
    advert = Vrrp3Advert.decode(bytes(raw), family=4)
    assert advert.max_adver_int_cs == 100 and advert.rsvd == 0xF


def test_the_decoder_is_chosen_by_the_configured_version() -> None:
    v2 = Vrrp2Advert(51, 100, (VIP,)).encode()
    assert isinstance(decode(v2, version=2), Vrrp2Advert)
    with pytest.raises(DecodeError, match="received 2, expect 3"):
        decode(v2, version=3)


addresses4 = st.lists(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address), max_size=20)
addresses6 = st.lists(st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address), min_size=1, max_size=8)


@given(
    st.integers(1, 255),
    st.integers(0, 255),
    addresses4,
    st.integers(1, 255),
    st.sampled_from(list(AuthType)),
    st.binary(min_size=8, max_size=8),
)
def test_v2_round_trip(
    vrid: int, prio: int, addrs: list[ipaddress.IPv4Address], intvl: int, auth: int, data: bytes
) -> None:
    advert = Vrrp2Advert(vrid, prio, tuple(addrs), intvl, auth, data)
    assert Vrrp2Advert.decode(advert.encode()) == advert


@given(st.integers(1, 255), st.integers(0, 255), addresses6, st.integers(1, 4095))
def test_v3_ipv6_round_trip(
    vrid: int, prio: int, addrs: list[ipaddress.IPv6Address], intvl: int
) -> None:
    src = ipaddress.IPv6Address("fe80::1")
    dst = ipaddress.IPv6Address("ff02::12")
    advert = Vrrp3Advert(vrid, prio, tuple(addrs), intvl)
    wire = advert.encode(src, dst)
    assert Vrrp3Advert.decode(wire, family=6, src=src, dst=dst) == advert
    with pytest.raises(DecodeError, match="bad VRRPv3 checksum"):
        Vrrp3Advert.decode(wire, family=6, src=ipaddress.IPv6Address("fe80::2"), dst=dst)


def test_unsolicited_na_is_byte_identical_to_keepalived() -> None:
    frames = {
        frame.data
        for frame in read_pcap(_vector("ka227-v3-ipv6-mcast.pcap").read_bytes())
        if frame.ethertype == 0x86DD and frame.payload[6] == 58 and frame.payload[40] == 136
    }
    assert frames
    built = {
        unsolicited_na(mac, vip)
        for mac in ("02:00:00:00:00:0a", "02:00:00:00:00:0b")
        for vip in ("fe80::5e:51", "2001:db8::51")
    }
    assert frames == built
    capture = _vector("keepalived-vrrp3-vrid51-ipv6.pcap").read_bytes()
    nas = {f.data for f in read_pcap(capture) if f.ethertype == 0x86DD and f.payload[6] == 58}
    assert nas == {unsolicited_na("02:db:00:00:00:11", "2001:db8::100")}
    router = unsolicited_na("02:db:00:00:00:11", "2001:db8::100", router=True)
    assert router[14 + 40 + 4] == 0xA0
