"""The lean pyroute2 path (ifupdown/rtnl.py) against pyroute2's AsyncIPRoute.

ifvip's Kernel talks to the kernel through pyroute2's netlink socket and message classes
loaded without the package's `__init__`. The same script of kernel operations runs in two
namespaces alike: through that socket in one and through `AsyncIPRoute` (the whole
library) in the other. Every read and every refusal must be the same, and so must both
namespaces' state afterwards; the lean reads must also equal AsyncIPRoute's own dumps.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest
from pyroute2 import AsyncIPRoute

from ifvip.ifupdown.netlink import (
    AF_INET,
    AF_INET6,
    Kernel,
    KernelError,
    Route,
    Rule,
    _address_info,
    _link_info,
)
from tests.netns.kernelstate import Twins, snapshot
from tests.programs import AS_ROOT

pytestmark = [pytest.mark.root, AS_ROOT]


class _FullSocket(AsyncIPRoute):  # type: ignore[misc]
    """AsyncIPRoute with the one call Kernel makes of its socket besides the batches."""

    async def request(self, msg: Any, msg_type: int, flags: int) -> list[Any]:
        return [answer async for answer in await self.nlm_request(msg, msg_type, flags)]


class _FullKernel(Kernel):
    """Kernel over AsyncIPRoute (MarshalRtnl, IPRouteProxy...) instead of RtnlSocket."""

    async def _pyroute(self) -> Any:
        if self._ipr is None:
            self._ipr = _FullSocket(netns=self.netns)
            await self._ipr.setup_endpoint()
        return self._ipr


def _net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


async def _script(kernel: Kernel) -> list[object]:
    """Changes and reads as ifup makes them; every answer (or refusal) in order."""
    seen: list[object] = []

    async def step(call: Any) -> None:
        try:
            seen.append(await call)
        except KernelError as exc:
            seen.append(("error", exc.errno, str(exc)))

    await step(kernel.set_link("eth0", up=True, mtu=1400, alias="uplink"))
    await step(kernel.set_link("eth0", mac="02:00:5e:10:00:aa"))
    await step(kernel.link("eth0"))
    await step(kernel.add_address("eth0", ipaddress.ip_interface("198.51.100.10/24")))
    await step(kernel.add_address("eth0", ipaddress.ip_interface("198.51.100.10/24")))
    await step(
        kernel.add_address("eth0", ipaddress.ip_interface("203.0.113.1/32"), peer="203.0.113.2")
    )
    await step(kernel.add_address("eth0", ipaddress.ip_interface("2001:db8:1::10/64"), nodad=True))
    gateway = Route(_net("203.0.113.64/26"), AF_INET, gateway="198.51.100.1", dev="eth0")
    await step(kernel.add_route(gateway))
    await step(kernel.add_route(gateway))
    await step(kernel.add_route(Route(None, AF_INET, gateway="198.51.100.1", metric=5)))
    table = Route(_net("203.0.113.128/27"), AF_INET, dev="eth0", table=100)
    await step(kernel.add_route(table))
    await step(kernel.add_rule(Rule(AF_INET, priority=100, src=_net("198.51.100.10/32"))))
    await step(kernel.add_rule(Rule(AF_INET6, table=1000, iifname="eth0")))
    await step(kernel.batch([await kernel.route_message(gateway, "del")] * 2))
    await step(kernel.index("eth1"))
    await step(kernel.index("nothere"))
    await step(kernel.del_address("eth0", ipaddress.ip_interface("192.0.2.1/24")))
    await step(kernel.rename_link("eth1", "lan0"))
    await step(kernel.links())
    await step(kernel.addresses("eth0"))
    await step(kernel.addresses(None, AF_INET6))
    await step(kernel.route_list(AF_INET))
    await step(kernel.route_list(AF_INET6))
    await step(kernel.find_route(table))
    await step(kernel.routes(AF_INET, table=100))
    await step(kernel.del_link("lan0"))
    await step(kernel.del_link("lan0"))
    await step(kernel.links())
    return [_comparable(item) for item in seen]


def _comparable(item: object) -> object:
    """Route dumps as flat dicts, without the per-socket header (sequence numbers); a
    batch's refusals as (errno, text)."""
    if isinstance(item, list) and item and isinstance(item[0], dict):
        return [{k: v for k, v in d.items() if k != "header"} for d in item]
    if isinstance(item, list):
        return [(e.errno, str(e)) if isinstance(e, KernelError) else e for e in item]
    return item


async def _both(lean_ns: str, full_ns: str) -> tuple[list[object], list[object]]:
    async with Kernel(lean_ns) as lean, _FullKernel(full_ns) as full:
        return await _script(lean), await _script(full)


def test_lean_and_asynciproute_make_and_read_the_same_state() -> None:
    with Twins(2, tag="rtnl") as twins:
        lean_ns, full_ns = twins.names
        lean, full = asyncio.run(_both(lean_ns, full_ns))
        assert len(lean) == len(full)
        for number, (mine, theirs) in enumerate(zip(lean, full, strict=True)):
            assert mine == theirs, f"step {number}"
        assert ("error", 17, "add address 198.51.100.10/24 dev eth0: File exists") in lean
        assert snapshot(lean_ns, ifnames=("eth0",)).diff(snapshot(full_ns, ifnames=("eth0",))) == ""


async def _reads(ns: str) -> tuple[list[object], list[object]]:
    async with Kernel(ns) as kernel:
        await kernel.set_link("eth0", up=True)
        await kernel.add_address("eth0", ipaddress.ip_interface("198.51.100.20/24"))
        await kernel.add_address("eth0", ipaddress.ip_interface("2001:db8::20/64"), nodad=True)
        lean: list[object] = [
            await kernel.links(),
            await kernel.addresses(),
            [{k: v for k, v in r.items() if k != "header"} for r in await kernel.routes(AF_INET)],
        ]
    ipr = AsyncIPRoute(netns=ns)
    try:
        await ipr.setup_endpoint()
        links = [m async for m in await ipr.link("dump")]
        names = {int(m["index"]): m.get("ifname") for m in links}
        full: list[object] = [
            [_link_info(m) for m in links],
            [_address_info(m, names) async for m in await ipr.addr("dump")],
            [
                {k: v for k, v in _flat(m) if k != "header"}
                async for m in await ipr.route("dump", family=AF_INET)
            ],
        ]
    finally:
        ipr.close()
    return lean, full


def _flat(msg: Any) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in msg.items() if k != "attrs"] + list(msg.get("attrs", []))


def test_lean_dumps_are_asynciproutes() -> None:
    with Twins(1, tag="rtnl") as twins:
        lean, full = asyncio.run(_reads(twins.names[0]))
        assert lean == full
