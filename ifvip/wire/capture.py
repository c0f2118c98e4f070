"""What a capture says: each frame of a pcap file as one line (or dict) for `ifvip decode`.

Ethernet frames are split into IPv4/IPv6 and ARP; protocol-112 payloads are decoded with the
codec the caller names (CARP and VRRPv2 share protocol 112, 224.0.0.18 and the first byte
0x21, so the protocol is never guessed; within VRRP the version nibble picks v2 or v3).
Gratuitous ARPs and unsolicited neighbour advertisements are shown because they are what a
failover puts on the wire next to the adverts. Nothing here reads files or clocks.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from ifvip.errors import DecodeError
from ifvip.wire import vrrp
from ifvip.wire.carp import CarpAdvert
from ifvip.wire.inet import IPPROTO_VRRP
from ifvip.wire.pcap import Frame

IPPROTO_ICMPV6: Final = 58
ETH_IPV4: Final = 0x0800
ETH_IPV6: Final = 0x86DD
ETH_ARP: Final = 0x0806
ND_NEIGHBOR_ADVERT: Final = 136
PROTOCOLS: Final = ("carp", "vrrp")


@dataclass(frozen=True)
class Decoded:
    """One frame: when, who, and what it is (`kind`), with the decoded fields."""

    time: float
    src_mac: str
    kind: str  # carp | vrrp | arp | na | other | malformed
    summary: str
    fields: dict[str, Any]

    def line(self, origin: float) -> str:
        return f"{self.time - origin:10.6f} {self.src_mac} {self.summary}"

    def to_json(self) -> dict[str, Any]:
        return {"time": self.time, "src_mac": self.src_mac, "kind": self.kind, **self.fields}


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def decode_frames(frames: Iterable[Frame], protocol: str) -> Iterator[Decoded]:
    """Every frame, decoded; a frame that does not parse says why instead of raising."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol {protocol!r}: must be one of {', '.join(PROTOCOLS)}")
    for frame in frames:
        src = _mac(frame.data[6:12]) if len(frame.data) >= 12 else "??"
        try:
            kind, summary, fields = _frame(frame, protocol)
        except DecodeError as exc:
            kind, summary, fields = "malformed", f"malformed: {exc}", {"error": str(exc)}
        yield Decoded(frame.time, src, kind, summary, fields)


def _frame(frame: Frame, protocol: str) -> tuple[str, str, dict[str, Any]]:
    ethertype = frame.ethertype
    payload = frame.payload
    if ethertype == ETH_ARP:
        return _arp(payload)
    if ethertype == ETH_IPV4:
        return _ipv4(payload, protocol)
    if ethertype == ETH_IPV6:
        return _ipv6(payload, protocol)
    return "other", f"ethertype 0x{ethertype:04x}", {"ethertype": ethertype}


def _arp(data: bytes) -> tuple[str, str, dict[str, Any]]:
    if len(data) < 28:
        raise DecodeError(f"ARP packet of {len(data)} bytes, want 28")
    op = struct.unpack_from("!H", data, 6)[0]
    sha, tha = _mac(data[8:14]), _mac(data[18:24])
    spa, tpa = ipaddress.IPv4Address(data[14:18]), ipaddress.IPv4Address(data[24:28])
    gratuitous = spa == tpa
    what = "request" if op == 1 else "reply" if op == 2 else f"op {op}"
    summary = f"ARP {what} {spa} is-at {sha}" + (" (gratuitous)" if gratuitous else f" → {tpa}")
    return (
        "arp",
        summary,
        {"op": op, "sha": sha, "spa": str(spa), "tha": tha, "tpa": str(tpa), "garp": gratuitous},
    )


def _ipv4(data: bytes, protocol: str) -> tuple[str, str, dict[str, Any]]:
    if len(data) < 20 or data[0] >> 4 != 4:
        raise DecodeError("not an IPv4 header")
    ihl = (data[0] & 0x0F) * 4
    total = struct.unpack_from("!H", data, 2)[0]
    if ihl < 20 or total < ihl or len(data) < total:
        raise DecodeError(f"IPv4 lengths do not fit: ihl {ihl}, total {total}, have {len(data)}")
    src, dst = ipaddress.IPv4Address(data[12:16]), ipaddress.IPv4Address(data[16:20])
    ip = {"src": str(src), "dst": str(dst), "ttl": data[8]}
    if data[9] != IPPROTO_VRRP:
        return "other", f"IPv4 {src} → {dst} protocol {data[9]}", {**ip, "protocol": data[9]}
    return _advert(data[ihl:total], protocol, 4, src, dst, ip)


def _ipv6(data: bytes, protocol: str) -> tuple[str, str, dict[str, Any]]:
    if len(data) < 40 or data[0] >> 4 != 6:
        raise DecodeError("not an IPv6 header")
    length, next_header, hops = struct.unpack_from("!HBB", data, 4)
    if len(data) < 40 + length:
        raise DecodeError(f"IPv6 payload length {length} runs past the frame")
    src, dst = ipaddress.IPv6Address(data[8:24]), ipaddress.IPv6Address(data[24:40])
    ip = {"src": str(src), "dst": str(dst), "ttl": hops}
    body = data[40 : 40 + length]
    if next_header == IPPROTO_ICMPV6 and body[:1] == bytes([ND_NEIGHBOR_ADVERT]):
        if len(body) < 24:
            raise DecodeError(f"neighbour advertisement of {len(body)} bytes, want 24")
        flags = struct.unpack_from("!I", body, 4)[0] >> 29
        target = ipaddress.IPv6Address(body[8:24])
        names = "".join(n for bit, n in ((4, "R"), (2, "S"), (1, "O")) if flags & bit) or "-"
        return (
            "na",
            f"NA {target} flags {names} {src} → {dst}",
            {**ip, "target": str(target), "flags": names},
        )
    if next_header != IPPROTO_VRRP:
        return "other", f"IPv6 {src} → {dst} next header {next_header}", ip
    return _advert(body, protocol, 6, src, dst, ip)


def _advert(
    payload: bytes,
    protocol: str,
    family: int,
    src: ipaddress.IPv4Address | ipaddress.IPv6Address,
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address,
    ip: dict[str, Any],
) -> tuple[str, str, dict[str, Any]]:
    head = f"{src} → {dst} ttl {ip['ttl']}: "
    if protocol == "carp":
        if family != 4:
            raise DecodeError("CARP adverts are IPv4 only")
        carp = CarpAdvert.decode(payload)
        fields: dict[str, Any] = {
            "vhid": carp.vhid,
            "advbase": carp.advbase,
            "advskew": carp.advskew,
            "counter": carp.counter,
        }
        return "carp", head + carp.describe(), {**ip, **fields}
    version = payload[0] >> 4 if payload else 0
    if version not in (2, 3):
        raise DecodeError(f"VRRP version is {version}; should be 2 or 3")
    advert = vrrp.decode(payload, version=version, family=family, src=src, dst=dst)
    fields = {
        "version": version,
        "vrid": advert.vrid,
        "priority": advert.priority,
        "interval_cs": advert.interval_cs(),
        "addresses": [str(a) for a in advert.addresses],
    }
    return "vrrp", head + advert.describe(), {**ip, **fields}
