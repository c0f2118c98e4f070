"""The deployments users run, as a lab: two ifvip hosts and the faults they meet (issue 13).

A `ScenarioLab` is an `ifvip.lab.Lab` with hosts h1 (preferred) and h2, each with eth0 on
the lab's bridge and eth1 on a second bridge in the switch namespace, and an empty
/etc/netns/NS/network (if-*.d directories), so neither the real ifupdown nor ifvip sees the
machine's hook scripts (Debian's ucarp package installs one) or its interfaces file.

A `Cell` says what runs: the protocol (CARP, VRRP), who preempts (both, one, none), what
MASTER means (the role):

- `vip`: ifvip adds the VIP itself (`-a`/`--vip`);
- `manage`: `--interfaces FILE --manage eth1`, FILE being the seed's production DMZ file,
  whose eth1 stanzas carry two IPv4 and two IPv6 addresses, gateways and an accept_dad hook;
- `ucarp`: a CARP group declared by Debian's `ucarp-*` options, MASTER = `ifup eth0:ucarp`;
- `scripts`: ucarp's `-u`/`-d` scripts adding and removing the VIP with `ip addr`.

Each role has a marker address whose presence says who holds (the VIP, or eth1's first
address), and reference kernel states per host: before anything ran (a backup must be left
so), and as master: real ifupdown's `ifup` of the stanzas (eth1 is then made anew, so the
host starts clean), or the VIP added to eth0. Snapshots compare without the address
lifetimes, which the dead man's switch sets.

Every process and namespace is ended on close(), also after errors; processes by PID.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from pyroute2 import IPRoute

from ifvip.lab import Lab
from tests.netns.kernelstate import Snapshot, snapshot
from tests.programs import IFVIP

REPO: Final = Path(__file__).resolve().parents[2]
DMZ_FILE: Final = REPO.parent / "shared" / "examples" / "production-dmz.interfaces"
VIP: Final = "198.51.100.100"
VHID: Final = 42
PASSWORD: Final = "secret"
IF_DIRS: Final = ("if-pre-up.d", "if-up.d", "if-down.d", "if-post-down.d")
IFA_F_PERMANENT: Final = 0x80
RTNH_F_LINKDOWN: Final = 0x10
ROLES: Final = ("vip", "manage", "ucarp", "scripts")

# The eth1 stanzas of a failing MASTER action: the seed's file with a hook that fails
# after the addresses went on (so the ifup must undo them).
FAILING_HOOK: Final = "  up /bin/false\n"


@dataclass(frozen=True)
class Cell:
    protocol: str  # carp | vrrp
    preempt: str  # both | one | none
    role: str  # vip | manage | ucarp | scripts
    event: str

    @property
    def id(self) -> str:
        return f"{self.protocol}-{self.role}-preempt_{self.preempt}-{self.event}"

    def preempts(self, host: str) -> bool:
        return self.preempt == "both" or (self.preempt == "one" and host == "h1")


@dataclass(frozen=True)
class Bounds:
    """Seconds: a bow-out is taken within `bow_out`, a death within `takeover`; a dead or
    frozen master's addresses go within `expiry` of its last advert."""

    bow_out: float
    takeover: float
    expiry: float


def bounds(cell: Cell) -> Bounds:
    # CARP: h2 advskew 50, deadratio 3; VRRP v3: h2 priority 100 (skew 0.609 s).
    if cell.protocol == "carp":
        skew, down, lifetime = 50 / 256, 3 + 50 / 256, 6  # h1: ceil(2 * 3.0)
    else:
        skew, down, lifetime = 0.609375, 3.609375, 7  # h1: ceil(2 * 3.414)
    # The peer's MASTER action (an ifup of two stanzas) comes on top of the election's bound.
    work = 1.5 if cell.role in ("manage", "ucarp") else 0.5
    return Bounds(bow_out=skew + work, takeover=down + work, expiry=lifetime + 1.0 + work)


@dataclass
class Host:
    name: str
    netns: str
    src: str
    state_dir: Path
    interfaces: Path | None = None
    argv: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    backup_ref: Snapshot | None = None
    master_ref: Snapshot | None = None


def comparable(snap: Snapshot) -> Snapshot:
    """A snapshot without what the dead man's switch changes (address lifetimes, and so the
    PERMANENT flag) and without the LINKDOWN flag that a route carries while its link has
    no carrier (the carrier's, not configuration)."""
    addresses = sorted(
        ((*row[:6], int(row[6]) & ~IFA_F_PERMANENT, *row[7:9]) for row in snap.addresses),
        key=repr,
    )
    routes = sorted(
        ((*row[:9], int(row[9]) & ~RTNH_F_LINKDOWN, *row[10:]) for row in snap.routes), key=repr
    )
    return Snapshot(snap.links, addresses, routes, snap.rules, snap.sysctls)


class ScenarioLab:
    def __init__(self, cell: Cell) -> None:
        self.cell = cell
        self.lab = Lab(["h1", "h2"], prefix="ifvip-sc")
        self.tmp = Path(tempfile.mkdtemp(prefix="ifvip-sc-"))
        self.hosts: dict[str, Host] = {}
        self._etc: list[Path] = []
        self._ipr: dict[str, IPRoute] = {}
        self.figures: dict[str, float | None] = {}  # what a test measured, for the report

    # ------------------------------------------------------------ set-up

    def __enter__(self) -> ScenarioLab:
        try:
            self.lab.__enter__()
            self._second_bridge()
            for name, host in self.lab.hosts.items():
                self._isolate(host.netns)
                self.hosts[name] = Host(
                    name, host.netns, str(host.address.ip), self.tmp / f"state-{name}"
                )
            for host in self.hosts.values():
                self._files(host)
                host.backup_ref = comparable(snapshot(host.netns))
                host.master_ref = self._master_reference(host)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _second_bridge(self) -> None:
        with IPRoute(netns=self.lab.switch) as sw:
            sw.link("add", ifname="br1", kind="bridge")
            (bridge,) = sw.link_lookup(ifname="br1")
            sw.link("set", index=bridge, state="up")
            for number, host in enumerate(self.lab.hosts.values(), start=1):
                self._eth1(sw, bridge, number, host.netns)

    @staticmethod
    def _eth1(sw: IPRoute, bridge: int, number: int, netns: str) -> None:
        port = f"q{number}"
        sw.link(
            "add",
            ifname=port,
            kind="veth",
            peer={"ifname": "eth1", "net_ns_fd": netns, "address": f"02:00:00:00:02:{number:02x}"},
        )
        (index,) = sw.link_lookup(ifname=port)
        sw.link("set", index=index, master=bridge, state="up")

    def _renew_eth1(self, host: Host) -> None:
        """Delete and make eth1 again: every trace of an ifup on it goes (its sysctls too)."""
        number = list(self.hosts).index(host.name) + 1
        with IPRoute(netns=self.lab.switch) as sw:
            sw.link("del", ifname=f"q{number}")
            (bridge,) = sw.link_lookup(ifname="br1")
            self._eth1(sw, bridge, number, host.netns)

    def _isolate(self, netns: str) -> None:
        etc = Path("/etc/netns") / netns
        for sub in IF_DIRS:
            (etc / "network" / sub).mkdir(parents=True, exist_ok=True)
        self._etc.append(etc)

    def _files(self, host: Host) -> None:
        cell = self.cell
        failing = cell.event == "action" and host.name == "h1"
        if cell.role == "manage":
            text = DMZ_FILE.read_text()
            if failing:
                anchor = "  up ip addr add 203.0.113.135/$IF_NETMASK dev $IFACE\n"
                text = text.replace(anchor, anchor + FAILING_HOOK)
            host.interfaces = self.tmp / f"interfaces-{host.name}"
            host.interfaces.write_text(text)
        elif cell.role == "ucarp":
            master = "yes" if cell.preempts(host.name) else "no"
            skew = 0 if host.name == "h1" else 50
            host.interfaces = self.tmp / f"interfaces-{host.name}"
            host.interfaces.write_text(
                f"iface eth0 inet static\n  address {host.src}\n  netmask 255.255.255.0\n"
                f"  ucarp-vid {VHID}\n  ucarp-vip {VIP}\n  ucarp-password {PASSWORD}\n"
                f"  ucarp-advskew {skew}\n  ucarp-master {master}\n\n"
                f"iface eth0:ucarp inet static\n  address {VIP}\n  netmask 255.255.255.0\n"
                + (FAILING_HOOK if failing else "")
            )
        elif cell.role == "scripts":
            up = self.tmp / f"up-{host.name}"
            down = self.tmp / f"down-{host.name}"
            # A VRRP group adds its VIP itself: its script must not fail on it (File exists).
            verb = "add" if cell.protocol == "carp" else "replace"
            up.write_text(
                f'#!/bin/sh\nip addr {verb} {VIP}/24 dev "$1"\n' + ("exit 1\n" if failing else "")
            )
            down.write_text(f'#!/bin/sh\nip addr del {VIP}/24 dev "$1" 2>/dev/null\nexit 0\n')
            up.chmod(0o755)
            down.chmod(0o755)

    def _master_reference(self, host: Host) -> Snapshot:
        if self.cell.role in ("manage", "ucarp"):
            # Real ifupdown brings the stanza up; eth1 (or the alias) is then removed.
            target = "eth1" if self.cell.role == "manage" else "eth0:ucarp"
            assert host.interfaces is not None
            scratch = self.tmp / f"ifupdown-{host.name}"
            reference_file = self.tmp / f"reference-{host.name}"
            text = host.interfaces.read_text().replace(FAILING_HOOK, "")
            reference_file.write_text(text)
            done = self.ns_run(
                host, ["ifup", "-i", str(reference_file), "--state-dir", str(scratch), target]
            )
            assert done.returncode == 0, done.stderr
            vip = self.cell.protocol == "vrrp"  # a VRRP group always adds its --vip too
            if vip:
                self._add_vip(host)
            reference = comparable(snapshot(host.netns))
            if self.cell.role == "manage":
                self._renew_eth1(host)
                if vip:
                    self._del_vip(host)
            else:
                self._del_vip(host)
        else:
            self._add_vip(host)
            reference = comparable(snapshot(host.netns))
            self._del_vip(host)
        after = comparable(snapshot(host.netns))
        assert not after.diff(host.backup_ref or after), after.diff(host.backup_ref or after)
        return reference

    def _add_vip(self, host: Host) -> None:
        with self._route(host) as ipr:
            (index,) = ipr.link_lookup(ifname="eth0")
            ipr.addr("add", index=index, address=VIP, prefixlen=24)

    def _del_vip(self, host: Host) -> None:
        with self._route(host) as ipr:
            (index,) = ipr.link_lookup(ifname="eth0")
            ipr.addr("del", index=index, address=VIP, prefixlen=24)

    @contextlib.contextmanager
    def _route(self, host: Host) -> Iterator[IPRoute]:
        with IPRoute(netns=host.netns) as ipr:
            yield ipr

    def close(self) -> None:
        for host in self.hosts.values():
            if host.proc is not None and host.proc.poll() is None:
                with contextlib.suppress(OSError):
                    host.proc.send_signal(signal.SIGCONT)
        for ipr in self._ipr.values():
            with contextlib.suppress(OSError):
                ipr.close()
        self.lab.close()
        for etc in self._etc:
            shutil.rmtree(etc, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------ daemons

    def argv(self, host: Host, *, extra: tuple[str, ...] = ()) -> list[str]:
        cell = self.cell
        preferred = host.name == "h1"
        # ifupdown's state too lives in the state dir: a fresh /run loses both.
        state = ["--state-dir", str(host.state_dir)]
        state += ["--ifstate-dir", str(host.state_dir / "network")]
        if cell.role == "ucarp":
            assert host.interfaces is not None
            return [IFVIP, "run", "--interfaces", str(host.interfaces), *state, *extra]
        if cell.protocol == "carp":
            argv = [IFVIP, "run", "-i", "eth0", "-s", host.src, "-v", str(VHID), "-p", PASSWORD]
            argv += ["-a", VIP, "--masklen", "24", "-z", *state]
            argv += ["-k", "0" if preferred else "50"]
            if cell.preempts(host.name):
                argv.append("-P")
        else:
            argv = [IFVIP, "run", "--protocol", "vrrp", "--vrrp-version", "3", "-i", "eth0"]
            argv += ["--vrid", str(VHID), "--vip", f"{VIP}/24", *state]
            argv += ["--priority", "150" if preferred else "100"]
            if not cell.preempts(host.name):
                argv.append("--nopreempt")
        if cell.role == "manage":
            assert host.interfaces is not None
            argv += ["--interfaces", str(host.interfaces), "--manage", "eth1"]
        elif cell.role == "scripts":
            argv += ["-u", str(self.tmp / f"up-{host.name}")]
            argv += ["-d", str(self.tmp / f"down-{host.name}")]
        return [*argv, *extra]

    def start(self, name: str, *, extra: tuple[str, ...] = (), fresh_state: bool = False) -> Host:
        host = self.hosts[name]
        if fresh_state:
            # A container's fresh /run: the state dir, its journals and ifstate are gone.
            shutil.rmtree(host.state_dir, ignore_errors=True)
        host.argv = self.argv(host, extra=extra)
        host.log = self.tmp / f"{name}.log"
        with open(host.log, "ab") as out:
            host.proc = self.lab.run(name, host.argv, stdout=out, stderr=out)
        return host

    def signal(self, name: str, sig: int) -> None:
        host = self.hosts[name]
        assert host.proc is not None
        host.proc.send_signal(sig)

    def wait_exit(self, name: str, timeout: float = 15.0) -> int:
        host = self.hosts[name]
        assert host.proc is not None
        return host.proc.wait(timeout)

    def text(self, name: str) -> str:
        log = self.hosts[name].log
        return log.read_text(errors="replace") if log is not None and log.exists() else ""

    def ns_run(
        self, host: Host, argv: list[str], timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", host.netns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def status(self, name: str) -> tuple[int, dict[str, Any]]:
        """`ifvip status --json` of the host's daemon: exit code and the snapshot."""
        host = self.hosts[name]
        done = self.ns_run(host, [IFVIP, "status", "--json", "--state-dir", str(host.state_dir)])
        try:
            return done.returncode, json.loads(done.stdout)
        except ValueError:
            return done.returncode, {"error": done.stderr}

    # ------------------------------------------------------------ observation

    @property
    def marker(self) -> tuple[str, str]:
        """(device, address) whose presence says a host holds."""
        if self.cell.role == "manage":
            return "eth1", "203.0.113.134"
        return "eth0", VIP

    def holds(self, name: str) -> bool:
        host = self.hosts[name]
        if name not in self._ipr:
            self._ipr[name] = IPRoute(netns=host.netns)
        _, address = self.marker
        return any(m.get_attr("IFA_ADDRESS") == address for m in self._ipr[name].get_addr(family=2))

    def holders(self) -> frozenset[str]:
        return frozenset(h for h in self.hosts if self.holds(h))

    def watch(
        self, seconds: float, until: Callable[[frozenset[str]], bool] | None = None
    ) -> Timeline:
        """Sample the holders every 20 ms for `seconds` (or until `until(holders)`)."""
        start = time.monotonic()
        samples: list[tuple[float, frozenset[str]]] = []
        while True:
            now = time.monotonic() - start
            holders = self.holders()
            samples.append((now, holders))
            if now >= seconds or (until is not None and until(holders)):
                return Timeline(samples)
            time.sleep(0.02)

    def kernel_state(self, name: str) -> Snapshot:
        return comparable(snapshot(self.hosts[name].netns))

    def carrier(self, name: str, up: bool) -> None:
        """Cut or restore h's eth0 carrier from the switch side (its bridge port)."""
        port = f"p{list(self.hosts).index(name) + 1}"
        with IPRoute(netns=self.lab.switch) as sw:
            (index,) = sw.link_lookup(ifname=port)
            sw.link("set", index=index, state="up" if up else "down")


@dataclass(frozen=True)
class Timeline:
    samples: list[tuple[float, frozenset[str]]]

    def first(self, holders: frozenset[str] | Callable[[frozenset[str]], bool]) -> float | None:
        test = holders if callable(holders) else (lambda h: h == holders)
        return next((t for t, h in self.samples if test(h)), None)

    def longest(self, test: Callable[[frozenset[str]], bool]) -> float:
        """The longest run of samples where `test(holders)` holds, in seconds."""
        longest, began = 0.0, None
        for t, h in self.samples:
            if test(h):
                began = t if began is None else began
                longest = max(longest, t - began)
            else:
                began = None
        return longest

    def last(self) -> frozenset[str]:
        return self.samples[-1][1]

    def shifted(self, offset: float) -> Timeline:
        return replace(self, samples=[(t + offset, h) for t, h in self.samples])
