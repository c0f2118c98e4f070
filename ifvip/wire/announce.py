"""Gratuitous ARP frames that tell a LAN which MAC now answers for a virtual IPv4 address.

ucarp's form (specs/carp.md §2.1): an ARP *request* to ff:ff:ff:ff:ff:ff with
sha = tha = the NIC's MAC and spa = tpa = the VIP. keepalived puts ff:ff:ff:ff:ff:ff in tha
(specs/vrrp.md); both update every neighbour cache, and ifvip sends ucarp's form for CARP.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Final

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
