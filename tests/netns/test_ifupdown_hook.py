"""Debian's real ifupdown with ifvip's if-up.d/if-down.d hook (deploy/debian/ifvip-ifupdown):
`ifup eth0` starts the groups of eth0's stanzas, `ifup eth1` adds eth1's to the same process
(one daemon, SIGHUP), `ifdown eth0` releases eth0's and keeps eth1's, and the last `ifdown`
ends the process. A stanza without ucarp-*/vrrp-* options starts nothing.

The namespace is a Twins one: /etc/netns/NS/network (seen as /etc/network by `ip netns exec`)
holds the interfaces file and the hook, /etc/netns/NS/default its settings; ifupdown's state
and ifvip's are in the test's directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.netns.kernelstate import IFVIP, Runner, Twins
from tests.programs import AS_ROOT

HOOK = Path(__file__).resolve().parents[2] / "deploy" / "debian" / "ifvip-ifupdown"
CARP_VIP = "198.51.100.100"
VRRP_VIP = "203.0.113.51"

pytestmark = [
    pytest.mark.root,
    pytest.mark.interop,
    AS_ROOT,
    pytest.mark.skipif(shutil.which("ifup") is None, reason="Debian's ifupdown is not installed"),
]

INTERFACES = f"""\
iface eth0 inet static
  address 198.51.100.1/24
  ucarp-vid 42
  ucarp-vip {CARP_VIP}
  ucarp-password secret
  ifvip-sync-group dmz

iface eth0:ucarp inet static
  address {CARP_VIP}/24

iface eth1 inet static
  address 203.0.113.1/24
  vrrp-id 51
  vrrp-address {VRRP_VIP}/24
  ifvip-sync-group dmz

iface eth1:2 inet static
  address 203.0.113.2/24
"""


def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def _holds(ns: str, dev: str, address: str) -> bool:
    out = subprocess.run(
        ["ip", "-n", ns, "-j", "addr", "show", "dev", dev],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    return any(a.get("local") == address for e in json.loads(out) for a in e["addr_info"])


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() != b""
    except FileNotFoundError:
        return False


def _daemons(up_list: Path) -> list[int]:
    """Every process whose command line names this test's --up-list (ours only)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            words = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(up_list).encode() in words:
            found.append(int(proc.name))
    return found


def test_real_ifup_starts_one_daemon_and_the_last_ifdown_ends_it(tmp_path: Path) -> None:
    with Twins(1, tag="hook") as twins:
        (ns,) = twins.names
        etc = Path("/etc/netns") / ns
        for hooks in ("if-up.d", "if-down.d"):
            shutil.copy(HOOK, etc / "network" / hooks / "ifvip")
        interfaces = etc / "network" / "interfaces"
        interfaces.write_text(INTERFACES)
        interfaces.chmod(0o600)
        state, ifstate = tmp_path / "hook", tmp_path / "ifstate"
        (etc / "default").mkdir()
        # ifupdown gives its hooks an environment of their own: the session's reading
        # cache (not the machine's /run/ifvip) reaches the hook's ifvip through its settings.
        cache = os.environ.get("IFVIP_CACHE_DIR")
        (etc / "default" / "ifvip-ifupdown").write_text(
            f"IFVIP={IFVIP[0]}\nINTERFACES={interfaces}\nSTATE_DIR={state}\n"
            f'RUN_ARGS="--ifstate-dir {ifstate}"\nWAIT=20\n'
            + (f"export IFVIP_CACHE_DIR={cache}\n" if cache else "")
        )
        runner = Runner(ns, interfaces, ifstate)
        up_list = state / "up"
        try:
            # A stanza without group options: the hook does nothing.
            done = runner.real("ifup", "eth1:2")
            assert done.returncode == 0, done.stderr
            assert not state.exists()

            done = runner.real("ifup", "eth0")
            assert done.returncode == 0, done.stderr
            pid = int((state / "pid").read_text())
            assert _alive(pid) and up_list.read_text() == "eth0\n"
            # The hook's lock did not go to the daemon (a later ifup/ifdown would wait for it).
            held = [str(fd.readlink()) for fd in Path(f"/proc/{pid}/fd").iterdir()]
            assert str(state / "lock") not in held, held
            until(lambda: _holds(ns, "eth0", CARP_VIP), 15, "the CARP VIP (ifup eth0:ucarp)")

            done = runner.real("ifup", "eth1")
            assert done.returncode == 0, done.stderr
            assert int((state / "pid").read_text()) == pid  # the same daemon, reloaded
            assert _daemons(up_list) == [pid]
            until(lambda: _holds(ns, "eth1", VRRP_VIP), 15, "the VRRP VIP")
            status = runner.run([*IFVIP, "status", "--json", "--state-dir", str(state / "run")])
            groups = json.loads(status.stdout)["groups"]
            assert [(g["protocol"], g["name"], g["interface"], g["state"]) for g in groups] == [
                ("carp", "vhid 42", "eth0", "MASTER"),
                ("vrrp", "vrid 51", "eth1", "MASTER"),
            ]

            # ifdown eth0: its group is released, eth1's keeps running in the same process.
            done = runner.real("ifdown", "eth0")
            assert done.returncode == 0, done.stderr
            # The hook returned once the group had left MASTER, with its bow-out advert sent
            # while eth0 still had its address (ifdown removes it after the hooks).
            status = runner.run([*IFVIP, "status", "--json", "--state-dir", str(state / "run")])
            assert [
                g["name"]
                for g in json.loads(status.stdout or "{}").get("groups", [])
                if g["interface"] == "eth0" and g["state"] == "MASTER"
            ] == []
            until(lambda: not _holds(ns, "eth0", CARP_VIP), 15, "the CARP VIP released")
            assert up_list.read_text() == "eth1\n"
            assert _alive(pid) and _holds(ns, "eth1", VRRP_VIP)

            def only_vrrp() -> bool:
                out = runner.run([*IFVIP, "status", "--json", "--state-dir", str(state / "run")])
                return [g["name"] for g in json.loads(out.stdout or "{}").get("groups", [])] == [
                    "vrid 51"
                ]

            until(only_vrrp, 15, "status without the CARP group")
            assert "eth0:ucarp" not in (ifstate / "ifstate").read_text()

            # The last ifdown: everything released, no ifvip left.
            done = runner.real("ifdown", "eth1")
            assert done.returncode == 0, done.stderr
            until(lambda: not _alive(pid), 15, "the daemon ends")
            assert not _holds(ns, "eth1", VRRP_VIP)
            assert _daemons(up_list) == []
            assert up_list.read_text() == ""
            assert not (state / "pid").exists() or not _alive(int((state / "pid").read_text()))
            log = (state / "ifvip.log").read_text()
            assert "secret" not in log
            assert "unreachable" not in log, log  # every bow-out advert left
        finally:
            for leftover in _daemons(up_list):
                subprocess.run(["kill", "-KILL", str(leftover)], check=False, timeout=5)
