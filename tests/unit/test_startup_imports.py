"""Commands that never touch the kernel never load pyroute2 (about 0.1 s of start-up).

Each command runs in a fresh interpreter, which then reports whether pyroute2 was imported
on the way.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
