"""VRRPv2 and VRRPv3 advertisements as keepalived 2.2.7 puts them on the wire: codec and checksums.

VRRPv2 (RFC 3768), IPv4 only, 16 + 4n bytes; the 8 authentication bytes are always there::

    0                   1                   2                   3
    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |   Auth Type   |   Adver Int   |          Checksum             |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |                         IP Address (1..n)                     |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |                     Authentication Data (1)                   |
   |                     Authentication Data (2)                   |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

VRRPv3 (RFC 5798 / RFC 9568), IPv4 or IPv6, 8 + 4n or 8 + 16n bytes::

   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |(rsvd) |     Max Adver Int     |          Checksum             |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |                       IPvX Address(es)                        |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Checksums (specs/vrrp.md §1.4), RFC 1071 sums with the checksum field zeroed:
- v2: the message only.
- v3 over IPv6: the RFC 8200 pseudo-header (src, dst, length, next header 112) + message.
- v3 over IPv4: keepalived 2.2.7 (and FRR, Wireshark) add the IPv4 pseudo-header
  ``src dst 0 112 len`` with the packet's *actual* destination (224.0.0.18 or the unicast
  peer); RFC 9568 §5.2.8 (and Cisco) sum the message only. `ChecksumForm` selects one.

The decoder checks only what makes bytes a VRRP advert of the expected version and family:
length (exactly what the count implies, as keepalived does), version, type, checksum, a
non-zero v3 interval (RFC 9568 erratum 8301). VRID, priority, interval, VIP set and password
are judged by the election and the speaker. The decoder is chosen by the group's configured
protocol and version: CARP and VRRPv2 share protocol 112, 224.0.0.18 and first byte 0x21.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import ClassVar, Final, TypeAlias

from ifvip.errors import DecodeError
from ifvip.wire.carp import checksum
from ifvip.wire.inet import IPPROTO_VRRP

VRRP_TYPE_ADVERTISEMENT: Final = 1
VRRP_V2_HEADER: Final = 8
VRRP_AUTH_LEN: Final = 8  # v2 PASS: also the longest password (keepalived truncates)
# Seconds as keepalived reads an interval or a delay: a plain decimal (no sign, exponent
# or infinity), read exactly: 0.07 s is 7 centiseconds.
SECONDS_TEXT: Final = re.compile(r"(\d+)(?:\.(\d*))?|\.(\d+)")
VRRP_V3_HEADER: Final = 8
V3_INTERVAL_MAX_CS: Final = 0x0FFF  # 12 bits: 40.95 s
PRIORITY_OWNER: Final = 255
PRIORITY_LEAVING: Final = 0

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


class AuthType(IntEnum):
    """VRRPv2 Auth Type (RFC 2338 names; RFC 3768 reserves 1 and 2, keepalived implements 1)."""

    NONE = 0
    PASS = 1  # "Simple Text Password": the 8 authentication bytes carry it, NUL-padded
    AH = 2  # IP Authentication Header: not supported by ifvip (specs/vrrp.md §1.5)


class ChecksumForm(StrEnum):
    """How a VRRPv3-over-IPv4 checksum is computed."""

    PSEUDO_HEADER = "pseudo-header"  # keepalived 2.2.7, FRR's default, Wireshark
    MESSAGE_ONLY = "message-only"  # RFC 9568 §5.2.8, Cisco; keepalived >= 2.2.8 v3_checksum_as_v2


def pass_auth_data(password: bytes) -> bytes:
    """keepalived's PASS authentication data: the password truncated to 8 bytes, NUL-padded."""
    return (password + b"\0" * VRRP_AUTH_LEN)[:VRRP_AUTH_LEN]


def ipv4_pseudo_header(src: IPAddress, dst: IPAddress, length: int) -> bytes:
    """``src(4) dst(4) 0x00 0x70 len(2)``, as keepalived's vrrp_build_vrrp_v3() sums it."""
    return (
        ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address(dst).packed
        + struct.pack("!BBH", 0, IPPROTO_VRRP, length)
    )


def ipv6_pseudo_header(src: IPAddress, dst: IPAddress, length: int) -> bytes:
    """RFC 8200 §8.1: src(16) dst(16) upper-layer length(4) zero(3) next header(1)."""
    return (
        ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + struct.pack("!I3xB", length, IPPROTO_VRRP)
    )


def _with_checksum(message: bytes, prefix: bytes = b"") -> bytes:
    zeroed = message[:6] + b"\0\0" + message[8:]
    return zeroed[:6] + struct.pack("!H", checksum(prefix + zeroed)) + zeroed[8:]


def _stored_checksum(message: bytes) -> int:
    value: int = struct.unpack_from("!H", message, 6)[0]
    return value


def _check_header(data: bytes, version: int, minimum: int) -> tuple[int, int, int, int]:
    if len(data) < minimum:
        raise DecodeError(f"VRRPv{version} advert too short: {len(data)} bytes, want {minimum}")
    seen_version, kind = data[0] >> 4, data[0] & 0x0F
    if seen_version != version:
        raise DecodeError(f"wrong VRRP version: received {seen_version}, expect {version}")
    if kind != VRRP_TYPE_ADVERTISEMENT:
        raise DecodeError(f"VRRP type is {kind}; should be {VRRP_TYPE_ADVERTISEMENT}")
    return seen_version, data[1], data[2], data[3]


def _addresses(data: bytes, offset: int, count: int, family: int) -> tuple[IPAddress, ...]:
    size = 4 if family == 4 else 16
    make = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
    return tuple(make(data[offset + i * size : offset + (i + 1) * size]) for i in range(count))


@dataclass(frozen=True)
class Vrrp2Advert:
    """One VRRPv2 advertisement (RFC 3768 §5.1); `adver_int` in whole seconds."""

    vrid: int
    priority: int
    addresses: tuple[ipaddress.IPv4Address, ...]
    adver_int: int = 1
    auth_type: int = AuthType.NONE
    auth_data: bytes = field(default=b"\0" * VRRP_AUTH_LEN, repr=False)  # a password: not shown
    version: ClassVar[int] = 2
    type: ClassVar[int] = VRRP_TYPE_ADVERTISEMENT

    @property
    def count_ip_addrs(self) -> int:
        return len(self.addresses)

    @staticmethod
    def length_for(count: int) -> int:
        return VRRP_V2_HEADER + 4 * count + VRRP_AUTH_LEN

    @classmethod
    def decode(cls, data: bytes) -> Vrrp2Advert:
        """Parse the IP payload of a protocol-112 packet as VRRPv2, or raise DecodeError."""
        _v, vrid, priority, count = _check_header(data, 2, VRRP_V2_HEADER)
        want = cls.length_for(count)
        if len(data) != want:
            raise DecodeError(
                f"VRRPv2 packet of {len(data)} bytes, expect {want} for {count} addresses"
            )
        if checksum(data) != 0:
            computed = checksum(data[:6] + b"\0\0" + data[8:])
            raise DecodeError(
                f"bad VRRPv2 checksum 0x{_stored_checksum(data):04x}; should be 0x{computed:04x}"
            )
        addresses = _addresses(data, VRRP_V2_HEADER, count, 4)
        return cls(
            vrid=vrid,
            priority=priority,
            addresses=addresses,  # type: ignore[arg-type]
            adver_int=data[5],
            auth_type=data[4],
            auth_data=bytes(data[want - VRRP_AUTH_LEN : want]),
        )

    def encode(self) -> bytes:
        """The message, checksum included (over the message only)."""
        if len(self.auth_data) != VRRP_AUTH_LEN:
            raise ValueError(f"VRRPv2 authentication data is {len(self.auth_data)} bytes, not 8")
        raw = (
            struct.pack(
                "!BBBBBBH",
                (self.version << 4) | self.type,
                self.vrid,
                self.priority,
                len(self.addresses),
                self.auth_type,
                self.adver_int,
                0,
            )
            + b"".join(a.packed for a in self.addresses)
            + self.auth_data
        )
        return _with_checksum(raw)

    def interval_cs(self) -> int:
        """The interval in centiseconds, the unit the election uses for both versions."""
        return self.adver_int * 100

    def describe(self) -> str:
        addrs = ",".join(str(a) for a in self.addresses)
        return (
            f"VRRPv2 vrid {self.vrid} prio {self.priority} adver_int {self.adver_int}s "
            f"auth_type {self.auth_type} addrs {addrs}"
        )


@dataclass(frozen=True)
class Vrrp3Advert:
    """One VRRPv3 advertisement (RFC 5798 §5.2); `max_adver_int_cs` in centiseconds (12 bits)."""

    vrid: int
    priority: int
    addresses: tuple[IPAddress, ...]
    max_adver_int_cs: int = 100
    rsvd: int = 0
    version: ClassVar[int] = 3
    type: ClassVar[int] = VRRP_TYPE_ADVERTISEMENT

    @property
    def count_ipvx_addr(self) -> int:
        return len(self.addresses)

    @property
    def family(self) -> int:
        return 6 if self.addresses and self.addresses[0].version == 6 else 4

    @staticmethod
    def length_for(count: int, family: int) -> int:
        return VRRP_V3_HEADER + (4 if family == 4 else 16) * count

    @classmethod
    def decode(
        cls,
        data: bytes,
        *,
        family: int,
        src: IPAddress | None = None,
        dst: IPAddress | None = None,
        forms: tuple[ChecksumForm, ...] = (ChecksumForm.PSEUDO_HEADER, ChecksumForm.MESSAGE_ONLY),
    ) -> Vrrp3Advert:
        """Parse a VRRPv3 payload of the given family (4 or 6), or raise DecodeError.

        With `src` and `dst` (the IP header's addresses) the checksum is verified: for IPv4 in
        any of `forms`, tried in order; for IPv6 with the RFC 8200 pseudo-header. Without
        them it is not (an IPv6 socket with IPV6_CHECKSUM has the kernel verify it).
        """
        if family not in (4, 6):
            raise ValueError(f"family {family}: must be 4 or 6")
        _v, vrid, priority, count = _check_header(data, 3, VRRP_V3_HEADER)
        want = cls.length_for(count, family)
        if len(data) != want:
            raise DecodeError(
                f"VRRPv3 packet of {len(data)} bytes, expect {want} "
                f"for {count} IPv{family} addresses"
            )
        word = struct.unpack_from("!H", data, 4)[0]
        interval = word & V3_INTERVAL_MAX_CS
        if interval == 0:
            raise DecodeError("VRRPv3 max_adver_int is 0 cs; must be at least 1")
        if src is not None and dst is not None:
            _verify_v3(data, family, src, dst, forms)
        return cls(
            vrid=vrid,
            priority=priority,
            addresses=_addresses(data, VRRP_V3_HEADER, count, family),
            max_adver_int_cs=interval,
            rsvd=word >> 12,
        )

    def encode(
        self,
        src: IPAddress | None = None,
        dst: IPAddress | None = None,
        *,
        form: ChecksumForm = ChecksumForm.PSEUDO_HEADER,
    ) -> bytes:
        """The message with its checksum: `src`/`dst` are the IP header's (the unicast peer's
        address when unicast). Without them (IPv6 socket with IPV6_CHECKSUM: the kernel
        fills it in) the checksum field is 0."""
        if not 1 <= self.max_adver_int_cs <= V3_INTERVAL_MAX_CS:
            raise ValueError(f"max_adver_int {self.max_adver_int_cs} cs is outside 1..4095")
        raw = struct.pack(
            "!BBBBHH",
            (self.version << 4) | self.type,
            self.vrid,
            self.priority,
            len(self.addresses),
            (self.rsvd << 12) | self.max_adver_int_cs,
            0,
        ) + b"".join(a.packed for a in self.addresses)
        if src is None or dst is None:
            return raw
        return _with_checksum(raw, _prefix(self.family, src, dst, len(raw), form))

    def interval_cs(self) -> int:
        return self.max_adver_int_cs

    def describe(self) -> str:
        addrs = ",".join(str(a) for a in self.addresses)
        return (
            f"VRRPv3 vrid {self.vrid} prio {self.priority} "
            f"max_adver_int {self.max_adver_int_cs}cs addrs {addrs}"
        )


VrrpAdvert: TypeAlias = Vrrp2Advert | Vrrp3Advert


def _prefix(family: int, src: IPAddress, dst: IPAddress, length: int, form: ChecksumForm) -> bytes:
    if family == 6:
        return ipv6_pseudo_header(src, dst, length)
    if form is ChecksumForm.PSEUDO_HEADER:
        return ipv4_pseudo_header(src, dst, length)
    return b""


def _verify_v3(
    data: bytes, family: int, src: IPAddress, dst: IPAddress, forms: tuple[ChecksumForm, ...]
) -> None:
    tried = (ChecksumForm.PSEUDO_HEADER,) if family == 6 else forms
    for form in tried:
        if checksum(_prefix(family, src, dst, len(data), form) + data) == 0:
            return
    stored = _stored_checksum(data)
    zeroed = data[:6] + b"\0\0" + data[8:]
    wants = ", ".join(
        f"0x{checksum(_prefix(family, src, dst, len(data), form) + zeroed):04x} ({form})"
        for form in tried
    )
    raise DecodeError(f"bad VRRPv3 checksum 0x{stored:04x}; should be {wants}")


def decode(
    data: bytes,
    *,
    version: int,
    family: int = 4,
    src: IPAddress | None = None,
    dst: IPAddress | None = None,
    forms: tuple[ChecksumForm, ...] = (ChecksumForm.PSEUDO_HEADER, ChecksumForm.MESSAGE_ONLY),
) -> VrrpAdvert:
    """Decode with the codec of the group's configured version (never guessed from the bytes)."""
    if version == 2:
        if family != 4:
            raise DecodeError("VRRPv2 is IPv4 only")
        return Vrrp2Advert.decode(data)
    if version == 3:
        return Vrrp3Advert.decode(data, family=family, src=src, dst=dst, forms=forms)
    raise ValueError(f"VRRP version {version}: must be 2 or 3")
