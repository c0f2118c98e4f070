"""ifvip's netlink layer leaves the kernel exactly as the equivalent `ip` commands do.

Two throw-away namespaces with the same veth pair: `ip` runs in one, ifvip's Kernel in the
other, and `ip -d addr`/`ip route show table all`/`ip rule` must print the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import ipaddress
import re
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from ifvip.ifupdown.executor import NOT_APPLIED, NetlinkExecutor, OpError
from ifvip.ifupdown.netlink import AF_INET, AF_INET6, Kernel, KernelError, Route, Rule, read_sysctl
from ifvip.ifupdown.plan import AddAddress, AddRoute, Op
from tests.programs import AS_ROOT

pytestmark = AS_ROOT


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


def test_rule_without_priority_gets_the_kernels_as_with_ip(twins: tuple[str, str]) -> None:
    """`ip rule add` without a priority lets the kernel pick one below the last rule's
    (pyroute2's own `rule()` would send 32000)."""
    with_ip, with_netlink = twins
    _ip(with_ip, "rule", "add", "from", "203.0.113.0/28", "lookup", "100")
    _ip(with_ip, "-6", "rule", "add", "to", "2001:db8:5::/48", "lookup", "300")

    async def apply() -> None:
        async with Kernel(with_netlink) as k:
            await k.add_rule(Rule(AF_INET, src=ipaddress.ip_network("203.0.113.0/28"), table=100))
            await k.add_rule(Rule(AF_INET6, dst=ipaddress.ip_network("2001:db8:5::/48"), table=300))

    asyncio.run(apply())
    assert _state(with_netlink) == _state(with_ip)
    assert "32765:\tfrom 203.0.113.0/28 lookup 100" in _ip(with_netlink, "rule", "show")


def test_address_replace_refreshes_the_lifetime(twins: tuple[str, str]) -> None:
    """`ip addr replace` (the daemon's lifetime refresh) changes an existing address."""
    _, ns = twins
    address = ipaddress.ip_interface("203.0.113.9/24")

    async def refresh() -> list[int]:
        async with Kernel(ns) as k:
            await k.add_address("eth0", address, preferred=30, valid=30, replace=True)
            with pytest.raises(KernelError) as exists:
                await k.add_address("eth0", address)
            assert exists.value.errno == errno.EEXIST
            await k.add_address("eth0", address, preferred=600, valid=600, replace=True)
            return [a.valid for a in await k.addresses("eth0", AF_INET) if a.address == address]

    (valid,) = asyncio.run(refresh())
    assert 590 <= valid <= 600


def _executor_ops() -> list[Op]:
    return [
        AddAddress(ifname="eth0", address="198.51.100.20/24"),
        AddRoute(family=4, dst="203.0.113.0/26", dev="eth0", table=100),
        AddAddress(ifname="eth0", address="2001:db8:1::20/64", nodad=True),
        AddRoute(family=4, dst="203.0.113.64/26", dev="eth0", table=100),  # exists: fails
        AddAddress(ifname="eth0", address="198.51.100.21/24"),
        AddRoute(family=6, dst="2001:db8:9::/48", dev="eth0"),
    ]


def test_a_failed_op_stops_a_batch_with_exactly_the_ops_before_it_applied(
    twins: tuple[str, str],
) -> None:
    """apply_batch(stop=True), as ifup uses it: the ops sent after the failing one in the
    same batch are taken back; their results say they were not applied."""
    _, ns = twins
    _ip(ns, "link", "set", "eth0", "up")
    # An address of its own keeps eth0's routes when the test's last one goes.
    _ip(ns, "addr", "add", "198.51.100.2/24", "dev", "eth0")
    _ip(ns, "route", "add", "203.0.113.64/26", "dev", "eth0", "table", "100")
    before = _state(ns)
    ops = _executor_ops()

    async def apply() -> list[Op | OpError]:
        async with Kernel(ns) as k:
            return await NetlinkExecutor(k).apply_batch(ops, stop=True)

    results = asyncio.run(apply())
    assert results[:3] == ops[:3]
    failed = results[3]
    assert isinstance(failed, OpError) and failed.errno == errno.EEXIST
    assert [r.reason for r in results[4:] if isinstance(r, OpError)] == [NOT_APPLIED] * 2
    after = _state(ns)
    assert "198.51.100.20/24" in after and "203.0.113.0/26" in after and "2001:db8:1::20" in after
    assert "198.51.100.21" not in after and "2001:db8:9::" not in after

    async def undo() -> None:
        async with Kernel(ns) as k:
            inverses = [op.inverse() for op in reversed(ops[:3])]
            assert all(isinstance(r, Op) for r in await NetlinkExecutor(k).apply_batch(
                [i for i in inverses if i is not None]))  # fmt: skip

    asyncio.run(undo())
    assert _state(ns) == before


def test_an_ignored_failure_does_not_stop_a_batch_nor_does_any_without_stop(
    twins: tuple[str, str],
) -> None:
    _, ns = twins
    _ip(ns, "link", "set", "eth0", "up")
    # An address of its own keeps eth0's routes when the test's last one goes.
    _ip(ns, "addr", "add", "198.51.100.2/24", "dev", "eth0")
    _ip(ns, "route", "add", "203.0.113.64/26", "dev", "eth0", "table", "100")
    ops = _executor_ops()
    ops[3] = dataclasses.replace(ops[3], ignore_failure=True)  # `up -ip route add ...`

    async def apply(batch: list[Op], stop: bool) -> list[Op | OpError]:
        async with Kernel(ns) as k:
            return await NetlinkExecutor(k).apply_batch(batch, stop=stop)

    results = asyncio.run(apply(ops, True))
    assert [isinstance(r, OpError) for r in results] == [False, False, False, True, False, False]
    assert "198.51.100.21" in _state(ns) and "2001:db8:9::/48" in _state(ns)
    # Without stop (ifdown, undo), every op is tried whatever fails before it.
    deletes = [op.inverse() for op in reversed(ops)]
    results = asyncio.run(apply([d for d in deletes if d is not None] * 2, False))
    assert [isinstance(r, OpError) for r in results] == [False] * 6 + [True] * 6


def test_a_batch_of_several_sends_answers_each_request_in_order(twins: tuple[str, str]) -> None:
    """700 requests go out in three sends, each sent while the next is encoded: every
    request gets its own answer, failures in each send land on the request that failed,
    and the socket still serves pyroute2's own calls afterwards."""
    _, ns = twins
    _ip(ns, "link", "set", "eth0", "up")
    taken = {5, 300, 699}  # one address already there in each send's range
    for n in taken:
        _ip(ns, "-6", "addr", "add", f"2001:db8:7::{n:x}/64", "dev", "eth0", "nodad")

    async def apply() -> tuple[list[KernelError | None], int]:
        async with Kernel(ns) as k:
            requests = [
                await k.address_message("add", "eth0", f"2001:db8:7::{n:x}/64", nodad=True)
                for n in range(700)
            ]
            answers = await k.batch(requests)
            mine = await k.addresses("eth0", AF_INET6)
            return answers, sum(1 for a in mine if a.address.ip in _NET7)

    answers, count = asyncio.run(apply())
    failed = {n: answer.errno for n, answer in enumerate(answers) if answer is not None}
    assert len(answers) == 700 and failed == dict.fromkeys(taken, errno.EEXIST)
    assert count == 700


_NET7 = ipaddress.ip_network("2001:db8:7::/64")
