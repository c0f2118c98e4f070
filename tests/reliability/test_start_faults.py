"""Bad starts: a missing interface, a state directory that cannot be written.

Each must end `ifvip run` with one clear sentence (no traceback) and a non-zero exit, and
leave the namespace as it was: no VIP added, nothing half-applied.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.programs import AS_ROOT
from tests.reliability.harness import IFVIP, VIP, PairLab, until

pytestmark = [
    pytest.mark.root,
    AS_ROOT,
]


def _addresses(lab: PairLab) -> set[str]:
    return {a for a in lab.lab.addresses("h1")}


def _run(
    lab: PairLab,
    argv: list[str],
    *,
    wrap: str | None = None,
    source: str | None = None,
    vip: str = VIP,
) -> subprocess.CompletedProcess[str]:
    source = source or lab.address("h1")
    command = [IFVIP, "run", "-s", source, "-v", "42", "-p", "secret", "-a", vip, *argv]
    if wrap is not None:  # a shell line run in a private mount namespace first
        command = ["unshare", "-m", "sh", "-c", f'{wrap} && exec "$@"', "sh", *command]
    return subprocess.run(
        ["ip", "netns", "exec", lab.lab.hosts["h1"].netns, *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_a_missing_interface_is_a_config_error_and_nothing_is_applied(lab: PairLab) -> None:
    before = _addresses(lab)
    result = _run(lab, ["-i", "nosuch0", "--state-dir", str(lab.tmp / "state")])
    assert result.returncode == 78, result
    assert "no such interface 'nosuch0'" in result.stderr
    assert "Traceback" not in result.stderr
    assert _addresses(lab) == before


def test_a_read_only_state_dir_is_a_clear_error_and_nothing_is_applied(lab: PairLab) -> None:
    before = _addresses(lab)
    readonly = lab.tmp / "ro"
    readonly.mkdir()
    result = _run(
        lab,
        ["-i", "eth0", "--state-dir", str(readonly / "state")],
        wrap=f"mount -t tmpfs -o ro,size=64k none {readonly}",
    )
    assert _addresses(lab) == before
    assert result.returncode == 78, result
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert str(Path(readonly / "state")) in result.stderr


def _refused(result: subprocess.CompletedProcess[str], text: str) -> None:
    """Exit 78 with exactly one line, which says `text`."""
    assert result.returncode == 78, result
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and text in lines[0], result.stderr


def test_a_vip_that_is_the_hosts_own_address_is_refused(lab: PairLab) -> None:
    """`-a <the host's address> --masklen 24` would delete the host's own address on
    BACKUP and at exit: refused, and the address stays."""
    own = lab.address("h2")  # not -s (that one is refused on its own), but the host's
    subprocess.run(
        ["ip", "netns", "exec", lab.lab.hosts["h1"].netns, "ip", "addr", "add", f"{own}/24",
         "dev", "eth0"],
        check=True, timeout=10,
    )  # fmt: skip
    before = _addresses(lab)
    state = lab.tmp / "state"
    result = _run(lab, ["-i", "eth0", "--masklen", "24", "--state-dir", str(state)], vip=own)
    _refused(result, f"--vip: {own} is already an address of eth0")
    assert _addresses(lab) == before
    assert not state.exists()


def test_a_source_address_not_on_the_link_is_refused(lab: PairLab) -> None:
    before = _addresses(lab)
    result = _run(lab, ["-i", "eth0", "--state-dir", str(lab.tmp / "state")], source="203.0.113.77")
    _refused(result, "--srcip: 203.0.113.77 is not an address of eth0")
    assert _addresses(lab) == before


def test_a_metrics_port_in_use_is_a_config_error(lab: PairLab) -> None:
    """The port is taken by another process in h1: exit 78, one line, no VIP added."""
    netns = lab.lab.hosts["h1"].netns
    holder = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c",
         "import socket, sys, time\n"
         "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         "s.bind(('127.0.0.1', 9917)); s.listen(); print('ready', flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        before = _addresses(lab)
        result = _run(
            lab,
            ["-i", "eth0", "--metrics", "127.0.0.1:9917", "--state-dir", str(lab.tmp / "state")],
        )
        _refused(result, "--metrics 127.0.0.1:9917: Address already in use")
        assert _addresses(lab) == before
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_permanent_vip_left_by_a_killed_run_does_not_block_a_fresh_start(lab: PairLab) -> None:
    """`--vip-lifetime 0` (ucarp's permanent addresses), SIGKILL, and a start with an empty
    state dir (a container's fresh /run): no journal says the VIP is ifvip's, but the kernel
    does (IFA_PROTO), so the start takes it for a leftover, removes it and runs, where it
    used to refuse the VIP as the host's own address (exit 78) and leave it held forever."""
    first = lab.start("h1", "ifvip-permanent", preferred=True)
    assert until(lambda: lab.vip_info("h1") is not None, 15) is not None, first.text()
    assert lab.vip_info("h1") == {"valid": 0xFFFFFFFF, "preferred": 0xFFFFFFFF}
    tagged = [
        entry.get_attr("IFA_PROTO")
        for entry in lab._route("h1").get_addr(family=2)
        if entry.get_attr("IFA_ADDRESS") == VIP
    ]
    assert tagged == [105]  # `ip address show proto 105` (iproute2 6.3+) lists it
    first.kill()
    shutil.rmtree(lab.tmp / "state-h1")
    assert lab.vip_info("h1") is not None  # permanent: the kill left it

    earlier = len(first.text())  # both runs log to one file
    second = lab.start("h1", "ifvip-permanent", preferred=True)
    started = until(lambda: "Entering MASTER STATE" in second.text()[earlier:], 15)
    assert started is not None and second.alive(), second.text()[earlier:]
    assert "already an address" not in second.text()
    second.stop()
    assert lab.vip_info("h1") is None, second.text()
