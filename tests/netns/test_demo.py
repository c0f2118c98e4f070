"""`ifvip demo --headless` and the lab under it: it works, and it leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ifvip.lab import Lab, stale

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")

IFVIP = str(Path(sys.executable).with_name("ifvip"))


def _namespaces() -> set[str]:
    out = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_demo_headless_fails_over_and_cleans_up() -> None:
    before = _namespaces()
    done = subprocess.run(
        [IFVIP, "demo", "--headless"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "node2 took over" in done.stdout
    assert "(node2)" in done.stdout  # the client saw the new MAC
    assert "preempted node2" in done.stdout
    assert _namespaces() == before


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
    assert stale("ifvip-labtest") == []


def test_lab_is_removed_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError), Lab(["a"], prefix="ifvip-labtest") as lab:
        names = {lab.switch, lab.hosts["a"].netns}
        raise RuntimeError("boom")
    assert not names & _namespaces()
