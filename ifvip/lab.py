"""A network-namespace lab: a switch namespace with a bridge and hosts joined to it by veth.

Used by `ifvip demo`, tests and benchmarks. Every namespace it makes carries the lab's
unique prefix and is deleted on close(), also after errors and Ctrl-C; processes started
in the lab are ended by PID. Only documentation addresses are used (198.51.100.0/24,
2001:db8::/32). Built with pyroute2 (no `ip` commands); processes are started in a host
with `ip netns exec`, which also sets up the namespace's /etc/netns view.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

from pyroute2 import IPRoute, netns

SUBNET: Final = ipaddress.IPv4Network("198.51.100.0/24")
BRIDGE: Final = "br0"


@dataclass(frozen=True)
class Host:
    name: str
    netns: str
    address: ipaddress.IPv4Interface
    mac: str


class Lab:
    def __init__(self, hosts: Sequence[str], *, prefix: str = "ifvip-lab") -> None:
        self.prefix = f"{prefix}-{os.getpid()}-{time.monotonic_ns() % 100000}"
        self.switch = f"{self.prefix}-sw"
        self.hosts: dict[str, Host] = {}
        self._names = list(hosts)
        self._created: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _netns(self, name: str) -> str:
        netns.create(name)
        self._created.append(name)
        return name

    def _build(self) -> None:
        self._netns(self.switch)
        with IPRoute(netns=self.switch) as sw:
            sw.link("add", ifname=BRIDGE, kind="bridge")
            bridge = sw.link_lookup(ifname=BRIDGE)[0]
            sw.link("set", index=bridge, state="up")
            for number, name in enumerate(self._names, start=1):
                ns = self._netns(f"{self.prefix}-{name}")
                mac = f"02:00:00:00:01:{number:02x}"
                port = f"p{number}"
                sw.link("add", ifname=port, kind="veth", peer={"ifname": "eth0", "net_ns_fd": ns})
                index = sw.link_lookup(ifname=port)[0]
                sw.link("set", index=index, master=bridge, state="up")
                address = ipaddress.IPv4Interface(f"{SUBNET[number]}/{SUBNET.prefixlen}")
                with IPRoute(netns=ns) as host:
                    eth0 = host.link_lookup(ifname="eth0")[0]
                    host.link("set", index=eth0, address=mac)
                    host.addr("add", index=eth0, address=str(address.ip), prefixlen=24)
                    host.link("set", index=eth0, state="up")
                    host.link("set", index=host.link_lookup(ifname="lo")[0], state="up")
                self.hosts[name] = Host(name, ns, address, mac)

    def add_segment(
        self, ifname: str, subnet: str, *, bridge: str = "br1", mac_byte: int = 2
    ) -> dict[str, ipaddress.IPv4Interface]:
        """A second LAN: one more bridge in the switch namespace and an `ifname` in every
        host on it (a dual-homed pair: eth0 outside, eth1 inside), host N at subnet[N].
        The switch-side port of host N's link is `{bridge}p{N}` (see carrier())."""
        network = ipaddress.IPv4Network(subnet)
        found: dict[str, ipaddress.IPv4Interface] = {}
        with IPRoute(netns=self.switch) as sw:
            sw.link("add", ifname=bridge, kind="bridge")
            index = sw.link_lookup(ifname=bridge)[0]
            sw.link("set", index=index, state="up")
            for number, name in enumerate(self._names, start=1):
                ns = self.hosts[name].netns
                port = f"{bridge}p{number}"
                sw.link("add", ifname=port, kind="veth", peer={"ifname": ifname, "net_ns_fd": ns})
                sw.link("set", index=sw.link_lookup(ifname=port)[0], master=index, state="up")
                address = ipaddress.IPv4Interface(f"{network[number]}/{network.prefixlen}")
                with IPRoute(netns=ns) as host:
                    link = host.link_lookup(ifname=ifname)[0]
                    host.link("set", index=link, address=f"02:00:00:00:{mac_byte:02x}:{number:02x}")
                    host.addr("add", index=link, address=str(address.ip), prefixlen=24)
                    host.link("set", index=link, state="up")
                found[name] = address
        return found

    def carrier(self, host: str, up: bool, *, bridge: str = BRIDGE) -> None:
        """Cut (or restore) the carrier of `host`'s link on `bridge`: its switch-side veth
        goes down, so the host's end stays up but loses its carrier, as when a cable is
        pulled."""
        number = self._names.index(host) + 1
        port = f"p{number}" if bridge == BRIDGE else f"{bridge}p{number}"
        with IPRoute(netns=self.switch) as sw:
            sw.link("set", index=sw.link_lookup(ifname=port)[0], state="up" if up else "down")

    def run(self, host: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start a process inside a host; the lab ends it on close()."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.hosts[host].netns, *argv], **kwargs)
        self._procs.append(proc)
        return proc

    def addresses(self, host: str) -> list[str]:
        with IPRoute(netns=self.hosts[host].netns) as ipr:
            return [a.get("address") for a in ipr.get_addr(family=2)]

    def holds(self, host: str, address: str) -> bool:
        return address in self.addresses(host)

    def neighbour_mac(self, host: str, address: str) -> str | None:
        with IPRoute(netns=self.hosts[host].netns) as ipr:
            for entry in ipr.get_neighbours(family=2):
                if entry.get("dst") == address:
                    mac: str | None = entry.get("lladdr")
                    return mac
        return None

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def close(self) -> None:
        for proc in self._procs:
            with contextlib.suppress(OSError):
                self.stop(proc)
        self._procs.clear()
        for name in reversed(self._created):
            with contextlib.suppress(OSError):
                netns.remove(name)
        self._created.clear()


def stale(prefix: str = "ifvip-lab") -> list[str]:
    """Namespaces left by a crashed lab (only ours, by prefix)."""
    return [name for name in netns.listnetns() if name.startswith(prefix + "-")]
