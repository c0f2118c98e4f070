"""Failover of an ifvip pair against a ucarp pair, same timers, measured from the LAN.

    python bench/failover.py [--runs 10] [--idle-seconds 60]

For each implementation a lab (ifvip.lab: a bridge, n1, n2 and a client) runs a pair with
advbase 1 and deadratio 3: n1 preferred (-P -k 0), n2 backup (-k 50). Each run stops the
master (SIGKILL, or SIGTERM), measures, and brings n1 back (it preempts). From the client's
capture: takeover = the dead master's last advert → n2's first gratuitous ARP. From kernel
address events in n1 and n2: the no-holder gap (nobody has the VIP) and the both-hold
window (two hosts answer for it; after SIGKILL it lasts until the VIP expires (ifvip's
dead man's switch) or until the node is restarted (ucarp)). Then both pairs idle together
and each daemon's CPU time and RSS are read from /proc. Prints one table.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ifvip.lab import Lab
from tests.interop.carp_lab import (
    UCARP,
    VIP,
    AddressMonitor,
    Capture,
    ifvip_node,
    stop,
    ucarp_node,
    until,
)

ADVBASE, DEADRATIO, BACKUP_SKEW = 1, 3, 50
MASTER_DOWN = ADVBASE * DEADRATIO + BACKUP_SKEW / 256
LIFETIME_WAIT = 2 * MASTER_DOWN + 2  # ifvip's VIP lifetime is two master-down intervals


@dataclass
class Runs:
    takeover: list[float] = field(default_factory=list)
    gap: list[float] = field(default_factory=list)
    both: list[float] = field(default_factory=list)
    both_forever: int = 0  # runs where the dead master kept the VIP until restarted
    failed: int = 0


@dataclass
class Pair:
    name: str
    lab: Lab
    tmp: Path
    monitor: AddressMonitor
    capture: Capture
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    results: dict[str, Runs] = field(default_factory=dict)

    def start(self, host: str, *extra: str) -> None:
        node = ifvip_node if self.name == "ifvip" else ucarp_node
        timers = ("-b", str(ADVBASE), "-r", str(DEADRATIO))
        self.procs[host] = node(self.lab, host, self.tmp, *timers, *extra)

    def holds(self, host: str) -> bool:
        return self.lab.holds(host, VIP)

    def mac(self, host: str) -> str:
        return self.lab.hosts[host].mac

    def ip(self, host: str) -> str:
        return str(self.lab.hosts[host].address.ip)


def _open(name: str, stack: list[Callable[[], None]]) -> Pair:
    tmp = Path(tempfile.mkdtemp(prefix=f"ifvip-bench-{name}-"))
    lab = Lab(["n1", "n2", "client"], prefix=f"ifvip-bf{name[0]}")
    lab.__enter__()
    stack.append(lab.close)
    monitor = AddressMonitor(lab, ["n1", "n2"])
    stack.append(monitor.close)
    capture = Capture(lab, "client")
    stack.append(capture.close)
    return Pair(name, lab, tmp, monitor, capture)


def _converge(pair: Pair) -> None:
    """n1 master and n2 backup, both running and hearing each other for a while."""
    until(lambda: pair.holds("n1") and not pair.holds("n2"), 15, step=0.02)
    time.sleep(1.5)


def one_run(pair: Pair, sig: signal.Signals) -> None:
    runs = pair.results.setdefault(sig.name, Runs())
    stopped = time.time()
    stop(pair.procs["n1"], sig)
    try:
        until(lambda: bool(pair.capture.garps(pair.mac("n2"), stopped)), MASTER_DOWN + 4)
        until(lambda: pair.holds("n2"), 2)
    except AssertionError:
        runs.failed += 1
        return
    time.sleep(0.3)
    first_garp = pair.capture.garps(pair.mac("n2"), stopped)[0].t
    # The master's last advert: before its death, or its bow-out when stopped gracefully.
    last = max(f.t for f in pair.capture.adverts(pair.ip("n1")) if f.t < first_garp)
    runs.takeover.append(first_garp - last)
    if sig is signal.SIGKILL:
        if pair.name == "ifvip":
            try:
                until(lambda: not pair.holds("n1"), LIFETIME_WAIT, step=0.05)
            except AssertionError:
                runs.both_forever += 1
        elif pair.holds("n1"):
            runs.both_forever += 1
    settle = time.time()
    both, gap = pair.monitor.windows(stopped, settle)
    if not (sig is signal.SIGKILL and pair.holds("n1")):
        runs.both.append(both)
    runs.gap.append(gap)
    # n1 comes back and preempts (its start removes a VIP a killed run left).
    restarted = time.time()
    pair.start("n1", "-P", "-k", "0")
    _converge(pair)
    if sig is signal.SIGTERM:
        # Nothing stale on n1 after a graceful stop: the handback itself is judged.
        back = pair.results.setdefault("preempt", Runs())
        both, gap = pair.monitor.windows(restarted, time.time())
        back.both.append(both)
        back.gap.append(gap)


def idle(pairs: Sequence[Pair], seconds: float) -> dict[str, tuple[float, float]]:
    """CPU % and peak RSS (MiB, VmRSS) of each daemon over `seconds` of steady state."""
    tick = os.sysconf("SC_CLK_TCK")

    def cpu(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    def rss(pid: int) -> float:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    daemons = {
        f"{p.name} {role}": p.procs[host].pid
        for p in pairs
        for host, role in (("n1", "master"), ("n2", "backup"))
    }
    start = {k: cpu(pid) for k, pid in daemons.items()}
    peak = dict.fromkeys(daemons, 0.0)
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        for key, pid in daemons.items():
            peak[key] = max(peak[key], rss(pid))
        time.sleep(1)
    elapsed = time.monotonic() - began
    return {k: (100 * (cpu(pid) - start[k]) / elapsed, peak[k]) for k, pid in daemons.items()}


def _ms(values: Sequence[float]) -> str:
    if not values:
        return "-"
    med, lo, hi = statistics.median(values), min(values), max(values)
    return f"{med * 1000:7.1f} {lo * 1000:7.1f} {hi * 1000:7.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per implementation and signal")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="idle measurement span")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/failover.py needs root (network namespaces)", file=sys.stderr)
        return 1
    names = ["ifvip"] + (["ucarp"] if Path(UCARP).exists() else [])
    cleanup: list[Callable[[], None]] = []
    try:
        pairs = [_open(name, cleanup) for name in names]
        for pair in pairs:
            pair.start("n1", "-P", "-k", "0")
            until(lambda p=pair: p.holds("n1"), 15)  # type: ignore[misc]
            pair.start("n2", "-k", str(BACKUP_SKEW))
            _converge(pair)
            for sig in (signal.SIGKILL, signal.SIGTERM):
                for number in range(args.runs):
                    one_run(pair, sig)
                    print(f"{pair.name} {sig.name} run {number + 1}/{args.runs}", file=sys.stderr)
        usage = idle(pairs, args.idle_seconds)
    finally:
        for close in reversed(cleanup):
            try:
                close()
            except Exception as exc:
                print(f"cleanup: {exc}", file=sys.stderr)
    limit = MASTER_DOWN + 0.020
    print(
        f"\nCARP failover, advbase {ADVBASE} deadratio {DEADRATIO}, backup advskew "
        f"{BACKUP_SKEW}, {args.runs} runs each; times in ms (median min max)"
    )
    print(f"takeover target after SIGKILL: <= {limit * 1000:.0f} ms; SIGTERM handover < 100 ms")
    header = f"{'pair':6} {'signal':8} {'takeover':>23} {'no-holder gap':>23} {'both hold':>23}"
    print(header)
    print("-" * len(header))
    for pair in pairs:
        for sig, runs in pair.results.items():
            both = _ms(runs.both)
            if runs.both_forever:
                both = f"until restart ({runs.both_forever}/{args.runs})"
            failed = f"  ({runs.failed} failed)" if runs.failed else ""
            print(
                f"{pair.name:6} {sig:8} {_ms(runs.takeover):>23} {_ms(runs.gap):>23} "
                f"{both:>23}{failed}"
            )
    print(
        "takeover: the master's last advert (its bow-out after SIGTERM) -> n2's first GARP, "
        "seen by the client;\npreempt: n1 restarted after a SIGTERM run takes the VIP back "
        "(no takeover time);\nafter SIGKILL the dead daemon's kernel keeps the VIP, so the "
        "no-holder gap is 0 and\nthe both-hold window lasts until the VIP expires or the node "
        "restarts"
    )
    print(f"\nidle over {args.idle_seconds:.0f} s: CPU % and peak RSS (VmRSS, MiB and MB)")
    for key, (cpu, rss) in usage.items():
        print(f"  {key:14} {cpu:6.2f} %  {rss:6.1f} MiB  {rss * 1.048576:6.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
