"""What `ifvip run` reads of the host once, at start-up, before anything is touched: every
address of the namespace (and which of them an ifvip added: journal.VIP_PROTO), the VIPs
earlier runs journaled, an interface's first address."""

from __future__ import annotations

import asyncio
import glob
import json
import os

from ifvip.daemon.journal import VIP_PROTO
from ifvip.daemon.settings import HostAddress


def host_addresses() -> list[HostAddress]:
    """Every address of the namespace (settings.HostAddress)."""
    from ifvip.ifupdown.netlink import INFINITY_LIFE, Kernel  # noqa: PLC0415

    async def read() -> list[HostAddress]:
        async with Kernel() as kernel:
            found = await kernel.addresses()
        return [
            HostAddress(a.ifname, a.address, a.valid == INFINITY_LIFE, a.proto == VIP_PROTO)
            for a in found
        ]

    return asyncio.run(read())


def journaled(state_dir: str) -> set[str]:
    """The VIPs ifvip's journals in `state_dir` list ("ADDRESS/LEN"): a VIP an earlier run
    left (with --vip-lifetime 0, permanent) is not the host's own address."""
    found: set[str] = set()
    for path in glob.glob(os.path.join(glob.escape(state_dir), "vips.*.json")):
        try:
            with open(path) as handle:
                entries = json.load(handle)
            found.update(str(address) for _device, address in entries)
        except (OSError, ValueError, TypeError):
            continue
    return found


def first_address(interface: str) -> str | None:
    """The first IPv4 address of `interface` (CARP's default -s), None without one."""
    from ifvip.ifupdown.netlink import AF_INET, Kernel, KernelError  # noqa: PLC0415

    async def first() -> str | None:
        async with Kernel() as kernel:
            try:
                found = await kernel.addresses(interface, AF_INET)
            except KernelError:
                return None
            return str(found[0].address.ip) if found else None

    return asyncio.run(first())
