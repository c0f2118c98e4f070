"""Sync groups on a dual-homed pair (issue 17): an outside group on eth0 and an inside group
on eth1 in ONE sync group are MASTER together or not at all.

Two hosts, each with eth0 on one bridge (198.51.100.0/24) and eth1 on another
(203.0.113.0/24, Lab.add_segment). The master's eth1 cable is pulled (Lab.carrier): both
VIPs must end on the peer and come back together when the cable is back, and a sampler
reading both hosts' addresses all along must never see one VIP on each host. The same
with a failing check and with SIGUSR2; with keepalived's vrrp_sync_group on either side;
and for CARP beside two real ucarp -P.

The groups are declared only in each host's interfaces file (vrrp-*/ucarp-* options and
ifvip-sync-group), and one `ifvip run --interfaces FILE` runs both. Every wait is bounded;
the times are printed, not asserted.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.interop.keepalived_lab import Keepalived, KeepalivedLab, until
from tests.programs import IFVIP, INTEROP, NEEDS_KEEPALIVED, NEEDS_UCARP, UCARP

pytestmark = [*INTEROP]

OUTSIDE, INSIDE = "198.51.100.100", "203.0.113.100"
VIPS = (OUTSIDE, INSIDE)
INSIDE_NET = "203.0.113.0/24"
MOVE_BOUND = 15.0  # seconds any move may take before the test gives up (bounded waits)

# The groups are declared only in the interfaces file; one `ifvip run --interfaces FILE`
# runs both. CARP as Debian's ucarp package declares it (MASTER brings up IFACE:ucarp).
VRRP_STANZA = """iface {ifname} inet static
  address {address}/24
  vrrp-id {number}
  vrrp-address {vip}/24
  vrrp-priority {priority}
  ifvip-sync-group dmz
"""
CARP_STANZA = """iface {ifname} inet static
  address {address}/24
  ucarp-vid {number}
  ucarp-vip {vip}
  ucarp-password secret
  ucarp-advskew {advskew}
  ucarp-master yes
  ifvip-sync-group dmz

iface {ifname}:ucarp inet static
  address {vip}/24
"""


@dataclass
class Sampler:
    """Reads both hosts' addresses in a loop (one netlink dump each) until stopped."""

    lab: KeepalivedLab
    samples: list[tuple[float, str, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def where(self) -> tuple[str, str]:
        """Which host holds each VIP: 'a', 'b', 'ab' or '-'."""
        held = {host: set(self.lab.lab.addresses(host)) for host in ("a", "b")}
        found = ["".join(h for h in ("a", "b") if vip in held[h]) or "-" for vip in VIPS]
        return found[0], found[1]

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    outside, inside = self.where()
                except OSError:  # the lab is going
                    return
                self.samples.append((time.monotonic(), outside, inside))
                self._stop.wait(0.01)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def split(self) -> list[tuple[float, str, str]]:
        """Samples with one VIP on each host (each held by one host, not the same one)."""
        return [s for s in self.samples if {s[1], s[2]} == {"a", "b"}]

    def changes(self) -> list[tuple[float, str, str]]:
        return [s for i, s in enumerate(self.samples) if i == 0 or s[1:] != self.samples[i - 1][1:]]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[KeepalivedLab]:
    with KeepalivedLab(["a", "b"], tmp_path) as built:
        built.lab.add_segment("eth1", INSIDE_NET)
        yield built


@pytest.fixture
def sampler(lab: KeepalivedLab) -> Iterator[Sampler]:
    """Stopped before the lab goes, also when a test fails."""
    watching = Sampler(lab)
    try:
        yield watching
    finally:
        watching.stop()


def _inside(host: str) -> str:
    return "203.0.113.1" if host == "a" else "203.0.113.2"


def run_ifvip(
    lab: KeepalivedLab,
    host: str,
    protocol: str,
    *,
    priority: int = 100,
    advskew: int = 0,
    checks: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """Both groups of `host`, declared in its interfaces file, in sync group dmz."""
    stanza = VRRP_STANZA if protocol == "vrrp" else CARP_STANZA
    links = (("eth0", lab.address(host), 51, OUTSIDE), ("eth1", _inside(host), 52, INSIDE))
    text = "\n".join(
        stanza.format(
            ifname=ifname,
            address=address,
            number=number,
            vip=vip,
            priority=priority,
            advskew=advskew,
        )
        for ifname, address, number, vip in links
    )
    path = lab.workdir / f"{host}.interfaces"
    path.write_text(text)
    path.chmod(0o600)
    argv = [
        IFVIP,
        "run",
        "--interfaces",
        str(path),
        "--state-dir",
        str(lab.workdir / f"state-{host}"),
    ]
    argv += ["--status-socket", str(lab.workdir / f"ifvip-{host}.sock")]
    for check in checks:
        argv += ["--check-script", check]
    if checks:
        argv += ["--check-interval", "0.5", "--check-rise", "1", "--check-fall", "1"]
    with open(lab.workdir / f"ifvip-{host}.log", "ab") as log:
        return lab.lab.run(host, argv, stdout=log, stderr=log)


def both_on(sampler: Sampler, host: str, what: str) -> float:
    seconds = until(lambda: sampler.where() == (host, host), MOVE_BOUND, what, every=0.02)
    print(f"{what}: {seconds:.2f} s")
    return seconds


def assert_never_split(sampler: Sampler, lab: KeepalivedLab) -> None:
    sampler.stop()
    logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in lab.workdir.glob("*.log"))
    assert sampler.split() == [], f"one VIP on each host: {sampler.changes()}\n{logs}"
    print(
        "VIP placements:",
        [(round(t - sampler.samples[0][0], 3), o, i) for t, o, i in sampler.changes()],
    )


# ------------------------------------------------------------------ (1) an ifvip pair


def test_an_ifvip_pair_moves_both_vips_together_for_every_cause(
    lab: KeepalivedLab, sampler: Sampler
) -> None:
    flag = {host: lab.workdir / f"fail-{host}" for host in ("a", "b")}
    check = {host: (f"/usr/bin/test ! -e {flag[host]}",) for host in ("a", "b")}
    a = run_ifvip(lab, "a", "vrrp", priority=200, checks=check["a"])
    both_on(sampler, "a", "a MASTER of both at start")
    run_ifvip(lab, "b", "vrrp", priority=100, checks=check["b"])
    time.sleep(4)  # b settles as BACKUP
    sampler.start()
    # The inside cable of the master is pulled, then put back.
    lab.lab.carrier("a", False, bridge="br1")
    both_on(sampler, "b", "carrier lost: both on b")
    lab.lab.carrier("a", True, bridge="br1")
    both_on(sampler, "a", "carrier back: both on a")
    # A failing check on the master, then healthy again.
    flag["a"].touch()
    both_on(sampler, "b", "check failing: both on b")
    flag["a"].unlink()
    both_on(sampler, "a", "check healthy: both on a")
    # SIGUSR2 demotes the master's groups, a second one promotes them.
    a.send_signal(signal.SIGUSR2)
    both_on(sampler, "b", "SIGUSR2: both on b")
    a.send_signal(signal.SIGUSR2)
    both_on(sampler, "a", "SIGUSR2 again: both on a")
    assert_never_split(sampler, lab)
    log = (lab.workdir / "ifvip-a.log").read_text()
    assert "held: sync group dmz: vrid 52 on eth1 lost its carrier" in log


# ------------------------------------------------------------------ (2) beside keepalived

KEEPALIVED_SYNC = """global_defs {{
    enable_script_security
    script_user root
}}
vrrp_sync_group DMZ {{
    group {{
        OUT
        IN
    }}
}}
vrrp_instance OUT {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        198.51.100.100/24
    }}
}}
vrrp_instance IN {{
    state BACKUP
    interface eth1
    virtual_router_id 52
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        203.0.113.100/24
    }}
}}
"""


@pytest.mark.parametrize("master", ["ifvip", "keepalived"])
@NEEDS_KEEPALIVED
def test_a_pair_with_keepalived_vrrp_sync_group(
    lab: KeepalivedLab, sampler: Sampler, master: str
) -> None:
    """ifvip as the master and keepalived (vrrp_sync_group) as the backup, and the reverse."""
    if master == "ifvip":
        run_ifvip(lab, "a", "vrrp", priority=200)
        both_on(sampler, "a", "ifvip a MASTER of both at start")
        peer = Keepalived(lab, "b", KEEPALIVED_SYNC.format(priority=100))
    else:
        peer = Keepalived(lab, "a", KEEPALIVED_SYNC.format(priority=200))
        both_on(sampler, "a", "keepalived a MASTER of both at start")
        run_ifvip(lab, "b", "vrrp", priority=100)
    time.sleep(4)
    sampler.start()
    lab.lab.carrier("a", False, bridge="br1")
    both_on(sampler, "b", f"{master} a lost its inside carrier: both on b")
    lab.lab.carrier("a", True, bridge="br1")
    both_on(sampler, "a", "carrier back: both on a")
    assert_never_split(sampler, lab)
    assert "Syncing instances to" in peer.log
    assert not peer.complaints()
    ours = "a" if master == "ifvip" else "b"
    log = (lab.workdir / f"ifvip-{ours}.log").read_text()
    if master == "ifvip":  # keepalived's vrrp_sync_fault: the other master sent priority 0
        assert "held: sync group dmz: vrid 52 on eth1 lost its carrier" in log
    else:  # as keepalived's backups: both take MASTER when both want it, not one alone
        assert "BACKUP -> MASTER (sync group dmz: every member wants MASTER)" in log


# ------------------------------------------------------------------ (3) CARP beside ucarp


@NEEDS_UCARP
def test_carp_members_beside_real_ucarp(lab: KeepalivedLab, sampler: Sampler) -> None:
    """ifvip's CARP members of one sync group on a, two real ucarp -P -k 100 on b: the held
    member advertises advskew 240 and ucarp preempts it; both come back together."""
    run_ifvip(lab, "a", "carp", advskew=0)
    both_on(sampler, "a", "ifvip a MASTER of both at start")
    for n, (ifname, source, vip) in enumerate(
        (("eth0", lab.address("b"), OUTSIDE), ("eth1", _inside("b"), INSIDE))
    ):
        up, down = lab.workdir / f"up{n}", lab.workdir / f"down{n}"
        up.write_text(f'#!/bin/sh\nip addr add {vip}/24 dev "$1"\n')
        down.write_text(f'#!/bin/sh\nip addr del {vip}/24 dev "$1" 2>/dev/null || true\n')
        up.chmod(0o755)
        down.chmod(0o755)
        argv = [UCARP, "-i", ifname, "-s", source, "-v", str(51 + n), "-p", "secret", "-a", vip]
        argv += ["-u", str(up), "-d", str(down), "-z", "-P", "-k", "100"]
        with open(lab.workdir / f"ucarp{n}.log", "ab") as log:
            lab.lab.run("b", argv, stdout=log, stderr=log)
    time.sleep(4)
    sampler.start()
    lab.lab.carrier("a", False, bridge="br1")
    both_on(sampler, "b", "a lost its inside carrier: both on ucarp b")
    lab.lab.carrier("a", True, bridge="br1")
    both_on(sampler, "a", "carrier back: both on a")
    assert_never_split(sampler, lab)
    log = (lab.workdir / "ifvip-a.log").read_text()
    assert "advskew 240" in log and "every member wants MASTER" in log
