"""ifvip's VRRP speaker beside the real keepalived 2.2.7 (Debian), in namespaces (issue 5).

For VRRPv3 over IPv4, VRRPv3 over IPv6 (VIPs fe80::5e:51 and 2001:db8::51) and VRRPv2 with
PASS: ifvip as MASTER with keepalived as BACKUP and the reverse. keepalived's own status dump
(SIGUSR1 → keepalived.data) must name ifvip as the master when it is; kill -9 of the master
moves the VIP within Master_Down_Interval; a graceful stop moves it within Skew_Time; a third
host sees the gratuitous ARP / unsolicited NA from the new master's MAC; and keepalived logs no
complaint about any packet of ifvip's. Hosts: h1 .1, h2 .2, h3 .3 (the observer).
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ifvip.election.vrrp import master_down_interval_us, skew_time_us
from tests.interop.keepalived_lab import (
    VIP4,
    VIP6,
    Instance,
    KeepalivedLab,
    until,
)
from tests.programs import INTEROP, NEEDS_KEEPALIVED

pytestmark = [*INTEROP, NEEDS_KEEPALIVED]

MARGIN = 1.0  # seconds of slack for a loaded 2-core machine on top of the protocol's times
START = 10.0  # generous bound for a daemon to come up

VARIANTS = {
    "v3-ipv4": Instance(version=3, family=4),
    "v3-ipv6": Instance(version=3, family=6),
    "v2-pass": Instance(version=2, family=4, auth_pass="secret12"),
}

# The observer: every gratuitous ARP / unsolicited NA for a VIP, as "seconds MAC" lines.
SNIFFER = """
import socket, struct, sys, time
vips = {socket.inet_pton(socket.AF_INET6 if ':' in v else socket.AF_INET, v) for v in sys.argv[1:]}
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("eth0", 0))
while True:
    frame = s.recv(2048)
    kind = frame[12:14]
    if kind == b"\\x08\\x06" and frame[20:22] == b"\\x00\\x01":
        spa, tpa = frame[28:32], frame[38:42]
        if spa == tpa and spa in vips:
            print(time.monotonic(), frame[22:28].hex(":"), "GARP", flush=True)
    elif kind == b"\\x86\\xdd" and frame[20] == 58 and frame[54] == 136:
        if frame[62:78] in vips:
            print(time.monotonic(), frame[6:12].hex(":"), "NA", flush=True)
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[KeepalivedLab]:
    with KeepalivedLab(["h1", "h2", "h3"], tmp_path) as built:
        yield built


class Observer:
    def __init__(self, lab: KeepalivedLab, inst: Instance) -> None:
        self.path = lab.workdir / "observer.log"
        vips = [VIP4] if inst.family == 4 else [VIP6]
        with open(self.path, "ab") as out:
            lab.lab.run("h3", [sys.executable, "-c", SNIFFER, *vips], stdout=out)

    def macs(self, since: float = 0.0) -> list[str]:
        lines = [line.split() for line in self.path.read_text().splitlines()]
        return [mac for at, mac, _kind in lines if float(at) >= since]


def vip_of(inst: Instance) -> str:
    return VIP4 if inst.family == 4 else VIP6


def own_address(lab: KeepalivedLab, host: str, inst: Instance) -> str:
    return lab.address(host) if inst.family == 4 else lab.link_local(host)


def skew(inst: Instance, priority: int) -> float:
    return skew_time_us(inst.version, priority, round(inst.advert_int * 100)) / 1e6


def master_down(inst: Instance, priority: int) -> float:
    return master_down_interval_us(inst.version, priority, round(inst.advert_int * 100)) / 1e6


def no_complaints(*logs: str) -> None:
    for text in logs:
        bad = [
            line
            for line in text.splitlines()
            if any(
                word in line.lower()
                for word in ("invalid", "bogus", "wrong version", "mismatch", "unexpected")
            )
        ]
        assert not bad, bad


@pytest.mark.parametrize("variant", VARIANTS)
def test_ifvip_master_keepalived_backup_then_graceful_stop(
    lab: KeepalivedLab, variant: str
) -> None:
    inst = VARIANTS[variant]
    vip = vip_of(inst)
    observer = Observer(lab, inst)
    ours = lab.ifvip("h1", inst, priority=200)
    until(lambda: lab.holds("h1", vip), START + master_down(inst, 200), "ifvip MASTER")
    ka = lab.keepalived("h2", inst, priority=100)
    until(lambda: "Entering BACKUP STATE" in ka.log, START, "keepalived BACKUP")
    # Past keepalived's own Master_Down_Interval: it hears ifvip and stays BACKUP.
    time.sleep(master_down(inst, 100) + MARGIN)
    assert ka.state() == "BACKUP"
    assert ka.master_router() == own_address(lab, "h1", inst)
    assert "Entering MASTER STATE" not in ka.log
    assert lab.holds("h1", vip) and not lab.holds("h2", vip)
    assert lab.mac("h1") in observer.macs()
    # Graceful stop: priority 0, and keepalived takes over after its Skew_Time.
    stopped = time.monotonic()
    ours.stop(signal.SIGTERM)
    took = until(lambda: lab.holds("h2", vip), START, "keepalived takes over")
    took = time.monotonic() - stopped
    assert took < skew(inst, 100) + MARGIN, took
    assert "Backup received priority 0 advertisement" in ka.log
    assert not lab.holds("h1", vip)
    until(lambda: lab.mac("h2") in observer.macs(stopped), 2, "observer sees keepalived")
    no_complaints(ka.log)
    assert "secret12" not in ours.log


@pytest.mark.parametrize("variant", VARIANTS)
def test_keepalived_master_ifvip_backup_then_kill_9(lab: KeepalivedLab, variant: str) -> None:
    inst = VARIANTS[variant]
    vip = vip_of(inst)
    observer = Observer(lab, inst)
    ka = lab.keepalived("h1", inst, priority=200, state="MASTER")
    until(lambda: "Entering MASTER STATE" in ka.log, START + master_down(inst, 200), "ka MASTER")
    until(lambda: lab.holds("h1", vip), START, "keepalived holds the VIP")
    ours = lab.ifvip("h2", inst, priority=100)
    time.sleep(master_down(inst, 100) + MARGIN)
    assert lab.holds("h1", vip) and not lab.holds("h2", vip), ours.log
    assert "MASTER" not in _transitions(ours.log), ours.log
    assert ka.state() == "MASTER"
    no_complaints(ka.log)
    killed = time.monotonic()
    ka.stop(signal.SIGKILL)
    until(lambda: lab.holds("h2", vip), START, "ifvip takes over")
    took = time.monotonic() - killed
    assert took < master_down(inst, 100) + MARGIN, took
    until(lambda: lab.mac("h2") in observer.macs(killed), 2, "observer sees ifvip's announce")


@pytest.mark.parametrize("variant", VARIANTS)
def test_kill_9_of_ifvip_master_moves_the_vip_to_keepalived(
    lab: KeepalivedLab, variant: str
) -> None:
    inst = VARIANTS[variant]
    vip = vip_of(inst)
    ours = lab.ifvip("h1", inst, priority=200)
    until(lambda: lab.holds("h1", vip), START + master_down(inst, 200), "ifvip MASTER")
    ka = lab.keepalived("h2", inst, priority=100)
    time.sleep(master_down(inst, 100) + MARGIN)
    assert ka.state() == "BACKUP"
    killed = time.monotonic()
    ours.stop(signal.SIGKILL)
    until(lambda: lab.holds("h2", vip), START, "keepalived takes over")
    took = time.monotonic() - killed
    assert took < master_down(inst, 100) + MARGIN, took
    no_complaints(ka.log)


@pytest.mark.parametrize("variant", VARIANTS)
def test_graceful_keepalived_stop_moves_the_vip_to_ifvip_within_skew(
    lab: KeepalivedLab, variant: str
) -> None:
    inst = VARIANTS[variant]
    vip = vip_of(inst)
    ka = lab.keepalived("h1", inst, priority=200, state="MASTER")
    until(lambda: lab.holds("h1", vip), START + master_down(inst, 200), "keepalived MASTER")
    ours = lab.ifvip("h2", inst, priority=100)
    time.sleep(master_down(inst, 100) + MARGIN)
    assert not lab.holds("h2", vip), ours.log
    stopped = time.monotonic()
    ka.stop(signal.SIGTERM)
    until(lambda: lab.holds("h2", vip), START, "ifvip takes over")
    took = time.monotonic() - stopped
    assert took < skew(inst, 100) + MARGIN, took
    no_complaints(ka.log)


def test_ifvip_preempts_a_lower_keepalived_master_and_keepalived_says_so(
    lab: KeepalivedLab,
) -> None:
    inst = VARIANTS["v3-ipv4"]
    ka = lab.keepalived("h1", inst, priority=100)
    until(lambda: lab.holds("h1", VIP4), START + master_down(inst, 100), "keepalived MASTER")
    lab.ifvip("h2", inst, priority=200)
    # ifvip discards the lower adverts and takes over after its own Master_Down_Interval.
    until(lambda: lab.holds("h2", VIP4), START + master_down(inst, 200), "ifvip preempts")
    until(lambda: not lab.holds("h1", VIP4), START, "keepalived releases")
    # keepalived names the new master once it has taken in ifvip's next advert.
    until(lambda: ka.master_router() == lab.address("h2"), 3, "keepalived names ifvip")
    assert ka.state() == "BACKUP"
    assert "higher priority" in ka.log or "Entering BACKUP STATE" in ka.log
    no_complaints(ka.log)


def _transitions(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if " -> " in line)


def test_unicast_peers_both_ways(lab: KeepalivedLab) -> None:
    inst = Instance(version=3, family=4, advert_int=0.5, unicast=True)
    a, b = lab.address("h1"), lab.address("h2")
    # ifvip's peer list holds both addresses: its own is filtered out.
    ours = lab.ifvip("h1", inst, "--unicast-peer", a, "--unicast-peer", b, priority=200)
    until(lambda: lab.holds("h1", VIP4), START + master_down(inst, 200), "ifvip MASTER")
    ka = lab.keepalived("h2", inst, priority=100, unicast_src=b, unicast_peers=[a])
    time.sleep(master_down(inst, 100) + MARGIN)
    assert ka.state() == "BACKUP" and ka.master_router() == a
    assert not lab.holds("h2", VIP4)
    stopped = time.monotonic()
    ours.stop(signal.SIGTERM)
    until(lambda: lab.holds("h2", VIP4), START, "keepalived takes over")
    assert time.monotonic() - stopped < skew(inst, 100) + MARGIN
    # And back: a fresh ifvip of higher priority preempts keepalived over unicast.
    lab.ifvip("h1", inst, "--unicast-peer", b, priority=200)
    until(lambda: lab.holds("h1", VIP4), START + master_down(inst, 200), "ifvip preempts")
    until(lambda: ka.master_router() == a, 3, "keepalived names ifvip")
    no_complaints(ka.log)
    assert "old version" not in ka.log  # no fallback to the pre-1.3.6 unicast checksum


def test_100ms_adverts_v3_kill_9_and_graceful(lab: KeepalivedLab) -> None:
    inst = Instance(version=3, family=4, advert_int=0.1)
    ours = lab.ifvip("h1", inst, priority=200)
    until(lambda: lab.holds("h1", VIP4), START, "ifvip MASTER")
    ka = lab.keepalived("h2", inst, priority=100)
    until(lambda: "Entering BACKUP STATE" in ka.log, START, "keepalived BACKUP")
    time.sleep(master_down(inst, 100) + MARGIN)
    assert ka.state() == "BACKUP" and "Entering MASTER STATE" not in ka.log
    killed = time.monotonic()
    ours.stop(signal.SIGKILL)
    until(lambda: lab.holds("h2", VIP4), START, "keepalived takes over")
    assert time.monotonic() - killed < master_down(inst, 100) + MARGIN
    # keepalived master, ifvip backup at 100 ms; keepalived stops gracefully.
    back = lab.ifvip("h1", inst, priority=50)
    time.sleep(master_down(inst, 50) + MARGIN)
    assert not lab.holds("h1", VIP4), back.log
    stopped = time.monotonic()
    ka.stop(signal.SIGTERM)
    until(lambda: lab.holds("h1", VIP4), START, "ifvip takes over")
    assert time.monotonic() - stopped < skew(inst, 50) + MARGIN
    no_complaints(ka.log)


def test_notify_hooks_get_keepalived_arguments_in_order(lab: KeepalivedLab) -> None:
    inst = VARIANTS["v3-ipv4"]
    calls = lab.workdir / "notify.calls"
    script = lab.workdir / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    script.chmod(0o755)
    ours = lab.ifvip("h1", inst, "--notify", str(script), priority=200)
    until(lambda: lab.holds("h1", VIP4), START + master_down(inst, 200), "ifvip MASTER")
    until(lambda: calls.exists() and "MASTER" in calls.read_text(), 5, "notify MASTER")
    ours.stop(signal.SIGTERM)
    assert calls.read_text().splitlines() == [
        "INSTANCE VI_51 BACKUP 200",
        "INSTANCE VI_51 MASTER 200",
        "INSTANCE VI_51 STOP 200",
    ]


def test_nopreempt_ifvip_stays_backup_under_a_lower_keepalived_master(lab: KeepalivedLab) -> None:
    inst = VARIANTS["v3-ipv4"]
    ka = lab.keepalived("h1", inst, priority=100)
    until(lambda: lab.holds("h1", VIP4), START + master_down(inst, 100), "keepalived MASTER")
    ours = lab.ifvip("h2", inst, "--nopreempt", priority=200)
    time.sleep(2 * master_down(inst, 200) + MARGIN)
    assert not lab.holds("h2", VIP4), ours.log
    assert ka.state() == "MASTER"
    no_complaints(ka.log)


def test_preempt_delay_then_ifvip_takes_over(lab: KeepalivedLab) -> None:
    inst = VARIANTS["v3-ipv4"]
    ka = lab.keepalived("h1", inst, priority=100)
    until(lambda: lab.holds("h1", VIP4), START + master_down(inst, 100), "keepalived MASTER")
    started = time.monotonic()
    ours = lab.ifvip("h2", inst, "--preempt-delay", "3", priority=200)
    until(lambda: lab.holds("h2", VIP4), START + 3 + master_down(inst, 200), "ifvip preempts")
    took = time.monotonic() - started
    # keepalived's rule: lower adverts are accepted for preempt_delay after the first one,
    # then discarded, so the takeover comes one Master_Down_Interval after the delay.
    assert took > 3 + master_down(inst, 200) - 1, (took, ours.log)
    until(lambda: ka.master_router() == lab.address("h2"), 3, "keepalived names ifvip")
    no_complaints(ka.log)


def test_10ms_adverts_keep_keepalived_backup(lab: KeepalivedLab) -> None:
    inst = Instance(version=3, family=4, advert_int=0.01)
    ours = lab.ifvip("h1", inst, priority=200)
    until(lambda: lab.holds("h1", VIP4), START, "ifvip MASTER")
    ka = lab.keepalived("h2", inst, priority=100)
    until(lambda: "Entering BACKUP STATE" in ka.log, START, "keepalived BACKUP")
    time.sleep(8)
    # Master_Down_Interval is 36 ms here: a stall of the loaded test machine may cost one
    # flap, never a lasting one.
    assert ka.log.count("Entering MASTER STATE") <= 1, ka.log
    assert ka.state() == "BACKUP" and ka.master_router() == lab.address("h1")
    stopped = time.monotonic()
    ours.stop(signal.SIGTERM)
    until(lambda: lab.holds("h2", VIP4), START, "keepalived takes over")
    assert time.monotonic() - stopped < skew(inst, 100) + MARGIN
    no_complaints(ka.log)
