"""Link faults under a running pair: ifvip against the real ucarp 1.5.2 and keepalived 2.2.7.

    python bench/link_faults.py [--runs 3] [--flaps 30] [--period 0.2]
                                [--impl ifvip,ifvip-vrrp,ucarp,keepalived]

Each implementation runs as a pair in its own namespace lab (tests/reliability/harness.py:
h1 preferred, h2 backup, VIP 198.51.100.100/24), one implementation at a time:

  remake  the master's eth0 is deleted and made again (same name, MAC, address): seconds
          until the preferred node alone holds the VIP again with the backup hearing it
          (h2 not MASTER for 3 s), or 'never' within 20 s, and whether the daemon survived;
  flap    FLAPS flaps of the master's carrier (PERIOD s down, PERIOD s up): seconds in which
          nobody held the VIP, over the flapping and 4 s after it.

Medians over RUNS, with the range in brackets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.harness import IMPLEMENTATIONS, PairLab, available, until

NEVER = 20.0


def remake(implementation: str) -> tuple[float | None, bool]:
    with PairLab(prefix="ifvip-lf") as lab:
        lab.start_pair(implementation)
        began = time.monotonic()
        lab.remake_eth0("h1")
        deadline = began + NEVER
        recovered = None
        while time.monotonic() < deadline:
            if lab.holders() == ("h1",):
                # The backup must hear the master again: it stays without the VIP for 3 s.
                mark = time.monotonic()
                if until(lambda: lab.holders() != ("h1",), 3.0) is None:
                    recovered = mark - began
                    break
            time.sleep(0.02)
        return recovered, lab.daemons["h1"].alive()


def flap(implementation: str, flaps: int, period: float) -> float:
    with PairLab(prefix="ifvip-lf") as lab:
        lab.start_pair(implementation)
        return lab.flap("h1", flaps, period)


def _summary(values: list[float]) -> str:
    if not values:
        return "never"
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--flaps", type=int, default=30)
    parser.add_argument("--period", type=float, default=0.2)
    parser.add_argument("--impl", default=",".join(IMPLEMENTATIONS))
    args = parser.parse_args()
    rows = [
        "| implementation | interface made anew: back to one holder (s) | daemon alive | "
        f"{args.flaps} flaps of {args.period:g} s: nobody holds (s) |",
        "|---|---|---|---|",
    ]
    for implementation in args.impl.split(","):
        if not available(implementation):
            rows.append(f"| {implementation} | n/a (not installed) | | |")
            continue
        recovered, alive = [], []
        for _ in range(args.runs):
            seconds, survived = remake(implementation)
            alive.append(survived)
            if seconds is not None:
                recovered.append(seconds)
        gaps = [flap(implementation, args.flaps, args.period) for _ in range(args.runs)]
        never = args.runs - len(recovered)
        back = _summary(recovered) + (f", never in {never}/{args.runs}" if never else "")
        rows.append(f"| {implementation} | {back} | {sum(alive)}/{args.runs} | {_summary(gaps)} |")
        print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
