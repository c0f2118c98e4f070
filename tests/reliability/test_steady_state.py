"""The dead man's switch must never hurt a live master: its VIP is there without a gap.

ifvip adds its VIPs with a finite lifetime (a few master-down intervals) that every advert
it sends extends, so the kernel drops the VIP of a dead or frozen daemon. For a live master
that means: the VIP is present at every instant, and its remaining valid lifetime never
falls much below the full lifetime (it is renewed once per advert interval). Sampled every
20 ms for 15 s on an undisturbed pair; the backup never holds it. (This caught an address
"replace" sent with NLM_F_EXCL: every refresh failed, and the VIP vanished for up to a
second every lifetime.)
"""

from __future__ import annotations

import time

import pytest

from tests.programs import AS_ROOT
from tests.reliability.harness import PairLab, available

FOREVER = 0xFFFFFFFF

pytestmark = [
    pytest.mark.root,
    AS_ROOT,
    pytest.mark.skipif(not available("ifvip"), reason="ifvip is not installed in the venv"),
]


def test_a_live_master_holds_its_vip_without_a_gap_and_keeps_it_fresh(lab: PairLab) -> None:
    lab.start_pair("ifvip")
    time.sleep(1.5)
    first = lab.vip_info("h1")
    assert first is not None
    lifetime = first["valid"]
    if lifetime == FOREVER:
        pytest.skip("this ifvip adds permanent VIPs (no dead man's switch)")
    absent = lowest = None
    end = time.monotonic() + 15.0
    while time.monotonic() < end:
        info = lab.vip_info("h1")
        if info is None:
            absent = (absent or 0) + 1
        else:
            lowest = info["valid"] if lowest is None else min(lowest, info["valid"])
        assert not lab.holds("h2")
        time.sleep(0.02)
    assert absent is None, f"the master's VIP was missing in {absent} samples"
    # Renewed with every advert (1 s): never more than ~2 s below the full lifetime.
    assert lowest is not None and lowest >= lifetime - 2, (lowest, lifetime)
