"""Raw sockets for IP protocol 112 (CARP and VRRP) and AF_PACKET for announcements.

One `Channel` per (interface, family): it joins the protocol's multicast group on the
interface, receives adverts with the IP-level facts the protocols check (source,
destination, TTL or hop limit), and sends adverts with TTL/hop limit 255. Frames that must
leave with a given link-layer source or destination (ucarp's forged 00:00:5e:00:00:VHID
source, `-M` broadcast, gratuitous ARP, unsolicited NA) go out through AF_PACKET.

Nothing here decides: the runtime hands received packets to the codecs and the election.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

from ifvip.wire.carp import checksum as internet_checksum
from ifvip.wire.inet import GROUP_V4, GROUP_V6, IPPROTO_VRRP

ETH_P_IP: Final = 0x0800
ETH_P_IPV6: Final = 0x86DD
ETH_P_ARP: Final = 0x0806

IPV6_RECVHOPLIMIT: Final = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT: Final = getattr(socket, "IPV6_HOPLIMIT", 52)
IPV6_RECVPKTINFO: Final = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO: Final = getattr(socket, "IPV6_PKTINFO", 50)
PKTINFO6: Final = struct.Struct("@16sI")  # struct in6_pktinfo: ipi6_addr, ipi6_ifindex
SO_BINDTODEVICE: Final = getattr(socket, "SO_BINDTODEVICE", 25)
SO_TIMESTAMPNS: Final = getattr(socket, "SO_TIMESTAMPNS", 35)  # struct timespec, realtime
TIMESPEC: Final = struct.Struct("@qq")
RECV_SIZE: Final = 65535
MAX_AGE: Final = 10.0  # seconds: an older stamp means the wall clock stepped, not a queue
ANCILLARY_SIZE: Final = (
    socket.CMSG_SPACE(TIMESPEC.size) + socket.CMSG_SPACE(4) + socket.CMSG_SPACE(PKTINFO6.size)
)

Ancillary = Iterable[tuple[int, int, bytes]]


@dataclass(frozen=True)
class Received:
    """One packet as the protocols see it: IP facts and the protocol payload."""

    src: ipaddress.IPv4Address | ipaddress.IPv6Address
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address
    ttl: int  # TTL (IPv4) or hop limit (IPv6); the protocols require 255
    payload: bytes
    malformed: bool = False  # not even an IP packet we can split: counted, never judged
    arrived: float | None = None  # monotonic seconds (the loop's clock) it reached the kernel


def arrival(ancillary: Ancillary, real_now: float, mono_now: float) -> float | None:
    """The kernel's receive time (SCM_TIMESTAMPNS) on the monotonic clock, or None.

    `real_now` and `mono_now` are the two clocks read together just after the receive: the
    packet's age is `real_now - stamp`, so it arrived at `mono_now - age`. An age below zero
    or over MAX_AGE means the wall clock stepped between the stamp and the read: the packet
    then counts as arriving now, as without a stamp."""
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= TIMESPEC.size:
            sec, nsec = TIMESPEC.unpack_from(value)
            age = real_now - (sec + nsec / 1e9)
            return mono_now - age if 0.0 <= age <= MAX_AGE else mono_now
    return None


def destination6(ancillary: Ancillary) -> ipaddress.IPv6Address | None:
    """The destination of an IPv6 packet, from IPV6_PKTINFO (None when absent)."""
    for level, kind, value in ancillary:
        if level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(value) >= PKTINFO6.size:
            return ipaddress.IPv6Address(PKTINFO6.unpack_from(value)[0])
    return None


def pktinfo6(source: str, ifindex: int) -> tuple[int, int, bytes]:
    """The IPV6_PKTINFO control message that makes the kernel send from `source` on
    `ifindex` (sendmsg), whatever its source address selection would pick."""
    return (
        socket.IPPROTO_IPV6,
        IPV6_PKTINFO,
        PKTINFO6.pack(ipaddress.IPv6Address(source).packed, ifindex),
    )


def hop_limit(ancillary: Ancillary) -> int:
    """IPV6_HOPLIMIT from the ancillary data (0 when absent)."""
    for level, kind, value in ancillary:
        if level == socket.IPPROTO_IPV6 and kind == IPV6_HOPLIMIT and len(value) >= 4:
            return int(struct.unpack_from("@i", value)[0])
    return 0


def parse_ipv4(packet: bytes) -> Received | None:
    """Split a raw IPv4 packet (as a raw socket delivers it) into IP facts and payload."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    total = struct.unpack_from("!H", packet, 2)[0]
    if ihl < 20 or len(packet) < ihl or total < ihl:
        return None
    payload = packet[ihl : min(total, len(packet))]
    return Received(
        ipaddress.IPv4Address(packet[12:16]),
        ipaddress.IPv4Address(packet[16:20]),
        packet[8],
        payload,
    )


def ipv4_header(
    src: str,
    dst: str,
    payload_len: int,
    *,
    ttl: int = 255,
    ident: int = 0,
    tos: int = 0xC0,
    dont_fragment: bool = False,
) -> bytes:
    """A 20-byte IPv4 header for protocol 112 with its checksum (for AF_PACKET frames).

    keepalived sends TOS 0xc0 without DF; ucarp sends TOS 0x10 with DF (shared/vectors).
    """
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        tos,
        20 + payload_len,
        ident & 0xFFFF,
        0x4000 if dont_fragment else 0,
        ttl,
        IPPROTO_VRRP,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    checksum = internet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:]


class Channel:
    """Protocol-112 send/receive on one interface for one address family."""

    def __init__(
        self,
        ifname: str,
        ifindex: int,
        family: int,
        *,
        source: str,
        multicast: bool = True,
        group: str | None = None,
    ) -> None:
        self.ifname = ifname
        self.ifindex = ifindex
        self.family = family
        self.source = source
        self.group = group or str(GROUP_V4 if family == socket.AF_INET else GROUP_V6)
        self.sock = socket.socket(family, socket.SOCK_RAW, IPPROTO_VRRP)
        try:
            self._setup(multicast)
        except BaseException:
            self.sock.close()
            raise

    def _setup(self, multicast: bool) -> None:
        sock = self.sock
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, self.ifname.encode() + b"\0")
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if self.family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xC0)
            group = ipaddress.IPv4Address(self.group).packed
            source = ipaddress.IPv4Address(self.source).packed
            # ip_mreqn: the address picks the source of what we send; the index the link.
            sock.setsockopt(
                socket.IPPROTO_IP,
                socket.IP_MULTICAST_IF,
                struct.pack("4s4si", group, source, self.ifindex),
            )
            if multicast:
                sock.setsockopt(
                    socket.IPPROTO_IP,
                    socket.IP_ADD_MEMBERSHIP,
                    struct.pack("4s4si", group, b"\0" * 4, self.ifindex),
                )
            # No bind(): on a raw socket it filters by destination, and adverts go to the
            # group. SO_BINDTODEVICE already limits reception to this link.
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, 0xC0)
            if multicast:
                mreq = ipaddress.IPv6Address(self.group).packed + struct.pack("@I", self.ifindex)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            # Unbound for the same reason. Every send names its source (IPV6_PKTINFO): left
            # to itself the kernel may pick a link-local VIP over the interface's own
            # link-local address, and the checksum (computed by the codec) would not match.

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self) -> Received | None:
        """One pending packet (`malformed` if it is not IP we can read), or None when none."""
        try:
            data, ancillary, _flags, address = self.sock.recvmsg(RECV_SIZE, ANCILLARY_SIZE)
        except (BlockingIOError, InterruptedError):
            return None
        arrived = arrival(ancillary, time.time(), time.monotonic())
        if self.family == socket.AF_INET:
            parsed = parse_ipv4(data)
            if parsed is None:
                nowhere = ipaddress.IPv4Address(0)
                return Received(nowhere, nowhere, 0, data, malformed=True, arrived=arrived)
            return replace(parsed, arrived=arrived)
        # An IPv6 raw socket delivers no header: the destination comes from IPV6_PKTINFO.
        return Received(
            ipaddress.IPv6Address(address[0].split("%")[0]),
            destination6(ancillary) or ipaddress.IPv6Address(self.group),
            hop_limit(ancillary),
            data,
            arrived=arrived,
        )

    def send(self, payload: bytes, destination: str | None = None) -> None:
        target = destination or self.group
        if self.family == socket.AF_INET:
            self.sock.sendto(payload, (target, 0))
        else:
            control = [pktinfo6(self.source, self.ifindex)] if self.source else []
            self.sock.sendmsg([payload], control, 0, (target, 0, 0, self.ifindex))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class LinkSender:
    """AF_PACKET frames on one interface: GARP, unsolicited NA, adverts with a chosen MAC."""

    def __init__(self, ifname: str) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            self.sock.bind((ifname, 0))
        except BaseException:
            self.sock.close()
            raise

    def send(self, frame: bytes) -> None:
        self.sock.send(frame)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
