"""ifvip's netlink layer leaves the kernel exactly as the equivalent `ip` commands do.

Two throw-away namespaces with the same veth pair: `ip` runs in one, ifvip's Kernel in the
other, and `ip -d addr`/`ip route show table all`/`ip rule` must print the same.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from ifvip.ifupdown.netlink import AF_INET, AF_INET6, Kernel, KernelError, Route, Rule, read_sysctl

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")


def _ip(ns: str, *args: str) -> str:
    return subprocess.run(
        ["ip", "-n", ns, *args], capture_output=True, text=True, check=True, timeout=10
    ).stdout


def _make(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    _ip(
        name,
        "link",
        "add",
        "eth0",
        "address",
        "02:00:00:00:00:01",
        "type",
        "veth",
        "peer",
        "name",
        "eth1",
        "address",
        "02:00:00:00:00:02",
    )
    _ip(name, "link", "set", "eth1", "up")


@pytest.fixture
def twins() -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:8]
    names = (f"ifvip-t-ip-{tag}", f"ifvip-t-nl-{tag}")
    try:
        for name in names:
            _make(name)
        yield names
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


def _state(ns: str) -> str:
    # Bringing a link up once attaches its default qdisc for good (noop -> noqueue), and the
    # carrier it gives the peer (eth1) makes the kernel add eth1's link-local routes: the
    # kernel's doing for ifupdown too, not configuration, so both are left out.
    text = "\n".join(
        (
            _ip(ns, "-d", "addr", "show", "dev", "eth0"),
            _ip(ns, "route", "show", "table", "all"),
            _ip(ns, "-6", "route", "show", "table", "all"),
            _ip(ns, "rule", "show"),
            _ip(ns, "-6", "rule", "show"),
        )
    )
    text = re.sub(r"qdisc \S+ ", "", text)
    return "\n".join(line for line in text.splitlines() if "dev eth1" not in line)


def test_addresses_routes_rules_and_links_as_ip_makes_them(twins: tuple[str, str]) -> None:
    with_ip, with_netlink = twins
    commands = [
        ["link", "set", "dev", "eth0", "mtu", "1400", "up"],
        [
            "addr",
            "add",
            "198.51.100.30/24",
            "broadcast",
            "198.51.100.255",
            "dev",
            "eth0",
            "label",
            "eth0",
        ],
        ["addr", "add", "198.51.100.31/24", "dev", "eth0", "label", "eth0:1"],
        ["-6", "addr", "add", "2001:db8:1::10/64", "dev", "eth0", "nodad"],
        [
            "route",
            "add",
            "default",
            "via",
            "198.51.100.1",
            "metric",
            "100",
            "dev",
            "eth0",
            "onlink",
        ],
        ["route", "add", "203.0.113.0/26", "via", "198.51.100.1", "dev", "eth0"],
        ["route", "add", "203.0.113.64/26", "dev", "eth0", "table", "100"],
        ["-6", "route", "replace", "default", "via", "2001:db8:1::1", "dev", "eth0", "onlink"],
        ["rule", "add", "from", "203.0.113.10/32", "lookup", "100", "priority", "1000"],
    ]
    for command in commands:
        _ip(with_ip, *command)

    async def apply() -> None:
        async with Kernel(with_netlink) as k:
            await k.set_link("eth0", mtu=1400, up=True)
            await k.add_address(
                "eth0", ipaddress.ip_interface("198.51.100.30/24"), broadcast="198.51.100.255"
            )
            await k.add_address("eth0", ipaddress.ip_interface("198.51.100.31/24"), label="eth0:1")
            await k.add_address("eth0", ipaddress.ip_interface("2001:db8:1::10/64"), nodad=True)
            await k.add_route(
                Route(None, AF_INET, gateway="198.51.100.1", dev="eth0", metric=100, onlink=True)
            )
            await k.add_route(
                Route(
                    ipaddress.ip_network("203.0.113.0/26"),
                    AF_INET,
                    gateway="198.51.100.1",
                    dev="eth0",
                )
            )
            await k.add_route(
                Route(ipaddress.ip_network("203.0.113.64/26"), AF_INET, dev="eth0", table=100)
            )
            await k.add_route(
                Route(None, AF_INET6, gateway="2001:db8:1::1", dev="eth0", onlink=True),
                command="replace",
            )
            await k.add_rule(
                Rule(AF_INET, priority=1000, src=ipaddress.ip_network("203.0.113.10/32"), table=100)
            )

    asyncio.run(apply())
    assert _state(with_netlink) == _state(with_ip)


def test_undo_returns_the_namespace_to_where_it_was(twins: tuple[str, str]) -> None:
    _, ns = twins
    before = _state(ns)
    link_before = re.sub(r"qdisc \S+ ", "", _ip(ns, "link", "show", "eth0"))

    async def roundtrip() -> None:
        async with Kernel(ns) as k:
            was = await k.set_link("eth0", mtu=1300, up=True)
            addr = ipaddress.ip_interface("203.0.113.5/24")
            await k.add_address("eth0", addr)
            route = Route(
                ipaddress.ip_network("198.51.100.0/26"), AF_INET, gateway="203.0.113.1", dev="eth0"
            )
            await k.add_route(route)
            with pytest.raises(KernelError) as exists:
                await k.add_route(route)
            assert exists.value.errno == 17
            await k.del_route(route)
            await k.del_address("eth0", addr)
            await k.set_link("eth0", mtu=was.mtu, up=was.up)

    asyncio.run(roundtrip())
    assert _state(ns) == before
    assert re.sub(r"qdisc \S+ ", "", _ip(ns, "link", "show", "eth0")) == link_before


def test_missing_device_is_enodev(twins: tuple[str, str]) -> None:
    _, ns = twins

    async def missing() -> None:
        async with Kernel(ns) as k:
            await k.add_address("nosuch0", ipaddress.ip_interface("203.0.113.5/24"))

    with pytest.raises(KernelError) as error:
        asyncio.run(missing())
    assert error.value.errno == 19


def test_sysctl_names_map_to_proc_paths() -> None:
    assert read_sysctl("net.ipv4.ip_forward") in ("0", "1")
    from ifvip.ifupdown.netlink import sysctl_path

    assert str(sysctl_path("net.ipv6.conf.eth0/5.accept_ra")) == (
        "/proc/sys/net/ipv6/conf/eth0.5/accept_ra"
    )
