"""ucarp 1.5.2's CARP on one interface, behind speaker.py's seam (specs/carp.md).

Receive checks in ucarp's order (own source, TTL 255, the codec, vhid, group, HMAC), the
advert counter ucarp adopts from a valid peer, adverts through the kernel socket or as a
whole frame (forged source MAC, -M broadcast), and ucarp's gratuitous ARP.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ifvip.daemon.carp.config import GroupConfig
from ifvip.daemon.speaker import Accepted, ChannelSpec, Dropped, IPAddress, Outgoing
from ifvip.daemon.transport import Received, ipv4_header
from ifvip.election.carp import (
    AdvertReceived,
    CarpAction,
    CarpEvent,
    CarpParams,
    Machine,
    SendAdvert,
    initial,
    step,
    sync_member,
)
from ifvip.election.sync import Member
from ifvip.errors import DecodeError
from ifvip.wire.announce import gratuitous_arp, mac_bytes
from ifvip.wire.carp import CarpAdvert


@dataclass
class CarpSpeaker:
    """ucarp 1.5.2's CARP on one interface (specs/carp.md)."""

    config: GroupConfig
    counter: int = field(default_factory=lambda: int.from_bytes(os.urandom(8)))

    def __post_init__(self) -> None:
        c = self.config
        self.name = c.group_name
        self.interface = c.interface
        self.tracks_link = not c.ignoreifstate
        self.channel = ChannelSpec(socket.AF_INET, str(c.srcip), str(c.mcast), not c.nomcast)
        self.priority: int | None = None  # CARP elects by advbase/advskew

    def initial(self) -> Machine:
        c = self.config
        return initial(
            CarpParams(
                vhid=c.vhid,
                own_ip=c.srcip,
                advbase=c.advbase,
                advskew=c.advskew,
                deadratio=c.deadratio,
                preempt=c.preempt,
                neutral=c.neutral,
                # Advertise first, take the VIPs when the old master yields (election/carp.py).
                hold_on_preempt=True,
                synced=c.sync_group is not None,
            )
        )

    def step(
        self, machine: Machine, event: CarpEvent, now: float
    ) -> tuple[Machine, list[CarpAction]]:
        return step(machine, event, now)

    def state_of(self, machine: Machine) -> str:
        return str(machine.state)

    def demoted(self, machine: Machine) -> bool:
        return machine.demoted

    def fault(self, machine: Machine) -> str | None:
        return machine.fault

    def sync_member(self, name: str, machine: Machine) -> Member:
        return sync_member(name, machine)

    def status_facts(self, machine: Machine) -> dict[str, Any]:
        """What `ifvip status` shows for this group."""
        c = self.config
        # With managed stanzas the stanzas bring -a's address up: ifvip adds only --vip's.
        vips = c.explicit_vips if c.needs_engine else c.vips
        return {
            "protocol": "carp",
            "vrid": c.vhid,
            "advskew": machine.advskew,
            "advert_interval": machine.interval(),
            "vips": tuple(str(v) for v in vips),
            "managed": c.manage or ((c.ucarp_stanza,) if c.ucarp_stanza else ()),
        }

    async def drain(self) -> None:
        return None  # CARP runs nothing of its own beside the role

    def receive(self, packet: Received) -> Accepted | Dropped:
        """ucarp's receive checks (§1.8), in its order; meaning is left to the election."""
        c = self.config
        if packet.src == c.srcip:
            return Dropped("own")
        if packet.ttl != 255:
            return Dropped("ttl", f"({self.name}) bad TTL {packet.ttl} from {packet.src}")
        try:
            advert = CarpAdvert.decode(packet.payload)
        except DecodeError as exc:
            return Dropped("malformed", f"({self.name}) from {packet.src}: {exc}")
        if advert.vhid != c.vhid:
            return Dropped("vhid")
        if packet.dst != c.mcast:
            return Dropped("group")
        if not advert.verify(c.password.value, c.addr):
            return Dropped(
                "auth",
                f"({self.name}) bad digest from {packet.src}: check vhid, password and virtual IP",
            )
        # ucarp adopts a valid peer's counter and counts on from it (§1.6).
        self.counter = advert.counter
        src = ipaddress.IPv4Address(packet.src)
        return Accepted((AdvertReceived(src, advert.advbase, advert.advskew),), src)

    def outgoing(self, action: Any, mac: str) -> Outgoing | None:
        if not isinstance(action, SendAdvert):
            return None
        c = self.config
        # Never resend a counter unchanged (OpenBSD drops it as a loop, §1.6).
        self.counter = (self.counter + 1) & 0xFFFFFFFFFFFFFFFF
        advert = CarpAdvert.build(
            vhid=c.vhid,
            advskew=action.advskew,
            advbase=action.advbase,
            counter=self.counter,
            password=c.password.value,
            vip=c.addr,
        ).encode()
        frame = None
        if c.forge_mac or c.nomcast:
            frame = self._frame(advert, mac)
        return Outgoing(advert, str(c.mcast), frame)

    def _frame(self, advert: bytes, mac: str) -> bytes:
        """The whole Ethernet frame, for ucarp's forged source MAC or `-M` broadcast."""
        c = self.config
        group = c.mcast.packed
        dst = b"\xff" * 6 if c.nomcast else bytes([1, 0, 0x5E, group[1] & 0x7F, group[2], group[3]])
        src = bytes([0, 0, 0x5E, 0, 0, c.vhid]) if c.forge_mac else mac_bytes(mac)
        ip = ipv4_header(
            str(c.srcip),
            str(c.mcast),
            len(advert),
            ident=int.from_bytes(os.urandom(2)),
            tos=0x10,  # ucarp's frame, for parity (shared/vectors/README.md)
            dont_fragment=True,
        )
        return dst + src + b"\x08\x00" + ip + advert

    def announcements(self, mac: str, addresses: Sequence[IPAddress]) -> list[bytes]:
        """ucarp's gratuitous ARP (§2.1) for each IPv4 address; CARP has no IPv6 form."""
        return [gratuitous_arp(mac, a) for a in addresses if a.version == 4]
