"""Invariants of sync groups (issue 17) over random histories of causes, adverts and timers.

Two members of one sync group (tests/unit/test_election_sync.py's `SyncedPair`: every step
followed by the sync layer until it settles), VRRP and CARP. After every event:

- the holds are exactly what `sync.decide()` says of the members' own causes (settled);
- VRRP: while a member cannot be MASTER at all, every other member is in FAULT
  (keepalived's vrrp_sync_fault); CARP: every other master advertises advskew 240;
- a member never holds itself.

And once every cause is cleared and the down timers run out (no peer), no hold is left and
both members are MASTER: the sync layer never keeps the group held by its own doing.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ifvip.election import carp, sync, vrrp
from ifvip.election.carp import AdvertReceived
from ifvip.election.events import (
    Demote,
    LinkChanged,
    Promote,
    RoleResult,
    Start,
    Timer,
    TimerFired,
)
from ifvip.election.vrrp import VrrpAdvertReceived
from tests.reliability._fuzz import fuzz
from tests.unit.test_election_sync import (
    C_IN,
    C_OUT,
    IN,
    ME,
    ME_IN,
    OUT,
    PEER,
    PEER_IN,
    VIP_IN,
    VIP_OUT,
    SyncedPair,
    _carp,
    _vrrp,
)

KINDS = ("link-down", "link-up", "demote", "promote", "fail", "down-timer", "backoff", "advert")


def _event(protocol: str, kind: str, member: int, level: int) -> object:
    if kind == "link-down":
        return LinkChanged(up=False)
    if kind == "link-up":
        return LinkChanged(up=True)
    if kind == "demote":
        return Demote("check failing")
    if kind == "promote":
        return Promote("checks healthy")
    if kind == "fail":
        return RoleResult(ok=False, reason="ifup eth1: exit 1")
    if kind == "down-timer":
        return TimerFired(Timer.MASTER_DOWN)
    if kind == "backoff":
        return TimerFired(Timer.FAULT_BACKOFF)
    if protocol == "vrrp":  # a peer's advert: leaving (0), lower or higher than our 200
        peer, vip = (PEER, VIP_OUT) if member == 0 else (PEER_IN, VIP_IN)
        return VrrpAdvertReceived(peer, (0, 1, 100, 250)[level], 100, (vip,))
    peer = PEER if member == 0 else PEER_IN
    # bow-out, much slower, slower, faster
    advbase, advskew = ((255, 255), (1, 255), (1, 100), (0, 10))[level]
    return AdvertReceived(peer, advbase, advskew)


def _check(pair: SyncedPair, protocol: str) -> None:
    module: Any = pair.module
    members = [module.sync_member(n, m) for n, m in pair.machines.items()]
    holds = sync.decide("dmz", members)
    for member in members:
        assert member.hold == holds[member.name], (member, holds)
        if member.hold is not None:
            assert member.name not in member.hold.reason
    for member in members:
        if member.cause is None or not member.cause.fault:
            continue
        for name, machine in pair.machines.items():
            if name == member.name:
                continue
            if protocol == "vrrp":  # FAULT: not MASTER, and not taking over
                assert str(machine.state) == "FAULT", (member, name)
            elif str(machine.state) == "MASTER":
                assert machine.advskew == carp.DEMOTED_SKEW


def _clear_and_settle(pair: SyncedPair, names: tuple[str, str], now: float) -> None:
    for name in names:
        for event in (
            LinkChanged(up=True),
            Promote("checks healthy"),
            TimerFired(Timer.FAULT_BACKOFF),
        ):
            now += 1.0
            pair.feed(name, event, now)
    for _ in range(3):  # a CARP link that just came up preempts nothing; timers do
        for name in names:
            now += 10.0
            pair.feed(name, TimerFired(Timer.MASTER_DOWN), now)
    assert [m.sync_hold for m in pair.machines.values()] == [None, None]
    assert [str(m.state) for m in pair.machines.values()] == ["MASTER", "MASTER"]


HISTORY = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, 1),
        st.integers(0, 3),
        st.floats(0.01, 5.0),
    ),
    max_size=40,
)


def _play(pair: SyncedPair, protocol: str, history: list[tuple[str, int, int, float]]) -> None:
    """Start both members, feed the history with the invariants checked after each event,
    then clear every cause and let the pair settle."""
    first, second = pair.machines
    names = (first, second)
    now = 0.0
    for name in names:
        pair.feed(name, Start(), now)
    for kind, member, level, delay in history:
        now += delay
        pair.feed(names[member], _event(protocol, kind, member, level), now)
        _check(pair, protocol)
    _clear_and_settle(pair, names, now)


@fuzz(300)
@given(history=HISTORY)
def test_vrrp_sync_group_invariants(history: list[tuple[str, int, int, float]]) -> None:
    members = {OUT: _vrrp(ME, VIP_OUT, 51), IN: _vrrp(ME_IN, VIP_IN, 52)}
    _play(SyncedPair(vrrp, members), "vrrp", history)


@fuzz(300)
@given(history=HISTORY)
def test_carp_sync_group_invariants(history: list[tuple[str, int, int, float]]) -> None:
    members = {C_OUT: _carp(ME, 51), C_IN: _carp(ME_IN, 52)}
    _play(SyncedPair(carp, members), "carp", history)
