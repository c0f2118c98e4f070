"""Start-up benchmark: the short commands and the idle daemons, beside what they replace.

    python bench/startup.py [--runs 11] [--python PYTHON]... [--idle 5]

For each interpreter (this one, and each `--python`: a venv's python with ifvip installed,
e.g. one made from Debian's /usr/bin/python3, or one with an older ifvip to compare; the
venv's `ifvip` script beside it is run),
in one interleaved run, median wall times in ms of:
  - a bare `python -c pass` of that interpreter (the floor of any Python command);
  - `ifvip --version`;
  - `ifquery -i production-dmz.interfaces eth1`, ifvip's reading cache warm, and Debian's
    ifquery on the same file;
  - `ifvip status` against a live `ifvip run` (CARP, in a namespace; socket by path);
  - `ifup` then `ifdown` of production-dmz.interfaces (eth0 and eth1; the production file
    with its addresses translated to documentation ranges, as bench/ifup.py uses it), in
    namespaces alike, ifvip and Debian's ifupdown each in its own;
and the VmRSS of idle daemons after IDLE seconds: `ifvip run` CARP and VRRP, ucarp, and
keepalived (its processes together). Each ratio is against the row the issue's goal names.
Needs root (namespaces).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ifvip.lab import Lab  # noqa: E402
from tests.netns.kernelstate import Twins  # noqa: E402

DMZ = REPO.parent / "shared" / "examples" / "production-dmz.interfaces"
IFUPDOWN = Path("/sbin")
UCARP = "/usr/sbin/ucarp"
KEEPALIVED = "/usr/sbin/keepalived"
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
KEEPALIVED_CONF = """\
global_defs {
    enable_script_security
    script_user root
}
vrrp_instance VI_42 {
    state BACKUP
    interface eth0
    virtual_router_id 42
    priority 100
    advert_int 1
    virtual_ipaddress {
        198.51.100.100/32
    }
}
"""


def tag_of(python: str) -> str:
    """A short name for an interpreter: its venv and the directory the venv is in."""
    venv = Path(python).parent.parent
    return f"{venv.parent.name}/{venv.name}"


def timed(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, the process and what it waited for)."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errors, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            errors.seek(0)
            text = errors.read().decode(errors="replace")
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{text}")
    return elapsed, usage.ru_utime + usage.ru_stime


def rss_kib(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def family(pid: int) -> list[int]:
    """`pid` and its descendants (keepalived forks its VRRP child)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = [pid]
    for candidate in sorted(parents):
        if parents[candidate] in found:
            found.append(candidate)
    return found


@contextlib.contextmanager
def daemon(lab: Lab, host: str, argv: Sequence[str], log: Path) -> Iterator[int]:
    with open(log, "ab") as out:
        proc = lab.run(host, argv, stdout=out, stderr=out)
    try:
        yield proc.pid
    finally:
        lab.stop(proc)


class Table:
    def __init__(self) -> None:
        self.rows: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def add(self, name: str, seconds: tuple[float, float]) -> None:
        self.rows.setdefault(name, []).append(seconds[0] * 1000)
        self.cpu.setdefault(name, []).append(seconds[1] * 1000)

    def median(self, name: str, cpu: bool = False) -> float:
        return statistics.median((self.cpu if cpu else self.rows)[name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--python", action="append", default=[], help="another venv's python")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds before reading RSS")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/startup.py needs root (network namespaces)")
    pythons = [sys.executable, *args.python]
    for python in pythons:
        if not Path(python).with_name("ifvip").exists():
            raise SystemExit(f"no ifvip script beside {python}")
    table = Table()
    rss: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ifvip-startup-")))
        env = {**ENV, "IFVIP_CACHE_DIR": str(work / "cache")}
        lab = stack.enter_context(Lab(["n1"], prefix="ifvip-su"))
        twins = stack.enter_context(Twins(1 + len(pythons), tag="su"))
        socket_path = str(work / "status.sock")
        ifvip0 = str(Path(sys.executable).with_name("ifvip"))
        carp = [ifvip0, "run", "-i", "eth0", "-v", "42", "-p", "secret", "-a", "198.51.100.100"]
        carp += [f"--state-dir={work / 'run-status'}", f"--status-socket={socket_path}"]
        stack.enter_context(daemon(lab, "n1", carp, work / "status-daemon.log"))
        deadline = time.monotonic() + 20
        while not Path(socket_path).exists():
            if time.monotonic() > deadline:
                raise SystemExit("the daemon for `ifvip status` did not start")
            time.sleep(0.05)
        dmz = ["-i", str(DMZ)]
        ifupdown_ns = twins.names[0]
        commands: list[tuple[str, list[str], str | None]] = [
            ("ifupdown ifquery", [str(IFUPDOWN / "ifquery"), *dmz, "eth1"], None)
        ]
        for python, ns in zip(pythons, twins.names[1:], strict=True):
            tag = tag_of(python)
            ifvip = str(Path(python).with_name("ifvip"))
            commands += [
                (f"{tag}: python -c pass", [python, "-c", "pass"], None),
                (f"{tag}: ifvip --version", [ifvip, "--version"], None),
                (f"{tag}: ifvip ifquery", [ifvip, "ifquery", *dmz, "eth1"], None),
                (f"{tag}: ifvip status", [ifvip, "status", "--socket", socket_path], None),
                (f"{tag}: ifvip ifup", [ifvip, "ifup", *dmz, "eth0", "eth1"], ns),
                (f"{tag}: ifvip ifdown", [ifvip, "ifdown", *dmz, "eth0", "eth1"], ns),
            ]
        commands += [
            ("ifupdown ifup", [str(IFUPDOWN / "ifup"), *dmz, "eth0", "eth1"], ifupdown_ns),
            ("ifupdown ifdown", [str(IFUPDOWN / "ifdown"), *dmz, "eth0", "eth1"], ifupdown_ns),
        ]

        def argv_of(name: str, argv: list[str], ns: str | None) -> list[str]:
            if ns is None:
                return argv
            state = work / f"state-{ns}"
            return ["ip", "netns", "exec", ns, *argv, f"--state-dir={state}"]

        for name, argv, ns in commands:  # warm-up: the reading cache, the page cache
            timed(argv_of(name, argv, ns), env)
        for _ in range(args.runs):
            for name, argv, ns in commands:
                table.add(name, timed(argv_of(name, argv, ns), env))
        # The idle daemons, one at a time in the lab host.
        ucarp = [UCARP, "-i", "eth0", "-s", "198.51.100.1", "-v", "42", "-p", "secret"]
        daemons = {"ucarp": [*ucarp, "-a", "198.51.100.100", "-u", "/bin/true", "-d", "/bin/true"]}
        conf = work / "keepalived.conf"
        conf.write_text(KEEPALIVED_CONF)
        daemons["keepalived"] = [KEEPALIVED, "-P", "-n", "-l", "-D", "-G", "-f", str(conf)]
        daemons["keepalived"] += ["-p", str(work / "ka.pid"), "-r", str(work / "vrrp.pid")]
        for python in pythons:
            tag = tag_of(python)
            ifvip = str(Path(python).with_name("ifvip"))
            state = f"--state-dir={work / ('idle-' + tag)}"
            daemons[f"{tag}: ifvip run (CARP)"] = [
                ifvip, "run", "-i", "eth0", "-v", "43", "-p", "secret", "-a", "198.51.100.101",
                state,
            ]  # fmt: skip
            daemons[f"{tag}: ifvip run (VRRP)"] = [
                ifvip, "run", "--protocol", "vrrp", "-i", "eth0", "-v", "44",
                "--vip", "198.51.100.102/32", state,
            ]  # fmt: skip
        for name, argv in daemons.items():
            with daemon(lab, "n1", argv, work / "idle.log") as pid:
                time.sleep(args.idle)
                rss[name] = rss_kib(family(pid))
    report(table, rss, pythons, args.runs)


def report(table: Table, rss: dict[str, int], pythons: Sequence[str], runs: int) -> None:
    updown = table.median("ifupdown ifup") + table.median("ifupdown ifdown")
    updown_cpu = table.median("ifupdown ifup", True) + table.median("ifupdown ifdown", True)
    print(f"start-up in ms, median of {runs} runs (interleaved): wall time, and CPU time")
    print(f"{'row':<50} {'wall':>7} {'min':>7} {'max':>7}  {'ratio':<10} {'CPU':>6}  ratio")
    for name, values in table.rows.items():
        ratio = cpu_ratio = ""
        tag = name.split(":")[0]
        bare = f"{tag}: python -c pass"
        cpu = table.median(name, True)
        if name.endswith(("--version", "status", "ifquery")) and bare in table.rows:
            ratio = f"{statistics.median(values) / table.median(bare):.1f}x bare"
            cpu_ratio = f"{cpu / table.median(bare, True):.1f}x bare"
        print(
            f"{name:<50} {statistics.median(values):7.1f} {min(values):7.1f} "
            f"{max(values):7.1f}  {ratio:<10} {cpu:6.1f}  {cpu_ratio}"
        )
    print(f"{'ifupdown ifup + ifdown':<50} {updown:7.1f} {'':27} {updown_cpu:6.1f}")
    for python in pythons:
        tag = tag_of(python)
        total = table.median(f"{tag}: ifvip ifup") + table.median(f"{tag}: ifvip ifdown")
        cpu = table.median(f"{tag}: ifvip ifup", True) + table.median(f"{tag}: ifvip ifdown", True)
        print(
            f"{tag + ': ifvip ifup + ifdown':<50} {total:7.1f} {'':15} "
            f"{total / updown:.2f}x ifupdown {cpu:6.1f}  {cpu / updown_cpu:.2f}x ifupdown"
        )
    print("\nidle daemons, VmRSS: kB as /proc shows it (the issue's MB are these / 1000), MiB")
    for name, kib in rss.items():
        print(f"{name:<50} {kib:8d} kB  {kib / 1024:6.1f} MiB")


if __name__ == "__main__":
    main()
