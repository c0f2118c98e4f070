"""What a VRRP group's options leave out, found on the host: the interface (the default
route's) and the advert source (its primary IPv4 or link-local IPv6 address, never a VIP).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Sequence
from typing import Any, Final

from ifvip.daemon.vrrp.config import VrrpConfig
from ifvip.ifupdown.netlink import Kernel

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

IFA_F_SECONDARY: Final = 0x01


RT_SCOPE_LINK: Final = 253


async def _addresses(interface: str, family: int, netns: str | None) -> list[Any]:
    async with Kernel(netns) as kernel:
        return list(
            await kernel.addresses(interface, socket.AF_INET if family == 4 else socket.AF_INET6)
        )


def pick_source(found: Sequence[Any], family: int, vips: Sequence[IPAddress]) -> str | None:
    for info in found:
        ip = info.address.ip
        if ip in vips:
            continue
        if family == 4 and not info.flags & IFA_F_SECONDARY:
            return str(ip)
        if family == 6 and info.scope == RT_SCOPE_LINK and ip.is_link_local:
            return str(ip)
    return None


def configure(
    *,
    interface: str | None,
    srcip: str | None,
    vips: Sequence[str],
    links: Sequence[str] | None = None,
    netns: str | None = None,
    **options: Any,
) -> VrrpConfig:
    """`build_vrrp_group` after finding what the user left out: the interface (the default
    route's) and the advert source (its primary IPv4 or link-local IPv6 address)."""
    from ifvip.daemon.runtime import discover_defaults  # noqa: PLC0415
    from ifvip.daemon.vrrp.config import build_vrrp_group  # noqa: PLC0415

    words = [w for text in vips for w in text.split()]
    if not interface:
        interface, _first = asyncio.run(discover_defaults(netns))
    own: list[str] = []
    if interface and (links is None or interface in links):
        parsed = []
        for word in words:
            with contextlib.suppress(ValueError):
                parsed.append(ipaddress.ip_interface(word.partition("@")[0]).ip)
        family = 6 if parsed and parsed[0].version == 6 else 4
        found = asyncio.run(_addresses(interface, family, netns))
        if not srcip:
            srcip = pick_source(found, family, parsed)
        # Our own addresses, VIPs aside, leave the peer list (one list serves every node).
        own = [str(i.address.ip) for i in found if i.address.ip not in parsed]
    return build_vrrp_group(
        interface=interface, srcip=srcip, vips=words, links=links, own=own, **options
    )
