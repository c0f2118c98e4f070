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

from tests.programs import AS_ROOT
from tests.reliability.harness import IFVIP, PairLab, until

pytestmark = [pytest.mark.root, AS_ROOT]


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
    lab.remake_eth0("h1")
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


@pytest.mark.parametrize("implementation", ["ifvip", "ifvip-vrrp"])
def test_a_flapping_master_link_leaves_the_vip_with_the_backup(
    lab: PairLab, implementation: str
) -> None:
    """30 flaps of 0.2 s on the preferred master's link: the backup takes over once and
    keeps the VIP while the preferred node's link is unsettled (issue 18: CARP left nobody
    holding for 9.6-10.8 s of 12.2 s). Nobody holds only for one takeover."""
    lab.start_pair(implementation)
    nobody = lab.flap("h1", FLAPS, FLAP)
    takeover = 3.2 if implementation == "ifvip" else 3.61  # master-down + skew of h2
    assert nobody <= takeover + 0.5, f"nobody held the VIP for {nobody:.2f} s"
    # Once the link is stable again, the preferred node takes the VIP back.
    assert until(lambda: lab.holders() == ("h1",), 12) is not None
