"""A hostile LAN in a generator: protocol-112 packets built to be dropped, each with its reason.

(CARP as ucarp speaks it, and VRRP over IPv4 as keepalived does: `VrrpHostile`.)

Anything on a LAN can send IP protocol 112. This module builds whole IPv4 packets (header
with TTL and checksum, then the payload) of the kinds a daemon must refuse — malformed,
truncated, wrong TTL, wrong HMAC, replayed with other fields, wrong VHID, oversized,
spoofing a member's own source, sent to a unicast address — and says, for each member of
the group under attack, which drop reason its receive checks must count
(`daemon.carp.speaker.CarpSpeaker.receive`, counted by the runtime as `dropped_<reason>`),
or that the packet never reaches that member. A test sends them and checks the counters account for
every packet; `bench/reliability.py` uses them for the figures.

The packets that carry a valid HMAC (wrong TTL, unicast, truncated) advertise the fastest
timing ucarp allows (advbase 0, advskew 1): if a check were missing, the member would take
them as a preferred master and a transition would show it. Generation is pure and seeded.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import struct
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pyroute2 import netns

from ifvip.wire.carp import CARP_LEN, CarpAdvert, checksum
from ifvip.wire.inet import GROUP_V4
from ifvip.wire.vrrp import AuthType, Vrrp2Advert, Vrrp3Advert, pass_auth_data

IP_MAX_PAYLOAD: Final = 1500 - 20  # one Ethernet MTU: no fragments
FASTEST: Final = (0, 1)  # advbase, advskew: faster than any real master

# The drop reasons of daemon.carp.speaker.CarpSpeaker.receive (counted as `dropped_<reason>`).
OWN: Final = "own"
TTL: Final = "ttl"
MALFORMED: Final = "malformed"
VHID: Final = "vhid"
GROUP: Final = "group"
AUTH: Final = "auth"
REASONS: Final = (OWN, TTL, MALFORMED, VHID, GROUP, AUTH)

KINDS: Final = (
    "malformed",
    "truncated",
    "wrong-ttl",
    "wrong-hmac",
    "replayed",
    "wrong-vhid",
    "oversized",
    "own-source",
    "unicast",
)


@dataclass(frozen=True)
class Member:
    """One member of the CARP group under attack, as its configuration describes it."""

    srcip: ipaddress.IPv4Address
    vhid: int
    password: bytes
    vip: ipaddress.IPv4Address
    group: ipaddress.IPv4Address = GROUP_V4


@dataclass(frozen=True)
class Hostile:
    """One packet: the IPv4 destination, the whole IPv4 packet, what each member drops it as.

    `expect[i]` is the reason member `i` counts; a member missing from it never receives
    the packet (it went to another member's unicast address).
    """

    kind: str
    variant: str
    destination: ipaddress.IPv4Address
    packet: bytes
    expect: dict[int, str]


def ipv4_packet(
    src: ipaddress.IPv4Address,
    dst: ipaddress.IPv4Address,
    payload: bytes,
    *,
    ttl: int = 255,
    ident: int = 0,
) -> bytes:
    """A protocol-112 IPv4 packet with a correct header checksum (the kernel must deliver it)."""
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0x10,
        20 + len(payload),
        ident & 0xFFFF,
        0,
        ttl,
        112,
        0,
        src.packed,
        dst.packed,
    )
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def _fix_checksum(payload: bytearray) -> bytes:
    payload[6:8] = b"\0\0"
    payload[6:8] = struct.pack("!H", checksum(bytes(payload[:CARP_LEN])))
    return bytes(payload)


def _break_checksum(payload: bytes) -> bytes:
    buf = bytearray(payload)
    buf[6] ^= 0x5A
    return bytes(buf)


class _Attack:
    """What both protocols' generators share: the members, the attacker, the IP packet."""

    kinds: tuple[str, ...] = ()
    members: tuple[Any, ...]
    attacker: ipaddress.IPv4Address
    group: ipaddress.IPv4Address
    rng: random.Random

    def _setup(
        self,
        members: Sequence[Any],
        attacker: ipaddress.IPv4Address,
        seed: int,
        identity: Callable[[Any], tuple[Any, ...]],
        mismatch: str,
    ) -> Any:
        """Keep the members (one group: the same `identity`, else ValueError(mismatch)),
        the attacker and a seeded RNG; returns the first member."""
        if not members:
            raise ValueError("no member to attack")
        first = members[0]
        if any(identity(member) != identity(first) for member in members):
            raise ValueError(mismatch)
        self.members = tuple(members)
        self.attacker = attacker
        self.rng = random.Random(seed)
        self.group = first.group
        return first

    def _everyone(self, reason: str) -> dict[int, str]:
        return dict.fromkeys(range(len(self.members)), reason)

    def _hostile(
        self,
        kind: str,
        variant: str,
        payload: bytes,
        expect: dict[int, str],
        *,
        src: ipaddress.IPv4Address | None = None,
        dst: ipaddress.IPv4Address | None = None,
        ttl: int = 255,
    ) -> Hostile:
        destination = dst or self.group
        packet = ipv4_packet(
            src or self.attacker, destination, payload, ttl=ttl, ident=self.rng.getrandbits(16)
        )
        return Hostile(kind, variant, destination, packet, expect)

    def stream(self, count: int, kinds: Sequence[str] | None = None) -> Iterator[Hostile]:
        """`count` packets, the kinds (default: every kind of the protocol) in turn."""
        chosen = self.kinds if kinds is None else tuple(kinds)
        makers = {kind: getattr(self, kind.replace("-", "_")) for kind in chosen}
        for i in range(count):
            yield makers[chosen[i % len(chosen)]]()


class CarpHostile(_Attack):
    """Hostile packets for one CARP group whose members are `members` (same vhid, password, VIP).

    `attacker` is the source address of the packets that do not spoof a member.
    """

    kinds = KINDS

    def __init__(
        self, members: Sequence[Member], attacker: ipaddress.IPv4Address, *, seed: int = 0
    ) -> None:
        first = self._setup(
            members,
            attacker,
            seed,
            lambda m: (m.vhid, m.password, m.vip),
            "members of one group share vhid, password and VIP",
        )
        self.vhid = first.vhid
        self.password = first.password
        self.vip = first.vip

    # ------------------------------------------------------------ building blocks

    def _counter(self) -> int:
        return self.rng.getrandbits(64)

    def _signed(self, *, vhid: int | None = None, timing: tuple[int, int] = FASTEST) -> bytes:
        """A genuine advert (right password and VIP): what a member itself would send."""
        return CarpAdvert.build(
            vhid=self.vhid if vhid is None else vhid,
            advbase=timing[0],
            advskew=timing[1],
            counter=self._counter(),
            password=self.password,
            vip=self.vip,
        ).encode()

    def _forged(self) -> bytes:
        """A well-formed advert for our vhid with a digest the password does not give."""
        return CarpAdvert(
            self.vhid, self.rng.randrange(256), self.rng.randrange(1, 256), self._counter(),
            self.rng.randbytes(20),
        ).encode()  # fmt: skip

    # ------------------------------------------------------------ the kinds

    def malformed(self) -> Hostile:
        variant = self.rng.choice(["random", "version", "vrrp2", "vrrp3", "checksum"])
        if variant == "random":
            payload = bytearray(self.rng.randbytes(self.rng.randrange(CARP_LEN, 200)))
            if checksum(bytes(payload[:CARP_LEN])) == 0 and payload[0] >> 4 == 2:
                payload[6] ^= 0xFF  # the one-in-65536 random header that would pass
        elif variant == "version":
            payload = bytearray(self._signed())
            payload[0] = (self.rng.choice([0, 1, 3, 4, 15]) << 4) | (payload[0] & 0x0F)
            payload = bytearray(_fix_checksum(payload))
        elif variant in ("vrrp2", "vrrp3"):
            # VRRP on the same protocol and group: v2 is 20 bytes (too short), v3 is 0x31.
            version = 2 if variant == "vrrp2" else 3
            count = 1
            vrrp = struct.pack("!BBBBBBH", (version << 4) | 1, self.vhid, 100, count, 1, 1, 0)
            vrrp += self.vip.packed + (b"secret\0\0" if version == 2 else b"")
            vrrp = vrrp[:6] + struct.pack("!H", checksum(vrrp)) + vrrp[8:]
            payload = bytearray(vrrp + (b"\0" * 24 if version == 3 else b""))
        else:
            payload = bytearray(_break_checksum(self._signed()))
        return self._hostile("malformed", variant, bytes(payload), self._everyone(MALFORMED))

    def truncated(self) -> Hostile:
        payload = self._signed()[: self.rng.randrange(0, CARP_LEN)]
        return self._hostile("truncated", str(len(payload)), payload, self._everyone(MALFORMED))

    def wrong_ttl(self) -> Hostile:
        ttl = self.rng.choice([1, 2, 64, 128, 254, self.rng.randrange(1, 255)])
        return self._hostile("wrong-ttl", str(ttl), self._signed(), self._everyone(TTL), ttl=ttl)

    def wrong_hmac(self) -> Hostile:
        variant = self.rng.choice(["random-md", "password", "vip"])
        if variant == "random-md":
            payload = self._forged()
        else:
            last = self.password[-1:] or b"x"
            wrong_password = self.password[:-1] + bytes([last[0] ^ 1])
            if variant == "vip":
                wrong_password = self.password
            vip = self.vip + 1 if variant == "vip" else self.vip
            payload = CarpAdvert.build(
                vhid=self.vhid, advbase=1, advskew=0, counter=self._counter(),
                password=wrong_password, vip=vip,
            ).encode()  # fmt: skip
        return self._hostile("wrong-hmac", variant, payload, self._everyone(AUTH))

    def replayed(self) -> Hostile:
        """A genuine advert replayed with a field changed (the HMAC covers vhid and counter)."""
        genuine = bytearray(self._signed(timing=(1, 0)))
        variant = self.rng.choice(["counter", "md", "vhid", "checksum", "demote"])
        if variant == "counter":
            genuine[8 + self.rng.randrange(8)] ^= 1 << self.rng.randrange(8)
            payload, reason = _fix_checksum(genuine), AUTH
        elif variant == "md":
            genuine[16 + self.rng.randrange(20)] ^= 1 << self.rng.randrange(8)
            payload, reason = _fix_checksum(genuine), AUTH
        elif variant == "vhid":
            genuine[1] = (self.vhid + self.rng.randrange(1, 255)) % 256
            payload, reason = _fix_checksum(genuine), VHID
        elif variant == "checksum":
            payload, reason = _break_checksum(bytes(genuine)), MALFORMED
        else:  # the demote byte changed, the checksum left as it was
            genuine[4] ^= 0xFF
            payload, reason = bytes(genuine), MALFORMED
        return self._hostile("replayed", variant, payload, self._everyone(reason))

    def wrong_vhid(self) -> Hostile:
        vhid = (self.vhid + self.rng.randrange(1, 255)) % 256
        return self._hostile("wrong-vhid", str(vhid), self._signed(vhid=vhid), self._everyone(VHID))

    def oversized(self) -> Hostile:
        size = self.rng.choice([CARP_LEN + 1, 512, 1024, IP_MAX_PAYLOAD])
        variant = self.rng.choice(["forged", "checksum"])
        head = self._forged() if variant == "forged" else _break_checksum(self._signed())
        payload = head + self.rng.randbytes(size - CARP_LEN)
        reason = AUTH if variant == "forged" else MALFORMED
        return self._hostile("oversized", f"{variant}-{size}", payload, self._everyone(reason))

    def own_source(self) -> Hostile:
        """A member's own address as source: that member ignores it, the others refuse it."""
        victim = self.rng.randrange(len(self.members))
        expect = {i: (OWN if i == victim else AUTH) for i in range(len(self.members))}
        return self._hostile(
            "own-source", str(victim), self._forged(), expect, src=self.members[victim].srcip
        )

    def unicast(self) -> Hostile:
        """A genuine, preferred advert sent to one member's address instead of the group."""
        victim = self.rng.randrange(len(self.members))
        return self._hostile(
            "unicast",
            str(victim),
            self._signed(),
            {victim: GROUP},
            dst=self.members[victim].srcip,
        )


# ------------------------------------------------------------------------- VRRP

# The drop reasons of daemon.vrrp.speaker.VrrpSpeaker.receive (and election.vrrp.judge).
MODE: Final = "mode"
VRID: Final = "vrid"
INTERVAL: Final = "interval"
ADDRESSES: Final = "addresses"
VRRP_REASONS: Final = (OWN, TTL, MODE, MALFORMED, VRID, AUTH, INTERVAL, ADDRESSES)
VRRP_KINDS: Final = (
    "malformed",
    "truncated",
    "wrong-ttl",
    "wrong-auth",
    "replayed",
    "wrong-vrid",
    "oversized",
    "own-source",
    "unicast",
)


@dataclass(frozen=True)
class VrrpMember:
    """One member of a VRRP instance over IPv4 (multicast), as keepalived would configure it."""

    srcip: ipaddress.IPv4Address
    vrid: int
    vips: tuple[ipaddress.IPv4Address, ...]
    version: int = 3
    password: bytes | None = None  # VRRPv2 PASS
    advert_int: int = 1  # seconds
    group: ipaddress.IPv4Address = GROUP_V4


class VrrpHostile(_Attack):
    """Hostile packets for one VRRP instance over IPv4 whose members are `members`.

    Packets with a genuine body advertise priority 254, above any member's: a missing check
    would make a member take it for a better master.
    """

    kinds = VRRP_KINDS

    def __init__(
        self, members: Sequence[VrrpMember], attacker: ipaddress.IPv4Address, *, seed: int = 0
    ) -> None:
        first = self._setup(
            members,
            attacker,
            seed,
            lambda m: (m.vrid, m.vips, m.version, m.password, m.advert_int),
            "members of one instance share vrid, VIPs, version and auth",
        )
        self.vrid = first.vrid
        self.vips = first.vips
        self.version = first.version
        self.password = first.password
        self.advert_int = first.advert_int

    def _body(
        self,
        src: ipaddress.IPv4Address,
        dst: ipaddress.IPv4Address,
        *,
        vrid: int | None = None,
        vips: tuple[ipaddress.IPv4Address, ...] | None = None,
        password: bytes | None = None,
        interval: int | None = None,
        priority: int = 254,
    ) -> bytes:
        """A genuine advert (right VIPs, auth, interval) unless told otherwise."""
        vrid = self.vrid if vrid is None else vrid
        vips = self.vips if vips is None else vips
        if self.version == 2:
            secret = self.password if password is None else password
            auth = pass_auth_data(secret) if secret is not None else b"\0" * 8
            return Vrrp2Advert(
                vrid, priority, vips, self.advert_int if interval is None else interval,
                AuthType.PASS if secret is not None else AuthType.NONE, auth,
            ).encode()  # fmt: skip
        return Vrrp3Advert(vrid, priority, vips, 100 * self.advert_int).encode(src, dst)

    def _genuine(self) -> bytes:
        return self._body(self.attacker, self.group)

    def malformed(self) -> Hostile:
        variant = self.rng.choice(["random", "version", "type", "checksum", "carp"])
        if variant == "random":
            payload = bytearray(self.rng.randbytes(self.rng.randrange(0, 120)))
            if payload:
                payload[0] = ((5 - self.version) << 4) | 1  # the other version: always refused
        elif variant == "version":
            payload = bytearray(self._genuine())
            payload[0] = (self.rng.choice([0, 1, 4, 5 - self.version, 15]) << 4) | 1
        elif variant == "type":
            payload = bytearray(self._genuine())
            payload[0] = (self.version << 4) | self.rng.choice([0, 2, 3, 15])
        elif variant == "checksum":
            payload = bytearray(self._genuine())
            payload[6] ^= 0x5A
        else:  # a CARP advert on the same protocol and group: 36 bytes, wrong length
            payload = bytearray(
                CarpAdvert.build(
                    vhid=self.vrid, advbase=1, advskew=0, counter=1, password=b"x", vip=self.vips[0]
                ).encode()
            )
            if self.version == 3:
                payload[0] = 0x31
        return self._hostile("malformed", variant, bytes(payload), self._everyone(MALFORMED))

    def truncated(self) -> Hostile:
        genuine = self._genuine()
        payload = genuine[: self.rng.randrange(0, len(genuine))]
        return self._hostile("truncated", str(len(payload)), payload, self._everyone(MALFORMED))

    def wrong_ttl(self) -> Hostile:
        ttl = self.rng.choice([1, 2, 64, 128, 254, self.rng.randrange(1, 255)])
        return self._hostile("wrong-ttl", str(ttl), self._genuine(), self._everyone(TTL), ttl=ttl)

    def wrong_auth(self) -> Hostile:
        """v2: a wrong password or auth type; v3 (no auth): a VIP set that is not ours."""
        if self.version == 2:
            variant = self.rng.choice(["password", "none"] if self.password else ["password"])
            wrong = (self.password or b"") + b"!" if variant == "password" else None
            if variant == "password" and wrong is not None:
                wrong = wrong[-8:] if len(wrong) > 8 else wrong
            payload = self._body(self.attacker, self.group, password=wrong)
            if variant == "none":
                payload = Vrrp2Advert(self.vrid, 254, self.vips, self.advert_int).encode()
            return self._hostile("wrong-auth", variant, payload, self._everyone(AUTH))
        other = tuple(ipaddress.IPv4Address(int(v) ^ 1) for v in self.vips)
        payload = self._body(self.attacker, self.group, vips=other)
        return self._hostile("wrong-auth", "addresses", payload, self._everyone(ADDRESSES))

    def replayed(self) -> Hostile:
        """A genuine advert replayed with a field changed."""
        variants = ["priority", "count", "vrid", "addresses"] + (
            ["interval"] if self.version == 2 else []
        )
        variant = self.rng.choice(variants)
        if variant in ("priority", "count"):
            # The priority changed with the checksum left as it was, or a count that no
            # longer matches the length.
            changed = bytearray(self._genuine())
            if variant == "priority":
                changed[2] ^= 0x01
            else:
                changed[3] += 1
            return self._hostile("replayed", variant, bytes(changed), self._everyone(MALFORMED))
        if variant == "vrid":
            vrid = (self.vrid + self.rng.randrange(1, 255)) % 256
            payload = self._body(self.attacker, self.group, vrid=vrid)
            return self._hostile("replayed", variant, payload, self._everyone(VRID))
        if variant == "addresses":
            extra = (*self.vips, ipaddress.IPv4Address("203.0.113.1"))
            payload = self._body(self.attacker, self.group, vips=extra)
            return self._hostile("replayed", variant, payload, self._everyone(ADDRESSES))
        interval = self.advert_int + self.rng.randrange(1, 10)
        payload = self._body(self.attacker, self.group, interval=interval)
        return self._hostile("replayed", variant, payload, self._everyone(INTERVAL))

    def wrong_vrid(self) -> Hostile:
        vrid = (self.vrid + self.rng.randrange(1, 255)) % 256
        payload = self._body(self.attacker, self.group, vrid=vrid)
        return self._hostile("wrong-vrid", str(vrid), payload, self._everyone(VRID))

    def oversized(self) -> Hostile:
        """Trailing bytes: keepalived (and ifvip) want the exact length the count implies."""
        size = self.rng.choice([4, 100, 1000, IP_MAX_PAYLOAD - 64])
        payload = self._genuine() + self.rng.randbytes(size)
        return self._hostile("oversized", str(size), payload, self._everyone(MALFORMED))

    def own_source(self) -> Hostile:
        """A member's own address: that member ignores it, the others see a wrong VIP set."""
        victim = self.rng.randrange(len(self.members))
        src = self.members[victim].srcip
        other = tuple(ipaddress.IPv4Address(int(v) ^ 2) for v in self.vips)
        payload = self._body(src, self.group, vips=other)
        expect = {i: (OWN if i == victim else ADDRESSES) for i in range(len(self.members))}
        return self._hostile("own-source", str(victim), payload, expect, src=src)

    def unicast(self) -> Hostile:
        """A genuine advert to one member's address: a multicast instance refuses it."""
        victim = self.rng.randrange(len(self.members))
        dst = self.members[victim].srcip
        payload = self._body(self.attacker, dst)
        return self._hostile("unicast", str(victim), payload, {victim: MODE}, dst=dst)


def tally(
    packets: Sequence[Hostile], members: int, reasons: Sequence[str] = REASONS
) -> list[dict[str, int]]:
    """For each member, how many packets it must count under each drop reason."""
    counts: list[dict[str, int]] = [dict.fromkeys(reasons, 0) for _ in range(members)]
    for packet in packets:
        for member, reason in packet.expect.items():
            counts[member][reason] += 1
    return counts


def raw_socket(ns: str, source: str) -> socket.socket:
    """A protocol-112 sender with IP_HDRINCL inside namespace `ns`."""
    netns.pushns(ns)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    finally:
        netns.popns()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0\0")
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
    return sock


def raw_drops(ns: str) -> int:
    """Packets the kernel dropped on the protocol-112 raw sockets of namespace `ns`."""
    text = subprocess.run(
        ["ip", "netns", "exec", ns, "cat", "/proc/net/raw"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    drops = 0
    for line in text.splitlines()[1:]:
        fields = line.split()
        if fields and fields[1].endswith(":0070"):  # local port = protocol 112
            drops += int(fields[-1])
    return drops
