"""A CARP group and a VRRPv2 group in one ifvip process, on one interface, beside the real
keepalived 2.2.7 and ucarp 1.5.2: each group decodes with its own protocol's codec (both use IP
protocol 112, 224.0.0.18 and first byte 0x21), so neither is fooled by the other's packets."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.keepalived_lab import VIP4, Instance, KeepalivedLab, until
from tests.programs import INTEROP, NEEDS_KEEPALIVED, NEEDS_UCARP, UCARP

CARP_VIP = "198.51.100.101"

pytestmark = [*INTEROP, NEEDS_KEEPALIVED, NEEDS_UCARP]

BOTH = """
import asyncio, json, logging, sys
from ifvip.daemon.carp.config import build_carp_group
from ifvip.daemon.launch import RunPlan, run_plan
from ifvip.daemon.operations import OperationsConfig
from ifvip.daemon.vrrp.config import build_vrrp_group
logging.basicConfig(level=logging.INFO)
carp = build_carp_group(interface="eth0", srcip="198.51.100.1", vhid="52", password="secret",
                        passfile=None, addr="198.51.100.101", masklen="24", preempt=True)
vrrp = build_vrrp_group(interface="eth0", srcip="198.51.100.1", vrid="51", priority="200",
                        vips=["198.51.100.100/24"], version="2", auth_pass="secret12")
state = sys.argv[1]
plan = RunPlan(state, OperationsConfig(state_dir=state), (carp, vrrp))
snapshots = asyncio.run(run_plan(plan))
print(json.dumps({s.name: [s.state, s.counters] for s in snapshots}), flush=True)
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[KeepalivedLab]:
    with KeepalivedLab(["h1", "h2", "h3"], tmp_path) as built:
        yield built


def test_carp_and_vrrp_groups_in_one_process_each_with_its_own_decoder(
    lab: KeepalivedLab,
) -> None:
    out = lab.workdir / "both.out"
    with open(out, "wb") as stdout, open(lab.workdir / "both.err", "wb") as stderr:
        both = lab.lab.run(
            "h1",
            [sys.executable, "-c", BOTH, str(lab.workdir / "state")],
            stdout=stdout,
            stderr=stderr,
        )
    until(lambda: lab.holds("h1", VIP4) and lab.holds("h1", CARP_VIP), 15, "both MASTER")
    ka = lab.keepalived("h2", Instance(version=2, auth_pass="secret12"), priority=100)
    up, down = lab.workdir / "up", lab.workdir / "down"
    up.write_text(f'#!/bin/sh\nip addr add {CARP_VIP}/24 dev "$1"\n')
    down.write_text(f'#!/bin/sh\nip addr del {CARP_VIP}/24 dev "$1" 2>/dev/null || true\n')
    up.chmod(0o755)
    down.chmod(0o755)
    argv = [UCARP, "-i", "eth0", "-s", lab.address("h2"), "-v", "52", "-p", "secret"]
    argv += ["-a", CARP_VIP, "-k", "50", "-u", str(up), "-d", str(down), "-z"]
    with open(lab.workdir / "ucarp.log", "wb") as log:
        ucarp = lab.lab.run("h2", argv, stdout=log, stderr=log)
    # h3: masters of other groups, so their adverts reach h1's two groups: keepalived's
    # VRRPv2 (VRID 53) and ucarp's CARP (vhid 54).
    other = lab.keepalived(
        "h3",
        Instance(version=2, auth_pass="secret12"),
        priority=255,
        state="MASTER",
        vrid=53,
        vips=["198.51.100.103/24"],
    )
    up3, down3 = lab.workdir / "up3", lab.workdir / "down3"
    up3.write_text('#!/bin/sh\nip addr add 198.51.100.104/24 dev "$1"\n')
    down3.write_text('#!/bin/sh\nip addr del 198.51.100.104/24 dev "$1" 2>/dev/null || true\n')
    up3.chmod(0o755)
    down3.chmod(0o755)
    argv = [UCARP, "-i", "eth0", "-s", lab.address("h3"), "-v", "54", "-p", "secret"]
    argv += ["-a", "198.51.100.104", "-k", "0", "-u", str(up3), "-d", str(down3), "-z", "-P"]
    with open(lab.workdir / "ucarp3.log", "wb") as log:
        ucarp3 = lab.lab.run("h3", argv, stdout=log, stderr=log)
    time.sleep(6)
    assert ka.state() == "BACKUP" and ka.master_router() == lab.address("h1")
    assert not lab.holds("h2", VIP4) and not lab.holds("h2", CARP_VIP)
    assert lab.holds("h1", VIP4) and lab.holds("h1", CARP_VIP), (
        lab.workdir / "both.err"
    ).read_text()
    for proc in (ucarp, ucarp3):
        lab.lab.stop(proc)
    ka.stop()
    other.stop()
    both.send_signal(signal.SIGTERM)
    both.wait(15)
    result = json.loads(out.read_text().splitlines()[-1])
    _carp_state, carp = result["vhid 52"]
    _vrrp_state, vrrp = result["vrid 51"]
    # keepalived's VRRP adverts are malformed CARP; ucarp's CARP adverts are malformed VRRP.
    assert carp.get("dropped_malformed", 0) >= 3, carp
    assert vrrp.get("dropped_malformed", 0) >= 3, vrrp
    assert carp.get("adverts_received", 0) == 0 and vrrp.get("adverts_received", 0) == 0
    for log_text in (ka.log, other.log):
        assert "invalid" not in log_text.lower() and "bogus" not in log_text.lower()
