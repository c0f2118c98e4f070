"""Failover as the LAN sees it: ifvip and the real ucarp on a bridge with a third host.

Every host is a namespace of an ifvip.lab.Lab (n1 = 198.51.100.1, n2 = .2, client = .3). Who
holds the VIP comes from kernel address events in n1 and n2 (`ip -ts monitor address`),
gratuitous ARPs and adverts from a capture in the client. Timing limits are the protocol's
(master-down interval) with margins for a loaded machine.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ifvip.lab import Lab
from tests.interop.carp_lab import (
    IFVIP,
    VIP,
    AddressMonitor,
    Capture,
    ifvip_node,
    stop,
    ucarp_node,
    until,
)
from tests.programs import INTEROP, NEEDS_UCARP

pytestmark = [*INTEROP, NEEDS_UCARP]

MASTER_DOWN_B = 3 + 50 / 256  # the backup runs -k 50


@dataclass
class World:
    lab: Lab
    tmp: Path
    monitor: AddressMonitor
    capture: Capture

    def mac(self, host: str) -> str:
        return self.lab.hosts[host].mac

    def ip(self, host: str) -> str:
        return str(self.lab.hosts[host].address.ip)

    def log(self, host: str) -> str:
        return (self.tmp / f"{host}.log").read_text(errors="replace")

    def start(
        self, kind: str, host: str, *extra: str, password: str = "secret"
    ) -> subprocess.Popen[bytes]:
        node = ifvip_node if kind == "ifvip" else ucarp_node
        return node(self.lab, host, self.tmp, *extra, password=password)


@pytest.fixture
def world() -> Iterator[World]:
    with (
        tempfile.TemporaryDirectory(prefix="ifvip-failover-") as tmp,
        Lab(["n1", "n2", "client"], prefix="ifvip-fo") as lab,
    ):
        monitor = AddressMonitor(lab, ["n1", "n2"])
        capture = Capture(lab, "client")
        try:
            yield World(lab, Path(tmp), monitor, capture)
        finally:
            monitor.close()
            capture.close()


def _converge(w: World, master: str, backup: str) -> float:
    """Master holds, backup does not; return the time convergence was seen."""
    until(lambda: w.lab.holds(master, VIP) and not w.lab.holds(backup, VIP), 10)
    return time.time()


@pytest.mark.parametrize(("first", "second"), [("ifvip", "ucarp"), ("ucarp", "ifvip")])
def test_sigkill_of_the_master_moves_the_vip_and_the_client_sees_the_garp(
    world: World, first: str, second: str
) -> None:
    w = world
    master = w.start(first, "n1", "-P", "-k", "0")
    until(lambda: w.lab.holds("n1", VIP), 10)
    w.start(second, "n2", "-k", "50")
    converged = _converge(w, "n1", "n2")
    time.sleep(4)  # the backup passes its master-down time hearing adverts: it stays backup
    killed = time.time()
    both, gap = w.monitor.windows(converged, killed)
    assert both == 0.0 and gap == 0.0, "one holder at every moment while both run"
    stop(master, signal.SIGKILL)
    until(lambda: w.lab.holds("n2", VIP), MASTER_DOWN_B + 3)
    # The client sees n2's gratuitous ARP, after the dead master's last advert.
    until(lambda: bool(w.capture.garps(w.mac("n2"), killed)), 2)
    last = max(f.t for f in w.capture.adverts(w.ip("n1")) if f.t <= killed + 0.05)
    garp = w.capture.garps(w.mac("n2"), killed)[0]
    took = garp.t - last
    # ucarp reacts up to ~1 s late (its libpcap delay); ifvip to the millisecond.
    limit = MASTER_DOWN_B + (0.25 if second == "ifvip" else 1.5)
    assert MASTER_DOWN_B - 0.05 < took < limit
    # And the client's neighbour table follows: the VIP is now at n2's MAC.
    w.lab.run("client", ["ping", "-c", "1", "-W", "1", VIP], stdout=subprocess.DEVNULL).wait(5)
    assert w.lab.neighbour_mac("client", VIP) == w.mac("n2")
    if first == "ifvip":
        # The dead man's switch: the kernel drops the dead ifvip's VIP within its lifetime
        # (two master-down intervals = 6 s after its last advert); ucarp's would stay.
        until(lambda: not w.lab.holds("n1", VIP), 6 + 2)


def test_sigstop_of_the_ifvip_master_lets_its_vip_expire(world: World) -> None:
    w = world
    master = w.start("ifvip", "n1", "-P", "-k", "0")
    until(lambda: w.lab.holds("n1", VIP), 10)
    w.start("ifvip", "n2", "-k", "50")
    _converge(w, "n1", "n2")
    time.sleep(1.5)
    master.send_signal(signal.SIGSTOP)
    stopped = time.time()
    try:
        until(lambda: w.lab.holds("n2", VIP), MASTER_DOWN_B + 1)
        until(lambda: not w.lab.holds("n1", VIP), 8)
        removed = [e for e in w.monitor.snapshot() if e.host == "n1" and not e.added]
        # Gone within its lifetime (6 s) of the last refresh, which was before the stop.
        assert removed and removed[-1].t - stopped < 6 + 0.5
    finally:
        master.send_signal(signal.SIGCONT)
    # Resumed, the preferred master takes the group back; still one holder at the end.
    until(lambda: w.lab.holds("n1", VIP) != w.lab.holds("n2", VIP), 5)


def test_graceful_ifvip_stop_hands_over_to_ucarp_at_once(world: World) -> None:
    w = world
    master = w.start("ifvip", "n1", "-P", "-k", "0")
    until(lambda: w.lab.holds("n1", VIP), 10)
    w.start("ucarp", "n2", "-k", "50")
    _converge(w, "n1", "n2")
    time.sleep(4)
    stopped = time.time()
    stop(master, signal.SIGTERM)
    assert not w.lab.holds("n1", VIP)
    until(lambda: bool(w.capture.garps(w.mac("n2"), stopped)), 3)
    bow_out = [
        f for f in w.capture.adverts(w.ip("n1"), stopped) if (f.advbase, f.advskew) == (255, 255)
    ]
    assert bow_out, "ifvip sent the 255/255 bow-out advert"
    took = w.capture.garps(w.mac("n2"), stopped)[0].t - bow_out[0].t
    # Well before ucarp's master-down time (3.2 s): only its libpcap delay (≤ ~1 s).
    assert took < 1.5


def test_an_ifvip_pair_hands_back_to_the_returning_preferred_master_within_50_ms(
    world: World,
) -> None:
    w = world
    first = w.start("ifvip", "n1", "-P", "-k", "0")
    until(lambda: w.lab.holds("n1", VIP), 10)
    w.start("ifvip", "n2", "-k", "50")
    _converge(w, "n1", "n2")
    until(lambda: "Entering BACKUP STATE (start)" in w.log("n2"), 5)
    time.sleep(1.5)
    stop(first, signal.SIGTERM)
    until(lambda: w.lab.holds("n2", VIP), 2)
    # SIGTERM handover: the bow-out makes n2 master at once.
    handover = w.capture.garps(w.mac("n2"))
    assert handover
    time.sleep(1)
    returned = time.time()
    w.start("ifvip", "n1", "-P", "-k", "0")
    _converge(w, "n1", "n2")
    time.sleep(1)
    both, gap = w.monitor.windows(returned)
    assert both < 0.050, f"both held the VIP for {both * 1000:.1f} ms"
    assert gap < 0.050, f"nobody held the VIP for {gap * 1000:.1f} ms"


@pytest.mark.parametrize("ifvip_side", ["n1", "n2"])
def test_wrong_password_each_side_counts_and_neither_accepts(world: World, ifvip_side: str) -> None:
    w = world
    ucarp_side = "n2" if ifvip_side == "n1" else "n1"
    ifvip = w.start("ifvip", ifvip_side, "-k", "0")
    w.start("ucarp", ucarp_side, "-k", "0", password="other")
    # Neither accepts the other's adverts: both become master and stay so.
    until(lambda: w.lab.holds("n1", VIP) and w.lab.holds("n2", VIP), 10)
    time.sleep(2)
    assert w.lab.holds("n1", VIP) and w.lab.holds("n2", VIP)
    ifvip.send_signal(signal.SIGUSR1)
    until(lambda: "dropped_auth" in w.log(ifvip_side), 3)
    dumped = re.findall(r"'dropped_auth': (\d+)", w.log(ifvip_side))
    assert int(dumped[-1]) >= 2
    assert "adverts_received" not in w.log(ifvip_side).split("counters")[-1]
    assert "bad digest from" in w.log(ifvip_side)
    assert "secret" not in w.log(ifvip_side) and "other" not in w.log(ifvip_side)
    assert w.log(ucarp_side).count("Bad digest") >= 2


def test_two_groups_in_one_process_from_ucarp_stanzas(world: World) -> None:
    """One `ifvip run --interfaces FILE` runs a group per ucarp-vid stanza (eth0 and a macvlan)."""
    w = world
    ns = w.lab.hosts["n1"].netns
    subprocess.run(
        ["ip", "-n", ns, "link", "add", "mv0", "link", "eth0", "type", "macvlan", "mode", "bridge"],
        check=True,
    )
    subprocess.run(["ip", "-n", ns, "addr", "add", "198.51.100.11/24", "dev", "mv0"], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "mv0", "up"], check=True)
    up, down = w.tmp / "up", w.tmp / "down"
    up.write_text('#!/bin/sh\nip addr add "$2/24" dev "$1"\n')
    down.write_text('#!/bin/sh\nip addr del "$2/24" dev "$1" 2>/dev/null || true\n')
    up.chmod(0o755)
    down.chmod(0o755)
    stanzas = w.tmp / "interfaces"
    stanzas.write_text(
        f"""iface eth0 inet static
  address 198.51.100.1/24
  ucarp-vid 42
  ucarp-vip {VIP}
  ucarp-password secret
  ucarp-upscript {up}
  ucarp-downscript {down}

iface mv0 inet static
  address 198.51.100.11/24
  ucarp-vid 43
  ucarp-vip 198.51.100.101
  ucarp-password secret2
  ucarp-upscript {up}
  ucarp-downscript {down}
"""
    )
    with open(w.tmp / "n1.log", "ab") as log:
        proc = w.lab.run(
            "n1",
            [IFVIP, "run", "--interfaces", str(stanzas), "--state-dir", str(w.tmp / "st")],
            stdout=log,
            stderr=log,
        )
    until(lambda: w.lab.holds("n1", VIP) and w.lab.holds("n1", "198.51.100.101"), 10)
    text = w.log("n1")
    assert "(vhid 42) Entering MASTER STATE" in text and "(vhid 43) Entering MASTER STATE" in text
    stopped = time.time()
    stop(proc, signal.SIGTERM)
    assert not w.lab.holds("n1", VIP) and not w.lab.holds("n1", "198.51.100.101")
    until(lambda: len({f.vhid for f in w.capture.adverts("198.51.100.1", stopped)}) >= 1, 2)
    bows = {
        f.vhid
        for f in w.capture.snapshot()
        if f.kind == "advert" and f.t > stopped and (f.advbase, f.advskew) == (255, 255)
    }
    assert bows == {42, 43}


def test_link_down_from_netlink_events_releases_at_once(world: World) -> None:
    w = world
    w.start("ifvip", "n1", "-k", "0")
    until(lambda: w.lab.holds("n1", VIP), 10)
    ns = w.lab.hosts["n1"].netns
    subprocess.run(["ip", "-n", ns, "link", "set", "eth0", "down"], check=True)
    until(lambda: "Entering BACKUP STATE (link down)" in w.log("n1"), 1)
    until(lambda: not w.lab.holds("n1", VIP), 1)
    subprocess.run(["ip", "-n", ns, "link", "set", "eth0", "up"], check=True)
    until(lambda: "link up" in w.log("n1"), 2)
    # Back on the link: the master-down time (3 s), not ucarp's 10-second sleep loops.
    until(lambda: w.lab.holds("n1", VIP), 3 + 1.5)


def test_a_restarted_node_removes_the_vip_its_killed_run_left(world: World) -> None:
    w = world
    first = w.start("ifvip", "n1", "-k", "0", "--vip-lifetime", "0")
    until(lambda: w.lab.holds("n1", VIP), 10)
    stop(first, signal.SIGKILL)
    assert w.lab.holds("n1", VIP)  # permanent, as ucarp's: only the journal knows
    w.start("ifvip", "n2", "-k", "50")
    until(lambda: w.lab.holds("n2", VIP), MASTER_DOWN_B + 2)
    w.start("ifvip", "n1", "-k", "100")
    until(lambda: not w.lab.holds("n1", VIP), 2)
    until(lambda: "left by an earlier run" in w.log("n1"), 2)  # logged once it is gone
    time.sleep(4)
    assert w.lab.holds("n2", VIP) and not w.lab.holds("n1", VIP)


def test_kubernetize_environment_with_interface_and_source_from_the_default_route(
    world: World,
) -> None:
    w = world
    ns = w.lab.hosts["n1"].netns
    subprocess.run(["ip", "-n", ns, "route", "add", "default", "via", "198.51.100.254"], check=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "UCARP_VHID": "42",
        "UCARP_PASS": "secret",
        "UCARP_ADDR": VIP,
        "UCARP_MASKLEN": "24",
        "IFVIP_STATE_DIR": str(w.tmp / "st"),
    }
    with open(w.tmp / "n1.log", "ab") as log:
        w.lab.run("n1", [IFVIP, "run"], stdout=log, stderr=log, env=env)
    until(lambda: w.lab.holds("n1", VIP), 10)
    # Adverts leave eth0 from its first address, and carry the password from the env.
    until(lambda: bool(w.capture.adverts("198.51.100.1")), 3)
    assert w.capture.adverts("198.51.100.1")[0].vhid == 42


def test_garp_repeat_re_announces_while_master(world: World) -> None:
    w = world
    w.start("ifvip", "n1", "--garp-repeat", "0.5")
    until(lambda: w.lab.holds("n1", VIP), 10)
    became = time.time()
    time.sleep(3)
    # One on becoming master, the delayed one two adverts later, and one every 0.5 s.
    assert len(w.capture.garps(w.mac("n1"), became - 0.5)) >= 6


def _ifvip_pids(ns: str) -> list[int]:
    pids = subprocess.run(
        ["ip", "netns", "pids", ns], check=True, capture_output=True, text=True
    ).stdout.split()
    found = []
    for pid in pids:
        try:
            if "ifvip" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                found.append(int(pid))
        except OSError:
            continue
    return found


def test_daemonize_returns_at_once_and_the_detached_daemon_serves(world: World) -> None:
    """ucarp -B (Debian's if-up.d hook runs `ucarp -B`): the command must not block ifup."""
    w = world
    ns = w.lab.hosts["n1"].netns
    try:
        proc = w.start("ifvip", "n1", "-B")
        assert proc.wait(10) == 0
        until(lambda: w.lab.holds("n1", VIP), 10)
        daemons = _ifvip_pids(ns)
        assert len(daemons) == 1
        os.kill(daemons[0], signal.SIGTERM)
        until(lambda: not w.lab.holds("n1", VIP), 5)
    finally:
        for pid in _ifvip_pids(ns):  # only the detached daemon of this test's namespace
            os.kill(pid, signal.SIGKILL)


def test_a_returning_ifvip_takes_over_from_ucarp_only_when_ucarp_yields(world: World) -> None:
    """ifvip preempting a live ucarp master advertises first and takes the VIP on ucarp's
    yielding advert, so ucarp's ~1 s libpcap delay does not become a both-hold window."""
    w = world
    w.start("ucarp", "n2", "-k", "50")
    until(lambda: w.lab.holds("n2", VIP), 10)
    time.sleep(1)
    returned = time.time()
    w.start("ifvip", "n1", "-P", "-k", "0")
    _converge(w, "n1", "n2")
    time.sleep(0.5)
    both, gap = w.monitor.windows(returned)
    assert both < 0.050, f"both held the VIP for {both * 1000:.1f} ms"
    assert gap < 0.050, f"nobody held the VIP for {gap * 1000:.1f} ms"
    assert "taking the virtual addresses" in w.log("n1")
