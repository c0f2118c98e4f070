"""A small reader of classic pcap files (EN10MB), for the captured vectors and `ifvip decode`."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from ifvip.errors import DecodeError

_MAGIC_US: Final = 0xA1B2C3D4
_MAGIC_NS: Final = 0xA1B23C4D
LINKTYPE_ETHERNET: Final = 1


@dataclass(frozen=True)
class Frame:
    time: float
    data: bytes  # the link-layer frame

    @property
    def ethertype(self) -> int:
        return int.from_bytes(self.data[12:14], "big") if len(self.data) >= 14 else -1

    @property
    def payload(self) -> bytes:
        """What follows the 14-byte Ethernet header (no VLAN tags in our captures)."""
        return self.data[14:]


def read_pcap(data: bytes) -> Iterator[Frame]:
    """Frames of a classic pcap file, either byte order, micro- or nanosecond stamps."""
    if len(data) < 24:
        raise DecodeError(f"pcap file too short: {len(data)} bytes")
    for order in ("<", ">"):
        magic = struct.unpack_from(order + "I", data, 0)[0]
        if magic in (_MAGIC_US, _MAGIC_NS):
            break
    else:
        raise DecodeError(f"not a pcap file (magic 0x{data[:4].hex()})")
    scale = 1e-6 if magic == _MAGIC_US else 1e-9
    linktype = struct.unpack_from(order + "I", data, 20)[0]
    if linktype != LINKTYPE_ETHERNET:
        raise DecodeError(f"pcap link type {linktype}; only Ethernet (1) is read")
    offset = 24
    while offset + 16 <= len(data):
        seconds, fraction, captured, _original = struct.unpack_from(order + "IIII", data, offset)
        offset += 16
        if offset + captured > len(data):
            raise DecodeError(f"pcap record at byte {offset - 16} runs past the end of the file")
        yield Frame(seconds + fraction * scale, data[offset : offset + captured])
        offset += captured
