"""The real keepalived 2.2.7 in a namespace lab: generated config, private files, dumps, logs.

`KeepalivedLab` builds hosts with ifvip/lab.py (a bridge and one veth per host, IPv4
198.51.100.N/24, IPv6 link-local from the MAC, optionally 2001:db8::N/64), starts keepalived
in a host with a minimal config (specs/vrrp.md §4) whose pid files and dump files
($TMPDIR/keepalived.data) live in a private directory, reads its status dump (SIGUSR1) and
its log, and starts `ifvip run --protocol vrrp` beside it. Everything is stopped by PID and
the namespaces are deleted on close(), also after a failure.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ifvip.lab import Lab
from tests.programs import IFVIP, KEEPALIVED

VRID = 51
VIP4 = "198.51.100.100"
VIP6 = "2001:db8::51"
VIP6_LL = "fe80::5e:51"


def until(
    condition: Callable[[], bool], timeout: float, what: str = "condition", every: float = 0.01
) -> float:
    """Poll `condition` every `every` s; the seconds it took, or AssertionError after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(every)
    raise AssertionError(f"{what}: not reached within {timeout} s")


@dataclass(frozen=True)
class Instance:
    """What keepalived.conf and `ifvip run` must agree on."""

    version: int = 3
    family: int = 4
    advert_int: float = 1.0
    auth_pass: str | None = None
    unicast: bool = False

    @property
    def vips(self) -> list[str]:
        if self.family == 6:
            return [f"{VIP6_LL}/64", f"{VIP6}/64"]
        return [f"{VIP4}/24"]


def keepalived_conf(
    inst: Instance,
    *,
    priority: int,
    state: str = "BACKUP",
    nopreempt: bool = False,
    unicast_src: str | None = None,
    unicast_peers: Sequence[str] = (),
    vrid: int = VRID,
    vips: Sequence[str] | None = None,
) -> str:
    """specs/vrrp.md §4's minimal config, for `eth0`."""
    lines = [
        "global_defs {",
        "    enable_script_security",
        "    script_user root",
        "}",
        f"vrrp_instance VI_{vrid} {{",
        f"    state {state}",
        "    interface eth0",
        f"    virtual_router_id {vrid}",
        f"    priority {priority}",
        f"    advert_int {inst.advert_int:g}",
        f"    version {inst.version}",
    ]
    if nopreempt:
        lines.append("    nopreempt")
    if inst.auth_pass is not None:
        lines += [
            "    authentication {",
            "        auth_type PASS",
            f"        auth_pass {inst.auth_pass}",
            "    }",
        ]
    if unicast_src:
        lines.append(f"    unicast_src_ip {unicast_src}")
        lines.append("    unicast_peer {")
        lines += [f"        {peer}" for peer in unicast_peers]
        lines.append("    }")
    lines.append("    virtual_ipaddress {")
    lines += [f"        {vip}" for vip in (inst.vips if vips is None else vips)]
    lines += ["    }", "}", ""]
    return "\n".join(lines)


class Keepalived:
    """One keepalived process in one lab host."""

    def __init__(self, lab: KeepalivedLab, host: str, conf: str) -> None:
        self.lab = lab
        self.host = host
        self.dir = lab.workdir / f"keepalived-{host}-{time.monotonic_ns()}"
        self.dir.mkdir(parents=True)
        self.conf = self.dir / "keepalived.conf"
        self.conf.write_text(conf)
        self.log_path = self.dir / "keepalived.log"
        self.pidfile = self.dir / "keepalived.pid"
        argv = [
            KEEPALIVED,
            "-P",
            "-n",
            "-l",
            "-D",
            "-G",
            "-f",
            str(self.conf),
            "-p",
            str(self.pidfile),
            "-r",
            str(self.dir / "vrrp.pid"),
        ]
        env = {**os.environ, "TMPDIR": str(self.dir)}
        with open(self.log_path, "ab") as log:
            self.proc = lab.lab.run(host, argv, stdout=log, stderr=log, env=env)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def dump(self, timeout: float = 5.0) -> str:
        """keepalived's own status: SIGUSR1 → $TMPDIR/keepalived.data, read once written."""
        data = self.dir / "keepalived.data"
        with contextlib.suppress(FileNotFoundError):
            data.unlink()
        self.proc.send_signal(signal.SIGUSR1)
        last = ""

        def written() -> bool:
            nonlocal last
            if not data.exists():
                return False
            text = data.read_text(errors="replace")
            done = text == last and "------< Interfaces >------" in text
            last = text
            return done

        until(written, timeout, "keepalived.data")
        return last

    def state(self) -> str:
        for line in self.dump().splitlines():
            if line.strip().startswith("State = "):
                return line.split("=", 1)[1].strip()
        raise AssertionError("no State line in keepalived.data")

    def master_router(self) -> str | None:
        for line in self.dump().splitlines():
            if line.strip().startswith("Master router = "):
                return line.split("=", 1)[1].strip()
        return None

    def complaints(self) -> list[str]:
        """Log lines in which keepalived refused a packet."""
        words = ("invalid", "bogus", "wrong version", "mismatch", "unexpected", "not present")
        return [line for line in self.log.splitlines() if any(w in line.lower() for w in words)]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal keepalived. SIGKILL is a real crash: the VRRP child first (killing only the
        parent makes the child leave gracefully, with a priority-0 advert), then the parent."""
        if sig == signal.SIGKILL and self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                child = int((self.dir / "vrrp.pid").read_text().split()[0])
                os.kill(child, signal.SIGKILL)
        self.lab.lab.stop(self.proc, sig)


class Ifvip:
    """One `ifvip run --protocol vrrp` in one lab host."""

    def __init__(self, lab: KeepalivedLab, host: str, argv: Sequence[str]) -> None:
        self.dir = lab.workdir / f"ifvip-{host}-{time.monotonic_ns()}"
        self.dir.mkdir(parents=True)
        self.log_path = self.dir / "ifvip.log"
        full = [IFVIP, "run", "--state-dir", str(self.dir / "state"), *argv]
        with open(self.log_path, "ab") as log:
            self.proc = lab.lab.run(host, full, stdout=log, stderr=log)
        self.lab = lab

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.lab.lab.stop(self.proc, sig)


class KeepalivedLab:
    """A Lab with VRRP helpers; hosts' eth0 get 2001:db8::N/64 and a settled link-local."""

    def __init__(self, hosts: Sequence[str], workdir: Path) -> None:
        self.lab = Lab(hosts, prefix="ifvip-ka")
        self.workdir = workdir
        self.names = list(hosts)
        self._link_local: dict[str, str] = {}

    def __enter__(self) -> KeepalivedLab:
        self.lab.__enter__()
        try:
            for number, name in enumerate(self.names, start=1):
                self.ip(name, "-6", "addr", "add", f"2001:db8::{number}/64", "dev", "eth0")
            for name in self.names:
                until(partial(self._settled, name), 10, f"IPv6 DAD on {name}")
                self._link_local[name] = self._read_link_local(name)
        except BaseException:
            self.lab.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.lab.close()

    def ip(self, host: str, *args: str) -> str:
        ns = self.lab.hosts[host].netns
        return subprocess.run(
            ["ip", "-n", ns, *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout

    def _settled(self, host: str) -> bool:
        out = self.ip(host, "-6", "addr", "show", "dev", "eth0")
        return "fe80::" in out and "tentative" not in out

    def address(self, host: str) -> str:
        return str(self.lab.hosts[host].address.ip)

    def link_local(self, host: str) -> str:
        """The host's own link-local address (read before any VIP was added)."""
        return self._link_local[host]

    def _read_link_local(self, host: str) -> str:
        for line in self.ip(
            host, "-6", "addr", "show", "dev", "eth0", "scope", "link"
        ).splitlines():
            words = line.split()
            if words[:1] == ["inet6"] and words[1].startswith("fe80:"):
                return words[1].split("/")[0]
        raise AssertionError(f"{host} has no link-local address")

    def mac(self, host: str) -> str:
        return self.lab.hosts[host].mac

    def holds(self, host: str, address: str) -> bool:
        family = "-6" if ":" in address else "-4"
        shown = self.ip(host, family, "addr", "show", "dev", "eth0")
        return f"inet{'6' if family == '-6' else ''} {address}/" in shown

    def neighbour(self, host: str, address: str) -> str | None:
        """The MAC `host` has learnt for `address` (from a GARP or NA), or None."""
        family = "-6" if ":" in address else "-4"
        for line in self.ip(host, family, "neigh", "show", "dev", "eth0").splitlines():
            parts = line.split()
            if parts and parts[0] == address and "lladdr" in parts:
                return parts[parts.index("lladdr") + 1]
        return None

    def keepalived(self, host: str, inst: Instance, **conf: object) -> Keepalived:
        return Keepalived(self, host, keepalived_conf(inst, **conf))  # type: ignore[arg-type]

    def ifvip(self, host: str, inst: Instance, *extra: str, priority: int = 100) -> Ifvip:
        argv = [
            "--protocol",
            "vrrp",
            "--vrrp-version",
            str(inst.version),
            "-i",
            "eth0",
            "--vrid",
            str(VRID),
            "--priority",
            str(priority),
            "--advert-int",
            f"{inst.advert_int:g}",
        ]
        if inst.auth_pass is not None:
            argv += ["--auth-pass", inst.auth_pass]
        for vip in inst.vips:
            argv += ["--vip", vip]
        return Ifvip(self, host, [*argv, *extra])

    def run_python(self, host: str, code: str, timeout: float) -> str:
        """Run a Python snippet in a host (with this checkout on the path); its stdout."""
        ns = self.lab.hosts[host].netns
        result = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return result.stdout


def vip_addresses(inst: Instance) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    return [ipaddress.ip_interface(v).ip for v in inst.vips]
