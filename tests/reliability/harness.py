"""Pairs of floating-IP daemons in a namespace lab, for the reliability tests and bench.

A `PairLab` is an `ifvip.lab.Lab` (switch namespace, hosts h1 h2 and more on veths) that
starts one implementation on h1 and h2 — ifvip, the real ucarp 1.5.2 or the real
keepalived 2.2.7 — for VIP 198.51.100.100/24, and observes it from outside: who holds the
VIP (read from each namespace's kernel), the daemon's own log of its transitions, and for
ifvip its counters (SIGUSR1 dump). Faults come from `hub.py`, a userspace hub that replaces
the bridge when netem is missing from the kernel (loss, delay/jitter, partitions).

Every process and namespace is ended on close(), also after errors; processes by PID.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final

from pyroute2 import IPRoute

from ifvip.lab import Lab
from tests.programs import IFVIP, KEEPALIVED, UCARP

REPO: Final = Path(__file__).resolve().parents[2]
VIP: Final = "198.51.100.100"
VHID: Final = 42
PASSWORD: Final = "secret"
IMPLEMENTATIONS: Final = ("ifvip", "ifvip-vrrp", "ucarp", "keepalived")
# ifvip with permanent VIPs (--vip-lifetime 0): the election alone, without the dead man's
# switch; the bench runs it beside `ifvip` when asked (--impl).
VARIANTS: Final = ("ifvip-permanent",)

# A transition as each daemon logs it.
TRANSITION_LOG: Final = {
    "ifvip": re.compile(r"Entering (MASTER|BACKUP) STATE"),
    "ifvip-vrrp": re.compile(r"\] (?:INIT|BACKUP|MASTER|FAULT) -> (MASTER|BACKUP|FAULT|INIT) \("),
    "ifvip-permanent": re.compile(r"Entering (MASTER|BACKUP) STATE"),
    "ucarp": re.compile(r"Switching to state: (MASTER|BACKUP)"),
    "keepalived": re.compile(r"Entering (MASTER|BACKUP) STATE"),
}

KEEPALIVED_CONF: Final = """\
vrrp_instance VI_{vrid} {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority {priority}
    advert_int 1
    version 3
    virtual_ipaddress {{
        {vip}/24
    }}
}}
"""


def available(implementation: str) -> bool:
    """Whether the implementation is installed (the ifvip variants: `ifvip run` has the option)."""
    needs = {"ifvip-vrrp": "--protocol", "ifvip-permanent": "--vip-lifetime"}
    if implementation in needs:
        if not Path(IFVIP).exists():
            return False
        usage = subprocess.run(
            [IFVIP, "run", "--help"], capture_output=True, text=True, check=False, timeout=30
        )
        return needs[implementation] in usage.stdout
    binary = {"ifvip": IFVIP, "ucarp": UCARP, "keepalived": KEEPALIVED}[implementation]
    return Path(binary).exists()


def until(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> float | None:
    """Seconds until `condition()` held, or None if it did not within `timeout`."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            return None
        time.sleep(step)


class Daemon:
    """One implementation's process on one host, with its log file."""

    def __init__(
        self, lab: PairLab, host: str, implementation: str, argv: list[str], log: Path
    ) -> None:
        self.lab = lab
        self.host = host
        self.implementation = implementation
        self.argv = argv
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        if self.implementation == "keepalived":
            # A crashed keepalived leaves its pid files; a restart after a real crash
            # (systemd's RuntimeDirectory) starts without them.
            for name in ("ka.pid", "vrrp.pid"):
                (self.lab.tmp / f"ka-{self.host}" / name).unlink(missing_ok=True)
        with open(self.log, "ab") as out:
            self.proc = self.lab.lab.run(self.host, self.argv, stdout=out, stderr=out)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """Signal the daemon itself (not `ip netns exec`, which execs it anyway)."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def signal_worker(self, sig: int) -> None:
        """Signal the process that speaks the protocol: keepalived's VRRP child, else the daemon.

        A SIGKILLed keepalived parent makes its VRRP child exit cleanly (VIPs removed), and
        a parent respawns a dead child; so a keepalived crash is: parent stopped, child
        killed, parent killed. SIGSTOP/SIGCONT go to the child alone.
        """
        if self.implementation != "keepalived":
            self.signal(sig)
            return
        child = int((self.lab.tmp / f"ka-{self.host}" / "vrrp.pid").read_text().split()[0])
        if sig == signal.SIGKILL:
            self.signal(signal.SIGSTOP)
            os.kill(child, signal.SIGKILL)
            self.signal(signal.SIGKILL)
        else:
            os.kill(child, sig)

    def kill(self) -> None:
        """SIGKILL the protocol process (keepalived's VRRP child), then reap the daemon."""
        if self.alive():
            self.signal_worker(signal.SIGKILL)
            assert self.proc is not None
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.alive():
            self.lab.lab.stop(self.proc)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def transitions(self) -> list[str]:
        return TRANSITION_LOG[self.implementation].findall(self.text())

    def counters(self, timeout: float = 5.0) -> dict[str, int]:
        """ifvip's counters, from the SIGUSR1 dump it logs (`counters {...}`)."""
        before = self.text().count("counters {")
        self.signal(signal.SIGUSR1)
        if until(lambda: self.text().count("counters {") > before, timeout) is None:
            raise AssertionError(f"{self.host}: no counters dump within {timeout} s")
        line = [ln for ln in self.text().splitlines() if "counters {" in ln][-1]
        found: dict[str, int] = ast.literal_eval(line[line.index("counters {") + 9 :].strip())
        return found


class PairLab:
    """A lab with h1 and h2 (and `extra` hosts) running one implementation for one VIP."""

    def __init__(self, extra: Sequence[str] = (), *, prefix: str = "ifvip-rel") -> None:
        self.lab = Lab(["h1", "h2", *extra], prefix=prefix)
        self.tmp = Path(tempfile.mkdtemp(prefix="ifvip-rel-"))
        self.daemons: dict[str, Daemon] = {}
        self.hub: subprocess.Popen[str] | None = None
        self._ipr: dict[str, IPRoute] = {}

    def __enter__(self) -> PairLab:
        self.lab.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for daemon in self.daemons.values():
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                daemon.stop()
        if self.hub is not None:
            with contextlib.suppress(OSError, BrokenPipeError, ValueError):
                self.hub.stdin.close()  # type: ignore[union-attr]
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.hub.wait(5)
            if self.hub.poll() is None:
                self.hub.kill()
                self.hub.wait(5)
        for ipr in self._ipr.values():
            with contextlib.suppress(OSError):
                ipr.close()
        self.lab.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------ observation

    def address(self, host: str) -> str:
        return str(self.lab.hosts[host].address.ip)

    def accept_own_source(self) -> None:
        """Let h1 and h2 receive packets that spoof their own source address.

        Linux drops such a packet (a martian) before any socket sees it; accept_local lets
        it through, so the daemon's own-source check is what refuses it (the harder case,
        and the one ucarp's pcap socket is in)."""
        for host in ("h1", "h2"):
            subprocess.run(
                ["ip", "netns", "exec", self.lab.hosts[host].netns, "sysctl", "-qw",
                 "net.ipv4.conf.eth0.accept_local=1"],
                check=True, timeout=10,
            )  # fmt: skip

    def _route(self, host: str) -> IPRoute:
        if host not in self._ipr:
            self._ipr[host] = IPRoute(netns=self.lab.hosts[host].netns)
        return self._ipr[host]

    def vip_info(self, host: str) -> dict[str, int] | None:
        """The VIP on `host`: {'valid': s, 'preferred': s} (0xffffffff: forever), or None."""
        for entry in self._route(host).get_addr(family=2):
            if entry.get_attr("IFA_ADDRESS") == VIP:
                cache = entry.get_attr("IFA_CACHEINFO")
                if cache is None:
                    return {"valid": 0xFFFFFFFF, "preferred": 0xFFFFFFFF}
                return {"valid": cache["ifa_valid"], "preferred": cache["ifa_preferred"]}
        return None

    def holds(self, host: str) -> bool:
        return self.vip_info(host) is not None

    def holders(self) -> tuple[str, ...]:
        return tuple(h for h in ("h1", "h2") if self.holds(h))

    # ------------------------------------------------------------ daemons

    def start(self, host: str, implementation: str, *, preferred: bool) -> Daemon:
        """Start `implementation` on `host`; the preferred node is the one that should win."""
        log = self.tmp / f"{implementation}-{host}.log"
        src = self.address(host)
        if implementation in ("ifvip", "ifvip-permanent"):
            argv = [IFVIP, "run", "-i", "eth0", "-s", src, "-v", str(VHID), "-p", PASSWORD]
            argv += ["-a", VIP, "--masklen", "24", "-z"]
            argv += ["--state-dir", str(self.tmp / f"state-{host}")]
            argv += ["-k", "0", "-P"] if preferred else ["-k", "50"]
            if implementation == "ifvip-permanent":
                argv += ["--vip-lifetime", "0"]
        elif implementation == "ifvip-vrrp":
            argv = [IFVIP, "run", "--protocol", "vrrp", "--vrrp-version", "3", "-i", "eth0"]
            argv += ["--vrid", str(VHID), "--vip", f"{VIP}/24"]
            argv += ["--priority", "150" if preferred else "100"]
            argv += ["--state-dir", str(self.tmp / f"state-{host}")]
        elif implementation == "ucarp":
            up, down = self.tmp / "vip-up", self.tmp / "vip-down"
            up.write_text(f'#!/bin/sh\nexec ip addr add {VIP}/24 dev "$1"\n')
            down.write_text(f'#!/bin/sh\nip addr del {VIP}/24 dev "$1" 2>/dev/null || true\n')
            up.chmod(0o755)
            down.chmod(0o755)
            argv = [UCARP, "-i", "eth0", "-s", src, "-v", str(VHID), "-p", PASSWORD]
            argv += ["-a", VIP, "-u", str(up), "-d", str(down), "-z"]
            argv += ["-k", "0", "-P"] if preferred else ["-k", "50"]
        else:
            run = self.tmp / f"ka-{host}"
            run.mkdir(exist_ok=True)
            conf = run / "keepalived.conf"
            conf.write_text(
                KEEPALIVED_CONF.format(vrid=VHID, priority=150 if preferred else 100, vip=VIP)
            )
            argv = ["env", f"TMPDIR={run}", KEEPALIVED, "-P", "-n", "-l", "-D", "-G"]
            argv += ["-f", str(conf), "-p", str(run / "ka.pid"), "-r", str(run / "vrrp.pid")]
        daemon = Daemon(self, host, implementation, argv, log)
        self.daemons[host] = daemon
        return daemon

    def start_pair(self, implementation: str, timeout: float = 15.0) -> None:
        """h1 preferred, h2 backup; returns once h1 alone holds the VIP."""
        self.start("h1", implementation, preferred=True)
        self.start("h2", implementation, preferred=False)
        if until(lambda: self.holders() == ("h1",), timeout) is None:
            raise AssertionError(f"{implementation}: h1 did not become the sole holder")

    # ------------------------------------------------------------ a client

    def ping(self, host: str = "client", interval: float = 0.02) -> Pinger:
        """Ping the VIP from `host` every `interval` s, recording when replies arrive."""
        return Pinger(self, host, interval)

    # ------------------------------------------------------------ faults

    def remake_eth0(self, host: str) -> None:
        """Delete `host`'s eth0 (its veth pair) and make it again as the lab first made it:
        same name, MAC and address (a NIC reset, a VM hot-plug, a network reconnect)."""
        number = list(self.lab.hosts).index(host) + 1
        spec = self.lab.hosts[host]
        with IPRoute(netns=self.lab.switch) as sw:
            sw.link("del", ifname=f"p{number}")
            sw.link(
                "add",
                ifname=f"p{number}",
                kind="veth",
                peer={"ifname": "eth0", "net_ns_fd": spec.netns, "address": spec.mac},
            )
            (port,) = sw.link_lookup(ifname=f"p{number}")
            (bridge,) = sw.link_lookup(ifname="br0")
            sw.link("set", index=port, master=bridge, state="up")
        with IPRoute(netns=spec.netns) as ipr:
            (index,) = ipr.link_lookup(ifname="eth0")
            prefix = spec.address.network.prefixlen
            ipr.addr("add", index=index, address=str(spec.address.ip), prefixlen=prefix)
            ipr.link("set", index=index, state="up")

    def flap(self, host: str, flaps: int, period: float, after: float = 4.0) -> float:
        """Flap `host`'s carrier `flaps` times (`period` s down, `period` s up) from its
        bridge port; return the seconds in which nobody held the VIP, sampled every 10 ms
        over the flapping and `after` s more."""
        port = f"p{list(self.lab.hosts).index(host) + 1}"
        nobody = 0.0
        with IPRoute(netns=self.lab.switch) as sw:
            (index,) = sw.link_lookup(ifname=port)
            end = time.monotonic() + flaps * 2 * period + after
            done, last, down, switch_at = 0, time.monotonic(), False, time.monotonic()
            while (now := time.monotonic()) < end:
                if done < flaps and now >= switch_at:
                    down = not down
                    sw.link("set", index=index, state="down" if down else "up")
                    done += 0 if down else 1
                    switch_at = now + period
                if not self.holders():
                    nobody += now - last
                last = now
                time.sleep(0.01)
            sw.link("set", index=index, state="up")
        return nobody

    def use_hub(self) -> None:
        """Replace the bridge by the userspace hub (loss, jitter, partitions on command)."""
        ports = ",".join(f"p{i}" for i in range(1, len(self.lab.hosts) + 1))
        self.hub = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.lab.switch,
                sys.executable,
                "-m",
                "tests.reliability.hub",
                "--ports",
                ports,
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert self.hub.stdout is not None
        line = self.hub.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError(f"hub did not start: {line!r}")

    def hub_command(self, command: str) -> str:
        """Send one control line to the hub and return its answer."""
        assert self.hub is not None and self.hub.stdin and self.hub.stdout
        self.hub.stdin.write(command + "\n")
        self.hub.stdin.flush()
        return self.hub.stdout.readline().strip()

    def port(self, host: str) -> int:
        return list(self.lab.hosts).index(host)


class Pinger:
    """`ping -D` of the VIP from a host of the lab: the reply times, as the client saw them."""

    REPLY: Final = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from")

    def __init__(self, lab: PairLab, host: str, interval: float) -> None:
        self.log = lab.tmp / f"ping-{host}.log"
        self.out = open(self.log, "wb")  # noqa: SIM115 - closed by stop()
        self.proc = lab.lab.run(
            host,
            ["ping", "-n", "-D", "-i", f"{interval:.3f}", "-W", "1", VIP],
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )

    def replies(self) -> list[float]:
        """Wall-clock times (time.time()) of the replies so far."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            match = self.REPLY.match(line)
            if match:
                found.append(float(match.group(1)))
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.out.close()
