"""`ifvip demo`: a CARP failover shown on one machine, in network namespaces it builds.

Two ifvip nodes and a client on a bridge. node1 (preferred, -P) becomes master; node1 is
killed with SIGKILL and node2 takes the VIP, announcing it; the client's neighbour entry
shows the new MAC; node1 comes back and preempts. Times are measured and printed.
Everything is removed at the end, also on Ctrl-C and on errors.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from ifvip.lab import Lab

VIP: Final = "198.51.100.100"
TIMEOUT: Final = 15.0


def _until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.01)
    raise TimeoutError(f"not reached within {timeout:.0f} s")


class Demo:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.ifvip = str(Path(sys.executable).with_name("ifvip"))

    def node(self, lab: Lab, name: str, *extra: str) -> subprocess.Popen[bytes]:
        host = lab.hosts[name]
        argv = [
            self.ifvip,
            "run",
            "-i",
            "eth0",
            "-s",
            str(host.address.ip),
            "-v",
            "42",
            "-p",
            "demo-secret",
            "-a",
            VIP,
            "--masklen",
            "24",
            "-z",
            *extra,
        ]
        return lab.run(name, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def holder(self, lab: Lab) -> str | None:
        holders = [n for n in ("node1", "node2") if lab.holds(n, VIP)]
        return ",".join(holders) if holders else None

    def client_sees(self, lab: Lab) -> str:
        # One ping resolves the VIP's MAC in the client's neighbour table.
        lab.run(
            "client",
            ["ping", "-c", "1", "-W", "1", VIP],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ).wait(5)
        mac = lab.neighbour_mac("client", VIP) or "unresolved"
        owner = next((h.name for h in lab.hosts.values() if h.mac == mac), "?")
        return f"{mac} ({owner})"

    def run(self) -> None:
        with Lab(["node1", "node2", "client"]) as lab:
            self.say(
                f"lab up: node1 {lab.hosts['node1'].address}, node2 "
                f"{lab.hosts['node2'].address}, client {lab.hosts['client'].address}; "
                f"VIP {VIP}, CARP vhid 42"
            )
            node1 = self.node(lab, "node1", "-P", "-k", "0")
            self.node(lab, "node2", "-k", "50")
            took = _until(lambda: self.holder(lab) == "node1")
            self.say(f"node1 is MASTER after {took:.2f} s (3 s master-down at start, as ucarp)")
            self.say(f"client resolves the VIP to {self.client_sees(lab)}")
            lab.stop(node1, signal.SIGKILL)
            killed = time.monotonic()
            self.say("SIGKILL to node1's ifvip")
            took = _until(lambda: lab.holds("node2", VIP))
            self.say(
                f"node2 took over {took:.2f} s after the kill "
                f"(limit: 3 s + 50/256 s after node1's last advert)"
            )
            time.sleep(0.2)
            self.say(
                f"client now resolves the VIP to {self.client_sees(lab)} "
                f"({time.monotonic() - killed:.2f} s after the kill)"
            )
            stale = "still holds" if lab.holds("node1", VIP) else "no longer holds"
            self.say(f"node1 {stale} the VIP on its link: a killed daemon cleans nothing up")
            # A restart clears it first, as ucarp's start-up downscript does, then preempts.
            self.node(lab, "node1", "-P", "-k", "0")
            took = _until(lambda: self.holder(lab) == "node1")
            self.say(f"node1 restarted and preempted node2 after {took:.2f} s")
            self.say(f"client resolves the VIP to {self.client_sees(lab)}")
        self.say("lab removed")


def main(headless: bool) -> int:
    if os.geteuid() != 0:
        print(
            "ifvip demo needs root: it builds network namespaces (run it with sudo).",
            file=sys.stderr,
        )
        return 1
    start = time.monotonic()

    def say(line: str) -> None:
        print(f"[{time.monotonic() - start:6.2f}s] {line}", flush=True)

    try:
        Demo(say).run()
    except KeyboardInterrupt:
        say("interrupted; lab removed")
        return 130
    except (TimeoutError, OSError, subprocess.SubprocessError) as exc:
        say(f"demo failed: {exc}; lab removed")
        return 1
    del headless
    return 0
