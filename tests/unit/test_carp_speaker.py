"""The CARP speaker at the protocol seam: ucarp's receive checks, adverts, announcements."""

from __future__ import annotations

import ipaddress

from ifvip.daemon.carp.config import build_carp_group
from ifvip.daemon.carp.speaker import CarpSpeaker
from ifvip.daemon.speaker import Accepted, Dropped
from ifvip.daemon.transport import Received
from ifvip.election.carp import AdvertReceived, SendAdvert, State
from ifvip.election.events import Start
from ifvip.wire.carp import CarpAdvert

GROUP = ipaddress.IPv4Address("224.0.0.18")
PEER = ipaddress.IPv4Address("198.51.100.2")


def _speaker(**extra: object) -> CarpSpeaker:
    config = build_carp_group(
        interface="eth0",
        srcip="198.51.100.1",
        vhid="42",
        password="secret",
        passfile=None,
        addr="198.51.100.100",
        **extra,  # type: ignore[arg-type]
    )
    return CarpSpeaker(config)


def _advert(password: bytes = b"secret", vhid: int = 42, counter: int = 5007) -> bytes:
    return CarpAdvert.build(
        vhid=vhid, advskew=50, advbase=1, counter=counter, password=password, vip="198.51.100.100"
    ).encode()


def _packet(payload: bytes, *, src: ipaddress.IPv4Address = PEER, ttl: int = 255) -> Received:
    return Received(src, GROUP, ttl, payload)


def test_each_bad_packet_is_dropped_with_its_reason() -> None:
    speaker = _speaker()
    cases = {
        "own": _packet(_advert(), src=ipaddress.IPv4Address("198.51.100.1")),
        "ttl": _packet(_advert(), ttl=64),
        "malformed": _packet(_advert()[:20]),
        "vhid": _packet(_advert(vhid=7)),
        "auth": _packet(_advert(password=b"other")),
    }
    for reason, packet in cases.items():
        verdict = speaker.receive(packet)
        assert isinstance(verdict, Dropped) and verdict.reason == reason, reason
    auth = speaker.receive(cases["auth"])
    assert isinstance(auth, Dropped) and auth.message and "other" not in auth.message
    wrong_group = Received(PEER, ipaddress.IPv4Address("224.0.0.19"), 255, _advert())
    assert speaker.receive(wrong_group) == Dropped("group")


def test_a_valid_advert_becomes_an_event_and_its_counter_is_adopted_then_incremented() -> None:
    speaker = _speaker()
    verdict = speaker.receive(_packet(_advert(counter=5007)))
    assert verdict == Accepted((AdvertReceived(PEER, 1, 50),), PEER)
    out = speaker.outgoing(SendAdvert(1, 0), "02:00:00:00:01:01")
    assert out is not None and out.frame is None and out.destination == "224.0.0.18"
    sent = CarpAdvert.decode(out.payload)
    assert sent.counter == 5008 and sent.verify(b"secret", "198.51.100.100")


def test_forged_mac_and_broadcast_adverts_are_whole_frames() -> None:
    out = _speaker(forge_mac=True).outgoing(SendAdvert(1, 0), "02:00:00:00:01:01")
    assert out is not None and out.frame is not None
    assert out.frame[:12] == bytes.fromhex("01005e00001200005e00002a")
    out = _speaker(nomcast=True).outgoing(SendAdvert(1, 0), "02:00:00:00:01:01")
    assert out is not None and out.frame is not None and out.frame[:6] == b"\xff" * 6
    assert _speaker().outgoing(Start(), "02:00:00:00:01:01") is None


def test_machine_and_announcements() -> None:
    speaker = _speaker()
    machine = speaker.initial()
    machine, _ = speaker.step(machine, Start(), 0.0)
    assert speaker.state_of(machine) == str(State.BACKUP) == "BACKUP"
    frames = speaker.announcements(
        "02:00:00:00:01:01",
        [ipaddress.ip_address("198.51.100.100"), ipaddress.ip_address("2001:db8::1")],
    )
    assert len(frames) == 1 and frames[0][12:14] == b"\x08\x06"
