"""The health-check acceptance through the command line: `ifvip run ... --check-http ...`.

The same scenario as test_checks_failover.py, with ifvip started as users start it: the
CARP group's ucarp options plus --check-http/--check-*/--metrics/--nonlocal-bind, and the
VRRP group's keepalived-style options; the backup is the real ucarp or keepalived.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.carp_lab import ucarp_node
from tests.interop.keepalived_lab import Instance, KeepalivedLab
from tests.interop.test_checks_failover import (
    FALL,
    INTERVAL,
    METRICS,
    PORT,
    RISE,
    TIMEOUT,
    VIP,
    _failover,
)
from tests.programs import IFVIP, INTEROP

pytestmark = INTEROP


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[KeepalivedLab]:
    with KeepalivedLab(["a", "b"], tmp_path) as lab:
        yield lab


def _checks(lab: KeepalivedLab, tmp: Path) -> list[str]:
    return [
        "--check-http",
        f"http://{VIP}:{PORT}/",
        "--check-interval",
        str(INTERVAL),
        "--check-rise",
        str(RISE),
        "--check-fall",
        str(FALL),
        "--check-timeout",
        str(TIMEOUT),
        "--metrics",
        f"{lab.address('a')}:{METRICS}",
        "--nonlocal-bind",
        "--state-dir",
        str(tmp / "state-a"),
    ]


def test_cli_carp_check_moves_the_vip_to_ucarp(lab: KeepalivedLab, tmp_path: Path) -> None:
    argv = [IFVIP, "run", "-i", "eth0", "-s", lab.address("a"), "-v", "42", "-p", "secret"]
    argv += ["-a", VIP, "--masklen", "24", "-P", "--vip-lifetime", "0", *_checks(lab, tmp_path)]
    proc = _failover(
        lab, tmp_path, "carp", lambda: ucarp_node(lab.lab, "b", tmp_path, "-k", "100"), argv
    )
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


def test_cli_vrrp_check_moves_the_vip_to_keepalived(lab: KeepalivedLab, tmp_path: Path) -> None:
    argv = [IFVIP, "run", "--protocol", "vrrp", "--vrrp-version", "3", "-i", "eth0"]
    argv += ["--vrid", "51", "--priority", "150", "--vip", f"{VIP}/24", *_checks(lab, tmp_path)]
    inst = Instance(version=3, family=4)
    keepalived = _failover(
        lab, tmp_path, "vrrp", lambda: lab.keepalived("b", inst, priority=100), argv
    )
    keepalived.stop()


def test_cli_bad_check_options_exit_78_before_touching_the_network(tmp_path: Path) -> None:
    argv = [IFVIP, "run", "-i", "lo", "-s", "198.51.100.1", "-v", "1", "-p", "pw", "-a", VIP]
    argv += ["--check-http", "ftp://x/", "--check-tcp", "0", "--metrics", "nowhere"]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    assert done.returncode == 78
    assert [line.split(":")[0] for line in done.stderr.splitlines()] == [
        "ifvip run",
        "ifvip run",
        "ifvip run",
    ]
    assert "--check-http:" in done.stderr and "--check-tcp:" in done.stderr
    assert "--metrics:" in done.stderr
