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

from ifvip.daemon.config import build_carp_group
from ifvip.daemon.hostile import KINDS, CarpHostile, Member, tally
from ifvip.daemon.transport import parse_ipv4
from ifvip.wire.carp import CarpAdvert
from tests.reliability._fuzz import fuzz

speaker = pytest.importorskip("ifvip.daemon.speaker", reason="the daemon's speaker seam")

VIP = ipaddress.IPv4Address("198.51.100.100")
H1, H2 = ipaddress.IPv4Address("198.51.100.1"), ipaddress.IPv4Address("198.51.100.2")
ATTACKER = ipaddress.IPv4Address("198.51.100.3")


def _members(password: str = "secret", vhid: int = 42) -> list[Member]:
    return [Member(src, vhid, password.encode(), VIP) for src in (H1, H2)]


def _speakers(password: str = "secret", vhid: int = 42) -> list[object]:
    return [
        speaker.CarpSpeaker(
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
