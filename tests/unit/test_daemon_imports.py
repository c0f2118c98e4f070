"""An idle `ifvip run` loads only what its configuration uses (issue 4: RSS under 40 MB;
issue 15: no OpenSSL without an https check, no pyroute2 package `__init__`).

Each case runs the real command line in a fresh interpreter up to the point where the
daemon would start its loop: the CLI builds the plan, then every group's speaker and role
are built and the operations (status socket) started and closed, exactly as run_plan does,
without opening the protocol sockets. The child then reports which of the optional parts
(prometheus-client, the VRRP stack, the ifupdown planner and engine, the interfaces reader,
ssl and OpenSSL's hashlib, decimal, pyroute2's AsyncIPRoute and package-wide modules) were imported
on the way.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = """
from ifvip import tls
tls.defer()  # as ifvip.cli.main() does first
import asyncio, sys
from ifvip.daemon import launch
from ifvip.daemon.journal import RunStateDir
from ifvip.daemon.operations import Operations
from ifvip.daemon.runtime import Daemon
from ifvip.ifupdown.netlink import Kernel

async def built(plan, **_):
    kernel = Kernel()
    daemon = Daemon(kernel)
    builder = launch.Builder(kernel, RunStateDir.open(plan.state_dir), plan.engines)
    for definition in plan.groups().values():
        builder.add(daemon, definition)
    ops = Operations(plan.operations)
    await ops.start(daemon)
    await ops.close()
    return []

launch.run_plan = built
from ifvip.cli import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
optional = ("prometheus_client", "ifvip.daemon.metrics", "ifvip.daemon.vrrp", "ifvip.wire.vrrp",
            "ifvip.election.vrrp", "ifvip.ifupdown.plan", "ifvip.ifupdown.engine",
            "ifvip.interfaces", "pyparsing", "ssl", "_ssl", "_hashlib", "hashlib", "hmac",
            "secrets", "decimal", "pyroute2.iproute", "pyroute2.ndb", "unittest.mock")
loaded = sorted(m for m in optional if m in sys.modules)
print(f"exit={code} loaded={loaded}")
"""

CARP = ["run", "-i", "lo", "-s", "127.0.0.1", "-v", "42", "-p", "secret"]
CARP_VIP = [*CARP, "-a", "198.51.100.100"]
VRRP = ["run", "--protocol", "vrrp", "-i", "lo", "-v", "42", "--vip", "198.51.100.100/32"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def loaded(argv: list[str], tmp_path: Path) -> str:
    argv = [arg.replace("PORT", str(free_port())) for arg in argv]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *argv, f"--state-dir={tmp_path / 'state'}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout, done.stderr
    return done.stdout.splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (CARP_VIP, "exit=0 loaded=[]"),
        (
            VRRP,
            "exit=0 loaded=['ifvip.daemon.vrrp', 'ifvip.election.vrrp', 'ifvip.wire.vrrp']",
        ),
    ],
    ids=["carp", "vrrp"],
)
def test_an_idle_daemon_loads_only_what_it_uses(
    argv: list[str], expected: str, tmp_path: Path
) -> None:
    assert loaded(argv, tmp_path) == expected


@pytest.mark.parametrize(
    ("option", "needs"),
    [
        (["--rtable", "100"], "'ifvip.ifupdown.plan'"),
        (["--metrics", "127.0.0.1:PORT"], "'ifvip.daemon.metrics', 'prometheus_client'"),
    ],
    ids=["rtable", "metrics"],
)
def test_what_an_option_asks_for_is_loaded(option: list[str], needs: str, tmp_path: Path) -> None:
    said = loaded([*CARP_VIP, *option], tmp_path)
    assert said.startswith("exit=0 ") and needs in said, said
    assert "vrrp" not in said, said


def test_a_password_file_loads_the_checker_not_the_interfaces_reader(tmp_path: Path) -> None:
    passfile = tmp_path / "pass"
    passfile.write_text("secret\n")
    passfile.chmod(0o600)
    argv = [*CARP[:-2], "-o", str(passfile), "-a", "198.51.100.100"]
    assert loaded(argv, tmp_path) == "exit=0 loaded=['ifvip.interfaces']"
