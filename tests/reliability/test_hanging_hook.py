"""A hook that hangs must not hold the VIP hostage.

ifvip runs up/down scripts bounded in time and never on the advert path. A master whose
`-u` script hangs still sends adverts (the peers keep it master), so the VIPs it was asked
to add with `--vip` must be there all the same, not after the script's timeout.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.reliability.harness import IFVIP, VHID, VIP, Daemon, PairLab, until

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]


@pytest.fixture
def lab() -> Iterator[PairLab]:
    with PairLab() as pair:
        yield pair


@pytest.mark.xfail(
    reason="role jobs run in order (Roles: scripts first): --vip waits for the hanging "
    "up-script's 60 s timeout while the daemon already advertises as MASTER",
    strict=True,
)
def test_a_hanging_up_script_does_not_keep_the_master_from_its_vip(lab: PairLab) -> None:
    hang = lab.tmp / "hang"
    hang.write_text("#!/bin/sh\nexec sleep 300\n")
    hang.chmod(0o755)
    argv = [IFVIP, "run", "-i", "eth0", "-s", lab.address("h1"), "-v", str(VHID)]
    argv += ["-p", "secret", "-u", str(hang), "--vip", f"{VIP}/24"]
    argv += ["--state-dir", str(lab.tmp / "state-h1")]
    daemon = Daemon(lab, "h1", "ifvip", argv, lab.tmp / "h1.log")
    lab.daemons["h1"] = daemon
    assert until(lambda: "MASTER" in daemon.transitions(), 10) is not None, daemon.text()
    became = time.monotonic()
    held = until(lambda: lab.holds("h1"), 5)
    assert held is not None, f"no VIP {time.monotonic() - became:.1f} s after MASTER"
