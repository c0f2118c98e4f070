"""A hook that hangs must not hold the VIP hostage (issue 8: "an ifup hook that hangs
(bounded by a timeout, the VIP still released on BACKUP)").

ifvip runs up/down scripts bounded in time (`--script-timeout`) and never on the advert
path. A master whose `-u` script hangs still sends adverts (the peers keep it master), so
the VIPs it was asked to add with `--vip` must be there all the same, not after the
script's timeout; and when a preferred peer comes, the release on BACKUP must not wait
behind the script either: the script (its process group) is killed and the VIP removed.
A script that runs over `--script-timeout` is killed, and that MASTER action has failed:
the group bows out and sits out its fault backoff (issue 13), CARP and VRRP alike.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.programs import AS_ROOT
from tests.reliability.harness import IFVIP, VHID, VIP, Daemon, PairLab, until

pytestmark = [
    pytest.mark.root,
    AS_ROOT,
]


def _hanging_script(lab: PairLab) -> tuple[Path, Path]:
    """A script that records its PID and then sleeps (the same process) for 5 minutes."""
    hang, pidfile = lab.tmp / "hang", lab.tmp / "hang.pid"
    hang.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 300\n")
    hang.chmod(0o755)
    return hang, pidfile


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _hanging_master(lab: PairLab, timeout: str, protocol: str = "carp") -> tuple[Daemon, Path]:
    hang, pidfile = _hanging_script(lab)
    if protocol == "carp":
        argv = [IFVIP, "run", "-i", "eth0", "-s", lab.address("h1"), "-v", str(VHID)]
        argv += ["-p", "secret", "-k", "50"]
        implementation = "ifvip"
    else:
        argv = [IFVIP, "run", "--protocol", "vrrp", "-i", "eth0", "--vrid", str(VHID)]
        implementation = "ifvip-vrrp"
    argv += ["-u", str(hang), "--vip", f"{VIP}/24"]
    argv += ["--script-timeout", timeout, "--state-dir", str(lab.tmp / "state-h1")]
    daemon = Daemon(lab, "h1", implementation, argv, lab.tmp / "h1.log")
    lab.daemons["h1"] = daemon
    assert until(lambda: "MASTER" in daemon.transitions(), 10) is not None, daemon.text()
    return daemon, pidfile


def test_a_hanging_up_script_does_not_keep_the_master_from_its_vip(lab: PairLab) -> None:
    _, pidfile = _hanging_master(lab, "120")
    became = time.monotonic()
    held = until(lambda: lab.holds("h1"), 5)
    assert held is not None, f"no VIP {time.monotonic() - became:.1f} s after MASTER"
    assert until(pidfile.exists, 5) is not None, "the up-script never ran"
    assert _running(int(pidfile.read_text()))


def test_the_vip_is_still_released_on_backup_while_the_up_script_hangs(lab: PairLab) -> None:
    daemon, pidfile = _hanging_master(lab, "120")
    assert until(lambda: lab.holds("h1"), 5) is not None, daemon.text()
    assert until(pidfile.exists, 5) is not None, "the up-script never ran"
    script = int(pidfile.read_text())
    lab.start("h2", "ifvip", preferred=True)  # -k 0 -P: h1 goes BACKUP
    # Far below the script's 120 s timeout: the release does not wait behind the script.
    gone = until(lambda: lab.holders() == ("h2",), 10)
    assert gone is not None, f"holders {lab.holders()}\n{daemon.text()}"
    assert "BACKUP" in daemon.transitions()[-1:], daemon.transitions()
    assert until(lambda: not _running(script), 5) is not None, "the hanging script still runs"
    assert "was still running and was killed" in daemon.text()


@pytest.mark.parametrize("protocol", ["carp", "vrrp"])
def test_a_hanging_script_is_bounded_by_script_timeout(lab: PairLab, protocol: str) -> None:
    daemon, pidfile = _hanging_master(lab, "1", protocol)
    assert until(pidfile.exists, 5) is not None, "the up-script never ran"
    script = int(pidfile.read_text())
    killed = until(lambda: "ran over 1 s and was killed" in daemon.text(), 10)
    assert killed is not None, daemon.text()
    assert not _running(script)
    # A failed MASTER action: the group bows out, releases the VIP and says why.
    assert until(lambda: not lab.holds("h1"), 5) is not None, daemon.text()
    assert "MASTER action failed" in daemon.text()
    status = subprocess.run(
        ["ip", "netns", "exec", lab.lab.hosts["h1"].netns, IFVIP, "status", "--json",
         "--state-dir", str(lab.tmp / "state-h1")],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert status.returncode == 1, status.stderr
    (group,) = json.loads(status.stdout)["groups"]
    assert "ran over 1 s and was killed" in group["fault"]
