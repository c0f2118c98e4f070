"""The hostile-LAN generator against the CARP receive checks, without a network.

Every generated packet goes through what the runtime does with a raw-socket read
(parse_ipv4, then the speaker's receive checks) for each member of the group: each must be
dropped with exactly the reason the generator names, and none accepted. The netns test
(test_hostile_lan.py) then does the same through real sockets and the daemon's counters.
"""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ifvip.daemon.carp.config import build_carp_group
from ifvip.daemon.transport import parse_ipv4
from ifvip.wire.carp import CarpAdvert
from tests.reliability._fuzz import fuzz
from tests.reliability.hostile import (
    KINDS,
    VRRP_KINDS,
    VRRP_REASONS,
    CarpHostile,
    Member,
    VrrpHostile,
    VrrpMember,
    ipv4_packet,
    tally,
)

speaker = pytest.importorskip("ifvip.daemon.speaker", reason="the daemon's speaker seam")
carp = pytest.importorskip("ifvip.daemon.carp.speaker", reason="the CARP speaker")

VIP = ipaddress.IPv4Address("198.51.100.100")
H1, H2 = ipaddress.IPv4Address("198.51.100.1"), ipaddress.IPv4Address("198.51.100.2")
ATTACKER = ipaddress.IPv4Address("198.51.100.3")


def _members(password: str = "secret", vhid: int = 42) -> list[Member]:
    return [Member(src, vhid, password.encode(), VIP) for src in (H1, H2)]


def _speakers(password: str = "secret", vhid: int = 42) -> list[object]:
    return [
        carp.CarpSpeaker(
            build_carp_group(
                interface="eth0",
                srcip=str(src),
                vhid=str(vhid),
                password=password,
                passfile=None,
                addr=str(VIP),
            )
        )
        for src in (H1, H2)
    ]


def _verdicts(generator: CarpHostile, count: int) -> tuple[list[Counter[str]], list[object]]:
    speakers = _speakers(generator.password.decode(), generator.vhid)
    seen: list[Counter[str]] = [Counter(), Counter()]
    packets = list(generator.stream(count))
    for hostile in packets:
        received = parse_ipv4(hostile.packet)
        assert received is not None, hostile
        for member, want in hostile.expect.items():
            verdict = speakers[member].receive(received)  # type: ignore[attr-defined]
            assert isinstance(verdict, speaker.Dropped), (hostile.kind, hostile.variant, verdict)
            assert verdict.reason == want, (hostile.kind, hostile.variant, verdict)
            seen[member][verdict.reason] += 1
    return seen, packets  # type: ignore[return-value]


def test_every_kind_is_dropped_with_the_reason_it_names() -> None:
    generator = CarpHostile(_members(), ATTACKER, seed=1)
    seen, packets = _verdicts(generator, 9 * 200)
    assert {p.kind for p in packets} == set(KINDS)  # type: ignore[attr-defined]
    expected = tally(packets, 2)  # type: ignore[arg-type]
    for member in range(2):
        assert {k: v for k, v in expected[member].items() if v} == dict(seen[member])
    # Every reason the receive path has is exercised.
    assert set(seen[0]) == {"own", "ttl", "malformed", "vhid", "group", "auth"}


@fuzz(60)
@given(
    seed=st.integers(0, 2**32 - 1),
    password=st.text(st.characters(codec="ascii", min_codepoint=33), min_size=1, max_size=19),
    vhid=st.integers(1, 255),
)
def test_any_group_any_seed(seed: int, password: str, vhid: int) -> None:
    _verdicts(CarpHostile(_members(password, vhid), ATTACKER, seed=seed), 90)


def test_packets_that_carry_a_valid_digest_advertise_the_fastest_timing() -> None:
    # So that a missing check shows as a transition in the netns test.
    generator = CarpHostile(_members(), ATTACKER, seed=2)
    for hostile in generator.stream(900, kinds=("wrong-ttl", "unicast")):
        received = parse_ipv4(hostile.packet)
        assert received is not None
        advert = CarpAdvert.decode(received.payload)
        assert advert.verify(b"secret", str(VIP))
        assert (advert.advbase, advert.advskew) == (0, 1)


def test_packets_fit_one_ethernet_frame_and_members_must_agree() -> None:
    generator = CarpHostile(_members(), ATTACKER, seed=3)
    assert max(len(h.packet) for h in generator.stream(2000)) <= 1500
    with pytest.raises(ValueError, match="share"):
        CarpHostile([*_members(), Member(ATTACKER, 7, b"x", VIP)], ATTACKER)


# ---------------------------------------------------------------- VRRP


def _vrrp_speakers(version: int, password: str | None) -> list[object]:
    vrrp = pytest.importorskip("ifvip.daemon.vrrp.speaker", reason="the VRRP speaker")
    config = pytest.importorskip("ifvip.daemon.vrrp.config", reason="the VRRP config builder")
    return [
        vrrp.VrrpSpeaker(
            config.build_vrrp_group(
                interface="eth0",
                srcip=str(src),
                vrid="51",
                vips=[f"{VIP}/24"],
                version=str(version),
                auth_pass=password,
            )
        )
        for src in (H1, H2)
    ]


@pytest.mark.parametrize(("version", "password"), [(2, "secret12"), (2, None), (3, None)])
def test_every_vrrp_kind_is_dropped_with_the_reason_it_names(
    version: int, password: str | None
) -> None:
    speakers = _vrrp_speakers(version, password)
    secret = password.encode() if password else None
    members = [VrrpMember(src, 51, (VIP,), version, secret) for src in (H1, H2)]
    packets = list(VrrpHostile(members, ATTACKER, seed=version).stream(9 * 150))
    seen: list[Counter[str]] = [Counter(), Counter()]
    for hostile in packets:
        received = parse_ipv4(hostile.packet)
        assert received is not None
        for member, want in hostile.expect.items():
            verdict = speakers[member].receive(received)  # type: ignore[attr-defined]
            assert isinstance(verdict, speaker.Dropped), (hostile.kind, hostile.variant, verdict)
            assert verdict.reason == want, (hostile.kind, hostile.variant, verdict)
            seen[member][verdict.reason] += 1
    expected = tally(packets, 2, VRRP_REASONS)
    for member in range(2):
        assert {k: v for k, v in expected[member].items() if v} == dict(seen[member])
    assert {p.kind for p in packets} == set(VRRP_KINDS)


def test_a_genuine_vrrp_advert_from_the_generator_is_accepted() -> None:
    # The control: the same body, from a third host, with TTL 255 to the group, passes.
    speakers = _vrrp_speakers(3, None)
    members = [VrrpMember(src, 51, (VIP,)) for src in (H1, H2)]
    generator = VrrpHostile(members, ATTACKER, seed=4)
    packet = ipv4_packet(ATTACKER, generator.group, generator._genuine())
    received = parse_ipv4(packet)
    assert received is not None
    assert type(speakers[0].receive(received)).__name__ == "Accepted"  # type: ignore[attr-defined]
