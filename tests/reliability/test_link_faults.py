"""Faults of the link under a running daemon (issue 18): the interface made anew under the
same name, and a master link that flaps.

A NIC reset, a VM hot-plug or a container network reconnect deletes the interface and makes
it again with the same name, MAC and address. A daemon whose sockets still point at the old
ifindex shouts into nothing while it says MASTER; ifvip re-opens them on the new link.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from pyroute2 import IPRoute

from tests.programs import AS_ROOT
from tests.reliability.harness import IFVIP, PairLab, until

pytestmark = [pytest.mark.root, AS_ROOT]


def _remake_eth0(lab: PairLab, host: str) -> None:
    """Delete `host`'s eth0 (its veth pair) and make it again as the lab first made it."""
    number = list(lab.lab.hosts).index(host) + 1
    spec = lab.lab.hosts[host]
    with IPRoute(netns=lab.lab.switch) as sw:
        sw.link("del", ifname=f"p{number}")
        sw.link(
            "add",
            ifname=f"p{number}",
            kind="veth",
            peer={"ifname": "eth0", "net_ns_fd": spec.netns, "address": spec.mac},
        )
        (port,) = sw.link_lookup(ifname=f"p{number}")
        (bridge,) = sw.link_lookup(ifname="br0")
        sw.link("set", index=port, master=bridge, state="up")
    with IPRoute(netns=spec.netns) as ipr:
        (index,) = ipr.link_lookup(ifname="eth0")
        ipr.addr(
            "add",
            index=index,
            address=str(spec.address.ip),
            prefixlen=spec.address.network.prefixlen,
        )
        ipr.link("set", index=index, state="up")


def _status(lab: PairLab, host: str) -> dict[str, object]:
    done = subprocess.run(
        ["ip", "netns", "exec", lab.lab.hosts[host].netns, IFVIP, "status", "--json",
         "--state-dir", str(lab.tmp / f"state-{host}")],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    (group,) = json.loads(done.stdout)["groups"]
    return dict(group)


@pytest.mark.parametrize("implementation", ["ifvip", "ifvip-vrrp"])
def test_a_master_whose_interface_is_made_anew_speaks_again(
    lab: PairLab, implementation: str
) -> None:
    lab.start_pair(implementation)
    h1 = lab.daemons["h1"]
    before = h1.counters()["adverts_sent"]
    _remake_eth0(lab, "h1")
    # h1 lost the link (its VIP went with the device): h2 takes over, then h1, preferred
    # and preempting, takes the VIP back over the new link, and h2 hears it.
    assert until(lambda: lab.holders() == ("h1",), 20) is not None, h1.text()
    time.sleep(3.0)  # several advert intervals: h2 must stay BACKUP, hearing h1
    assert lab.holders() == ("h1",), lab.daemons["h2"].text()
    counters = h1.counters()
    assert counters["relinked"] == 1
    assert counters["adverts_sent"] > before + 2
    # (The one advert a VRRP master sends as its link vanishes may fail; none after.)
    assert "cannot send advert" not in h1.text().split("was made anew")[-1]
    assert _status(lab, "h1")["state"] == "MASTER"
    assert _status(lab, "h2")["state"] == "BACKUP"


FLAPS = 30
FLAP = 0.2  # s down, then s up


def _flap(lab: PairLab, host: str) -> float:
    """Flap `host`'s carrier FLAPS times from its bridge port; return the seconds in which
    nobody held the VIP, sampled every 10 ms over the flapping and 4 s after it."""
    port = f"p{list(lab.lab.hosts).index(host) + 1}"
    nobody = 0.0
    with IPRoute(netns=lab.lab.switch) as sw:
        (index,) = sw.link_lookup(ifname=port)
        end = time.monotonic() + FLAPS * 2 * FLAP + 4.0
        flaps, last, down, switch_at = 0, time.monotonic(), False, time.monotonic()
        while (now := time.monotonic()) < end:
            if flaps < FLAPS and now >= switch_at:
                down = not down
                sw.link("set", index=index, state="down" if down else "up")
                flaps += 0 if down else 1
                switch_at = now + FLAP
            if not lab.holders():
                nobody += now - last
            last = now
            time.sleep(0.01)
        sw.link("set", index=index, state="up")
    return nobody


@pytest.mark.parametrize("implementation", ["ifvip", "ifvip-vrrp"])
def test_a_flapping_master_link_leaves_the_vip_with_the_backup(
    lab: PairLab, implementation: str
) -> None:
    """30 flaps of 0.2 s on the preferred master's link: the backup takes over once and
    keeps the VIP while the preferred node's link is unsettled (issue 18: CARP left nobody
    holding for 9.6-10.8 s of 12.2 s). Nobody holds only for one takeover."""
    lab.start_pair(implementation)
    nobody = _flap(lab, "h1")
    takeover = 3.2 if implementation == "ifvip" else 3.61  # master-down + skew of h2
    assert nobody <= takeover + 0.5, f"nobody held the VIP for {nobody:.2f} s"
    # Once the link is stable again, the preferred node takes the VIP back.
    assert until(lambda: lab.holders() == ("h1",), 12) is not None
