"""`ifvip demo` and the lab under it: it works, it shows a live status line on a terminal,
and it leaves nothing behind, also when interrupted."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ifvip.lab import Lab, stale
from tests.programs import AS_ROOT

pytestmark = [
    pytest.mark.root,
    AS_ROOT,
]

IFVIP = str(Path(sys.executable).with_name("ifvip"))


def _namespaces() -> set[str]:
    out = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _labs_of(pid: int) -> set[str]:
    """The namespaces of the demo process PID's lab (others may run labs meanwhile)."""
    return {name for name in _namespaces() if name.startswith(f"ifvip-lab-{pid}-")}


def _demo(*args: str) -> tuple[int, str, str, int]:
    proc = subprocess.Popen(
        [IFVIP, "demo", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err, proc.pid


def test_demo_headless_fails_over_and_cleans_up() -> None:
    code, out, err, pid = _demo("--headless")
    assert code == 0, out + err
    assert "CARP vhid 42" in out
    assert "node2 took over" in out
    assert "(node2)" in out  # the client saw the new MAC
    assert "preempted node2" in out
    assert "adverts the client saw on the wire: node1 " in out
    assert "\r" not in out  # no status line in a plain log
    assert _labs_of(pid) == set()


def test_demo_vrrp() -> None:
    code, out, err, pid = _demo("--headless", "--protocol", "vrrp")
    assert code == 0, out + err
    assert "VRRP vrid 42" in out
    assert "node2 took over" in out and "(node2)" in out
    assert "preempted node2" in out
    assert _labs_of(pid) == set()


def test_demo_on_a_terminal_redraws_one_status_line() -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [IFVIP, "demo"], stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # EIO: the demo closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
        assert proc.stderr is not None
        proc.stderr.close()
    screen = b"".join(chunks).decode(errors="replace")
    statuses = [part for part in screen.split("\r") if "MASTER:" in part]
    assert any("MASTER: node1" in s for s in statuses)
    assert any("MASTER: node2" in s for s in statuses)
    assert any("adverts seen by the client: node1 " in s for s in statuses)
    # Log lines clear the status line before they are written.
    assert "\x1b[K[" in screen
    assert "lab removed" in screen
    assert _labs_of(proc.pid) == set()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_interrupted_removes_its_lab(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [IFVIP, "demo", "--headless"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "lab up" in first
        assert _labs_of(proc.pid)  # the lab exists while the demo runs
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out + err
    assert "interrupted; lab removed" in out
    assert _labs_of(proc.pid) == set()


def test_demo_without_root_says_so_in_one_sentence() -> None:
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", IFVIP, "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "needs root" in done.stderr


def test_lab_hosts_reach_each_other_and_close_removes_everything() -> None:
    with Lab(["a", "b"], prefix="ifvip-labtest") as lab:
        assert lab.hosts["a"].mac == "02:00:00:00:01:01"
        ping = lab.run(
            "a",
            ["ping", "-c", "1", "-W", "2", str(lab.hosts["b"].address.ip)],
            stdout=subprocess.DEVNULL,
        )
        assert ping.wait(10) == 0
        names = {h.netns for h in lab.hosts.values()} | {lab.switch}
        assert names <= _namespaces()
    assert not names & _namespaces()
    assert stale(lab.prefix) == []


def test_lab_is_removed_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError), Lab(["a"], prefix="ifvip-labtest") as lab:
        names = {lab.switch, lab.hosts["a"].netns}
        raise RuntimeError("boom")
    assert not names & _namespaces()
