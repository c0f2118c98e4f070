"""Kernel-state snapshots of test namespaces, and the real ifupdown run inside them.

`snapshot(ns)` reads, over netlink (pyroute2, no `ip` output parsed), everything ifup can
change in a namespace: addresses (flags, label, broadcast, scope, prefix; not the lifetimes,
which tick), routes of every table, rules, the links' MTU/MAC/flags/alias and the IPv4 and
IPv6 sysctls of the interfaces. Two namespaces configured alike give equal snapshots.

`Twins` makes namespaces that are alike to the byte: each holds eth0 and eth1 (fixed MACs),
veth devices whose peers sit, up, in a private "switch" namespace of their own, so a link
brought up gets carrier at once and DAD sees nobody. `Runner` runs a command inside one of
them through `ip netns exec`, with /etc/netns/NAME/network holding empty if-*.d directories:
ip netns exec bind-mounts that over /etc/network, so neither the real ifupdown nor ifvip can
see the host's hook scripts, interfaces file or state.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

AF_INET = 2
AF_INET6 = 10

IFA_F_OPTIMISTIC = 0x04
IFA_F_TENTATIVE = 0x40
IFA_F_DADFAILED = 0x08
RTM_F_CLONED = 0x200
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
# Link flags that are configuration; RUNNING/LOWER_UP/DORMANT follow the carrier.
LINK_FLAGS = 0x1 | 0x2 | 0x8 | 0x10 | 0x80 | 0x100 | 0x200 | 0x1000

DEVICES = ("eth0", "eth1")


def mac_of(index: int, *, peer: bool = False) -> str:
    """The fixed MAC of the index-th device (02:00:5e:10:00:01, ...) or of its peer."""
    return f"02:00:5e:{20 if peer else 10}:00:{index + 1:02x}"


IPV6_KEYS = (
    "accept_dad",
    "accept_ra",
    "autoconf",
    "forwarding",
    "disable_ipv6",
    "use_tempaddr",
    "dad_transmits",
    "mtu",
)
IPV4_KEYS = (
    "forwarding",
    "rp_filter",
    "accept_redirects",
    "arp_ignore",
    "arp_announce",
    "proxy_arp",
)
GLOBAL_SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv6/conf/all/forwarding",
    "net/ipv6/conf/all/accept_dad",
    "net/ipv6/conf/default/accept_dad",
)

# IFVIP_TEST_COMMAND overrides how ifvip is started (e.g. an installed /usr/sbin/ifvip).
IFVIP = os.environ.get("IFVIP_TEST_COMMAND", str(Path(sys.executable).with_name("ifvip"))).split()


def _attr(msg: Any, name: str) -> Any:
    return msg.get_attr(name)


def _addresses(ipr: Any, names: dict[int, str]) -> list[tuple[Any, ...]]:
    rows = []
    for msg in ipr.get_addr():
        cache = _attr(msg, "IFA_CACHEINFO")
        flags = _attr(msg, "IFA_FLAGS")
        if flags is None:
            flags = msg["flags"]
        rows.append(
            (
                names.get(msg["index"], str(msg["index"])),
                msg["family"],
                _attr(msg, "IFA_LOCAL") or _attr(msg, "IFA_ADDRESS"),
                _attr(msg, "IFA_ADDRESS"),
                msg["prefixlen"],
                msg["scope"],
                # Tentative/optimistic come and go while DAD runs: not configuration.
                int(flags) & ~(IFA_F_TENTATIVE | IFA_F_OPTIMISTIC),
                _attr(msg, "IFA_LABEL"),
                _attr(msg, "IFA_BROADCAST"),
                # Whether the lifetimes are finite, not how much of them is left.
                None if cache is None else cache["ifa_preferred"] == 0xFFFFFFFF,
                None if cache is None else cache["ifa_valid"] == 0xFFFFFFFF,
            )
        )
    return sorted(rows, key=repr)


def _tentative(ipr: Any) -> bool:
    """Whether DAD is still running for some address (its local route comes after)."""
    for msg in ipr.get_addr(family=AF_INET6):
        flags = _attr(msg, "IFA_FLAGS")
        flags = msg["flags"] if flags is None else flags
        if flags & IFA_F_TENTATIVE and not flags & IFA_F_DADFAILED:
            return True
    return False


def _routes(ipr: Any, names: dict[int, str]) -> list[tuple[Any, ...]]:
    rows = []
    for family in (AF_INET, AF_INET6):
        for msg in ipr.route("dump", family=family):
            if msg["flags"] & RTM_F_CLONED:
                continue  # the route cache (PMTU, redirects): the kernel's, not ours
            oif = _attr(msg, "RTA_OIF")
            rows.append(
                (
                    family,
                    _attr(msg, "RTA_TABLE") or msg["table"],
                    _attr(msg, "RTA_DST"),
                    msg["dst_len"],
                    _attr(msg, "RTA_SRC"),
                    msg["src_len"],
                    msg["type"],
                    msg["proto"],
                    msg["scope"],
                    msg["flags"],
                    msg["tos"],
                    _attr(msg, "RTA_GATEWAY"),
                    None if oif is None else names.get(oif, str(oif)),
                    _attr(msg, "RTA_PREFSRC"),
                    _attr(msg, "RTA_PRIORITY"),
                    _attr(msg, "RTA_PREF"),
                    repr(_attr(msg, "RTA_MULTIPATH")),
                )
            )
    return sorted(rows, key=repr)


def _rules(ipr: Any) -> list[tuple[Any, ...]]:
    rows = []
    for family in (AF_INET, AF_INET6):
        for msg in ipr.get_rules(family=family):
            rows.append(
                (
                    family,
                    _attr(msg, "FRA_PRIORITY"),
                    _attr(msg, "FRA_TABLE") or msg["table"],
                    msg["action"],
                    _attr(msg, "FRA_SRC"),
                    msg["src_len"],
                    _attr(msg, "FRA_DST"),
                    msg["dst_len"],
                    _attr(msg, "FRA_IIFNAME"),
                    _attr(msg, "FRA_OIFNAME"),
                    _attr(msg, "FRA_FWMARK"),
                    _attr(msg, "FRA_PROTOCOL"),
                    msg["flags"],
                    msg["tos"],
                )
            )
    return sorted(rows, key=repr)


def _links(ipr: Any) -> tuple[dict[int, str], list[tuple[Any, ...]], list[tuple[str, int]]]:
    names: dict[int, str] = {}
    rows = []
    raw = []
    for msg in ipr.get_links():
        name = _attr(msg, "IFLA_IFNAME")
        names[msg["index"]] = name
        raw.append((name, int(msg["flags"])))
        rows.append(
            (
                name,
                msg["flags"] & LINK_FLAGS,
                _attr(msg, "IFLA_MTU"),
                _attr(msg, "IFLA_ADDRESS"),
                _attr(msg, "IFLA_IFALIAS"),
                _attr(msg, "IFLA_TXQLEN"),
            )
        )
    return names, sorted(rows, key=repr), raw


def sysctl_paths(ifnames: Sequence[str]) -> list[str]:
    paths = list(GLOBAL_SYSCTLS)
    for name in ifnames:
        conf = name.replace(".", "/")
        paths += [f"net/ipv6/conf/{conf}/{key}" for key in IPV6_KEYS]
        paths += [f"net/ipv4/conf/{conf}/{key}" for key in IPV4_KEYS]
    return paths


def read_sysctls(ns: str, paths: Sequence[str]) -> dict[str, str]:
    """Read sysctls as a process inside `ns` sees them (/proc/sys/net is per namespace)."""
    script = (
        "import sys\n"
        "for p in sys.argv[1:]:\n"
        "    try: v = open('/proc/sys/' + p).read().strip()\n"
        "    except OSError as e: v = '<' + (e.strerror or '?') + '>'\n"
        "    print(p + '=' + v.replace(chr(10), ' '))\n"
    )
    out = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", script, *paths],
        capture_output=True,
        text=True,
        check=True,
        timeout=20,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


@dataclass(frozen=True)
class Snapshot:
    links: list[tuple[Any, ...]]
    addresses: list[tuple[Any, ...]]
    routes: list[tuple[Any, ...]]
    rules: list[tuple[Any, ...]]
    sysctls: dict[str, str] = field(default_factory=dict)

    def diff(self, other: Snapshot) -> str:
        """What differs, one `-`/`+` line per item (empty when equal)."""
        lines = []
        for part in ("links", "addresses", "routes", "rules"):
            mine, theirs = getattr(self, part), getattr(other, part)
            lines += [f"- {part} {row}" for row in mine if row not in theirs]
            lines += [f"+ {part} {row}" for row in theirs if row not in mine]
        for key in sorted(set(self.sysctls) | set(other.sysctls)):
            if self.sysctls.get(key) != other.sysctls.get(key):
                lines.append(f"~ sysctl {key}: {self.sysctls.get(key)} -> {other.sysctls.get(key)}")
        return "\n".join(lines)


def _read(ns: str) -> tuple[Snapshot, list[tuple[str, int]], set[str], bool]:
    with IPRoute(netns=ns) as ipr:
        names, links, raw = _links(ipr)
        addresses = _addresses(ipr, names)
        tentative = _tentative(ipr)
        routes = _routes(ipr, names)
        rules = _rules(ipr)
    with_ll = {row[0] for row in addresses if str(row[2]).startswith("fe80:")}
    return Snapshot(links, addresses, routes, rules), raw, with_ll, tentative


def snapshot(ns: str, *, ifnames: Sequence[str] = DEVICES, settle: float = 8.0) -> Snapshot:
    """The namespace's state, once the kernel's own reaction to carrier has happened.

    A link that is up with carrier gets its IPv6 link-local address and routes from the
    kernel a moment later, and an address's local route comes when its DAD is done; the
    snapshot waits (at most `settle` seconds) until every such link has its link-local
    address, no DAD is running and two reads agree, so both sides are read alike.
    """
    sysctls = read_sysctls(ns, sysctl_paths(ifnames))
    ipv6 = {n for n in ifnames if sysctls.get(f"net/ipv6/conf/{n}/disable_ipv6") == "0"}
    deadline = time.monotonic() + settle
    previous: Snapshot | None = None
    while True:
        current, raw, with_ll, tentative = _read(ns)
        pending = [
            name
            for name, flags in raw
            if name in ipv6 and flags & IFF_UP and flags & IFF_LOWER_UP and name not in with_ll
        ]
        if not pending and not tentative and current == previous:
            break
        if time.monotonic() > deadline:
            break
        previous = current
        time.sleep(0.05)
    return Snapshot(current.links, current.addresses, current.routes, current.rules, sysctls)


IFA_F_NODAD = 0x02


def with_readonly_proc(reference: Snapshot, before: Snapshot, ifname: str) -> Snapshot:
    """`reference` (real ifupdown's state after an ifup with an `accept_dad` 0 hook on
    `ifname`) as ifvip makes it where /proc/sys is read-only: `ifname`'s IPv6 addresses with
    nodad, and its sysctls as they were `before` (they cannot be written)."""
    addresses = sorted(
        (
            (*row[:6], row[6] | IFA_F_NODAD, *row[7:])
            if row[0] == ifname and row[1] == AF_INET6 and not str(row[2]).startswith("fe80:")
            else row
            for row in reference.addresses
        ),
        key=repr,
    )
    sysctls = {
        key: before.sysctls.get(key, value) if f"/{ifname}/" in key else value
        for key, value in reference.sysctls.items()
    }
    return Snapshot(reference.links, addresses, reference.routes, reference.rules, sysctls)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=10, capture_output=True)


FAST_DAD = (
    "echo 0 > /proc/sys/net/ipv6/conf/{dev}/router_solicitation_delay && "
    "echo 100 > /proc/sys/net/ipv6/neigh/{dev}/retrans_time_ms"
)


class Twins:
    """`count` namespaces alike (eth0, eth1 with fixed MACs), deleted on exit."""

    def __init__(self, count: int = 2, *, tag: str = "t", devices: Sequence[str] = DEVICES) -> None:
        base = f"ifvip-{tag}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.names = [f"{base}-{i}" for i in range(count)]
        self.devices = tuple(devices)
        self._made: list[str] = []

    def __enter__(self) -> Twins:
        try:
            for name in self.names:
                self._make(name)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _make(self, name: str) -> None:
        switch = f"{name}-sw"
        for ns in (name, switch):
            _ip("netns", "add", ns)
            self._made.append(ns)
        etc = Path("/etc/netns") / name / "network"
        for sub in ("if-pre-up.d", "if-up.d", "if-down.d", "if-post-down.d"):
            (etc / sub).mkdir(parents=True, exist_ok=True)
        _ip("-n", name, "link", "set", "lo", "up")
        for index, dev in enumerate(self.devices):
            peer = f"p{index}"
            _ip(
                "-n", switch, "link", "add", peer, "address", mac_of(index, peer=True),
                "type", "veth", "peer", "name", dev, "address", mac_of(index), "netns", name,
            )  # fmt: skip
            _ip("-n", switch, "link", "set", peer, "up")
            # Duplicate address detection in a tenth of a second, not up to two: the kernel
            # waits a random part of router_solicitation_delay (1 s), then retrans_time (1 s)
            # a probe, and `dad-attempts 5` / `dad-interval 0.5` leaves real ifupdown half a
            # second to spare, which a loaded CI machine does not always give. Both twins alike.
            _ip("netns", "exec", name, "sh", "-c", FAST_DAD.format(dev=dev))

    def close(self) -> None:
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(Path("/etc/netns") / ns)
        self._made.clear()


@dataclass
class Runner:
    """Runs ifupdown (real or ifvip's) inside namespace `ns` on interfaces file `path`."""

    ns: str
    path: Path
    state_dir: Path
    timeout: float = 60.0

    def run(self, argv: Sequence[str], **env: str) -> subprocess.CompletedProcess[str]:
        environ = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            # ifvip's reading cache goes where the test session or bench keeps it, not to
            # the machine's /run/ifvip.
            **{k: v for k, v in os.environ.items() if k == "IFVIP_CACHE_DIR"},
            **env,
        }
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, *argv],
            capture_output=True,
            text=True,
            timeout=self.timeout,
            env=environ,
            check=False,
        )

    def _args(self, *args: str) -> list[str]:
        return ["-i", str(self.path), f"--state-dir={self.state_dir}", *args]

    def real(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`ifup`/`ifdown` from Debian's package."""
        return self.run([f"/usr/sbin/{command}", *self._args(*args)])

    def ifvip(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run([*IFVIP, command, *self._args(*args)])


@contextlib.contextmanager
def twins(count: int = 2, *, tag: str = "t") -> Iterator[list[str]]:
    with Twins(count, tag=tag) as made:
        yield made.names


def _plan_dict(plan: Any) -> dict[str, Any]:
    def steps(items: Any) -> list[dict[str, Any]]:
        return [{"op": s.op.to_dict(), "phase": s.phase, "stage": s.stage} for s in items]

    return {
        "physical": plan.physical,
        "logical": plan.logical,
        "mode": plan.mode,
        "before": steps(plan.before),
        "after": steps(plan.after),
        "stanzas": [
            {"logical": s.logical, "family": s.family, "method": s.method, "steps": steps(s.steps)}
            for s in plan.stanzas
        ],
    }


_ENGINE_CHILD = """
import asyncio, json, sys
from ifvip.ifupdown import engine
from ifvip.ifupdown.plan import Plan, StanzaPlan, Step, op_from_dict
data = json.load(sys.stdin)
def steps(items):
    return tuple(Step(op_from_dict(s["op"]), s["phase"], s["stage"]) for s in items)
plans = [
    Plan(p["physical"], p["logical"], p["mode"], steps(p["before"]),
         tuple(StanzaPlan(s["logical"], s["family"], s["method"], None, steps(s["steps"]))
               for s in p["stanzas"]),
         steps(p["after"]))
    for p in data["plans"]
]
call = engine.ifup if data["command"] == "ifup" else engine.ifdown
try:
    result = asyncio.run(call(plans, state_dir=data["state_dir"], force=data["force"],
                              handle_signals=True))
except asyncio.CancelledError:
    sys.exit(130)
sys.exit(result.exit_code)
"""


def engine_payload(command: str, plans: Sequence[Any], state_dir: Path, force: bool) -> str:
    import json

    return json.dumps(
        {
            "command": command,
            "plans": [_plan_dict(p) for p in plans],
            "state_dir": str(state_dir),
            "force": force,
        }
    )


def engine_argv(ns: str) -> list[str]:
    return ["ip", "netns", "exec", ns, sys.executable, "-c", _ENGINE_CHILD]


def run_engine(
    ns: str, command: str, plans: Sequence[Any], state_dir: Path, *, force: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run engine.ifup/ifdown on hand-made `plans` inside `ns` (as ifvip ifup would)."""
    return subprocess.run(
        engine_argv(ns),
        input=engine_payload(command, plans, state_dir, force),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
