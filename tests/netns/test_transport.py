"""Protocol-112 channels between two namespaces: multicast, TTL 255, no echo of our own."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from pyroute2.netns import popns, pushns

from ifvip.daemon.transport import Channel, LinkSender, Received, ipv4_header, parse_ipv4
from tests.programs import AS_ROOT

pytestmark = AS_ROOT


def _run(*args: str) -> None:
    subprocess.run(args, check=True, timeout=10, capture_output=True)


def _addresses(ns: str, *scope: str) -> str:
    """`ip -6 -o addr show dev eth0 [scope S]` in `ns`, one address a line."""
    return subprocess.run(
        ["ip", "-n", ns, "-6", "-o", "addr", "show", "dev", "eth0", *scope],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout


@pytest.fixture
def pair() -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:8]
    a, b = f"ifvip-t-a-{tag}", f"ifvip-t-b-{tag}"
    try:
        _run("ip", "netns", "add", a)
        _run("ip", "netns", "add", b)
        _run(
            "ip", "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b
        )
        for ns, v4, v6 in (
            (a, "198.51.100.1/24", "2001:db8::1/64"),
            (b, "198.51.100.2/24", "2001:db8::2/64"),
        ):
            _run("ip", "-n", ns, "addr", "add", v4, "dev", "eth0")
            _run("ip", "-n", ns, "addr", "add", v6, "dev", "eth0", "nodad")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)


def _in_netns(name: str, fn: Callable[[], object]) -> object:
    """Run fn in network namespace `name` (sockets stay there), then come back."""
    pushns(name)
    try:
        return fn()
    finally:
        popns()


def _wait(channel: Channel, timeout: float = 2.0) -> Received:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = channel.receive()
        if got is not None:
            return got
        time.sleep(0.01)
    raise AssertionError("nothing received")


@pytest.mark.parametrize(
    ("family", "src_a", "src_b"),
    [(socket.AF_INET, "198.51.100.1", "198.51.100.2"), (socket.AF_INET6, "fe80::", "fe80::")],
)
def test_multicast_adverts_arrive_with_ttl_255_and_not_back_to_sender(
    pair: tuple[str, str], family: int, src_a: str, src_b: str
) -> None:
    a, b = pair

    def link_local(ns: str) -> str:
        return _addresses(ns, "scope", "link").split()[3].split("/")[0]

    if family == socket.AF_INET6:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "tentative" in _addresses(a):
            time.sleep(0.1)
        src_a, src_b = link_local(a), link_local(b)

    def open_channel(src: str) -> Channel:
        index = socket.if_nametoindex("eth0")
        return Channel("eth0", index, family, source=src)

    sender = _in_netns(a, lambda: open_channel(src_a))
    receiver = _in_netns(b, lambda: open_channel(src_b))
    assert isinstance(sender, Channel) and isinstance(receiver, Channel)
    try:
        time.sleep(0.2)
        sent = time.monotonic()
        sender.send(b"\x21\x01advert")
        got = _wait(receiver)
        assert got.payload == b"\x21\x01advert"
        # The kernel's receive stamp, on the monotonic clock: after the send, before now.
        assert got.arrived is not None and sent <= got.arrived <= time.monotonic()
        assert got.ttl == 255
        assert str(got.src) == src_a
        assert sender.receive() is None  # multicast loop is off
    finally:
        sender.close()
        receiver.close()


def test_link_sender_puts_a_hand_built_frame_on_the_wire(pair: tuple[str, str]) -> None:
    a, b = pair
    receiver = _in_netns(
        b,
        lambda: Channel(
            "eth0", socket.if_nametoindex("eth0"), socket.AF_INET, source="198.51.100.2"
        ),
    )
    sender = _in_netns(a, lambda: LinkSender("eth0"))
    assert isinstance(receiver, Channel) and isinstance(sender, LinkSender)
    try:
        payload = b"\x21\x2a" + bytes(34)
        ip = ipv4_header("198.51.100.1", "224.0.0.18", len(payload))
        # ucarp's forged source MAC 00:00:5e:00:01:VHID, to the IPv4 multicast MAC.
        frame = bytes.fromhex("01005e00001200005e00012a0800") + ip + payload
        time.sleep(0.2)
        sender.send(frame)
        got = _wait(receiver)
        assert (got.payload, got.ttl, str(got.src)) == (payload, 255, "198.51.100.1")
    finally:
        sender.close()
        receiver.close()


def test_parse_ipv4_rejects_short_and_non_ipv4() -> None:
    assert parse_ipv4(b"") is None
    assert parse_ipv4(b"\x60" + bytes(40)) is None
    header = ipv4_header("198.51.100.1", "224.0.0.18", 4, ttl=64)
    got = parse_ipv4(header + b"abcd")
    assert got is not None and got.ttl == 64 and got.payload == b"abcd"


def test_ipv6_unicast_leaves_from_the_named_source_not_a_vip(pair: tuple[str, str]) -> None:
    a, b = pair
    # A link-local and a global VIP on the sender: the kernel's own source selection would
    # pick one of them (the global one for 2001:db8::2); the channel names its own source.
    _run("ip", "-n", a, "addr", "add", "fe80::5e:51/64", "dev", "eth0", "nodad")
    _run("ip", "-n", a, "addr", "add", "2001:db8::51/64", "dev", "eth0", "nodad")
    deadline = time.monotonic() + 5
    out = ""
    while time.monotonic() < deadline:
        out = _addresses(a, "scope", "link")
        if "tentative" not in out and out.count("fe80::") >= 2:
            break
        time.sleep(0.1)
    own = next(
        line.split()[3].split("/")[0] for line in out.splitlines() if "fe80::5e:51" not in line
    )

    def open_channel(src: str) -> Channel:
        index = socket.if_nametoindex("eth0")
        return Channel("eth0", index, socket.AF_INET6, source=src, multicast=False)

    sender = _in_netns(a, lambda: open_channel(own))
    receiver = _in_netns(b, lambda: open_channel("2001:db8::2"))
    assert isinstance(sender, Channel) and isinstance(receiver, Channel)
    try:
        sender.send(b"\x31\x33unicast", "2001:db8::2")
        got = _wait(receiver)
        assert got.payload == b"\x31\x33unicast"
        assert str(got.src) == own  # not fe80::5e:51, not 2001:db8::51 or ::1
        assert str(got.dst) == "2001:db8::2"  # from IPV6_PKTINFO, not assumed
        assert got.ttl == 255
    finally:
        sender.close()
        receiver.close()
