"""Gratuitous ARP frames that tell a LAN which MAC now answers for a virtual IPv4 address.

ucarp's form (specs/carp.md §2.1): an ARP *request* to ff:ff:ff:ff:ff:ff with
sha = tha = the NIC's MAC and spa = tpa = the VIP. keepalived puts ff:ff:ff:ff:ff:ff in tha
(specs/vrrp.md); both update every neighbour cache, and ifvip sends ucarp's form for CARP.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Final

from ifvip.wire.carp import checksum as _checksum

BROADCAST: Final = b"\xff" * 6
ETH_P_ARP: Final = 0x0806
ARP_REQUEST: Final = 1


def mac_bytes(mac: str) -> bytes:
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return bytes(int(part, 16) for part in parts)


def gratuitous_arp(
    mac: str, vip: str | ipaddress.IPv4Address, *, target_mac: bytes | None = None
) -> bytes:
    """A 42-byte Ethernet + ARP request announcing `vip` at `mac`."""
    sha = mac_bytes(mac)
    spa = ipaddress.IPv4Address(vip).packed
    tha = sha if target_mac is None else target_mac
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, ARP_REQUEST) + sha + spa + tha + spa
    return BROADCAST + sha + struct.pack("!H", ETH_P_ARP) + arp


# ------------------------------------------------------------------ IPv6: unsolicited NA

ETH_P_IPV6: Final = 0x86DD
ALL_NODES: Final = ipaddress.IPv6Address("ff02::1")
ICMPV6: Final = 58
ND_NEIGHBOR_ADVERT: Final = 136
NA_FLAG_ROUTER: Final = 0x80000000
NA_FLAG_SOLICITED: Final = 0x40000000
NA_FLAG_OVERRIDE: Final = 0x20000000
ND_OPT_TARGET_LINKADDR: Final = 2


def multicast_mac(group: ipaddress.IPv6Address) -> bytes:
    """33:33 + the low 32 bits of an IPv6 multicast group (RFC 2464 §7)."""
    return b"\x33\x33" + group.packed[12:]


def unsolicited_na(
    mac: str, vip: str | ipaddress.IPv6Address, *, router: bool = False, hop_limit: int = 255
) -> bytes:
    """An 86-byte Ethernet + IPv6 + ICMPv6 Neighbour Advertisement announcing `vip` at `mac`.

    keepalived's form (specs/vrrp.md §3.4, byte-identical to the captures): from the VIP
    itself to ff02::1, hop limit 255, traffic class 0, O=1, S=0, R=1 only when the
    interface forwards, target = VIP, and a target link-layer address option = `mac`.
    """
    target = ipaddress.IPv6Address(vip)
    lladdr = mac_bytes(mac)
    flags = NA_FLAG_OVERRIDE | (NA_FLAG_ROUTER if router else 0)
    option = struct.pack("!BB", ND_OPT_TARGET_LINKADDR, 1) + lladdr
    body = struct.pack("!BBHI", ND_NEIGHBOR_ADVERT, 0, 0, flags) + target.packed + option
    pseudo = target.packed + ALL_NODES.packed + struct.pack("!I3xB", len(body), ICMPV6)
    icmp = body[:2] + struct.pack("!H", _checksum(pseudo + body)) + body[4:]
    ipv6 = (
        struct.pack("!IHBB", 6 << 28, len(icmp), ICMPV6, hop_limit)
        + target.packed
        + ALL_NODES.packed
    )
    return multicast_mac(ALL_NODES) + lladdr + struct.pack("!H", ETH_P_IPV6) + ipv6 + icmp
