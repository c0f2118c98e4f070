"""What the short commands load (issue 15: start like a C tool).

Each command runs in a fresh interpreter, which then reports what was imported on the way:
commands that never touch the kernel never load pyroute2; `--version`, `ifquery`, `ifup`,
`ifdown` and `status` start without click (ifvip/fastpath.py), `status` with its client
only; `ifup`/`ifdown` load pyroute2's netlink modules only (ifupdown/rtnl.py), not its
package `__init__`, and asyncio without ssl.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.programs import AS_ROOT

FILE = """\
auto eth0
iface eth0 inet static
    address 198.51.100.7/24
    gateway 198.51.100.1
    up ip route add 203.0.113.0/24 via 198.51.100.1 dev $IFACE
"""

CHILD = """
import sys
from ifvip.cli import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "pyroute2")
print(f"exit={code} loaded={loaded}")
"""


@pytest.mark.parametrize(
    "command",
    [
        ["ifup", "-n", "--no-scripts", "eth0"],
        ["ifdown", "-n", "--force", "--no-scripts", "eth0"],
        ["ifquery", "eth0"],
        ["check"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_no_pyroute2_without_the_kernel(command: list[str], tmp_path: Path) -> None:
    path = tmp_path / "interfaces"
    path.write_text(FILE)
    argv = [command[0], "-i", str(path)]
    if command[0] in ("ifup", "ifdown", "ifquery"):
        argv.append(f"--state-dir={tmp_path / 'state'}")
    argv += command[1:]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.splitlines()[-1] == "exit=0 loaded=[]", done.stderr


FAST = """
import gc
import sys
from ifvip.fastpath import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
watch = ("click", "asyncio", "ssl", "_hashlib", "pyroute2", "pyparsing", "ifvip.cli",
         "ifvip.daemon.compat", "ifvip.daemon.checks", "ifvip.daemon.settings",
         "ifvip.daemon.carp", "ifvip.daemon.status", "ifvip.election", "pickle", "typing",
         "shutil")
loaded = sorted(m for m in watch if m in sys.modules)
print(f"exit={code} loaded={loaded} gc={gc.isenabled()}")
"""


# The collector is off only while modules load (fastpath.py, command.py): on at the end.
@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["--version"], "exit=0 loaded=[] gc=True"),
        (["ifquery", "eth0"], "exit=0 loaded=[] gc=True"),  # the reading cache is warm
        (
            ["ifup", "-n", "--no-scripts", "eth0"],
            "exit=0 loaded=['asyncio', 'typing'] gc=True",  # asyncio imports typing
        ),
        (["status"], "exit=1 loaded=[] gc=True"),  # no daemon: only the client is loaded
    ],
    ids=lambda argv: " ".join(argv[:2]) if isinstance(argv, list) else None,
)
def test_the_short_commands_start_without_click(
    command: list[str], expected: str, tmp_path: Path
) -> None:
    path = tmp_path / "interfaces"
    path.write_text(FILE)
    argv = list(command)
    if command[0] in ("ifup", "ifquery"):
        argv[1:1] = ["-i", str(path), f"--state-dir={tmp_path / 'state'}"]
    elif command[0] == "status":
        argv.append(f"--state-dir={tmp_path}")
    for _ in range(2):  # the first run fills the reading cache
        done = subprocess.run(
            [sys.executable, "-c", FAST, *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.stdout.splitlines()[-1] == expected, done.stderr


LEAN = """
import gc
import sys
from ifvip.fastpath import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
plugins = "pyroute2.netlink.rtnl.ifinfmsg.plugins."
loaded = sorted(m for m in sys.modules if m.startswith("pyroute2") and not m.startswith(plugins))
package_init = "IPRoute" in vars(sys.modules["pyroute2"])
ssl = "ssl" in sys.modules
print(f"exit={code} init={package_init} ssl={ssl} gc={gc.isenabled()} loaded={','.join(loaded)}")
"""

# What `ifup` loads of pyroute2 (ifupdown/rtnl.py): the netlink socket and its core, the
# marshal and the four message classes (ifinfmsg with its link-kind plugins), and what
# those import themselves. Not the package's __init__, iproute, ndb, ipdb or the tc plugins.
LEAN_MODULES = [
    "pyroute2",
    "pyroute2.common",
    "pyroute2.config",
    "pyroute2.netlink",
    "pyroute2.netlink.core",
    "pyroute2.netlink.coredata",
    "pyroute2.netlink.exceptions",
    "pyroute2.netlink.marshal",
    "pyroute2.netlink.nlsocket",
    "pyroute2.netlink.rt_files",
    "pyroute2.netlink.rtnl",
    "pyroute2.netlink.rtnl.fibmsg",
    "pyroute2.netlink.rtnl.ifaddrmsg",
    "pyroute2.netlink.rtnl.ifinfmsg",
    "pyroute2.netlink.rtnl.ifinfmsg.plugins",
    "pyroute2.netlink.rtnl.iw_event",
    "pyroute2.netlink.rtnl.rtmsg",
    "pyroute2.netns",
    "pyroute2.process",
    "pyroute2.requests",
    "pyroute2.requests.main",
    "pyroute2.statsd",
]


@pytest.mark.root
@AS_ROOT
def test_ifup_loads_only_the_lean_pyroute2(tmp_path: Path) -> None:
    from tests.netns.kernelstate import Twins

    path = tmp_path / "interfaces"
    path.write_text(FILE)
    with Twins(1, tag="lean") as twins:
        for command in ("ifup", "ifdown"):
            argv = [command, "-i", str(path), f"--state-dir={tmp_path / 'state'}", "eth0"]
            done = subprocess.run(
                ["ip", "netns", "exec", twins.names[0], sys.executable, "-c", LEAN, *argv],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            expected = f"exit=0 init=False ssl=False gc=True loaded={','.join(LEAN_MODULES)}"
            assert done.stdout.splitlines()[-1] == expected, done.stderr
