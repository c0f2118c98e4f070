"""ifvip's CARP speaker beside the real ucarp 1.5.2, in two network namespaces on one link.

The VIP is 198.51.100.100/24; h1 (198.51.100.1) and h2 (198.51.100.2) share a veth pair.
"Who holds the VIP" is read from the kernel of each namespace.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.programs import AS_ROOT, IFVIP, NEEDS_UCARP, UCARP

VIP = "198.51.100.100"

pytestmark = [AS_ROOT, NEEDS_UCARP]


def _ip(ns: str, *args: str) -> str:
    return subprocess.run(
        ["ip", "-n", ns, *args], capture_output=True, text=True, check=True, timeout=10
    ).stdout


class Pair:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.h1, self.h2 = f"ifvip-i1-{tag}", f"ifvip-i2-{tag}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.tmp = Path(f"/tmp/ifvip-interop-{tag}")
        self.tmp.mkdir()
        for ns in (self.h1, self.h2):
            subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
        _ip(
            self.h1, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", self.h2
        )
        for ns, address in ((self.h1, "198.51.100.1/24"), (self.h2, "198.51.100.2/24")):
            _ip(ns, "addr", "add", address, "dev", "eth0")
            _ip(ns, "link", "set", "eth0", "up")
            _ip(ns, "link", "set", "lo", "up")

    def holds(self, ns: str) -> bool:
        return f"inet {VIP}/" in _ip(ns, "-4", "addr", "show", "dev", "eth0")

    def start(self, ns: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with open(self.tmp / f"{ns}.log", "ab") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=log, stderr=log)
        self.procs.append(proc)
        return proc

    def ucarp(self, ns: str, src: str, *extra: str) -> subprocess.Popen[bytes]:
        up = self.tmp / "vip-up"
        down = self.tmp / "vip-down"
        up.write_text(f'#!/bin/sh\nip addr add {VIP}/24 dev "$1"\n')
        down.write_text(f'#!/bin/sh\nip addr del {VIP}/24 dev "$1" 2>/dev/null || true\n')
        up.chmod(0o755)
        down.chmod(0o755)
        return self.start(
            ns,
            [
                UCARP,
                "-i",
                "eth0",
                "-s",
                src,
                "-v",
                "42",
                "-p",
                "secret",
                "-a",
                VIP,
                "-u",
                str(up),
                "-d",
                str(down),
                "-z",
                *extra,
            ],
        )

    def ifvip(self, ns: str, src: str, *extra: str) -> subprocess.Popen[bytes]:
        return self.start(
            ns,
            [
                IFVIP,
                "run",
                "-i",
                "eth0",
                "-s",
                src,
                "-v",
                "42",
                "-p",
                "secret",
                "-a",
                VIP,
                "--masklen",
                "24",
                "-z",
                # A private state dir: a SIGKILLed daemon leaves nothing in the host's /run/ifvip.
                "--state-dir",
                str(self.tmp / f"state-{ns}"),
                *extra,
            ],
        )

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        for ns in (self.h1, self.h2):
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def pair() -> Iterator[Pair]:
    p = Pair()
    try:
        yield p
    finally:
        p.close()


def _until(condition: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"not reached within {timeout} s")


@pytest.mark.parametrize("frame", [(), ("--forge-mac",), ("--nomcast",)], ids=str)
def test_ifvip_master_with_ucarp_backup_then_kill_moves_the_vip(
    pair: Pair, frame: tuple[str, ...]
) -> None:
    # The kernel's IP stack, ucarp's forged 00:00:5e:00:00:VHID frame, and -M broadcast.
    master = pair.ifvip(pair.h1, "198.51.100.1", "-k", "0", "-P", *frame)
    _until(lambda: pair.holds(pair.h1), 8)
    pair.ucarp(pair.h2, "198.51.100.2", "-k", "50")
    time.sleep(5)  # ucarp waits its master-down time, sees adverts, stays backup
    assert pair.holds(pair.h1) and not pair.holds(pair.h2)
    master.send_signal(signal.SIGKILL)
    master.wait(5)
    # ucarp's master-down (3 s + 50/256) plus its ~1 s pcap latency.
    _until(lambda: pair.holds(pair.h2), 8)


def test_ucarp_master_with_ifvip_backup_then_kill_moves_the_vip(pair: Pair) -> None:
    master = pair.ucarp(pair.h1, "198.51.100.1", "-k", "0", "-P")
    _until(lambda: pair.holds(pair.h1), 8)
    pair.ifvip(pair.h2, "198.51.100.2", "-k", "50")
    time.sleep(5)
    assert pair.holds(pair.h1) and not pair.holds(pair.h2)
    master.send_signal(signal.SIGKILL)
    master.wait(5)
    took = _until(lambda: pair.holds(pair.h2), 8)
    assert took < 3 + 50 / 256 + 1.0


def test_graceful_ifvip_stop_hands_over_to_ucarp_without_waiting(pair: Pair) -> None:
    master = pair.ifvip(pair.h1, "198.51.100.1", "-k", "0", "-P")
    _until(lambda: pair.holds(pair.h1), 8)
    pair.ucarp(pair.h2, "198.51.100.2", "-k", "50")
    time.sleep(5)
    master.send_signal(signal.SIGTERM)
    master.wait(5)
    assert not pair.holds(pair.h1)
    # The bow-out advert (255/255): ucarp takes over on receipt, not after 3 s (plus its
    # pcap delivery delay of up to ~1 s).
    took = _until(lambda: pair.holds(pair.h2), 5)
    assert took < 2.5


def test_wrong_password_is_rejected_by_both(pair: Pair) -> None:
    pair.ifvip(pair.h1, "198.51.100.1", "-k", "0")
    pair.ucarp(pair.h2, "198.51.100.2", "-k", "0", "-p", "other")
    # Neither accepts the other's adverts: both become master.
    _until(lambda: pair.holds(pair.h1) and pair.holds(pair.h2), 10)
    # ifvip counts and logs each rejected advert; ucarp's refusal shows as its mastership.
    log = (pair.tmp / f"{pair.h1}.log").read_text()
    assert "bad digest from 198.51.100.2" in log
    assert "other" not in log and "secret" not in log
