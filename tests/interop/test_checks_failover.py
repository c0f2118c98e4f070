"""Health checks that move the VIP, beside the real ucarp and the real keepalived.

Host a runs ifvip (a daemon with `Operations` attached: checks, status socket, metrics,
--nonlocal-bind) and python's http.server on the VIP's port; host b runs the real ucarp
(CARP) or keepalived (VRRP) as the backup. Stopping the server moves the VIP to b within
interval × fall + the probe timeout + one advert interval; starting it again brings the VIP
back (preemption). `ifvip status` and `/metrics` are compared with the kernel at each step.
A check alternating between results never moves the VIP.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ifvip.daemon.checks import parse_check_options
from tests.interop.carp_lab import ucarp_node
from tests.interop.keepalived_lab import Instance, KeepalivedLab
from tests.programs import INTEROP

pytestmark = INTEROP

VIP = "198.51.100.100"
PORT = 8080
METRICS = 9165
INTERVAL, RISE, FALL, TIMEOUT = 0.5, 2, 2, 0.4
ADVERT = 1.0
MARGIN = 2.0  # a loaded test machine
HTTP_SERVER = (sys.executable, "-m", "http.server", "--bind", VIP)


def IFVIP_IN(ns: str) -> list[str]:  # noqa: N802
    return ["ip", "netns", "exec", ns, str(Path(sys.executable).with_name("ifvip"))]


DRIVER = """
import asyncio, json, logging, sys
from ifvip.daemon.journal import RunStateDir
from ifvip.daemon.checks import parse_check_options
from ifvip.daemon.operations import Operations, OperationsConfig
from ifvip.daemon.runtime import Daemon
from ifvip.ifupdown.netlink import Kernel

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
args = json.loads(sys.argv[1])

async def main():
    checks = parse_check_options(**args["checks"])
    ops = Operations(OperationsConfig(checks=checks, state_dir=args["state"],
                                      metrics=(args["address"], args["metrics"]),
                                      nonlocal_bind=True))
    state = RunStateDir.open(args["state"])
    async with Kernel() as kernel:
        daemon = Daemon(kernel)
        if args["protocol"] == "carp":
            from ifvip.daemon.carp.config import build_carp_group
            from ifvip.daemon.ifup import engine_factory
            from ifvip.daemon.carp.role import carp_role
            from ifvip.daemon.carp.speaker import CarpSpeaker
            config = build_carp_group(**args["group"])
            daemon.add(CarpSpeaker(config), carp_role(config, kernel, state, engine_factory()))
        else:
            from ifvip.daemon.vrrp.speaker import VrrpSpeaker
            from ifvip.daemon.vrrp.role import vrrp_role
            from ifvip.daemon.vrrp.config import build_vrrp_group
            config = build_vrrp_group(**args["group"])
            daemon.add(VrrpSpeaker(config), vrrp_role(config, kernel, state))
        await ops.start(daemon)
        try:
            await daemon.run(ready=ops.attach)
        finally:
            await ops.close()

asyncio.run(main())
"""


def until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout} s")


class Node:
    """ifvip with Operations in host a, its http.server, and the client views of it."""

    def __init__(
        self,
        lab: KeepalivedLab,
        tmp: Path,
        protocol: str,
        checks: dict[str, Any],
        argv: list[str] | None = None,
    ):
        """`argv`: start ifvip with that command line instead of the in-process driver."""
        self.lab = lab
        self.tmp = tmp
        self.state = tmp / "state-a"
        self.www = tmp / "www"
        self.www.mkdir(exist_ok=True)
        (self.www / "index.html").write_text("ok\n")
        address = lab.address("a")
        if protocol == "carp":
            group: dict[str, Any] = {
                "interface": "eth0",
                "srcip": address,
                "vhid": "42",
                "password": "secret",
                "passfile": None,
                "addr": VIP,
                "masklen": "24",
                "preempt": True,
                "lifetime": "0",
            }
        else:
            group = {
                "interface": "eth0",
                "srcip": address,
                "vrid": "51",
                "vips": [f"{VIP}/24"],
                "priority": "150",
                "version": "3",
            }
        args = {
            "protocol": protocol,
            "group": group,
            "checks": checks,
            "state": str(self.state),
            "address": address,
            "metrics": METRICS,
        }
        self.log = tmp / "ifvip-a.log"
        with self.log.open("ab") as out:
            self.proc = lab.lab.run(
                "a",
                argv or [sys.executable, "-c", DRIVER, json.dumps(args)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.http: subprocess.Popen[bytes] | None = None

    def start_http(self) -> None:
        self.http = self.lab.lab.run(
            "a",
            [*HTTP_SERVER, "--directory", str(self.www), str(PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop_http(self) -> None:
        assert self.http is not None
        self.http.terminate()
        self.http.wait(10)
        self.http = None

    def status(self) -> dict[str, Any]:
        ns = self.lab.lab.hosts["a"].netns
        out = subprocess.run(
            [*IFVIP_IN(ns), "status", "--json", "--state-dir", str(self.state)],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        data: dict[str, Any] = json.loads(out)
        return data["groups"][0]

    def metrics(self) -> dict[str, float]:
        """Scraped from host b, over the lab's network."""
        code = (
            "import urllib.request\n"
            f"print(urllib.request.urlopen('http://{self.lab.address('a')}:{METRICS}/metrics',"
            " timeout=5).read().decode())\n"
        )
        text = self.lab.run_python("b", code, timeout=15)
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def sysctl(self) -> str:
        return self.lab.run_python(
            "a", "print(open('/proc/sys/net/ipv4/ip_nonlocal_bind').read().strip())", 10
        ).strip()

    def stop(self) -> None:
        if self.http is not None:
            self.stop_http()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15)


def _one(metrics: dict[str, float], prefix: str) -> float:
    found = [v for k, v in metrics.items() if k.startswith(prefix)]
    assert len(found) == 1, (prefix, found)
    return found[0]


def _agree(node: Node, holder: str) -> None:
    """`ifvip status`, /metrics and the kernel tell the same story."""
    status = node.status()
    metrics = node.metrics()
    a_holds = node.lab.holds("a", VIP)
    assert a_holds == (holder == "a") and node.lab.holds("b", VIP) == (holder == "b")
    assert (status["state"] == "MASTER") == a_holds
    assert _one(metrics, "ifvip_is_master{") == float(a_holds)
    state_number = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}[status["state"]]
    assert _one(metrics, "ifvip_vrrp_state{") == state_number
    (check,) = status["checks"]
    assert _one(metrics, "ifvip_check_status{") == float(check["healthy"])
    sent = _one(metrics, "ifvip_advertisements_sent_total{")
    assert sent >= status["counters"].get("adverts_sent", 0) > 0 or not a_holds


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[KeepalivedLab]:
    with KeepalivedLab(["a", "b"], tmp_path) as lab:
        yield lab


HTTP_CHECK = {
    "http": [f"http://{VIP}:{PORT}/"],
    "interval": str(INTERVAL),
    "rise": str(RISE),
    "fall": str(FALL),
    "timeout": str(TIMEOUT),
}


def _failover(
    lab: KeepalivedLab,
    tmp: Path,
    protocol: str,
    start_backup: Callable[[], Any],
    argv: list[str] | None = None,
) -> Any:
    """The acceptance scenario; returns the backup's process (for the caller to stop)."""
    node = Node(lab, tmp, protocol, HTTP_CHECK, argv)
    try:
        # The service binds the VIP before a holds it (--nonlocal-bind): a backup whose
        # service is down would stay demoted (its VIP check is judged by the listener).
        until(lambda: node.sysctl() == "1", 10, "--nonlocal-bind")
        node.start_http()
        until(lambda: lab.holds("a", VIP), 15, "ifvip a becomes master")
        backup = start_backup()
        until(lambda: node.status()["checks"][0]["streak"] >= 2, 10, "the check passes")
        time.sleep(2 * ADVERT)  # the backup has heard a's adverts
        _agree(node, "a")

        stopped = time.monotonic()
        node.stop_http()
        until(lambda: lab.holds("b", VIP), 20, "the VIP moves to b")
        took = time.monotonic() - stopped
        bound = parse_check_options(**HTTP_CHECK).demotion_bound(ADVERT)
        print(f"{protocol}: VIP on b {took:.2f} s after the service stopped (bound {bound:.2f} s)")
        assert took <= bound + MARGIN, f"took {took:.2f} s, bound {bound:.2f} s"
        until(lambda: not lab.holds("a", VIP), 5, "a removes the VIP")
        status = node.status()
        assert status["demoted_by"] == ["health"]
        assert status["checks"][0]["healthy"] is False
        time.sleep(RISE * INTERVAL * 3)  # on the backup the check is judged locally: no flap
        assert node.status()["checks"][0]["judged"] == "listener"
        _agree(node, "b")

        node.start_http()  # binds the VIP on the backup thanks to ip_nonlocal_bind
        until(lambda: lab.holds("a", VIP), 20, "the VIP comes back to a (preemption)")
        until(lambda: not lab.holds("b", VIP), 10, "b releases the VIP")
        time.sleep(ADVERT)
        _agree(node, "a")
        assert node.status()["counters"]["transitions"] >= 3
        return backup
    finally:
        node.stop()
        assert node.sysctl() == "0"  # restored at exit
        log = node.log.read_text()
        assert "secret" not in log


def test_carp_failing_http_check_moves_the_vip_to_ucarp(lab: KeepalivedLab, tmp_path: Path):
    def backup() -> subprocess.Popen[bytes]:
        return ucarp_node(lab.lab, "b", tmp_path, "-k", "100")

    proc = _failover(lab, tmp_path, "carp", backup)
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


def test_vrrp_failing_http_check_moves_the_vip_to_keepalived(
    lab: KeepalivedLab, tmp_path: Path
) -> None:
    inst = Instance(version=3, family=4)
    keepalived = _failover(lab, tmp_path, "vrrp", lambda: lab.keepalived("b", inst, priority=100))
    assert keepalived.complaints() == []
    keepalived.stop()


def test_a_flapping_check_does_not_move_the_vip(lab: KeepalivedLab, tmp_path: Path) -> None:
    counter = tmp_path / "probes"
    flap = f"n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; [ $((n%2)) = 0 ]"
    checks = {"script": [f"sh -c '{flap}'"], "interval": "0.2", "rise": "2", "fall": "2"}
    node = Node(lab, tmp_path, "carp", checks)
    try:
        until(lambda: lab.holds("a", VIP), 15, "ifvip a becomes master")
        ucarp = ucarp_node(lab.lab, "b", tmp_path, "-k", "100")
        start = int(counter.read_text()) if counter.exists() else 0
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            assert lab.holds("a", VIP) and not lab.holds("b", VIP)
            time.sleep(0.1)
        assert int(counter.read_text()) - start >= 12  # the check really alternated
        status = node.status()
        assert status["checks"][0]["healthy"] is True and status["demoted_by"] == []
        assert status["counters"]["transitions"] == 2  # INIT → BACKUP → MASTER, nothing more
        ucarp.send_signal(signal.SIGTERM)
        ucarp.wait(10)
    finally:
        node.stop()
