"""CARP daemons (ifvip and the real ucarp) in an ifvip.lab.Lab, with watchers that timestamp
what happens: address events in each host (`ip -ts monitor address`) and frames seen by a
third host (tcpdump: adverts and gratuitous ARPs). Used by tests/interop and bench/failover.py.
"""

from __future__ import annotations

import datetime
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ifvip.lab import Lab
from tests.programs import IFVIP, UCARP

VIP: Final = "198.51.100.100"
VHID: Final = "42"


def until(condition: Callable[[], bool], timeout: float, step: float = 0.01) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(step)
    raise AssertionError(f"not reached within {timeout} s")


def ifvip_node(
    lab: Lab, host: str, tmp: Path, *extra: str, password: str = "secret"
) -> subprocess.Popen[bytes]:
    address = str(lab.hosts[host].address.ip)
    argv = [IFVIP, "run", "-i", "eth0", "-s", address, "-v", VHID, "-p", password]
    argv += ["-a", VIP, "--masklen", "24", "--state-dir", str(tmp / f"state-{host}"), *extra]
    with open(tmp / f"{host}.log", "ab") as log:
        return lab.run(host, argv, stdout=log, stderr=log)


def ucarp_node(
    lab: Lab, host: str, tmp: Path, *extra: str, password: str = "secret"
) -> subprocess.Popen[bytes]:
    up, down = tmp / "vip-up", tmp / "vip-down"
    if not up.exists():
        up.write_text(f'#!/bin/sh\nip addr add {VIP}/24 dev "$1"\n')
        down.write_text(f'#!/bin/sh\nip addr del {VIP}/24 dev "$1" 2>/dev/null || true\n')
        up.chmod(0o755)
        down.chmod(0o755)
    address = str(lab.hosts[host].address.ip)
    argv = ["stdbuf", "-oL", "-eL", UCARP, "-i", "eth0", "-s", address, "-v", VHID]
    argv += ["-p", password, "-a", VIP, "-u", str(up), "-d", str(down), "-z", *extra]
    with open(tmp / f"{host}.log", "ab") as log:
        return lab.run(host, argv, stdout=log, stderr=log)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal the daemon itself (the child of `ip netns exec`, which execs it)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class _Reader:
    """Start a process in a lab host and hand each output line to `parse` in a thread."""

    def __init__(self, lab: Lab, host: str, argv: Sequence[str]) -> None:
        self.proc = lab.run(host, argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.host = host
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.parse(raw.decode(errors="replace").rstrip("\n"))

    def parse(self, line: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.thread.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


_MONITOR = re.compile(r"^\[(\S+)\] (Deleted )?\d+: (\S+)\s+inet (\S+)/")


@dataclass(frozen=True)
class AddressEvent:
    t: float  # wall-clock seconds
    host: str
    added: bool


class AddressMonitor:
    """When the VIP appears on and disappears from each host, from kernel address events."""

    def __init__(self, lab: Lab, hosts: Sequence[str], vip: str = VIP) -> None:
        self.vip = vip
        self.events: list[AddressEvent] = []
        self._lock = threading.Lock()
        self.readers = [self._reader(lab, host) for host in hosts]
        time.sleep(0.3)  # the monitors are listening before anything happens

    def _reader(self, lab: Lab, host: str) -> _Reader:
        monitor = self

        class Reader(_Reader):
            def parse(self, line: str) -> None:
                match = _MONITOR.match(line)
                if match and match.group(4) == monitor.vip:
                    t = datetime.datetime.fromisoformat(match.group(1)).timestamp()
                    with monitor._lock:
                        monitor.events.append(AddressEvent(t, self.host, not match.group(2)))

        return Reader(lab, host, ["ip", "-ts", "monitor", "address"])

    def snapshot(self) -> list[AddressEvent]:
        with self._lock:
            return sorted(self.events, key=lambda e: e.t)

    def holders_at(self, t: float, initial: dict[str, bool] | None = None) -> set[str]:
        holding = dict(initial or {})
        for event in self.snapshot():
            if event.t > t:
                break
            holding[event.host] = event.added
        return {h for h, held in holding.items() if held}

    def windows(self, since: float, until_t: float | None = None) -> tuple[float, float]:
        """(longest time two or more hosts held the VIP, longest time nobody did) after `since`.

        Only the span from the first event after `since` is judged, so the state before is
        what the hosts held at `since`.
        """
        events = self.snapshot()
        holding: dict[str, bool] = {}
        for event in events:
            if event.t <= since:
                holding[event.host] = event.added
        both = gap = 0.0
        start_both: float | None = None
        start_gap: float | None = None
        now = since

        def count() -> int:
            return sum(holding.values())

        if count() >= 2:
            start_both = since
        if count() == 0:
            start_gap = since
        for event in events:
            if event.t <= since or (until_t is not None and event.t > until_t):
                continue
            now = event.t
            holding[event.host] = event.added
            n = count()
            if n >= 2 and start_both is None:
                start_both = now
            if n < 2 and start_both is not None:
                both = max(both, now - start_both)
                start_both = None
            if n == 0 and start_gap is None:
                start_gap = now
            if n > 0 and start_gap is not None:
                gap = max(gap, now - start_gap)
                start_gap = None
        end = until_t if until_t is not None else time.time()
        if start_both is not None:
            both = max(both, end - start_both)
        if start_gap is not None:
            gap = max(gap, end - start_gap)
        return both, gap

    def close(self) -> None:
        for reader in self.readers:
            reader.close()


_FRAME = re.compile(
    r"^(\d+\.\d+) (\S+) > (\S+), ethertype (\S+) \(0x[0-9a-f]+\), length \d+: (.*)$"
)
_CARP = re.compile(r"^(\S+) > \S+: CARPv2-advertise \d+: vhid=(\d+) advbase=(\d+) advskew=(\d+)")


@dataclass(frozen=True)
class Frame:
    t: float  # the capture timestamp (wall clock)
    src_mac: str
    kind: str  # "advert" or "garp"
    src_ip: str = ""
    vhid: int = 0
    advbase: int = 0
    advskew: int = 0


@dataclass
class Capture:
    """Adverts and gratuitous ARPs for the VIP as a third host sees them (tcpdump)."""

    lab: Lab
    host: str
    vip: str = VIP
    frames: list[Frame] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        capture = self

        class Reader(_Reader):
            def parse(self, line: str) -> None:
                frame = capture._frame(line)
                if frame is not None:
                    with capture._lock:
                        capture.frames.append(frame)

        argv = ["tcpdump", "-i", "eth0", "-l", "-n", "-e", "-tt", "--immediate-mode"]
        argv += ["-T", "carp", "arp or ip proto 112"]
        self.reader = Reader(self.lab, self.host, argv)
        time.sleep(0.5)

    def _frame(self, line: str) -> Frame | None:
        match = _FRAME.match(line)
        if not match:
            return None
        t, src, rest = float(match.group(1)), match.group(2), match.group(5)
        if match.group(4) == "ARP":
            if f"who-has {self.vip} tell {self.vip}" in rest or f"who-has {self.vip} (" in rest:
                return Frame(t, src, "garp")
            return None
        carp = _CARP.match(rest)
        if carp:
            vhid, base, skew = (int(carp.group(i)) for i in (2, 3, 4))
            return Frame(t, src, "advert", carp.group(1), vhid, base, skew)
        return None

    def snapshot(self) -> list[Frame]:
        with self._lock:
            return list(self.frames)

    def garps(self, mac: str, after: float = 0.0) -> list[Frame]:
        return [f for f in self.snapshot() if f.kind == "garp" and f.src_mac == mac and f.t > after]

    def adverts(self, src_ip: str, after: float = 0.0) -> list[Frame]:
        return [
            f for f in self.snapshot() if f.kind == "advert" and f.src_ip == src_ip and f.t > after
        ]

    def close(self) -> None:
        self.reader.close()
