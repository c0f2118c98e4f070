"""Ancillary data of a received advert: the kernel's timestamp on the monotonic clock, hops."""

from __future__ import annotations

import ipaddress
import socket
import struct

from ifvip.daemon.transport import (
    IPV6_HOPLIMIT,
    IPV6_PKTINFO,
    MAX_AGE,
    SO_TIMESTAMPNS,
    arrival,
    destination6,
    hop_limit,
    pktinfo6,
)


def stamp(seconds: float) -> tuple[int, int, bytes]:
    sec = int(seconds)
    nsec = round((seconds - sec) * 1e9)
    return (socket.SOL_SOCKET, SO_TIMESTAMPNS, struct.pack("@qq", sec, nsec))


def hops(value: int) -> tuple[int, int, bytes]:
    return (socket.IPPROTO_IPV6, IPV6_HOPLIMIT, struct.pack("@i", value))


def test_arrival_is_the_stamp_moved_onto_the_monotonic_clock() -> None:
    # Stamped at wall time 1700000000.25, read at 1700000000.2505 (0.5 ms later), when the
    # monotonic clock said 500.0: it arrived at monotonic 499.9995.
    got = arrival([stamp(1_700_000_000.25)], 1_700_000_000.2505, 500.0)
    assert got is not None
    assert abs(got - 499.9995) < 1e-6


def test_arrival_finds_the_stamp_among_other_messages() -> None:
    got = arrival([hops(255), stamp(1000.0)], 1000.002, 7.0)
    assert got is not None
    assert abs(got - 6.998) < 1e-6


def test_no_stamp_means_no_arrival() -> None:
    assert arrival([], 1000.0, 7.0) is None
    assert arrival([hops(255)], 1000.0, 7.0) is None
    # A truncated timespec (MSG_CTRUNC) is no stamp either.
    level, kind, data = stamp(1000.0)
    assert arrival([(level, kind, data[:8])], 1000.0, 7.0) is None


def test_a_wall_clock_step_never_moves_the_arrival() -> None:
    # Stepped back after the stamp: the age would be negative.
    assert arrival([stamp(1000.0)], 999.0, 7.0) == 7.0
    # Stepped forward by an hour: the packet is not an hour old.
    assert arrival([stamp(1000.0)], 1000.0 + 3600, 7.0) == 7.0
    # A real backlog within MAX_AGE is believed.
    got = arrival([stamp(1000.0)], 1000.0 + MAX_AGE / 2, 100.0)
    assert got is not None
    assert abs(got - (100.0 - MAX_AGE / 2)) < 1e-6


def test_hop_limit() -> None:
    assert hop_limit([stamp(1.0), hops(255)]) == 255
    assert hop_limit([hops(1)]) == 1
    assert hop_limit([stamp(1.0)]) == 0
    assert hop_limit([]) == 0


def test_pktinfo_names_the_source_and_link_and_reads_back_as_the_destination() -> None:
    level, kind, data = pktinfo6("fe80::1", 7)
    assert (level, kind) == (socket.IPPROTO_IPV6, IPV6_PKTINFO)
    # struct in6_pktinfo: 16 bytes of address, then the interface index.
    assert data == ipaddress.IPv6Address("fe80::1").packed + struct.pack("@I", 7)
    assert destination6([stamp(1.0), (level, kind, data)]) == ipaddress.IPv6Address("fe80::1")
    assert destination6([stamp(1.0), hops(255)]) is None
    assert destination6([(level, kind, data[:10])]) is None
