"""Kernel reads: links, addresses and routes as `ip` set them, from inside or outside.

`Kernel()` run inside the namespace (as `ifvip ifup` is: interface indexes from
if_nametoindex) and `Kernel(netns)` from outside (indexes looked up over netlink) must
describe the same links, addresses and routes, find the same route for a replace, and
carry what the `ip` commands set (alias, MTU, labels, peers, lifetimes, metrics).
"""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
import sys

import pytest

from ifvip.ifupdown.netlink import AF_INET, AF_INET6, Kernel, Route
from tests.netns.kernelstate import Twins
from tests.programs import AS_ROOT

pytestmark = [
    pytest.mark.root,
    AS_ROOT,
]

SETUP = [
    "link set dev eth0 mtu 1400 address 02:00:5e:10:00:aa up",
    "link set dev eth0 alias uplink",
    "addr add 198.51.100.10/24 broadcast 198.51.100.255 dev eth0 label eth0",
    "addr add 198.51.100.11/24 dev eth0 label eth0:1",
    "addr add 203.0.113.1/32 peer 203.0.113.2 dev eth0",
    "-6 addr add 2001:db8:1::10/64 dev eth0 nodad preferred_lft 0",
    "route add default via 198.51.100.1 metric 5 dev eth0 onlink",
    "route add 203.0.113.64/26 dev eth0 table 100 src 198.51.100.10",
    "-6 route add 2001:db8:f::/48 via 2001:db8:1::1 dev eth0 metric 7",
]

CHILD = """
import asyncio, sys
from ifvip.ifupdown.netlink import Kernel, Route, AF_INET, AF_INET6
import ipaddress
async def main():
    async with Kernel() as k:
        print(repr(sorted(map(repr, await k.links()))))
        print(repr(sorted(map(repr, await k.addresses()))))
        print(repr(sorted(map(repr, await k.addresses("eth0", AF_INET6)))))
        for family in (AF_INET, AF_INET6):
            print(repr(sorted(map(repr, await k.route_list(family)))))
        want = Route(dst=ipaddress.ip_network("2001:db8:f::/48"), family=AF_INET6, metric=7)
        print(repr(await k.find_route(want)))
asyncio.run(main())
"""


async def _from_outside(ns: str) -> list[str]:
    async with Kernel(ns) as k:
        want = Route(dst=ipaddress.ip_network("2001:db8:f::/48"), family=AF_INET6, metric=7)
        lines = [
            repr(sorted(map(repr, await k.links()))),
            repr(sorted(map(repr, await k.addresses()))),
            repr(sorted(map(repr, await k.addresses("eth0", AF_INET6)))),
        ]
        for family in (AF_INET, AF_INET6):
            lines.append(repr(sorted(map(repr, await k.route_list(family)))))
        lines.append(repr(await k.find_route(want)))
        return lines


def test_reads_inside_and_outside_the_namespace_agree() -> None:
    with Twins(1) as twins:
        (ns,) = twins.names
        for command in SETUP:
            subprocess.run(["ip", "-n", ns, *command.split()], check=True, timeout=10)
        inside = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", CHILD],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.splitlines()
        assert inside == asyncio.run(_from_outside(ns))
        assert "alias='uplink'" in inside[0] and "mtu=1400" in inside[0]
        assert "label='eth0:1'" in inside[1] and "peer='203.0.113.2'" in inside[1]
        assert "preferred=0" in inside[2] and "flags=162" in inside[2]  # nodad|deprecated|perm.
        assert "metric=7" in inside[-1]
