"""One `ifvip run --interfaces FILE` process runs every group the file declares: a CARP group
(ucarp-* options, MASTER = ifup eth0:ucarp) and two VRRP groups (vrrp-* options, IPv4 and
IPv6), beside a real ucarp 1.5.2 for CARP and a second ifvip (its own file, VRRP only) on
the peer host. Host a is preferred for all three: each VIP comes to a, `ifvip status` lists
the three groups with the kernel's truth; a SIGHUP that lowers only the IPv6 group's priority
moves only that VIP (the reload diffs group by group across protocols); SIGTERM moves the
other two to the peers.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.carp_lab import VIP as CARP_VIP
from tests.interop.carp_lab import ucarp_node
from tests.interop.keepalived_lab import KeepalivedLab, until
from tests.programs import IFVIP, INTEROP, NEEDS_UCARP

pytestmark = [*INTEROP, NEEDS_UCARP]

VIP4 = "198.51.100.51"
VIP6 = "2001:db8::52"

HOST_A = f"""\
iface eth0 inet static
  address 198.51.100.1/24
  ucarp-vid 42
  ucarp-vip {CARP_VIP}
  ucarp-password secret
  ucarp-master yes
  vrrp-id 51
  vrrp-address {VIP4}/24
  vrrp-priority 200

iface eth0:ucarp inet static
  address {CARP_VIP}/24

iface eth0 inet6 manual
  vrrp-id 52
  vrrp-address fe80::5e:52/64 {VIP6}/64
  vrrp-priority {{priority6}}
"""

HOST_B = f"""\
iface eth0 inet static
  address 198.51.100.2/24
  vrrp-id 51
  vrrp-address {VIP4}/24

iface eth0 inet6 manual
  vrrp-id 52
  vrrp-address fe80::5e:52/64 {VIP6}/64
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[KeepalivedLab]:
    with KeepalivedLab(["a", "b"], tmp_path) as made:
        # ifup eth0:ucarp on MASTER runs /etc/network/if-*.d: the lab's own, empty ones.
        etc = Path("/etc/netns") / made.lab.hosts["a"].netns
        for hooks in ("if-pre-up.d", "if-up.d", "if-down.d", "if-post-down.d"):
            (etc / "network" / hooks).mkdir(parents=True, exist_ok=True)
        try:
            yield made
        finally:
            shutil.rmtree(etc, ignore_errors=True)


def _status(
    lab: KeepalivedLab, host: str, state: Path
) -> list[tuple[str, str, str, str, tuple[str, ...]]]:
    ns = lab.lab.hosts[host].netns
    out = subprocess.run(
        ["ip", "netns", "exec", ns, IFVIP, "status", "--json", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout
    groups: list[dict[str, Any]] = json.loads(out or "{}").get("groups", [])
    return [
        (g["protocol"], g["name"], g["interface"], g["state"], (*g["vips"], *g["managed"]))
        for g in groups
    ]


def test_one_process_runs_a_carp_and_two_vrrp_groups_from_the_file(
    lab: KeepalivedLab, tmp_path: Path
) -> None:
    file_a, file_b = tmp_path / "a.interfaces", tmp_path / "b.interfaces"
    file_a.write_text(HOST_A.format(priority6=200))
    file_b.write_text(HOST_B)
    state_a, state_b = tmp_path / "state-a", tmp_path / "state-b"
    # The peers first: ucarp (advskew 100) and an ifvip running b's file; they take all.
    ucarp = ucarp_node(lab.lab, "b", tmp_path, "-k", "100")
    with open(tmp_path / "b-ifvip.log", "ab") as log:
        peer = lab.lab.run(
            "b",
            [IFVIP, "run", "--interfaces", str(file_b), "--state-dir", str(state_b)],
            stdout=log,
            stderr=log,
        )
    for vip in (CARP_VIP, VIP4, VIP6):
        until(lambda vip=vip: lab.holds("b", vip), 15, f"b holds {vip}")  # type: ignore[misc]

    log_a = tmp_path / "a.log"
    argv = [IFVIP, "run", "--interfaces", str(file_a), "--state-dir", str(state_a)]
    argv += ["--ifstate-dir", str(tmp_path / "ifstate-a")]
    with open(log_a, "ab") as log:
        ours = lab.lab.run("a", argv, stdout=log, stderr=log)
    # a is preferred for every group: each VIP comes to a and leaves b.
    for vip in (CARP_VIP, VIP4, VIP6):
        until(lambda vip=vip: lab.holds("a", vip), 15, f"a holds {vip}")  # type: ignore[misc]
        until(lambda vip=vip: not lab.holds("b", vip), 15, f"b releases {vip}")  # type: ignore[misc]
    assert _status(lab, "a", state_a) == [
        ("carp", "vhid 42", "eth0", "MASTER", ("eth0:ucarp",)),  # MASTER: ifup eth0:ucarp
        ("vrrp", "vrid 51", "eth0", "MASTER", (f"{VIP4}/24",)),
        ("vrrp", "vrid 52", "eth0", "MASTER", ("fe80::5e:52/64", f"{VIP6}/64")),
    ]
    assert [(g[1], g[3]) for g in _status(lab, "b", state_b)] == [
        ("vrid 51", "BACKUP"),
        ("vrid 52", "BACKUP"),
    ]

    # SIGHUP with vrid 52's priority below b's: only that group restarts and moves.
    file_a.write_text(HOST_A.format(priority6=50))
    ours.send_signal(signal.SIGHUP)
    until(lambda: lab.holds("b", VIP6), 15, "b takes the IPv6 VIP")
    assert "1 changed (vrid 52 on eth0)" in log_a.read_text()
    assert "2 unchanged (vhid 42 on eth0, vrid 51 on eth0)" in log_a.read_text()
    assert lab.holds("a", CARP_VIP) and lab.holds("a", VIP4) and not lab.holds("a", VIP6)
    assert [(g[1], g[3]) for g in _status(lab, "a", state_a)] == [
        ("vhid 42", "MASTER"),
        ("vrid 51", "MASTER"),
        ("vrid 52", "BACKUP"),
    ]

    # a stops: it releases and bows out; the peers take the other two.
    lab.lab.stop(ours, signal.SIGTERM)
    assert ours.returncode == 0
    for vip in (CARP_VIP, VIP4, VIP6):
        assert not lab.holds("a", vip)
        until(lambda vip=vip: lab.holds("b", vip), 15, f"b takes {vip}")  # type: ignore[misc]
    assert [(g[1], g[3]) for g in _status(lab, "b", state_b)] == [
        ("vrid 51", "MASTER"),
        ("vrid 52", "MASTER"),
    ]
    assert "secret" not in log_a.read_text()
    lab.lab.stop(peer)
    lab.lab.stop(ucarp)
