"""VRRP failover of an ifvip pair against a keepalived 2.2.7 pair, same timers, seen from the LAN.

    python bench/failover_vrrp.py [--runs 10] [--intervals 1,0.1]

For each implementation and advert interval (VRRPv3, IPv4) a lab (tests/interop/
keepalived_lab.py: a bridge, h1, h2 and an observer h3) runs a pair: h1 priority 200, h2
priority 100. Each run stops h1's daemon (SIGKILL, then in other runs SIGTERM), waits until
h2 holds the VIP, and restarts h1 (it preempts back). Takeover is read from h3's capture
(kernel timestamps): after SIGKILL, h1's last advert → h2's first advert (the protocol's
Master_Down_Interval of h2 plus reaction time); after SIGTERM, h1's priority-0 advert → h2's
first advert (Skew_Time). Prints one table with the targets of issue 5: at most
Master_Down_Interval + 20 ms (SIGKILL) or Skew_Time + 20 ms (SIGTERM), no slower than
keepalived's median, and under 400 ms at 0.1 s adverts.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ifvip.election.vrrp import master_down_interval_us, skew_time_us
from tests.interop.keepalived_lab import (
    VIP4,
    Instance,
    KeepalivedLab,
    until,
)

TOLERANCE = 0.020  # issue 5: takeover at most Master_Down_Interval + 20 ms
SUBSECOND_LIMIT = 0.400
IMPLS = ("keepalived", "ifvip")
POLL = 0.1  # seconds between two looks at who holds the VIP

# VRRP adverts and GARPs on eth0 with kernel receive timestamps: "t ADVERT src prio" / "t GARP mac".
SNIFFER = """
import socket, struct, sys
SO_TIMESTAMPNS = 35
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
s.bind(("eth0", 0))
while True:
    frame, anc, _f, _a = s.recvmsg(2048, socket.CMSG_SPACE(16))
    t = None
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack("qq", data[:16])
            t = sec + nsec / 1e9
    if t is None:
        continue
    ethertype = frame[12:14]
    if ethertype == b"\\x08\\x00" and frame[23] == 112:
        ihl = (frame[14] & 15) * 4
        vrrp = frame[14 + ihl:]
        print(f"{t:.6f} ADVERT {socket.inet_ntoa(frame[26:30])} {vrrp[2]}", flush=True)
    elif ethertype == b"\\x08\\x06" and frame[28:32] == frame[38:42]:
        print(f"{t:.6f} GARP {frame[22:28].hex(':')}", flush=True)
"""


@dataclass
class Series:
    takeover: list[float] = field(default_factory=list)
    failed: int = 0


@dataclass
class Pair:
    impl: str
    inst: Instance
    lab: KeepalivedLab
    log: Path
    procs: dict[str, object] = field(default_factory=dict)

    def start(self, host: str, priority: int) -> None:
        if self.impl == "ifvip":
            self.procs[host] = self.lab.ifvip(host, self.inst, priority=priority)
        else:
            self.procs[host] = self.lab.keepalived(host, self.inst, priority=priority)

    def stop(self, host: str, sig: int) -> None:
        proc = self.procs.pop(host)
        proc.stop(sig)  # type: ignore[attr-defined]

    def lines(self) -> list[list[str]]:
        return [line.split() for line in self.log.read_text().splitlines() if line]


def master_down(inst: Instance, priority: int) -> float:
    return master_down_interval_us(inst.version, priority, round(inst.advert_int * 100)) / 1e6


def skew(inst: Instance, priority: int) -> float:
    return skew_time_us(inst.version, priority, round(inst.advert_int * 100)) / 1e6


def measure(pair: Pair, sig: int, mark: int, h1: str, h2: str) -> float | None:
    """h1's last (SIGKILL) or priority-0 (SIGTERM) advert → h2's first advert after `mark`."""
    lines = pair.lines()[mark:]
    first_new = next(
        (float(t) for t, kind, *rest in lines if kind == "ADVERT" and rest[0] == h2), None
    )
    if first_new is None:
        return None
    olds = [
        float(t)
        for t, kind, *rest in lines
        if kind == "ADVERT"
        and rest[0] == h1
        and float(t) < first_new
        and ((rest[1] == "0") if sig == signal.SIGTERM else rest[1] != "0")
    ]
    if not olds and sig == signal.SIGKILL:
        # The last advert may sit just before the mark.
        before = [
            float(t)
            for t, kind, *rest in pair.lines()[:mark]
            if kind == "ADVERT" and rest[0] == h1 and rest[1] != "0"
        ]
        olds = before[-1:]
    if not olds:
        return None
    return first_new - olds[-1]


def open_pair(impl: str, inst: Instance, stack: contextlib.ExitStack, workdir: Path) -> Pair:
    """A lab with h1 (priority 200, master) and h2 (100, backup) running, and h3 sniffing."""
    lab = stack.enter_context(KeepalivedLab(["h1", "h2", "h3"], workdir))
    log = workdir / "sniff.log"
    with open(log, "ab") as out:
        lab.lab.run("h3", [sys.executable, "-c", SNIFFER], stdout=out)
    pair = Pair(impl, inst, lab, log)
    pair.start("h1", 200)
    try:
        until(lambda: lab.holds("h1", VIP4), 10 + master_down(inst, 200), f"{impl} h1 MASTER")
    except AssertionError:
        print(pair.procs["h1"].log, file=sys.stderr)  # type: ignore[attr-defined]
        raise
    pair.start("h2", 100)
    return pair


def one_run(pair: Pair, sig: int) -> float | None:
    """Stop h1 with `sig`, measure the takeover, bring h1 back (it preempts)."""
    lab, inst = pair.lab, pair.inst
    h1, h2 = lab.address("h1"), lab.address("h2")
    mark = len(pair.lines())
    pair.stop("h1", sig)
    try:
        # Polled slowly: the takeover is read from h3's capture, and `ip` processes started
        # every 10 ms would load the two CPUs the daemons under test run on.
        until(lambda: lab.holds("h2", VIP4), 10, "h2 takes over", every=POLL)
        time.sleep(0.05)
        took = measure(pair, sig, mark, h1, h2)
    except AssertionError:
        took = None
    pair.start("h1", 200)
    until(lambda: lab.holds("h1", VIP4), 10 + master_down(inst, 200), "h1 back", every=POLL)
    until(lambda: not lab.holds("h2", VIP4), 10, "h2 releases", every=POLL)
    time.sleep(max(3 * inst.advert_int, 0.3))
    return took


def run_interval(interval: float, runs: int, workdir: Path) -> dict[str, dict[str, Series]]:
    """Both pairs side by side, runs interleaved, so both see the same machine load."""
    inst = Instance(version=3, family=4, advert_int=interval)
    results = {impl: {"SIGKILL": Series(), "SIGTERM": Series()} for impl in IMPLS}
    with contextlib.ExitStack() as stack:
        pairs = {}
        for impl in IMPLS:
            (workdir / impl).mkdir()
            pairs[impl] = open_pair(impl, inst, stack, workdir / impl)
        time.sleep(master_down(inst, 100) + 0.5)
        for name, sig in (("SIGKILL", signal.SIGKILL), ("SIGTERM", signal.SIGTERM)):
            for number in range(runs):
                order = IMPLS if number % 2 == 0 else IMPLS[::-1]
                for impl in order:
                    took = one_run(pairs[impl], sig)
                    series = results[impl][name]
                    if took is None:
                        series.failed += 1
                    else:
                        series.takeover.append(took)
        for pair in pairs.values():
            for host in list(pair.procs):
                pair.stop(host, signal.SIGTERM)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--intervals", default="1,0.1")
    args = parser.parse_args()
    intervals = [float(x) for x in args.intervals.split(",")]
    table: dict[tuple[str, float], dict[str, Series]] = {}
    with tempfile.TemporaryDirectory(prefix="ifvip-bench-vrrp-") as tmp:
        for interval in intervals:
            workdir = Path(tmp) / f"advert-{interval}"
            workdir.mkdir()
            for impl, rows in run_interval(interval, args.runs, workdir).items():
                table[(impl, interval)] = rows
    inst = {i: Instance(version=3, family=4, advert_int=i) for i in intervals}
    header = (
        f"{'impl':<11}{'advert':>7} {'stop':<8}{'runs':>5}{'fail':>5}"
        f"{'median ms':>11}{'p90 ms':>9}{'max ms':>9}{'target ms':>11}  verdict"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for interval in intervals:
        for sig in ("SIGKILL", "SIGTERM"):
            protocol = (
                master_down(inst[interval], 100) if sig == "SIGKILL" else skew(inst[interval], 100)
            )
            target = protocol + TOLERANCE
            if interval < 1:
                target = min(target, SUBSECOND_LIMIT)
            ka = table[("keepalived", interval)][sig].takeover
            ka_median = statistics.median(ka) if ka else float("inf")
            for impl in ("keepalived", "ifvip"):
                series = table[(impl, interval)][sig]
                values = sorted(series.takeover)
                if not values:
                    print(f"{impl:<11}{interval:>6}s {sig:<8}{0:>5}{series.failed:>5}  no data")
                    ok = False
                    continue
                median = statistics.median(values)
                p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
                verdict = "-"
                if impl == "ifvip":
                    good = max(values) <= target and median <= ka_median and not series.failed
                    verdict = "ok" if good else "MISSED"
                    ok = ok and good
                print(
                    f"{impl:<11}{interval:>6}s {sig:<8}{len(values):>5}{series.failed:>5}"
                    f"{median * 1000:>11.2f}{p90 * 1000:>9.2f}{max(values) * 1000:>9.2f}"
                    f"{target * 1000:>11.1f}  {verdict}"
                )
    print(
        "\ntakeover: SIGKILL = master's last advert → backup's first advert (Master_Down_Interval);"
        "\n          SIGTERM = master's priority-0 advert → backup's first advert (Skew_Time);"
        "\n          backup priority 100, VRRPv3 IPv4, from a third host's kernel timestamps."
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
