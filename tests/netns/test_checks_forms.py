"""Image forms in namespaces: policy routing on the kernel, and translated forms running a group.

The forms run as `translate()` then ifvip's own `main()` in a child inside a namespace
(the lab), the way the CLI entry point will call it; every path the daemon writes is under
a temporary state directory.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ifvip.daemon.policy import PolicyRole, parse_policy_options, policy_plan
from ifvip.daemon.settings import Vip
from ifvip.ifupdown.executor import NetlinkExecutor
from ifvip.ifupdown.netlink import Kernel
from ifvip.lab import Lab
from tests.programs import AS_ROOT

pytestmark = [
    pytest.mark.root,
    AS_ROOT,
]

VIP = "198.51.100.100"
ENTRY = (
    "import os, sys\n"
    "from ifvip.cli import main\n"
    "from ifvip.daemon.compat import translate\n"
    "main(translate(sys.argv[1:], os.environ))\n"
)


def _ip(*args: str) -> str:
    return subprocess.run(
        ["ip", *args], check=True, timeout=10, capture_output=True, text=True
    ).stdout


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"ifvip-pol-{uuid.uuid4().hex[:8]}"
    try:
        _ip("netns", "add", name)
        _ip("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
        for link in ("eth0", "peer0", "lo"):
            _ip("-n", name, "link", "set", link, "up")
        _ip("-n", name, "addr", "add", "203.0.113.10/24", "dev", "eth0")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


def test_policy_routing_on_master_and_removed_on_backup(namespace: str) -> None:
    vip = Vip.parse("203.0.113.10/24")
    policy = parse_policy_options(
        rtable="2", network_length="24", gateway="203.0.113.1", rule_priority="100", vip=vip
    )
    assert policy is not None
    up, down = policy_plan(policy, vip, "eth0")

    async def transitions() -> None:
        async with Kernel(namespace) as kernel:
            role = PolicyRole("(vhid 7)", NetlinkExecutor(kernel), up, down)
            await role.master()
            await role.master()  # idempotent: a second MASTER changes nothing
            rules = _ip("-n", namespace, "-4", "rule", "show")
            assert "100:\tfrom 203.0.113.10 lookup 2" in rules
            table = _ip("-n", namespace, "-4", "route", "show", "table", "2")
            assert "default via 203.0.113.1 dev eth0" in table
            assert "203.0.113.0/24 dev eth0 scope link src 203.0.113.10" in table
            assert "203.0.113.0/24" not in _ip("-n", namespace, "-4", "route", "show")
            await role.backup(False)
            assert "lookup 2" not in _ip("-n", namespace, "-4", "rule", "show")
            assert _ip("-n", namespace, "-4", "route", "show", "table", "2") == ""
            await role.recover()  # nothing left: no error

    asyncio.run(transitions())


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _run_form(lab: Lab, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return lab.run(
            "a",
            [sys.executable, "-c", ENTRY, *argv],
            env={"PATH": os.environ["PATH"], **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)


def test_titpetric_positional_form_runs_a_group(tmp_path: Path) -> None:
    with Lab(["a"], prefix="ifvip-form") as lab:
        env = {"DEV": "eth0", "IPDEV": "eth0", "OPTS": f"--state-dir {tmp_path}/state"}
        proc = _run_form(
            lab, [VIP, "198.51.100.255", "s3cret", "203.0.113.50/24"], env, tmp_path / "log"
        )
        try:
            assert _wait(lambda: lab.holds("a", VIP), 15), (tmp_path / "log").read_text()
            assert lab.holds("a", "203.0.113.50")
            assert proc.poll() is None
        finally:
            _stop(proc)
        assert not lab.holds("a", VIP) and not lab.holds("a", "203.0.113.50")
        log = (tmp_path / "log").read_text()
        assert "MASTER" in log and "s3cret" not in log


def test_kubernetize_environment_runs_a_group(tmp_path: Path) -> None:
    with Lab(["a"], prefix="ifvip-form") as lab:
        env = {
            "UCARP_ADDR": VIP,
            "UCARP_MASKLEN": "24",
            "UCARP_INTERFACE": "eth0",
            "UCARP_PASS": "g3n3r4t3d",
            "IFVIP_STATE_DIR": str(tmp_path / "state"),
        }
        proc = _run_form(lab, [], env, tmp_path / "log")
        try:
            assert _wait(lambda: lab.holds("a", VIP), 15), (tmp_path / "log").read_text()
            assert proc.poll() is None
        finally:
            _stop(proc)
        assert proc.returncode == 0 and not lab.holds("a", VIP)
        assert "(vhid 1)" in (tmp_path / "log").read_text()  # the image's default vhid


def test_solnet_command_line_runs_a_vrrp_group(tmp_path: Path) -> None:
    with Lab(["a"], prefix="ifvip-form") as lab:
        argv = ["--vrid", "51", "--auth-pass", "pw8bytes", "eth0", "150", f"{VIP}/24/eth0"]
        env = {"IFVIP_STATE_DIR": str(tmp_path / "state")}
        proc = _run_form(lab, argv, env, tmp_path / "log")
        try:
            assert _wait(lambda: lab.holds("a", VIP), 15), (tmp_path / "log").read_text()
            assert proc.poll() is None
        finally:
            _stop(proc)
        assert proc.returncode == 0 and not lab.holds("a", VIP)
        log = (tmp_path / "log").read_text()
        assert "[VRID 51]" in log
        assert "pw8bytes" not in log


def test_rancher_environment_runs_a_vrrp_group(tmp_path: Path) -> None:
    with Lab(["a"], prefix="ifvip-form") as lab:
        env = {
            "VIRTUAL_IP": VIP,
            "VIRTUAL_MASK": "24",
            "VRID": "52",
            "INTERFACE": "eth0",
            "IFVIP_STATE_DIR": str(tmp_path / "state"),
        }
        proc = _run_form(lab, [], env, tmp_path / "log")
        try:
            assert _wait(lambda: lab.holds("a", VIP), 15), (tmp_path / "log").read_text()
            assert proc.poll() is None
        finally:
            _stop(proc)
        assert proc.returncode == 0 and not lab.holds("a", VIP)
        assert "blahblah" not in (tmp_path / "log").read_text()


def test_osixia_environment_runs_a_vrrp_group(tmp_path: Path) -> None:
    with Lab(["a"], prefix="ifvip-form") as lab:
        own = str(lab.hosts["a"].address.ip)
        env = {
            "KEEPALIVED_INTERFACE": "eth0",
            "KEEPALIVED_PASSWORD": "osx1pw",
            "KEEPALIVED_PRIORITY": "150",
            "KEEPALIVED_ROUTER_ID": "53",
            # 2.0.20's YAML list as the baseimage exports it: the names of one variable per
            # row. The peer list holds our own address too (osixia#33): it is filtered.
            "KEEPALIVED_UNICAST_PEERS": "KEEPALIVED_UNICAST_PEERS_ROW_1 "
            "KEEPALIVED_UNICAST_PEERS_ROW_2",
            "KEEPALIVED_UNICAST_PEERS_ROW_1": own,
            "KEEPALIVED_UNICAST_PEERS_ROW_2": "198.51.100.250",
            "KEEPALIVED_VIRTUAL_IPS": f"#PYTHON2BASH:['{VIP}/24 dev eth0', '203.0.113.50']",
            "KEEPALIVED_STATE": "BACKUP",
            "IFVIP_STATE_DIR": str(tmp_path / "state"),
        }
        proc = _run_form(lab, [], env, tmp_path / "log")
        try:
            assert _wait(lambda: lab.holds("a", VIP), 15), (tmp_path / "log").read_text()
            assert lab.holds("a", "203.0.113.50")
            assert proc.poll() is None
        finally:
            _stop(proc)
        assert proc.returncode == 0, (tmp_path / "log").read_text()
        assert not lab.holds("a", VIP) and not lab.holds("a", "203.0.113.50")
        text = (tmp_path / "log").read_text()
        assert "[VRID 53] [IPv4] BACKUP -> MASTER" in text, text
        assert "osx1pw" not in text
