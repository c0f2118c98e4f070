"""The CARP advertisement as ucarp 1.5.2 puts it on the wire: codec, checksum and HMAC.

    0                   1                   2                   3
    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |Version| Type  | VirtualHostID |    AdvSkew    |    Auth Len   |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |    Demotion   |     AdvBase   |          Checksum             |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |                         Counter (1)                           |
   |                         Counter (2)                           |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |                     SHA-1 HMAC (1)  ...  (5)                  |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

36 bytes, the checksum an RFC 1071 sum over them with no pseudo-header (specs/carp.md §1.3,
§1.4). The HMAC-SHA1 covers the constants 2 and 1, the vhid, the virtual IPv4 address and
the counter, keyed by the password (at most 19 bytes), and nothing else (§1.5). The decoder
checks only what makes a packet a CARP advert; vhid, authentication and timing are judged
by the election.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import ClassVar, Final

from ifvip.errors import DecodeError
from ifvip.wire.digest import compare_digest, hmac_sha1

CARP_VERSION: Final = 2
CARP_ADVERTISEMENT: Final = 1
CARP_LEN: Final = 36
AUTHLEN: Final = 7  # counter + HMAC, in 32-bit words, as ucarp sends it
PASSWORD_MAX: Final = 19

_HEADER: Final = struct.Struct("!BBBBBBHQ20s")


def checksum(data: bytes) -> int:
    """RFC 1071 internet checksum (one's complement of the one's-complement sum)."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def compute_md(password: bytes, vhid: int, vip: str | ipaddress.IPv4Address, counter: int) -> bytes:
    """ucarp's carp_md: HMAC-SHA1(password, 02 01 vhid vip[4] counter[8])."""
    message = (
        bytes((CARP_VERSION, CARP_ADVERTISEMENT, vhid))
        + ipaddress.IPv4Address(vip).packed
        + counter.to_bytes(8, "big")
    )
    return hmac_sha1(password, message)


@dataclass(frozen=True)
class CarpAdvert:
    """One CARP advertisement; field names follow ucarp's `struct carp_header`."""

    vhid: int
    advskew: int
    advbase: int
    counter: int
    md: bytes
    version: int = CARP_VERSION
    type: int = CARP_ADVERTISEMENT
    authlen: int = AUTHLEN
    demote: int = 0

    LENGTH: ClassVar[int] = CARP_LEN

    @classmethod
    def decode(cls, data: bytes) -> CarpAdvert:
        """Parse the IP payload of a protocol-112 packet as CARP, or raise DecodeError."""
        if len(data) < CARP_LEN:
            raise DecodeError(f"CARP advert too short: {len(data)} bytes, want {CARP_LEN}")
        packet = data[:CARP_LEN]
        version = packet[0] >> 4
        if version != CARP_VERSION:
            raise DecodeError(f"CARP version is {version}; should be {CARP_VERSION}")
        if checksum(packet) != 0:
            stored = struct.unpack_from("!H", packet, 6)[0]
            want = checksum(packet[:6] + b"\0\0" + packet[8:])
            raise DecodeError(f"bad CARP checksum 0x{stored:04x}; should be 0x{want:04x}")
        vt, vhid, advskew, authlen, demote, advbase, _sum, counter, md = _HEADER.unpack(packet)
        return cls(
            vhid=vhid,
            advskew=advskew,
            advbase=advbase,
            counter=counter,
            md=md,
            version=vt >> 4,
            type=vt & 0x0F,
            authlen=authlen,
            demote=demote,
        )

    def encode(self) -> bytes:
        """The 36 bytes, checksum included."""
        raw = _HEADER.pack(
            (self.version << 4) | self.type,
            self.vhid,
            self.advskew,
            self.authlen,
            self.demote,
            self.advbase,
            0,
            self.counter,
            self.md,
        )
        return raw[:6] + struct.pack("!H", checksum(raw)) + raw[8:]

    @classmethod
    def build(
        cls,
        *,
        vhid: int,
        advskew: int,
        advbase: int,
        counter: int,
        password: bytes,
        vip: str | ipaddress.IPv4Address,
    ) -> CarpAdvert:
        """A signed advert, as ucarp sends it."""
        return cls(vhid, advskew, advbase, counter, compute_md(password, vhid, vip, counter))

    def verify(self, password: bytes, vip: str | ipaddress.IPv4Address) -> bool:
        """Whether the HMAC matches: a wrong password, vhid or VIP all fail alike."""
        return compare_digest(self.md, compute_md(password, self.vhid, vip, self.counter))

    def interval(self) -> float:
        """The advertised interval in seconds: advbase + advskew/256 (specs/carp.md §3)."""
        return self.advbase + self.advskew / 256

    def describe(self) -> str:
        return (
            f"CARP v{self.version} type {self.type} vhid {self.vhid} advbase {self.advbase} "
            f"advskew {self.advskew} demote {self.demote} counter {self.counter:#018x}"
        )
