"""The harness itself: Debian's ifup/ifdown run isolated in a namespace, seen by snapshots.

These tests pin down what the equivalence tests compare against: that the real ifupdown
works inside a Twins namespace with a private interfaces file and state directory, and what
it leaves behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.netns.kernelstate import Runner, Twins, snapshot
from tests.programs import AS_ROOT

DMZ = Path(__file__).resolve().parents[3] / "shared" / "examples" / "production-dmz.interfaces"

pytestmark = [
    pytest.mark.root,
    pytest.mark.interop,
    AS_ROOT,
    pytest.mark.skipif(shutil.which("ifup") is None, reason="Debian's ifupdown is not installed"),
]


def test_twins_are_alike() -> None:
    with Twins(2) as twins:
        first, second = (snapshot(ns) for ns in twins.names)
        assert first.diff(second) == ""
        assert [row[0] for row in first.links] == ["eth0", "eth1", "lo"]
    for ns in twins.names:
        assert not (Path("/etc/netns") / ns).exists()


def test_real_ifup_of_production_dmz_in_a_namespace(tmp_path: Path) -> None:
    if not DMZ.exists():
        pytest.skip(f"{DMZ} is not beside the checkout")
    with Twins(1) as twins:
        (ns,) = twins.names
        runner = Runner(ns, DMZ, tmp_path / "state")
        before = snapshot(ns)
        done = runner.real("ifup", "eth0", "eth1")
        assert done.returncode == 0, done.stderr
        after = snapshot(ns)
        addresses = {(row[0], row[2], row[4]) for row in after.addresses}
        assert {
            ("eth0", "198.51.100.20", 24),
            ("eth1", "203.0.113.134", 27),
            ("eth1", "203.0.113.135", 27),  # from the `up ip addr add` hook
            ("eth1", "2001:db8:250::80:6", 64),
            ("eth1", "2001:db8:250::80:7", 64),
        } <= addresses
        routes = {(row[2], row[3], row[11], row[12]) for row in after.routes if row[1] == 254}
        assert ("203.0.113.0", 26, "198.51.100.1", "eth0") in routes  # net-tools `route add`
        assert (None, 0, "fe80::1", "eth1") in routes
        assert after.sysctls["net/ipv6/conf/eth1/accept_dad"] == "0"
        assert (tmp_path / "state" / "ifstate").read_text() == "eth0=eth0\neth1=eth1\n"

        done = runner.real("ifdown", "eth0", "eth1")
        assert done.returncode == 0
        # The dual-stack noise of specs §3.2: the link went down before `ip -6 addr del`.
        assert "address not found" in done.stderr
        gone = snapshot(ns)
        # Real ifdown forgets the sysctls the stanza changed: they stay as ifup left them.
        assert gone.diff(before).splitlines() == [
            "~ sysctl net/ipv6/conf/eth1/accept_dad: 0 -> 1",
            "~ sysctl net/ipv6/conf/eth1/accept_ra: 0 -> 1",
            "~ sysctl net/ipv6/conf/eth1/autoconf: 0 -> 1",
        ]
