"""Managed stanzas: MASTER means `ifup` of the production DMZ stanzas, BACKUP exactly undoes it.

`ifvip run --interfaces production-dmz.interfaces --manage eth1` in a lab host whose eth1 is a
macvlan; the host's /etc/network is hidden behind /etc/netns/NS/network (empty hook dirs) and
ifupdown's state goes to a private --ifstate-dir. The kernel state (addresses, routes, the
accept_dad sysctl, link state) is read before, on MASTER and after BACKUP (SIGUSR2 demotes).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ifvip.lab import Lab
from tests.interop.carp_lab import IFVIP, VIP, until
from tests.programs import AS_ROOT

EXAMPLE = Path(__file__).resolve().parents[2].parent / "shared/examples/production-dmz.interfaces"
if not EXAMPLE.exists():
    EXAMPLE = Path("/work/shared/examples/production-dmz.interfaces")

pytestmark = [
    pytest.mark.root,
    AS_ROOT,
    pytest.mark.skipif(not EXAMPLE.exists(), reason="the shared production example is missing"),
]


def _ip(ns: str, *args: str) -> Any:
    out = subprocess.run(
        ["ip", "-n", ns, "-j", *args], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    return json.loads(out or "[]")


def kernel_state(ns: str) -> dict[str, Any]:
    link = _ip(ns, "link", "show", "dev", "eth1")[0]
    addresses = sorted(
        f"{a['local']}/{a['prefixlen']}"
        for entry in _ip(ns, "addr", "show", "dev", "eth1")
        for a in entry.get("addr_info", [])
    )
    routes = sorted(
        json.dumps({k: r.get(k) for k in ("dst", "gateway", "dev", "metric", "protocol")})
        for family in ("-4", "-6")
        for r in _ip(ns, family, "route", "show", "table", "main")
        if r.get("dev") == "eth1"
    )
    dad = subprocess.run(
        ["ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv6/conf/eth1/accept_dad"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return {"up": "UP" in link["flags"], "addresses": addresses, "routes": routes, "dad": dad}


@pytest.fixture
def host() -> Iterator[tuple[Lab, str, Path]]:
    with (
        tempfile.TemporaryDirectory(prefix="ifvip-managed-") as tmp,
        Lab(["n1", "client"], prefix="ifvip-mg") as lab,
    ):
        ns = lab.hosts["n1"].netns
        etc = Path("/etc/netns") / ns / "network"
        for hook in ("if-pre-up.d", "if-up.d", "if-down.d", "if-post-down.d"):
            (etc / hook).mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(
                ["ip", "-n", ns, "link", "add", "eth1", "link", "eth0", "type", "macvlan"],
                check=True,
            )
            yield lab, ns, Path(tmp)
        finally:
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)


def test_production_dmz_is_brought_up_on_master_and_exactly_undone_on_backup(
    host: tuple[Lab, str, Path],
) -> None:
    lab, ns, tmp = host
    before = kernel_state(ns)
    log_path = tmp / "n1.log"
    argv = [IFVIP, "run", "-i", "eth0", "-s", "198.51.100.1", "-v", "42", "-p", "secret"]
    argv += ["-a", VIP, "--interfaces", str(EXAMPLE), "--manage", "eth1"]
    argv += ["--state-dir", str(tmp / "st"), "--ifstate-dir", str(tmp / "ifstate")]
    with open(log_path, "ab") as log:
        proc = lab.run("n1", argv, stdout=log, stderr=log)
    until(lambda: "Entering MASTER STATE" in log_path.read_text(), 10)
    until(lambda: "203.0.113.135/27" in kernel_state(ns)["addresses"], 5, step=0.1)
    master = kernel_state(ns)
    assert master["up"] and master["dad"] == "0"
    for address in ("203.0.113.134/27", "203.0.113.135/27", "2001:db8:250::80:6/64"):
        assert address in master["addresses"], master
    until(lambda: "2001:db8:250::80:7/64" in kernel_state(ns)["addresses"], 5, step=0.1)
    assert any('"gateway": "203.0.113.129"' in r for r in master["routes"]), master
    assert (tmp / "ifstate" / "ifstate").read_text() == "eth1=eth1\n"
    # SIGUSR2 demotes: BACKUP means ifdown, which must leave the kernel as it found it.
    proc.send_signal(signal.SIGUSR2)
    until(lambda: "Entering BACKUP STATE" in log_path.read_text(), 5)
    until(lambda: kernel_state(ns) == before, 10, step=0.1)
    assert (tmp / "ifstate" / "ifstate").read_text() == ""
    # Promoted again it comes back after the master-down time; SIGTERM undoes it at exit.
    proc.send_signal(signal.SIGUSR2)
    until(lambda: "203.0.113.134/27" in kernel_state(ns)["addresses"], 8, step=0.1)
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    assert kernel_state(ns) == before
    assert "secret" not in log_path.read_text()


def test_a_ucarp_stanza_group_ifups_iface_ucarp_on_master_like_debian(
    host: tuple[Lab, str, Path],
) -> None:
    """Debian's ucarp package: `ucarp-*` options on eth0, the VIP in `iface eth0:ucarp`."""
    lab, ns, tmp = host
    interfaces = tmp / "interfaces"
    interfaces.write_text(
        f"""auto eth0
iface eth0 inet static
  address 198.51.100.1/24
  ucarp-vid 42
  ucarp-vip {VIP}
  ucarp-password secret

iface eth0:ucarp inet static
  address {VIP}
  netmask 255.255.255.0
"""
    )
    log_path = tmp / "n1.log"
    argv = [IFVIP, "run", "--interfaces", str(interfaces), "--state-dir", str(tmp / "st")]
    argv += ["--ifstate-dir", str(tmp / "ifstate")]
    with open(log_path, "ab") as log:
        proc = lab.run("n1", argv, stdout=log, stderr=log)
    until(lambda: "(vhid 42) Entering MASTER STATE" in log_path.read_text(), 10)
    until(lambda: lab.holds("n1", VIP), 5, step=0.05)
    labels = [
        a.get("label")
        for entry in _ip(ns, "addr", "show", "dev", "eth0")
        for a in entry.get("addr_info", [])
        if a.get("local") == VIP
    ]
    assert labels == ["eth0:ucarp"]
    assert (tmp / "ifstate" / "ifstate").read_text() == "eth0:ucarp=eth0:ucarp\n"
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    assert not lab.holds("n1", VIP)
    assert "UP" in _ip(ns, "link", "show", "dev", "eth0")[0]["flags"]  # eth0 itself stays up
    assert (tmp / "ifstate" / "ifstate").read_text() == ""
