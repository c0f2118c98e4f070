"""A second instance of a running group (issue 18.5): it refuses, and touches nothing.

Without the instance lock, the second daemon took the first one's VIP for the leftover of a
crash, deleted it ("left by an earlier run"), and then both acted as MASTER.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.programs import AS_ROOT
from tests.reliability.harness import PairLab, until

pytestmark = [pytest.mark.root, AS_ROOT]


@pytest.mark.parametrize("implementation", ["ifvip", "ifvip-vrrp"])
def test_a_second_instance_of_a_running_group_refuses(lab: PairLab, implementation: str) -> None:
    lab.start_pair(implementation)
    first = lab.daemons["h1"]
    second = subprocess.run(
        ["ip", "netns", "exec", lab.lab.hosts["h1"].netns, *first.argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert second.returncode == 78, second.stderr
    (line,) = second.stderr.splitlines()
    assert f"is run by another ifvip (pid {first.pid})" in line, line
    time.sleep(1.5)
    assert lab.holders() == ("h1",)
    assert first.alive() and "left by an earlier run" not in first.text()
    # The lock goes with its holder: once the first stops, the group starts again.
    first.stop()
    assert until(lambda: lab.holders() == ("h2",), 5) is not None
    lab.start("h1", implementation, preferred=True)
    assert until(lambda: lab.holders() == ("h1",), 15) is not None
