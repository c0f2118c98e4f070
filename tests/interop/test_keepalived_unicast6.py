"""VRRPv3 over IPv6 unicast beside the real keepalived 2.2.7 (`unicast_peer` with IPv6 peers).

ifvip sends each advert to each peer through its kernel socket with the interface's own
link-local address named as the source (IPV6_PKTINFO) and the checksum computed over it,
never from a VIP (fe80::5e:51 or 2001:db8::51), whatever the kernel's source selection would
pick once the VIPs are on the interface. Both directions of master/backup, kill -9 of the
master, and keepalived must log no complaint about any of ifvip's packets. Hosts: h1
(2001:db8::1), h2 (2001:db8::2); the peer list is the same on both nodes (own filtered).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ifvip.election.vrrp import master_down_interval_us
from tests.interop.keepalived_lab import (
    VIP6,
    VIP6_LL,
    Ifvip,
    Instance,
    Keepalived,
    KeepalivedLab,
    until,
)
from tests.programs import INTEROP, NEEDS_KEEPALIVED

pytestmark = [*INTEROP, NEEDS_KEEPALIVED]

MARGIN = 1.0  # seconds of slack for a loaded 2-core machine
START = 10.0
INST = Instance(version=3, family=6, advert_int=0.5, unicast=True)
PEERS = ("2001:db8::1", "2001:db8::2")  # h1, h2: one list for both nodes


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[KeepalivedLab]:
    with KeepalivedLab(["h1", "h2"], tmp_path) as built:
        yield built


def master_down(priority: int) -> float:
    return master_down_interval_us(3, priority, round(INST.advert_int * 100)) / 1e6


def no_complaints(text: str) -> None:
    words = ("invalid", "bogus", "wrong version", "mismatch", "unexpected", "old version")
    bad = [line for line in text.splitlines() if any(w in line.lower() for w in words)]
    assert not bad, bad


def ifvip(lab: KeepalivedLab, priority: int) -> Ifvip:
    peers = [a for peer in PEERS for a in ("--unicast-peer", peer)]
    return lab.ifvip("h1", INST, *peers, priority=priority)


def keepalived(lab: KeepalivedLab, priority: int) -> Keepalived:
    return lab.keepalived(
        "h2", INST, priority=priority, unicast_src=PEERS[1], unicast_peers=[PEERS[0]]
    )


def test_ifvip_master_keepalived_backup_kill_9_and_back(lab: KeepalivedLab) -> None:
    ours = ifvip(lab, 200)
    until(lambda: lab.holds("h1", VIP6), START + master_down(200), "ifvip MASTER")
    ka = keepalived(lab, 100)
    time.sleep(master_down(100) + MARGIN)
    assert ka.state() == "BACKUP"
    # keepalived heard ifvip from h1's own link-local address, not from a VIP.
    assert ka.master_router() == lab.link_local("h1"), ka.log
    assert not lab.holds("h2", VIP6)
    killed = time.monotonic()
    ours.stop(signal.SIGKILL)
    until(lambda: lab.holds("h2", VIP6), START, "keepalived takes over")
    assert time.monotonic() - killed < master_down(100) + MARGIN
    # A fresh ifvip of higher priority (its crash left the VIPs: it cleans them up) preempts.
    ifvip(lab, 200)
    until(lambda: lab.holds("h1", VIP6), START + master_down(200), "ifvip preempts")
    until(lambda: not lab.holds("h2", VIP6), 3, "keepalived releases")
    until(lambda: ka.master_router() == lab.link_local("h1"), 3, "keepalived names ifvip")
    no_complaints(ka.log)


def test_keepalived_master_ifvip_backup_kill_9(lab: KeepalivedLab) -> None:
    ka = keepalived(lab, 200)
    until(lambda: lab.holds("h2", VIP6), START + master_down(200), "keepalived MASTER")
    ours = ifvip(lab, 100)
    time.sleep(master_down(100) + MARGIN)
    assert not lab.holds("h1", VIP6), ours.log
    assert "BACKUP" in ours.log and "MASTER" not in ours.log.split("BACKUP", 1)[1]
    assert ka.state() == "MASTER"
    killed = time.monotonic()
    ka.stop(signal.SIGKILL)
    until(lambda: lab.holds("h1", VIP6), START, "ifvip takes over")
    assert time.monotonic() - killed < master_down(100) + MARGIN
    assert lab.holds("h1", VIP6_LL)
    no_complaints(ka.log)
    no_complaints(ours.log)
