"""`ifvip demo`: a failover shown on one machine, in network namespaces it builds.

Two ifvip nodes and a client on a bridge, running CARP (ucarp's protocol) or, with
`--protocol vrrp`, VRRP (keepalived's). node1 (preferred) becomes master; node1 is killed
with SIGKILL and node2 takes the VIP, announcing it; the client's neighbour entry shows the
new MAC; node1 comes back and takes the VIP back. Times are measured and printed. The client
listens to the adverts on the wire, so the live status line (on a terminal) shows who
advertises. Everything is removed at the end, also on Ctrl-C, SIGTERM and errors.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Final, TextIO

from ifvip.lab import Lab

VIP: Final = "198.51.100.100"
VHID: Final = "42"
TIMEOUT: Final = 15.0
POLL: Final = 0.01
REDRAW: Final = 0.1
HOLD: Final = 2.5  # seconds a terminal viewer gets to watch each steady state
NODES: Final = ("node1", "node2")


@dataclass(frozen=True)
class Protocol:
    """How the demo runs one protocol: the node command lines and what to expect."""

    name: str
    group: str  # how the group is named in the log
    preferred: tuple[str, ...]  # node1's extra arguments (wins)
    other: tuple[str, ...]  # node2's
    start: str  # why the first master takes a while
    takeover: str  # the protocol's bound on node2's takeover

    def argv(self, ifvip: str, source: str, extra: Sequence[str]) -> list[str]:
        common = ["-i", "eth0", "-s", source]
        if self.name == "carp":
            args = ["-v", VHID, "-p", "demo-secret", "-a", VIP, "--masklen", "24"]
        else:
            args = ["--protocol", "vrrp", "--vrid", VHID, "--vip", f"{VIP}/24"]
        return [ifvip, "run", *common, *args, *extra]


PROTOCOLS: Final = {
    "carp": Protocol(
        "carp",
        f"CARP vhid {VHID}",
        ("-P", "-k", "0"),
        ("-k", "50"),
        "3 s master-down at start, as ucarp",
        "limit: 3 s + 50/256 s after node1's last advert",
    ),
    "vrrp": Protocol(
        "vrrp",
        f"VRRP vrid {VHID}",
        ("--priority", "200"),
        ("--priority", "100"),
        "master-down interval 3 s + 56/256 s at start, as keepalived",
        "limit: 3 × 1 s + 156/256 s after node1's last advert",
    ),
}


class Screen:
    """Log lines, and on a terminal one status line below them, redrawn in place."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live
        self.start = time.monotonic()
        self.line = ""

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def say(self, text: str) -> None:
        self._clear()
        self.out.write(f"[{self.elapsed():6.2f}s] {text}\n")
        self._draw()

    def status(self, text: str) -> None:
        if self.live:
            self.line = text
            self._draw()

    def done(self) -> None:
        self._clear()
        self.line = ""

    def _clear(self) -> None:
        if self.live and self.line:
            self.out.write("\r\033[K")

    def _draw(self) -> None:
        if self.live and self.line:
            self.out.write(f"\r\033[K{self.line}")
        self.out.flush()


class Wire:
    """The client's ear on the segment: protocol-112 packets counted by sender."""

    def __init__(self, lab: Lab) -> None:
        from pyroute2 import netns  # noqa: PLC0415

        from ifvip.daemon.transport import Channel  # noqa: PLC0415

        client = lab.hosts["client"]
        self.names = {str(host.address.ip): host.name for host in lab.hosts.values()}
        self.seen: Counter[str] = Counter()
        netns.pushns(client.netns)
        try:
            index = socket.if_nametoindex("eth0")
            self.channel = Channel(
                "eth0", index, socket.AF_INET, source=str(client.address.ip), multicast=True
            )
        finally:
            netns.popns()

    def drain(self) -> None:
        while (packet := self.channel.receive()) is not None:
            self.seen[self.names.get(str(packet.src), str(packet.src))] += 1

    def summary(self) -> str:
        return ", ".join(f"{name} {self.seen[name]}" for name in NODES)

    def close(self) -> None:
        self.channel.close()


class Demo:
    def __init__(self, screen: Screen, protocol: Protocol) -> None:
        self.screen = screen
        self.protocol = protocol
        self.ifvip = str(Path(sys.executable).with_name("ifvip"))
        self.wire: Wire | None = None
        self.lab: Lab | None = None

    def node(self, name: str, extra: Sequence[str]) -> subprocess.Popen[bytes]:
        assert self.lab is not None
        host = self.lab.hosts[name]
        argv = self.protocol.argv(self.ifvip, str(host.address.ip), extra)
        return self.lab.run(name, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def holder(self) -> str | None:
        assert self.lab is not None
        holders = [n for n in NODES if self.lab.holds(n, VIP)]
        return ",".join(holders) if holders else None

    def client_sees(self) -> str:
        # One ping resolves the VIP's MAC in the client's neighbour table.
        assert self.lab is not None
        self.lab.run(
            "client",
            ["ping", "-c", "1", "-W", "1", VIP],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ).wait(5)
        mac = self.lab.neighbour_mac("client", VIP) or "unresolved"
        owner = next((h.name for h in self.lab.hosts.values() if h.mac == mac), "?")
        return f"{mac} ({owner})"

    def _tick(self) -> None:
        if self.wire is not None:
            self.wire.drain()
        if self.screen.live:
            master = self.holder() or "none"
            adverts = self.wire.summary() if self.wire else ""
            self.screen.status(
                f"  {self.screen.elapsed():6.1f}s  MASTER: {master:<11}"
                f" adverts seen by the client: {adverts}"
            )

    def until(self, condition: Callable[[], bool], timeout: float = TIMEOUT) -> float:
        """Wait for CONDITION, keeping the status line live; the seconds it took."""
        start = last = time.monotonic()
        while time.monotonic() - start < timeout:
            _check_stop()
            if condition():
                return time.monotonic() - start
            if time.monotonic() - last >= REDRAW:
                self._tick()
                last = time.monotonic()
            time.sleep(POLL)
        raise TimeoutError(f"not reached within {timeout:.0f} s")

    def hold(self) -> None:
        """On a terminal, let the viewer watch the steady state for a moment."""
        if self.screen.live:
            end = time.monotonic() + HOLD
            self.until(lambda: time.monotonic() >= end, HOLD + 1)

    def run(self) -> None:
        say = self.screen.say
        proto = self.protocol
        with Lab(["node1", "node2", "client"]) as lab:
            self.lab = lab
            try:
                self.wire = Wire(lab)
                self._scenario(lab, say, proto)
            finally:
                if self.wire is not None:
                    self.wire.close()
                self.screen.done()
        say("lab removed")

    def _scenario(self, lab: Lab, say: Callable[[str], None], proto: Protocol) -> None:
        say(
            f"lab up: node1 {lab.hosts['node1'].address}, node2 "
            f"{lab.hosts['node2'].address}, client {lab.hosts['client'].address}; "
            f"VIP {VIP}, {proto.group}"
        )
        node1 = self.node("node1", proto.preferred)
        self.node("node2", proto.other)
        took = self.until(lambda: self.holder() == "node1")
        say(f"node1 is MASTER after {took:.2f} s ({proto.start})")
        say(f"client resolves the VIP to {self.client_sees()}")
        self.hold()
        lab.stop(node1, signal.SIGKILL)
        killed = time.monotonic()
        say("SIGKILL to node1's ifvip")
        took = self.until(lambda: lab.holds("node2", VIP))
        say(f"node2 took over {took:.2f} s after the kill ({proto.takeover})")
        time.sleep(0.2)
        say(
            f"client now resolves the VIP to {self.client_sees()} "
            f"({time.monotonic() - killed:.2f} s after the kill)"
        )
        if lab.holds("node1", VIP):
            say(
                "node1 still holds the VIP on its link until its lifetime runs out: "
                "no advert refreshes it now, so the kernel removes it (ucarp's stays)"
            )
        else:
            say("node1 no longer holds the VIP: its lifetime ran out with the daemon")
        self.hold()
        # A restart clears it first, as ucarp's start-up downscript does, then preempts.
        self.node("node1", proto.preferred)
        took = self.until(lambda: self.holder() == "node1")
        say(f"node1 restarted and preempted node2 after {took:.2f} s")
        say(f"client resolves the VIP to {self.client_sees()}")
        self.hold()
        if self.wire is not None:
            self.wire.drain()
            say(f"adverts the client saw on the wire: {self.wire.summary()}")


class Stopped(Exception):  # noqa: N818 - a request, not an error
    """SIGTERM or SIGINT: end the demo, cleaning up."""


_OWNER = os.getpid()
# Signals received: an exception raised by a handler can be swallowed (when it fires inside
# an at-fork callback of subprocess, say), so the waits also look here.
_REQUESTED: list[int] = []
STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


def _stop(signum: int, frame: FrameType | None) -> None:
    del frame
    if os.getpid() != _OWNER:
        # A forked helper (pyroute2 creates namespaces in one, then terminates it) must die
        # as the signal's default says, not unwind the demo's stack and clean the lab up.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _REQUESTED.append(signum)
    raise Stopped(signal.Signals(signum).name)


def _check_stop() -> None:
    if _REQUESTED:
        raise Stopped(signal.Signals(_REQUESTED[0]).name)


def main(headless: bool, protocol: str = "carp", out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    if os.geteuid() != 0:
        print(
            "ifvip demo needs root: it builds network namespaces (run it with sudo).",
            file=sys.stderr,
        )
        return 1
    if protocol not in PROTOCOLS:
        print(
            f"ifvip demo --protocol {protocol}: no such protocol ({', '.join(PROTOCOLS)}).",
            file=sys.stderr,
        )
        return 1
    global _OWNER  # noqa: PLW0603 - the process whose signals end the demo
    _OWNER = os.getpid()
    _REQUESTED.clear()
    screen = Screen(stream, live=not headless and stream.isatty())
    previous = {signum: signal.signal(signum, _stop) for signum in STOP_SIGNALS}
    try:
        Demo(screen, PROTOCOLS[protocol]).run()
        _check_stop()  # a signal whose exception was swallowed still ends in 130
    except (KeyboardInterrupt, Stopped):
        screen.say("interrupted; lab removed")
        return 130
    except (TimeoutError, OSError, subprocess.SubprocessError) as exc:
        screen.say(f"demo failed: {exc}; lab removed")
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
