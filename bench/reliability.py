"""Reliability figures: ifvip against the real ucarp 1.5.2 and keepalived 2.2.7, same faults.

    python bench/reliability.py [--scenario all|loss|jitter|partition|sigkill|deadman|hostile]
                                [--seconds 120] [--runs 10] [--deadman-runs 5] [--cycles 50]
                                [--cap 20]
                                [--impl ifvip,ifvip-vrrp,ucarp,keepalived] [--packets 100000]

Every implementation runs as a pair in its own namespace lab (h1 preferred: ucarp/ifvip
`-P -k 0`, keepalived/ifvip-vrrp priority 150; h2: `-k 50` / priority 100; VIP
198.51.100.100/24), all pairs at the same time under the same faults. This kernel has no
netem (`tc qdisc add ... netem` fails: "Specified qdisc kind is unknown", and there is no
modprobe), so the faults come from tests/reliability/hub.py, a userspace hub in the switch
namespace that does what netem does per output port: loss, delay ± jitter, partitions.

Scenarios (one row or more each in the table):
  loss      20% and 50% loss for SECONDS each: transitions the daemons log (there was no
            failure, so every one is spurious), seconds with two holders, with none;
  jitter    delay 50 ± 50 ms (uniform, frames reorder) for SECONDS: the same counts;
  partition RUNS times: cut h1-h2 (a client sees both) until both hold, heal; the both-hold
            window after the heal and the client's outage (longest gap in 20 ms pings);
  sigkill   CYCLES times: SIGKILL the master, restart it once the backup holds the VIP;
            takeover time, moments with two holders after convergence, stale VIPs;
  deadman   DEADMAN_RUNS times per signal: SIGKILL / SIGSTOP the master and do not restart it; how
            long the dead host keeps the VIP while the backup holds it (the duplicate
            window), capped at CAP s ('until restart' beyond); after SIGCONT, one holder?
  hostile   PACKETS hostile protocol-112 packets (tests.reliability.hostile) at an ifvip pair:
            packets, crashes, unexplained drops, transitions.
A cell whose figure needs a feature that is not there prints `n/a (...)`, never a guess.
"""

from __future__ import annotations

import argparse
import ipaddress
import itertools
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.reliability.harness import (  # noqa: E402
    IMPLEMENTATIONS,
    PASSWORD,
    VARIANTS,
    VHID,
    VIP,
    PairLab,
    available,
    until,
)

FOREVER = 0xFFFFFFFF


@dataclass
class Row:
    scenario: str
    implementation: str
    cells: dict[str, str] = field(default_factory=dict)


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f}"


def _summary(values: Sequence[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.median(values):.3f} (max {max(values):.3f})"


def _transitions(lab: PairLab) -> int:
    return sum(len(d.transitions()) for d in lab.daemons.values())


def _watch(lab: PairLab, seconds: float, step: float = 0.1) -> dict[str, float]:
    """Sample the holders for `seconds`: time with two holders, with none, holder changes."""
    both = none = 0.0
    changes = 0
    last = lab.holders()
    end = time.monotonic() + seconds
    previous = time.monotonic()
    while time.monotonic() < end:
        time.sleep(step)
        now = time.monotonic()
        holders = lab.holders()
        if len(holders) == 2:
            both += now - previous
        elif not holders:
            none += now - previous
        if holders != last:
            changes += 1
            last = holders
        previous = now
    return {"both": both, "none": none, "changes": changes}


# ---------------------------------------------------------------- scenarios


def faults(implementation: str, name: str, command: str, seconds: float) -> Row:
    with PairLab() as lab:
        lab.use_hub()
        lab.start_pair(implementation)
        time.sleep(3.0)
        start = _transitions(lab)
        lab.hub_command(command)
        seen = _watch(lab, seconds)
        lab.hub_command("loss 0")
        lab.hub_command("delay 0 0")
        spurious = _transitions(lab) - start
        alive = all(d.alive() for d in lab.daemons.values())
    return Row(
        name,
        implementation,
        {
            "spurious transitions": str(spurious),
            "two holders (s)": f"{seen['both']:.1f}",
            "no holder (s)": f"{seen['none']:.1f}",
            "crashes": "0" if alive else "1",
        },
    )


def partition(implementation: str, runs: int) -> Row:
    windows: list[float] = []
    outages: list[float] = []
    failed = 0
    with PairLab(["client"]) as lab:
        lab.use_hub()
        lab.start_pair(implementation)
        pinger = lab.ping()
        try:
            for _ in range(runs):
                if until(lambda: lab.holders() == ("h1",), 15) is None:
                    failed += 1
                    continue
                time.sleep(3.0)
                lab.hub_command(f"partition {lab.port('h1')} {lab.port('h2')}")
                if until(lambda: lab.holders() == ("h1", "h2"), 15) is None:
                    failed += 1
                    lab.hub_command("heal")
                    continue
                time.sleep(2.0)  # the client's ARP entry settles on whoever announced last
                lab.hub_command("heal")
                healed, wall = time.monotonic(), time.time()
                single = until(lambda: len(lab.holders()) == 1, 15, step=0.005)
                if single is None:
                    failed += 1
                    continue
                windows.append(single)
                time.sleep(10.0)
                replies = [t for t in pinger.replies() if t > wall - 1.0]
                after = [t for t in replies if t > wall]
                gaps = [b - max(a, wall) for a, b in itertools.pairwise(replies) if b > wall]
                outages.append(max(gaps) if gaps else (time.time() - wall if not after else 0.0))
                _ = healed
        finally:
            pinger.stop()
    return Row(
        "partition+heal",
        implementation,
        {
            "heals": f"{len(windows)}/{runs}",
            "both-hold after heal (s)": _summary(windows),
            "client outage after heal (s)": _summary(outages),
            "outages > 1 s": str(sum(1 for o in outages if o > 1.0)),
        },
    )


def sigkill(implementation: str, cycles: int) -> Row:
    takeovers: list[float] = []
    handbacks: list[float] = []
    two_after = stale = failed = left = 0
    with PairLab() as lab:
        lab.start_pair(implementation)
        for _ in range(cycles):
            holders = lab.holders()
            if len(holders) != 1:
                failed += 1
                until(lambda: len(lab.holders()) == 1, 15)
                holders = lab.holders()
                if len(holders) != 1:
                    break
            master = holders[0]
            other = "h2" if master == "h1" else "h1"
            lab.daemons[master].kill()
            took = until(lambda o=other: lab.holds(o), 15, step=0.005)  # type: ignore[misc]
            if took is None:
                failed += 1
                continue
            takeovers.append(took)
            mark = len(lab.daemons[master].transitions())
            left += int(lab.holds(master))  # the crash left its VIP: the restart must clear it
            started = time.monotonic()
            lab.daemons[master].start()
            # Converged: the restarted node has joined and the preferred h1 (it preempts)
            # is the one holder again.
            joined = lambda m=master, k=mark: (  # noqa: E731
                lab.holders() == ("h1",) and len(lab.daemons[m].transitions()) > k
            )
            if until(joined, 15) is None:  # type: ignore[arg-type]
                failed += 1
            handbacks.append(time.monotonic() - started)
            time.sleep(0.5)
            seen = _watch(lab, 2.0, step=0.02)
            two_after += int(seen["both"] > 0)
            holders = lab.holders()
            stale += int(len(holders) != 1)
        alive = all(d.alive() for d in lab.daemons.values())
    return Row(
        "sigkill master",
        implementation,
        {
            "cycles": f"{len(takeovers)}/{cycles}",
            "takeover (s)": _summary(takeovers),
            "restart to handback (s)": _summary(handbacks),
            "VIP left by the crash at restart": str(left),
            "two holders after convergence": str(two_after),
            "stale VIPs after restart": str(stale),
            "failed cycles": str(failed),
            "crashes": "0" if alive else "1",
        },
    )


def deadman(implementation: str, sig: int, runs: int, cap: float) -> Row:
    windows: list[float] = []
    forever = 0
    lifetimes: set[str] = set()
    after_cont: list[str] = []
    for _ in range(runs):
        with PairLab() as lab:
            lab.start_pair(implementation)
            # The lifetime as refreshed: the largest remaining valid time seen over 2 s.
            seen = []
            for _ in range(20):
                info = lab.vip_info("h1")
                seen.append(-1 if info is None else info["valid"])
                time.sleep(0.1)
            valid = max(seen)
            lifetimes.add("forever" if valid == FOREVER else f"{valid} s")
            lab.daemons["h1"].signal_worker(sig)
            if until(lambda: lab.holds("h2"), 15, step=0.005) is None:
                continue
            both_from = time.monotonic()
            gone = until(lambda: not lab.holds("h1"), cap, step=0.01)
            if gone is None:
                forever += 1
            else:
                windows.append(time.monotonic() - both_from)
            if sig == signal.SIGSTOP:
                lab.daemons["h1"].signal_worker(signal.SIGCONT)
                time.sleep(6.0)
                after_cont.append(",".join(lab.holders()) or "none")
    label = "SIGKILL" if sig == signal.SIGKILL else "SIGSTOP"
    cells = {
        "VIP lifetime": "/".join(sorted(lifetimes)),
        "duplicate window (s)": _summary(windows),
        f"'until restart' (>{cap:.0f} s)": f"{forever}/{runs}",
    }
    if sig == signal.SIGSTOP:
        cells["holders 6 s after SIGCONT"] = " ".join(after_cont)
    return Row(f"{label} master, no restart", implementation, cells)


def hostile(packets: int, rate: float) -> Row:
    from tests.reliability.hostile import (  # noqa: PLC0415
        REASONS,
        CarpHostile,
        Member,
        raw_drops,
        raw_socket,
        tally,
    )

    with PairLab(["x"]) as lab:
        lab.accept_own_source()
        lab.start_pair("ifvip")
        time.sleep(2.0)
        members = [
            Member(ipaddress.IPv4Address(lab.address(h)), VHID, PASSWORD.encode(),
                   ipaddress.IPv4Address(VIP))
            for h in ("h1", "h2")
        ]  # fmt: skip
        attacker = lab.lab.hosts["x"]
        stream = list(CarpHostile(members, attacker.address.ip, seed=8).stream(packets))
        before = {h: lab.daemons[h].counters() for h in ("h1", "h2")}
        drops = {h: raw_drops(lab.lab.hosts[h].netns) for h in ("h1", "h2")}
        sock = raw_socket(attacker.netns, str(attacker.address.ip))
        start = time.monotonic()
        for i, item in enumerate(stream):
            sock.sendto(item.packet, (str(item.destination), 0))
            if i % 50 == 49 and (ahead := start + (i + 1) / rate - time.monotonic()) > 0:
                time.sleep(ahead)
        sock.close()
        took = time.monotonic() - start
        time.sleep(1.5)
        after = {h: lab.daemons[h].counters() for h in ("h1", "h2")}
        expected = tally(stream, 2)
        unexplained = transitions = overflow = 0
        for index, host in enumerate(("h1", "h2")):
            counted = sum(
                after[host].get(f"dropped_{r}", 0) - before[host].get(f"dropped_{r}", 0)
                for r in REASONS
            )
            lost = raw_drops(lab.lab.hosts[host].netns) - drops[host]
            overflow += lost
            unexplained += sum(expected[index].values()) - counted - lost
            transitions += after[host].get("transitions", 0) - before[host].get("transitions", 0)
        crashes = sum(1 for d in lab.daemons.values() if not d.alive())
    return Row(
        "hostile LAN",
        "ifvip",
        {
            "packets tried": f"{len(stream)} at each of 2 ({took:.0f} s)",
            "crashes": str(crashes),
            "unexplained drops": str(unexplained),
            "socket overflow": str(overflow),
            "transitions": str(transitions),
        },
    )


# ---------------------------------------------------------------- driver


def _parallel(jobs: list[Callable[[], Row]]) -> list[Row]:
    with ThreadPoolExecutor(max_workers=len(jobs) or 1) as pool:
        futures = [pool.submit(job) for job in jobs]
        rows = []
        for future in futures:
            try:
                rows.append(future.result())
            except Exception as exc:  # a failed cell is reported, not hidden
                rows.append(Row("error", "?", {"error": f"{type(exc).__name__}: {exc}"}))
        return rows


def _print(rows: list[Row]) -> None:
    scenario = None
    for row in rows:
        if row.scenario != scenario:
            scenario = row.scenario
            print(f"\n## {scenario}")
            headers = list(row.cells)
            print("| implementation | " + " | ".join(headers) + " |")
            print("|---" * (len(headers) + 1) + "|")
        print(f"| {row.implementation} | " + " | ".join(row.cells.values()) + " |")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario",
        default="all",
        choices=["all", "loss", "jitter", "partition", "sigkill", "deadman", "hostile"],
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="per loss/jitter setting")
    parser.add_argument("--runs", type=int, default=10, help="partition heals")
    parser.add_argument("--deadman-runs", type=int, default=5, help="runs per signal")
    parser.add_argument("--cycles", type=int, default=50, help="SIGKILL cycles")
    parser.add_argument("--cap", type=float, default=20.0, help="deadman: give up after")
    parser.add_argument("--packets", type=int, default=100_000, help="hostile packets")
    parser.add_argument("--rate", type=float, default=1500.0, help="hostile packets/s")
    parser.add_argument(
        "--impl",
        default=",".join(IMPLEMENTATIONS),
        help=f"comma-separated, from {', '.join(IMPLEMENTATIONS + VARIANTS)}",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/reliability.py needs root (network namespaces)")
    impls = []
    for name in args.impl.split(","):
        if available(name):
            impls.append(name)
        else:
            print(f"{name}: n/a (not installed or feature missing)")
    chosen = args.scenario
    print(
        f"# ifvip reliability, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} CPUs, implementations: {', '.join(impls)}"
    )

    def run(rows: list[Row]) -> None:
        _print(rows)

    if chosen in ("all", "loss"):
        for loss in (0.2, 0.5):
            run(
                _parallel(
                    [
                        lambda i=i, loss=loss: faults(
                            i,
                            f"{loss:.0%} loss, {args.seconds:.0f} s",
                            f"loss {loss}",
                            args.seconds,
                        )
                        for i in impls
                    ]
                )
            )
    if chosen in ("all", "jitter"):
        name = f"delay 50 ± 50 ms, {args.seconds:.0f} s"
        run(_parallel([lambda i=i: faults(i, name, "delay 50 50", args.seconds) for i in impls]))
    if chosen in ("all", "partition"):
        run(_parallel([lambda i=i: partition(i, args.runs) for i in impls]))
    if chosen in ("all", "deadman"):
        for sig in (signal.SIGKILL, signal.SIGSTOP):
            run(
                _parallel(
                    [lambda i=i, s=sig: deadman(i, s, args.deadman_runs, args.cap) for i in impls]
                )
            )
    if chosen in ("all", "sigkill"):
        run(_parallel([lambda i=i: sigkill(i, args.cycles) for i in impls]))
    if chosen in ("all", "hostile"):
        run([hostile(args.packets, args.rate)])


if __name__ == "__main__":
    main()
