"""The undo of a failing ifup: how long `ifvip ifup` takes to take back N stanzas.

    python bench/undo.py [--stanzas 1000 2000]

The file is bench/ifup.py's `stanza_file` (one `iface eth0 inet|inet6 static` stanza per
address, no routes) with a last `up false` line: ifup applies every stanza, the last line
fails and ifup undoes all of it. The table gives the wall time of that failing ifup (the
process start included) beside a plain ifup and ifdown of the same file without the failing
line; the namespace is checked to be back to its starting state after each run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.ifup import stanza_file  # noqa: E402
from tests.netns.kernelstate import Runner, Twins, snapshot  # noqa: E402


def _timed(runner: Runner, command: str, *, fails: bool = False) -> float:
    start = time.perf_counter()
    done = runner.ifvip(command, "eth0")
    elapsed = time.perf_counter() - start
    if (done.returncode != 0) != fails:
        raise SystemExit(f"ifvip {command} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stanzas", type=int, nargs="+", default=[1000, 2000])
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/undo.py needs root (network namespaces)")
    print(f"{'stanzas':>7} {'ifup s':>8} {'ifdown s':>9} {'failing ifup (undo) s':>22}")
    with tempfile.TemporaryDirectory(prefix="ifvip-undo-") as tmp:
        work = Path(tmp)
        os.environ["IFVIP_CACHE_DIR"] = str(work / "cache")
        with Twins(1, tag="undo") as twins:
            (ns,) = twins.names
            before = snapshot(ns)
            for count in args.stanzas:
                good = work / f"good-{count}.interfaces"
                good.write_text(stanza_file(count, 0))
                bad = work / f"bad-{count}.interfaces"
                bad.write_text(stanza_file(count, 0) + "    up false\n")
                runner = Runner(ns, good, work / f"state-{count}", timeout=900)
                up = _timed(runner, "ifup")
                down = _timed(runner, "ifdown")
                failing = Runner(ns, bad, work / f"state-{count}", timeout=900)
                undo = _timed(failing, "ifup", fails=True)
                left = snapshot(ns).diff(before)
                if left:
                    raise SystemExit(f"the undo left state behind:\n{left[:2000]}")
                print(f"{count:>7} {up:>8.2f} {down:>9.2f} {undo:>22.2f}", flush=True)


if __name__ == "__main__":
    main()
