"""The VRRP speaker's wire checks and bytes, and its configuration, without a network."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import struct
import time
from pathlib import Path

import pytest

from ifvip.daemon.runtime import Group
from ifvip.daemon.settings import ConfigProblems, vip_lifetime
from ifvip.daemon.speaker import Accepted, Dropped
from ifvip.daemon.transport import Received
from ifvip.daemon.vrrp.config import VrrpConfig, build_vrrp_group, link_local_first
from ifvip.daemon.vrrp.notify import run_notify
from ifvip.daemon.vrrp.speaker import VrrpSpeaker, ipv6_frame
from ifvip.election.events import Shutdown, Start
from ifvip.election.vrrp import Notify, SendVrrpAdvert, VrrpAdvertReceived
from ifvip.wire.carp import CarpAdvert
from ifvip.wire.pcap import read_pcap
from ifvip.wire.vrrp import ChecksumForm, Vrrp3Advert
from tests.conftest import SHARED

VECTORS = SHARED / "vectors"
A, B = "198.51.100.1", "198.51.100.2"


def config(**kw: object) -> VrrpConfig:
    base: dict[str, object] = {
        "interface": "eth0",
        "srcip": B,
        "vrid": "51",
        "vips": ["198.51.100.100/24"],
        "version": "3",
    }
    base.update(kw)
    return build_vrrp_group(**base)  # type: ignore[arg-type]


def packets(name: str) -> list[Received]:
    path = VECTORS / name
    if not path.exists():
        pytest.skip(f"vector {path} not beside the checkout")
    found = []
    for frame in read_pcap(path.read_bytes()):
        ip = frame.payload
        if frame.ethertype == 0x0800 and ip[9] == 112:
            total = struct.unpack_from("!H", ip, 2)[0]
            found.append(
                Received(
                    ipaddress.IPv4Address(ip[12:16]),
                    ipaddress.IPv4Address(ip[16:20]),
                    ip[8],
                    ip[20:total],
                )
            )
        elif frame.ethertype == 0x86DD and ip[6] == 112:
            length = struct.unpack_from("!H", ip, 4)[0]
            found.append(
                Received(
                    ipaddress.IPv6Address(ip[8:24]),
                    ipaddress.IPv6Address(ip[24:40]),
                    ip[7],
                    ip[40 : 40 + length],
                )
            )
    return found


def test_captured_keepalived_v3_adverts_are_accepted() -> None:
    speaker = VrrpSpeaker(config())
    verdicts = [speaker.receive(p) for p in packets("ka227-v3-ipv4-mcast-failover.pcap")]
    from_a = [v for v in verdicts if isinstance(v, Accepted)]
    assert from_a and all(str(v.src) == A for v in from_a)
    event = from_a[0].events[0]
    assert isinstance(event, VrrpAdvertReceived)
    assert (event.priority, event.max_adver_int_cs) == (100, 100)
    # B's own adverts in the same capture are ours here.
    assert Dropped("own") in verdicts


def test_ipv6_adverts_are_checked_against_the_group_pseudo_header() -> None:
    speaker = VrrpSpeaker(
        config(srcip="fe80::ff:fe00:b", vips=["fe80::5e:51/64", "2001:db8::51/64"])
    )
    verdicts = [speaker.receive(p) for p in packets("ka227-v3-ipv6-mcast.pcap")]
    assert any(isinstance(v, Accepted) for v in verdicts)
    assert all(isinstance(v, Accepted) or v == Dropped("own") for v in verdicts)


def test_the_injected_bad_packets_are_refused_like_keepalived() -> None:
    speaker = VrrpSpeaker(config(version="2", auth_pass="secret12", srcip=A))
    reasons = [
        v.reason
        for v in map(speaker.receive, packets("ka227-v2-pass-preempt-and-injected-bad.pcap"))
        if isinstance(v, Dropped)
    ]
    # 2 VIPs, another VIP, interval 2 s, wrong password, TTL 64, 4 trailing bytes, auth none.
    for reason in ("addresses", "interval", "auth", "ttl", "malformed"):
        assert reason in reasons
    assert reasons.count("auth") == 2 and reasons.count("addresses") == 2


def test_messages_name_the_values_but_never_the_password() -> None:
    speaker = VrrpSpeaker(config(version="2", auth_pass="secret12", srcip=A))
    messages = [
        str(v.message)
        for v in map(speaker.receive, packets("ka227-v2-pass-preempt-and-injected-bad.pcap"))
        if isinstance(v, Dropped) and v.message
    ]
    text = "\n".join(messages)
    assert "invalid TTL/HL. Received 64 and expect 255" in text
    assert "received an invalid passwd!" in text
    assert "received a 0 auth, expecting 1!" in text
    assert "advertisement interval mismatch mine=1 sec rcv'd=2 sec" in text
    assert "secret12" not in text and "wrongpw" not in text
    assert "secret12" not in repr(speaker.config)


def test_a_carp_packet_is_never_taken_for_vrrpv2() -> None:
    carp = CarpAdvert.build(
        vhid=51, advskew=0, advbase=1, counter=1, password=b"x", vip="198.51.100.100"
    ).encode()
    speaker = VrrpSpeaker(config(version="2", srcip=A))
    packet = Received(ipaddress.IPv4Address(B), ipaddress.IPv4Address("224.0.0.18"), 255, carp)
    verdict = speaker.receive(packet)
    assert isinstance(verdict, Dropped) and verdict.reason == "malformed"


def test_unicast_mode_refuses_multicast_and_skips_the_ttl_check() -> None:
    speaker = VrrpSpeaker(config(srcip=B, unicast_peers=[A, B]))
    assert speaker.config.unicast_peers == (ipaddress.IPv4Address(A),)  # own filtered out
    assert not speaker.channel.join
    for p in packets("ka227-v3-ipv4-mcast-failover.pcap")[:1]:
        verdict = speaker.receive(p)
        assert isinstance(verdict, Dropped) and verdict.reason == "mode"
    unicast = packets("ka227-v3-ipv4-unicast-0.5s.pcap")[0]
    hop = Received(unicast.src, unicast.dst, 64, unicast.payload)
    assert isinstance(speaker.receive(hop), Accepted)


def test_ipv6_unicast_adverts_leave_from_the_link_local_source_and_verify_at_the_peer() -> None:
    v6 = {"vips": ["fe80::5e:51/64", "2001:db8::51/64"], "version": "3"}
    # One peer list for every node: our link-local source and our global address go.
    ours = VrrpSpeaker(
        config(
            srcip="fe80::1",
            unicast_peers=["fe80::1", "2001:db8::1", "2001:db8::2"],
            own=["2001:db8::1", "fe80::1"],
            **v6,
        )
    )
    peer = ipaddress.IPv6Address("2001:db8::2")
    assert ours.config.unicast_peers == (peer,)
    assert not ours.channel.join and ours.channel.source == "fe80::1"
    out = ours.outgoing(SendVrrpAdvert(100, 100, peer), "02:00:00:00:00:0a")
    # Through the kernel socket (its source named in IPV6_PKTINFO), not a multicast frame.
    assert out is not None and out.frame is None and out.destination == str(peer)
    theirs = VrrpSpeaker(config(srcip="fe80::2", unicast_peers=["2001:db8::1"], **v6))
    src = ipaddress.IPv6Address("fe80::1")
    verdict = theirs.receive(Received(src, peer, 255, out.payload))
    assert isinstance(verdict, Accepted), verdict
    # The checksum covers the source: from a VIP (what the kernel might pick) it fails.
    vip = ipaddress.IPv6Address("fe80::5e:51")
    refused = theirs.receive(Received(vip, peer, 255, out.payload))
    assert isinstance(refused, Dropped) and refused.reason == "malformed"
    # A unicast group hears no multicast, whatever the family.
    group = ipaddress.IPv6Address("ff02::12")
    mode = theirs.receive(Received(src, group, 255, out.payload))
    assert isinstance(mode, Dropped) and mode.reason == "mode"


def test_adverts_are_keepalived_bytes() -> None:
    speaker = VrrpSpeaker(config(srcip=A))
    out = speaker.outgoing(SendVrrpAdvert(100, 100), "02:00:00:00:00:0a")
    assert out is not None and out.frame is None
    assert out.payload.hex() == "313364010064350bc6336464" and out.destination == "224.0.0.18"
    peer = ipaddress.IPv4Address(B)
    uni = speaker.outgoing(SendVrrpAdvert(100, 50, peer), "02:00:00:00:00:0a")
    assert uni is not None and uni.destination == B
    v2 = VrrpSpeaker(config(srcip=A, version="2", auth_pass="secret12"))
    sent = v2.outgoing(SendVrrpAdvert(100, 100), "02:00:00:00:00:0a")
    assert sent is not None and sent.payload.hex() == "213364010101e1b3c63364647365637265743132"
    rfc = VrrpSpeaker(config(srcip=A, checksum="message-only"))
    sent = rfc.outgoing(SendVrrpAdvert(100, 100), "02:00:00:00:00:0a")
    assert sent is not None and sent.payload[6:8].hex() == "3fcf"


def test_ipv6_adverts_leave_as_keepalived_frames_from_the_link_local_address() -> None:
    speaker = VrrpSpeaker(
        config(srcip="fe80::ff:fe00:a", vips=["fe80::5e:51/64", "2001:db8::51/64"])
    )
    out = speaker.outgoing(SendVrrpAdvert(100, 100), "02:00:00:00:00:0a")
    assert out is not None and out.frame is not None
    captured = next(
        f.data
        for f in read_pcap((VECTORS / "ka227-v3-ipv6-mcast.pcap").read_bytes())
        if f.ethertype == 0x86DD and f.payload[6] == 112
    )
    # Identical except the kernel's flow label in keepalived's frame.
    assert out.frame[:15] == captured[:15] and out.frame[18:] == captured[18:]
    assert out.frame[14] >> 4 == 6 and (out.frame[14] & 0x0F, out.frame[15] >> 4) == (0xC, 0)


def test_announcements_are_keepalived_garps_and_nas() -> None:
    speaker = VrrpSpeaker(config(srcip=A))
    mac = "02:db:00:00:00:11"
    (garp,) = speaker.announcements(mac, [ipaddress.IPv4Address("198.51.100.100")])
    captured = {
        f.data[:42]
        for f in read_pcap((VECTORS / "keepalived-vrrp3-vrid51.pcap").read_bytes())
        if f.ethertype == 0x0806
    }
    assert captured == {garp}


def test_notify_actions_are_queued_not_sent() -> None:
    speaker = VrrpSpeaker(config(srcip=A))
    assert speaker.outgoing(Notify("MASTER", 100), "02:00:00:00:00:0a") is None


def test_notify_script_gets_keepalived_arguments(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    script = tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {out}\n')
    script.chmod(0o755)

    async def calls() -> None:
        speaker = VrrpSpeaker(config(srcip=A, notify=[str(script)], instance="web"))
        for state in ("BACKUP", "MASTER", "STOP"):
            speaker.outgoing(Notify(state, 100), "02:00:00:00:00:0a")
        await speaker.drain()
        await run_notify(str(tmp_path / "missing"), "web", "FAULT", 1, "vrid 51")

    asyncio.run(calls())
    assert out.read_text().splitlines() == [
        "INSTANCE web BACKUP 100",
        "INSTANCE web MASTER 100",
        "INSTANCE web STOP 100",
    ]


def test_a_notify_script_that_runs_over_is_killed_with_what_it_started(tmp_path: Path) -> None:
    """The kill reaches the script's whole process group, as for -u/-d and check scripts."""
    pidfile = tmp_path / "child"
    script = tmp_path / "notify.sh"
    script.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {pidfile}\nwait\n")
    script.chmod(0o755)
    asyncio.run(run_notify(str(script), "web", "MASTER", 100, "vrid 51", timeout=0.5))
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:  # killed: gone or a zombie
        time.sleep(0.05)
    alive = _alive(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


class _NoRole:
    def addresses(self) -> list[object]:
        return []

    async def backup(self, initial: bool) -> None:
        return None


def test_adverts_the_election_discards_are_counted_by_reason() -> None:
    """Past the speaker's checks, the machine may still refuse an advert: not running yet,
    or a lower priority a preempting backup ignores. Each is counted as dropped_<reason>."""
    vip = ipaddress.IPv4Address("198.51.100.100")
    lower = VrrpAdvertReceived(ipaddress.IPv4Address(A), 50, 100, (vip,))

    async def main() -> dict[str, int]:
        group = Group(VrrpSpeaker(config(priority="100")), _NoRole(), kernel=None)  # type: ignore[arg-type]
        group.feed(lower)  # INIT: not running
        group.feed(Start())
        group.feed(lower)  # BACKUP, preempting: discarded, the down timer runs out
        counters = dict(group.counters)
        group.feed(Shutdown())
        return counters

    counters = asyncio.run(main())
    assert counters["dropped_not_running"] == 1
    assert counters["dropped_lower_priority"] == 1


# ------------------------------------------------------------------ configuration


def test_keepalived_defaults_and_units() -> None:
    c = config(version=None)
    assert (c.version, c.advert_int_cs, c.priority, c.preempt) == (2, 100, 100, True)
    six = config(version=None, srcip="fe80::1", vips=["2001:db8::51/64"])
    assert six.version == 3 and six.group == ipaddress.IPv6Address("ff02::12")
    assert link_local_first(six) is not None
    assert config(advert_int="0.01").advert_int_cs == 1
    assert config(advert_int="40.95").advert_int_cs == 4095
    assert vip_lifetime(config(advert_int="0.1")) == 2
    assert vip_lifetime(config(lifetime="0")) is None
    assert config().checksum is ChecksumForm.PSEUDO_HEADER


@pytest.mark.parametrize(
    ("text", "cs"), [("0.07", 7), ("0.29", 29), (".5", 50), ("3.", 300), ("40.950", 4095)]
)
def test_intervals_are_read_exactly(text: str, cs: int) -> None:
    """Decimal text, not a float: 0.07 s is 7 cs (float: 7.000000000000001, refused)."""
    assert config(advert_int=text).advert_int_cs == cs


@pytest.mark.parametrize("text", ["1e0", "+1", "-1", "inf", "nan", "1.2.3", ".", "", "1 "])
def test_intervals_are_plain_decimals_as_keepalived_reads_them(text: str) -> None:
    with pytest.raises(ConfigProblems) as caught:
        config(advert_int=text)
    assert caught.value.problems == [f"--advert-int: '{text}' is not a number of seconds"]


def test_delays_keep_their_fraction() -> None:
    c = config(preempt_delay="2.5", garp_master_delay="0.25", garp_master_refresh="60")
    assert (c.preempt_delay, c.garp_master_delay, c.garp_master_refresh) == (2.5, 0.25, 60.0)
    assert config(version="2", advert_int="2.00").advert_int_cs == 200


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"vrid": "0"}, "--vrid: 0 is out of range 1..255"),
        ({"vrid": None}, "--vrid: the virtual router id is required"),
        ({"priority": "256"}, "--priority: 256 is out of range 1..255"),
        ({"version": "2", "advert_int": "0.5"}, "VRRPv2 intervals are whole seconds"),
        ({"version": "2", "advert_int": "256"}, "VRRPv2 intervals are whole seconds"),
        ({"preempt_delay": "1000.5"}, "--preempt-delay: 1000.5 is over 1000 s"),
        ({"advert_int": "0.005"}, "VRRPv3 intervals are 0.01..40.95 s"),
        ({"advert_int": "41"}, "VRRPv3 intervals are 0.01..40.95 s"),
        ({"auth_pass": "secret"}, "VRRPv3 has no authentication"),
        ({"version": "2", "auth_pass": "123456789"}, "longer than 8 bytes"),
        ({"nopreempt": True, "preempt_delay": "5"}, "incompatible with --nopreempt"),
        ({"vips": []}, "at least one virtual address"),
        ({"vips": ["198.51.100.100/24", "2001:db8::1/64"]}, "one family per instance"),
        ({"srcip": None}, "--srcip: no source address"),
        ({"unicast_peers": ["2001:db8::1"]}, "not of the VIPs' family"),
        ({"vips": ["2001:db8::1/64"], "version": "2", "srcip": "fe80::1"}, "IPv4 only"),
        ({"checksum": "crc"}, "not pseudo-header or message-only"),
        ({"interface": "an-interface-name-too-long"}, "longer than 15 bytes"),
    ],
)
def test_problems_name_their_option(options: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigProblems) as caught:
        config(**options)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigProblems) as caught:
        config(vrid="300", priority="0", advert_int="x")
    assert len(caught.value.problems) == 3


def test_vrrp3_advert_from_config_round_trips() -> None:
    c = config(srcip=A)
    advert = VrrpSpeaker(c).build(200)
    assert isinstance(advert, Vrrp3Advert) and advert.addresses == c.addresses()
    assert (
        len(
            ipv6_frame(
                "02:00:00:00:00:01",
                ipaddress.IPv6Address("fe80::1"),
                ipaddress.IPv6Address("ff02::12"),
                b"x" * 12,
            )
        )
        == 14 + 40 + 12
    )


def test_status_facts() -> None:
    from ifvip.election.events import Start

    speaker = VrrpSpeaker(config(srcip=A, priority="150"))
    machine, _ = speaker.step(speaker.initial(), Start(), 0.0)
    facts = speaker.status_facts(machine)
    assert facts["protocol"] == "vrrp" and facts["priority"] == 150
    assert facts["advert_interval"] == 1.0 and facts["vips"] == ("198.51.100.100/24",)
    assert facts["master_down_interval"] == pytest.approx(3 + (256 - 150) / 256)
    assert speaker.state == "BACKUP"


def test_protocol_timers_are_armed_early_and_fire_at_their_deadline() -> None:
    import time as clock

    from ifvip.election.events import ArmTimer, Start, Timer, TimerFired

    speaker = VrrpSpeaker(config(srcip=A, advert_int="0.01"))
    start = clock.monotonic()
    machine, actions = speaker.step(speaker.initial(), Start(), start)
    (armed,) = [a for a in actions if isinstance(a, ArmTimer)]
    deadline = start + 0.036093  # Master_Down_Interval at 10 ms, priority 100
    assert armed.deadline == pytest.approx(deadline - 0.0036093)  # a tenth of it, <= 4 ms
    machine, actions = speaker.step(machine, TimerFired(Timer.MASTER_DOWN), armed.deadline)
    (advert,) = [a for a in actions if isinstance(a, ArmTimer) and a.timer is Timer.ADVERT]
    # The next advert counts from the deadline, not from the early wake-up.
    assert advert.deadline == pytest.approx(deadline + 0.01 - 0.001)
