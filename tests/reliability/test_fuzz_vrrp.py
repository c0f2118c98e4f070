"""Fuzzing the VRRP receive path: bytes → wire.vrrp.decode → VrrpSpeaker.receive.

As for CARP: on arbitrary bytes and on mutations of the packets captured from the real
keepalived 2.2.7 (IPv4 v2 and v3, IPv6 v3), the decoder returns an advert or raises
DecodeError, and the speaker's receive checks return a verdict, never an exception. What
decodes re-encodes to the same bytes, and encode∘decode is the identity on valid adverts.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ifvip.daemon.transport import Received
from ifvip.errors import DecodeError
from ifvip.wire.pcap import read_pcap
from tests.conftest import SHARED
from tests.reliability._fuzz import fuzz
from tests.reliability.test_fuzz_carp import _mutate

vrrp = pytest.importorskip("ifvip.wire.vrrp", reason="the VRRP codec (ifvip/wire/vrrp.py)")

VECTORS = SHARED / "vectors"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _captured(*, clean: bool = False) -> list[tuple[int, int, IPAddress, IPAddress, int, bytes]]:
    """(version, family, src, dst, ttl, payload) of every VRRP packet in the vectors.

    `clean`: leave out the capture with packets injected to be refused (`*-bad.pcap`).
    """
    found: list[tuple[int, int, IPAddress, IPAddress, int, bytes]] = []
    if not VECTORS.is_dir():
        return found
    for path in sorted(VECTORS.glob("*.pcap")):
        if "ucarp" in path.name or (clean and "bad" in path.name):
            continue
        for frame in read_pcap(path.read_bytes()):
            ip = frame.payload
            if frame.ethertype == 0x0800 and len(ip) > 20 and ip[9] == 112:
                ihl = (ip[0] & 0x0F) * 4
                src4, dst4 = ipaddress.IPv4Address(ip[12:16]), ipaddress.IPv4Address(ip[16:20])
                found.append((ip[ihl] >> 4, 4, src4, dst4, ip[8], ip[ihl:]))
            elif frame.ethertype == 0x86DD and len(ip) > 40 and ip[6] == 112:
                src6, dst6 = ipaddress.IPv6Address(ip[8:24]), ipaddress.IPv6Address(ip[24:40])
                found.append((3, 6, src6, dst6, ip[7], ip[40:]))
    return found


CAPTURED = _captured()
CLEAN = _captured(clean=True)


def _needs_vectors() -> None:
    if not CAPTURED:
        pytest.skip(f"keepalived vectors not beside the checkout ({VECTORS})")


def _same_but_zero_checksum(a: bytes, b: bytes) -> bool:
    """Equal, or differing only in the two one's-complement spellings of checksum 0."""
    return a == b or (
        a[:6] == b[:6] and a[8:] == b[8:] and {a[6:8], b[6:8]} == {b"\xff\xff", b"\0\0"}
    )


def _round_trip(advert: object, payload: bytes, src: IPAddress, dst: IPAddress) -> None:
    if isinstance(advert, vrrp.Vrrp2Advert):
        assert _same_but_zero_checksum(advert.encode(), payload)
        return
    assert isinstance(advert, vrrp.Vrrp3Advert)
    forms = [advert.encode(src, dst, form=form) for form in vrrp.ChecksumForm]
    assert any(_same_but_zero_checksum(encoded, payload) for encoded in forms), advert


def _decode(payload: bytes, version: int, family: int, src: IPAddress, dst: IPAddress) -> None:
    try:
        advert = vrrp.decode(payload, version=version, family=family, src=src, dst=dst)
    except DecodeError as exc:
        assert str(exc)
        return
    _round_trip(advert, payload, src, dst)


V4 = (ipaddress.IPv4Address("198.51.100.1"), ipaddress.IPv4Address("224.0.0.18"))
V6 = (ipaddress.IPv6Address("fe80::1"), ipaddress.IPv6Address("ff02::12"))


@fuzz(400)
@given(
    data=st.binary(max_size=300), version=st.sampled_from([2, 3]), family=st.sampled_from([4, 6])
)
def test_arbitrary_bytes_decode_or_raise_decode_error(
    data: bytes, version: int, family: int
) -> None:
    src, dst = V4 if family == 4 else V6
    if version == 2 and family == 6:
        with pytest.raises(DecodeError):
            vrrp.decode(data, version=2, family=6, src=src, dst=dst)
        return
    _decode(data, version, family, src, dst)


@fuzz(600)
@given(st.data())
def test_mutated_keepalived_packets_decode_or_raise_decode_error(data: st.DataObject) -> None:
    _needs_vectors()
    version, family, src, dst, _ttl, payload = data.draw(st.sampled_from(CAPTURED))
    _decode(_mutate(payload, data.draw), version, family, src, dst)


def test_every_captured_keepalived_advert_decodes_and_round_trips() -> None:
    _needs_vectors()
    for version, family, src, dst, _ttl, payload in CLEAN:
        advert = vrrp.decode(payload, version=version, family=family, src=src, dst=dst)
        _round_trip(advert, payload, src, dst)


@fuzz(300)
@given(
    vrid=st.integers(0, 255),
    priority=st.integers(0, 255),
    addresses=st.lists(st.integers(0, 2**32 - 1), max_size=20),
    adver_int=st.integers(0, 255),
    auth_type=st.integers(0, 255),
    auth_data=st.binary(min_size=8, max_size=8),
)
def test_vrrp2_encode_then_decode_is_identity(
    vrid: int, priority: int, addresses: list[int], adver_int: int, auth_type: int, auth_data: bytes
) -> None:
    advert = vrrp.Vrrp2Advert(
        vrid, priority, tuple(ipaddress.IPv4Address(a) for a in addresses), adver_int,
        auth_type, auth_data,
    )  # fmt: skip
    assert vrrp.decode(advert.encode(), version=2) == advert


@fuzz(300)
@given(
    vrid=st.integers(0, 255),
    priority=st.integers(0, 255),
    family=st.sampled_from([4, 6]),
    addresses=st.lists(st.integers(0, 2**128 - 1), min_size=1, max_size=10),
    interval=st.integers(1, 4095),
    rsvd=st.integers(0, 15),
    form=st.sampled_from(list(vrrp.ChecksumForm)),
)
def test_vrrp3_encode_then_decode_is_identity(
    vrid: int,
    priority: int,
    family: int,
    addresses: list[int],
    interval: int,
    rsvd: int,
    form: object,
) -> None:
    make = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
    mask = 2**32 - 1 if family == 4 else 2**128 - 1
    addrs = tuple(make(a & mask) for a in addresses)
    src, dst = V4 if family == 4 else V6
    advert = vrrp.Vrrp3Advert(vrid, priority, addrs, interval, rsvd)
    encoded = advert.encode(src, dst, form=form)
    decoded = vrrp.decode(encoded, version=3, family=family, src=src, dst=dst)
    assert decoded == advert


# ---------------------------------------------------------------- the speaker's checks


def _speakers() -> list[tuple[object, int]]:
    speaker = pytest.importorskip("ifvip.daemon.vrrp.speaker", reason="the VRRP speaker")
    config = pytest.importorskip("ifvip.daemon.vrrp.config", reason="the VRRP config builder")
    built = []
    for version, vips, srcip, password in (
        ("2", ["198.51.100.100/24"], "198.51.100.1", "secret"),
        ("3", ["198.51.100.100/24"], "198.51.100.1", None),
        ("3", ["fe80::5e:51/64", "2001:db8::51/64"], "fe80::1", None),
    ):
        group = config.build_vrrp_group(
            interface="eth0",
            srcip=srcip,
            vrid="51",
            vips=vips,
            version=version,
            auth_pass=password,
        )
        built.append((speaker.VrrpSpeaker(group), 6 if ":" in srcip else 4))
    return built


@fuzz(400)
@given(st.data())
def test_the_speakers_receive_checks_return_a_verdict_on_anything(data: st.DataObject) -> None:
    _needs_vectors()
    for speaker, family in _speakers():
        candidates = [c for c in CAPTURED if c[1] == family] or CAPTURED
        _version, _family, src, dst, ttl, payload = data.draw(st.sampled_from(candidates))
        if data.draw(st.booleans()):
            payload = _mutate(payload, data.draw)
        ttl = data.draw(st.sampled_from([ttl, 255, 254, 1]))
        verdict = speaker.receive(Received(src, dst, ttl, payload))  # type: ignore[attr-defined]
        assert type(verdict).__name__ in ("Accepted", "Dropped"), verdict


def test_a_mutated_checksum_is_never_accepted() -> None:
    _needs_vectors()
    for speaker, family in _speakers():
        for _version, fam, src, dst, ttl, payload in CAPTURED:
            if fam != family:
                continue
            broken = (
                payload[:6]
                + struct.pack("!H", int.from_bytes(payload[6:8], "big") ^ 0x5A5A)
                + payload[8:]
            )
            verdict = speaker.receive(Received(src, dst, ttl, broken))  # type: ignore[attr-defined]
            assert type(verdict).__name__ == "Dropped", verdict
