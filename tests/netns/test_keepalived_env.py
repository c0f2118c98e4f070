"""The osixia/keepalived environment (KEEPALIVED_*) brings a VRRP group up in a namespace.

As tests/netns/test_checks_forms.py: `translate()` then ifvip's own `main()` in a child
inside the lab's namespace, every path the daemon writes under a temporary state directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ifvip.lab import Lab

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]

VIP = "198.51.100.100"
ENTRY = (
    "import os, sys\n"
    "from ifvip.cli import main\n"
    "from ifvip.daemon.compat import translate\n"
    "main(translate(sys.argv[1:], os.environ))\n"
)


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_osixia_environment_runs_a_vrrp_group(tmp_path: Path) -> None:
    with Lab(["a"], prefix="ifvip-ka-env") as lab:
        own = str(lab.hosts["a"].address.ip)
        env = {
            "PATH": os.environ["PATH"],
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
        log = tmp_path / "log"
        with log.open("wb") as out:
            proc = lab.run(
                "a",
                [sys.executable, "-c", ENTRY],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            assert _wait(lambda: lab.holds("a", VIP), 15), log.read_text()
            assert lab.holds("a", "203.0.113.50")
            assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
        assert proc.returncode == 0, log.read_text()
        assert not lab.holds("a", VIP) and not lab.holds("a", "203.0.113.50")
        text = log.read_text()
        assert "[VRID 53] [IPv4] BACKUP -> MASTER" in text, text
        assert "osx1pw" not in text
