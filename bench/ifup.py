"""ifup/ifdown benchmark: ifvip against Debian's ifupdown, in the same run.

    python bench/ifup.py [--runs 5] [--addresses 1000] [--routes 200]

Each tool gets its own pair of namespaces (eth0/eth1 veths, tests/netns/kernelstate.py)
and brings the same file up and down RUNS times; the table gives wall times (median, min,
max) of `ifup` and `ifdown`, the process start included, and ifvip's speed-up. Files:
  - production-dmz: ../shared/examples/production-dmz.interfaces (eth0 and eth1);
  - stanzas: ADDRESSES addresses (IPv4 in 198.51.100.0/24 and 203.0.113.0/24, the rest
    IPv6 in 2001:db8::/32), one `iface eth0 inet|inet6 static` stanza each, and ROUTES
    routes (half IPv4 in table 100, half IPv6) as `up`/`down` hooks of the first stanzas.
    ifupdown runs every stanza's method, its hook lines and its if-*.d directories;
  - hooks: the same addresses and routes as `up ip addr add …` / `down ip addr del …`
    lines of one eth0 stanza pair, as such files are also written by hand. Here ifupdown
    forks /bin/sh and ip once a line, and ifvip's time is mostly its own start.
The real ifupdown forks /bin/sh, ip and run-parts; ifvip does the same work over netlink
and in-process. After each run the namespace is checked to be back to its starting state.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.netns.kernelstate import Runner, Twins, snapshot  # noqa: E402

DMZ = REPO.parent / "shared" / "examples" / "production-dmz.interfaces"


def hook_file(addresses: int, routes: int) -> str:
    """`addresses` extra addresses and `routes` routes on eth0, as up/down hook lines."""
    v4 = [f"198.51.100.{n}/24" for n in range(11, 255)] + [
        f"203.0.113.{n}/24" for n in range(1, 255)
    ]
    v4 = v4[: addresses // 2]
    v6 = [f"2001:db8:1::{n:x}/64" for n in range(0x100, 0x100 + addresses - len(v4))]
    up: list[str] = []
    down: list[str] = []
    for address in v4:
        up.append(f"up ip addr add {address} dev $IFACE")
        down.append(f"down ip addr del {address} dev $IFACE")
    for address in v6:
        up.append(f"up ip -6 addr add {address} dev $IFACE nodad")
        down.append(f"down ip -6 addr del {address} dev $IFACE")
    for n in range(routes // 2):
        route = f"203.0.113.{n}/32 via 198.51.100.1 dev $IFACE table 100"
        up.append(f"up ip route add {route}")
        down.append(f"down ip route del {route}")
    for n in range(routes - routes // 2):
        route = f"2001:db8:f:{n:x}::/64 via 2001:db8::1 dev $IFACE"
        up.append(f"up ip -6 route add {route}")
        down.append(f"down ip -6 route del {route}")
    body = "\n".join(f"    {line}" for line in up + down)
    return (
        "auto eth0\n"
        "iface eth0 inet static\n"
        "    address 198.51.100.10/24\n"
        "    gateway 198.51.100.1\n"
        "\n"
        "iface eth0 inet6 static\n"
        "    address 2001:db8::10/64\n"
        "    gateway 2001:db8::1\n"
        "    dad-attempts 0\n"
        f"{body}\n"
    )


def stanza_file(addresses: int, routes: int) -> str:
    """The same addresses and routes as `hook_file`, written the other way interfaces(5)
    allows: one `iface eth0 inet|inet6 static` stanza per address (ifupdown applies every
    stanza of an interface in order), the routes as `up`/`down` hooks of the first ones.
    ifupdown runs each stanza's method and its hook directories, so this is the form that
    costs it the most forks."""
    v4 = [f"198.51.100.{n}" for n in range(10, 255)] + [f"203.0.113.{n}" for n in range(1, 255)]
    v4 = v4[: addresses // 2]
    v6 = [f"2001:db8:1::{n:x}" for n in range(0x100, 0x100 + addresses - len(v4))]
    hooks: list[list[str]] = [[] for _ in range(addresses)]
    for n in range(routes // 2):
        route = f"203.0.113.{n}/32 via 198.51.100.1 dev $IFACE table 100"
        hooks[n] += [f"up ip route add {route}", f"down ip route del {route}"]
    for n in range(routes - routes // 2):
        route = f"2001:db8:f:{n:x}::/64 via 2001:db8:1::1 dev $IFACE"
        hooks[len(v4) + n] += [f"up ip -6 route add {route}", f"down ip -6 route del {route}"]
    stanzas = ["auto eth0"]
    for index, address in enumerate(v4):
        lines = ["iface eth0 inet static", f"    address {address}/24"]
        if index == 0:
            lines.append("    gateway 198.51.100.1")
        stanzas.append("\n".join(lines + [f"    {hook}" for hook in hooks[index]]))
    for index, address in enumerate(v6, start=len(v4)):
        lines = ["iface eth0 inet6 static", f"    address {address}/64", "    dad-attempts 0"]
        stanzas.append("\n".join(lines + [f"    {hook}" for hook in hooks[index]]))
    return "\n\n".join(stanzas) + "\n"


def _timed(call: Callable[[], subprocess.CompletedProcess[str]], what: str) -> float:
    start = time.perf_counter()
    done = call()
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stderr}")
    return elapsed


def measure(
    tool: str, path: Path, ifaces: list[str], runs: int, ns: str, work: Path
) -> tuple[list[float], list[float]]:
    runner = Runner(ns, path, work / f"state-{tool}", timeout=300)
    start = runner.real if tool == "ifupdown" else runner.ifvip
    before = snapshot(ns)
    ups: list[float] = []
    downs: list[float] = []
    for _ in range(runs):
        ups.append(_timed(lambda: start("ifup", *ifaces), f"{tool} ifup of {path.name}"))
        downs.append(_timed(lambda: start("ifdown", *ifaces), f"{tool} ifdown of {path.name}"))
        left = snapshot(ns).diff(before)
        if left and tool == "ifvip":
            raise SystemExit(f"ifvip left state behind on {path.name}:\n{left}")
    return ups, downs


def _cell(values: list[float]) -> str:
    return (
        f"{statistics.median(values) * 1000:8.0f} {min(values) * 1000:6.0f} "
        f"{max(values) * 1000:6.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--addresses", type=int, default=1000)
    parser.add_argument("--routes", type=int, default=200)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/ifup.py needs root (network namespaces)")
    with tempfile.TemporaryDirectory(prefix="ifvip-bench-") as tmp:
        work = Path(tmp)
        os.environ["IFVIP_CACHE_DIR"] = str(work / "cache")  # ifvip's readings (Runner)
        hooks = work / "hooks.interfaces"
        hooks.write_text(hook_file(args.addresses, args.routes))
        stanzas = work / "stanzas.interfaces"
        stanzas.write_text(stanza_file(args.addresses, args.routes))
        cases = [
            ("production-dmz", DMZ, ["eth0", "eth1"]),
            ("stanzas", stanzas, ["eth0"]),
            ("hooks", hooks, ["eth0"]),
        ]
        print(
            f"ifup/ifdown wall time in ms over {args.runs} runs "
            f"(stanzas, hooks: {args.addresses} addresses, {args.routes} routes)"
        )
        print(
            f"{'file':<16} {'tool':<9} {'ifup median':>11} {'min':>6} {'max':>6}"
            f" {'ifdown median':>13} {'min':>6} {'max':>6} {'speed-up':>9}"
        )
        with Twins(2, tag="bench") as twins:
            for name, path, ifaces in cases:
                results = {}
                for tool, ns in zip(("ifupdown", "ifvip"), twins.names, strict=True):
                    results[tool] = measure(tool, path, ifaces, args.runs, ns, work)
                real = results["ifupdown"]
                for tool, (ups, downs) in results.items():
                    total = statistics.median(ups) + statistics.median(downs)
                    base = statistics.median(real[0]) + statistics.median(real[1])
                    speed = "" if tool == "ifupdown" else f"{base / total:8.1f}x"
                    print(f"{name:<16} {tool:<9} {_cell(ups):>25} {_cell(downs):>27} {speed:>9}")


if __name__ == "__main__":
    main()
