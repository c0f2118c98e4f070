"""Sync groups (issue 17): members are MASTER together or not at all.

The pure layer (election/sync.py) and both machines, driven with events and times only.
`SyncedPair` steps two members of one sync group the way daemon/runtime.py does: after
every step it feeds what `sync.feeds()` returns until nothing changes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from ifvip.election import carp, sync, vrrp
from ifvip.election.carp import BOW_OUT, AdvertReceived, CarpParams, SendAdvert
from ifvip.election.events import (
    ArmTimer,
    BecomeBackup,
    BecomeMaster,
    Demote,
    LinkChanged,
    Log,
    Promote,
    RoleResult,
    Start,
    SyncHold,
    SyncMaster,
    SyncRelease,
    Timer,
    TimerFired,
)
from ifvip.election.sync import Cause, Member
from ifvip.election.vrrp import SendVrrpAdvert, VrrpAdvertReceived, VrrpParams

ME = ipaddress.IPv4Address("198.51.100.1")
PEER = ipaddress.IPv4Address("198.51.100.2")
ME_IN = ipaddress.IPv4Address("203.0.113.1")
PEER_IN = ipaddress.IPv4Address("203.0.113.2")
VIP_OUT = ipaddress.IPv4Address("198.51.100.100")
VIP_IN = ipaddress.IPv4Address("203.0.113.100")
OUT, IN = "vrid 51 on eth0", "vrid 52 on eth1"

# ------------------------------------------------------------------ the pure decision


def test_no_cause_holds_no_member() -> None:
    members = [Member(OUT), Member(IN)]
    assert sync.decide("dmz", members) == {OUT: None, IN: None}
    assert sync.feeds("dmz", members) == []


def test_a_member_that_cannot_be_master_holds_every_other_but_not_itself() -> None:
    third = "vhid 7 on eth2"
    members = [Member(OUT), Member(IN, Cause("lost its carrier")), Member(third)]
    holds = sync.decide("dmz", members)
    expected = SyncHold("sync group dmz: vrid 52 on eth1 lost its carrier", fault=True)
    assert holds == {OUT: expected, IN: None, third: expected}


def test_a_fault_names_the_hold_before_a_yield() -> None:
    members = [
        Member(OUT, Cause("yielded to a preferred master 198.51.100.2", fault=False)),
        Member(IN, Cause("is demoted (SIGUSR2)")),
        Member("vrid 53 on eth2"),
    ]
    holds = sync.decide("dmz", members)
    assert holds["vrid 53 on eth2"] == SyncHold(
        "sync group dmz: vrid 52 on eth1 is demoted (SIGUSR2)"
    )
    # The demoted member is held by the yield alone: keepalived's vrrp_sync_backup.
    assert holds[IN] == SyncHold(
        "sync group dmz: vrid 51 on eth0 yielded to a preferred master 198.51.100.2", fault=False
    )


def test_two_members_with_causes_hold_each_other() -> None:
    members = [Member(OUT, Cause("lost its carrier")), Member(IN, Cause("is demoted (x)"))]
    holds = sync.decide("dmz", members)
    assert holds[OUT] == SyncHold("sync group dmz: vrid 52 on eth1 is demoted (x)")
    assert holds[IN] == SyncHold("sync group dmz: vrid 51 on eth0 lost its carrier")


def test_feeds_only_change_what_differs() -> None:
    hold = SyncHold("sync group dmz: vrid 52 on eth1 lost its carrier")
    held = [Member(OUT, None, hold), Member(IN, Cause("lost its carrier"))]
    assert sync.feeds("dmz", held) == []
    cleared = [Member(OUT, None, hold), Member(IN)]
    assert sync.feeds("dmz", cleared) == [
        (OUT, SyncRelease("sync group dmz: every member may be MASTER again"))
    ]


# ------------------------------------------------------------------ a synced pair


@dataclass
class SyncedPair:
    """Two members of sync group dmz in one process: `outside` on eth0, `inside` on eth1."""

    module: Any  # election.carp or election.vrrp
    machines: dict[str, Any]
    actions: dict[str, list[object]] = field(default_factory=dict)

    def feed(self, name: str, event: object, now: float) -> dict[str, list[object]]:
        """Step one member, then the sync layer; the actions of every member it stepped."""
        self.actions = {n: [] for n in self.machines}
        self._step(name, event, now)
        for _ in range(8):
            members = [self.module.sync_member(n, m) for n, m in self.machines.items()]
            found = sync.feeds("dmz", members)
            if not found:
                return self.actions
            for member, change in found:
                self._step(member, change, now)
        raise AssertionError("the sync group does not settle")

    def _step(self, name: str, event: object, now: float) -> None:
        self.machines[name], done = self.module.step(self.machines[name], event, now)
        self.actions[name] += done

    def state(self, name: str) -> str:
        return str(self.machines[name].state)

    def hold(self, name: str) -> SyncHold | None:
        hold: SyncHold | None = self.machines[name].sync_hold
        return hold


def _vrrp(own: ipaddress.IPv4Address, vip: ipaddress.IPv4Address, vrid: int) -> vrrp.VrrpMachine:
    params = VrrpParams(vrid=vrid, own_ip=own, addresses=(vip,), priority=200, synced=True)
    return vrrp.initial(params)


def vrrp_masters() -> SyncedPair:
    pair = SyncedPair(vrrp, {OUT: _vrrp(ME, VIP_OUT, 51), IN: _vrrp(ME_IN, VIP_IN, 52)})
    for name in (OUT, IN):
        pair.feed(name, Start(), 0.0)
    pair.feed(OUT, TimerFired(Timer.MASTER_DOWN), 4.0)
    # keepalived's vrrp_sync_can_goto_master: one member's timer only makes it want MASTER...
    assert pair.state(OUT) == "BACKUP" and pair.machines[OUT].wants_master
    done = pair.feed(IN, TimerFired(Timer.MASTER_DOWN), 4.0)
    # ...and they take it together when every member wants it (vrrp_sync_master).
    assert pair.state(OUT) == pair.state(IN) == "MASTER"
    assert any(isinstance(a, BecomeMaster) for a in done[OUT])
    return pair


def sent(actions: list[object]) -> list[int]:
    return [a.priority for a in actions if isinstance(a, SendVrrpAdvert)]


def logs(actions: list[object]) -> list[str]:
    return [a.message for a in actions if isinstance(a, Log)]


# ------------------------------------------------------------------ VRRP: vrrp_sync_fault

CAUSES: dict[str, tuple[Callable[[], object], Callable[[], object], str]] = {
    "carrier": (lambda: LinkChanged(up=False), lambda: LinkChanged(up=True), "lost its carrier"),
    "check": (
        lambda: Demote("check tcp *:80 failing"),
        lambda: Promote("checks healthy"),
        "is demoted (check tcp *:80 failing)",
    ),
    "sigusr2": (lambda: Demote("SIGUSR2"), lambda: Promote("SIGUSR2: promoted"), "is demoted"),
}


@pytest.mark.parametrize("cause", sorted(CAUSES))
def test_vrrp_a_member_that_cannot_be_master_takes_the_other_to_fault(cause: str) -> None:
    pair = vrrp_masters()
    fail, _, text = CAUSES[cause]
    done = pair.feed(IN, fail(), 10.0)
    assert pair.state(IN) == "FAULT"
    # keepalived's vrrp_sync_fault: the other master sends priority 0 and releases at once.
    assert pair.state(OUT) == "FAULT"
    assert sent(done[OUT]) == [0]
    assert any(isinstance(a, BecomeBackup) for a in done[OUT])
    hold = pair.hold(OUT)
    assert hold is not None and hold.fault
    assert hold.reason.startswith(f"sync group dmz: vrid 52 on eth1 {text}")
    # Named once, in the transition, not at every advert.
    assert sum(hold.reason in line for line in logs(done[OUT])) == 2  # held: + FAULT line
    assert pair.hold(IN) is None


@pytest.mark.parametrize("cause", sorted(CAUSES))
def test_vrrp_members_come_back_together_and_the_hold_does_not_feed_back(cause: str) -> None:
    pair = vrrp_masters()
    fail, clear, _ = CAUSES[cause]
    pair.feed(IN, fail(), 10.0)
    done = pair.feed(IN, clear(), 20.0)
    # The member held by the sync layer does not keep the group held: both are released.
    assert pair.hold(OUT) is None and pair.hold(IN) is None
    assert pair.state(OUT) == pair.state(IN) == "BACKUP"
    downs = {n: [a.deadline for a in done[n] if isinstance(a, ArmTimer)] for n in (OUT, IN)}
    assert downs[OUT] == downs[IN]  # one Master_Down_Interval from the same instant
    pair.feed(OUT, TimerFired(Timer.MASTER_DOWN), downs[OUT][-1])
    assert pair.state(OUT) == "BACKUP"  # not alone
    pair.feed(IN, TimerFired(Timer.MASTER_DOWN), downs[IN][-1])
    assert pair.state(OUT) == pair.state(IN) == "MASTER"


def test_vrrp_a_failed_master_action_holds_the_group_for_its_backoff() -> None:
    pair = vrrp_masters()
    done = pair.feed(IN, RoleResult(ok=False, reason="ifup eth1:1: exit 1"), 10.0)
    assert pair.state(IN) == pair.state(OUT) == "FAULT"
    hold = pair.hold(OUT)
    assert hold is not None
    assert hold.reason == (
        "sync group dmz: vrid 52 on eth1 failed its MASTER action (ifup eth1:1: exit 1)"
    )
    assert sent(done[OUT]) == [0]
    pair.feed(IN, TimerFired(Timer.FAULT_BACKOFF), 40.0)
    assert pair.hold(OUT) is None
    assert pair.state(OUT) == pair.state(IN) == "BACKUP"


def test_vrrp_a_held_backup_enters_fault_and_sends_nothing() -> None:
    pair = SyncedPair(vrrp, {OUT: _vrrp(ME, VIP_OUT, 51), IN: _vrrp(ME_IN, VIP_IN, 52)})
    for name in (OUT, IN):
        pair.feed(name, Start(), 0.0)
    done = pair.feed(IN, LinkChanged(up=False), 1.0)
    assert pair.state(OUT) == "FAULT"
    assert sent(done[OUT]) == []
    # In FAULT its down timer does nothing: it cannot take over alone.
    pair.feed(OUT, TimerFired(Timer.MASTER_DOWN), 5.0)
    assert pair.state(OUT) == "FAULT"


def test_vrrp_a_member_held_at_start_starts_in_fault() -> None:
    pair = SyncedPair(vrrp, {OUT: _vrrp(ME, VIP_OUT, 51), IN: _vrrp(ME_IN, VIP_IN, 52)})
    pair.feed(IN, LinkChanged(up=False), 0.0)  # before Start, as the runtime does
    pair.feed(IN, Start(), 0.0)
    pair.feed(OUT, Start(), 0.0)
    assert pair.state(OUT) == pair.state(IN) == "FAULT"


# ------------------------------------------------------------------ VRRP: vrrp_sync_backup


def test_vrrp_a_preferred_master_takes_the_other_master_to_backup_without_priority_zero() -> None:
    pair = vrrp_masters()
    better = VrrpAdvertReceived(PEER_IN, 250, 100, (VIP_IN,))
    done = pair.feed(IN, better, 10.0)
    assert pair.state(IN) == pair.state(OUT) == "BACKUP"
    assert sent(done[OUT]) == []  # vrrp_state_leave_master(isync, false): no priority 0
    assert any(isinstance(a, BecomeBackup) for a in done[OUT])
    hold = pair.hold(OUT)
    assert hold == SyncHold(
        "sync group dmz: vrid 52 on eth1 yielded to a preferred master 203.0.113.2", fault=False
    )
    # vrrp_sync_can_goto_master: its down timer does not make it master alone.
    done = pair.feed(OUT, TimerFired(Timer.MASTER_DOWN), 14.0)
    assert pair.state(OUT) == "BACKUP"
    assert [a for a in done[OUT] if isinstance(a, ArmTimer)]
    assert not [a for a in done[OUT] if isinstance(a, BecomeMaster)]
    # The peer goes away: when the member that yielded wants MASTER again, both take it at
    # once (the other has wanted it since its own timer ran out).
    done = pair.feed(IN, TimerFired(Timer.MASTER_DOWN), 20.0)
    assert pair.state(IN) == pair.state(OUT) == "MASTER"
    assert pair.hold(OUT) is None
    assert any(isinstance(a, BecomeMaster) for a in done[OUT])


def test_vrrp_a_member_that_hears_its_master_again_no_longer_wants_master() -> None:
    pair = SyncedPair(vrrp, {OUT: _vrrp(ME, VIP_OUT, 51), IN: _vrrp(ME_IN, VIP_IN, 52)})
    for name in (OUT, IN):
        pair.feed(name, Start(), 0.0)
    pair.feed(OUT, TimerFired(Timer.MASTER_DOWN), 4.0)
    pair.feed(OUT, VrrpAdvertReceived(PEER, 250, 100, (VIP_OUT,)), 4.5)
    assert not pair.machines[OUT].wants_master
    pair.feed(IN, TimerFired(Timer.MASTER_DOWN), 4.6)
    # IN wants MASTER but OUT's peer is alive: nobody takes over alone.
    assert pair.state(OUT) == pair.state(IN) == "BACKUP"
    assert pair.machines[IN].wants_master


def test_sync_master_once_every_member_is_master_or_wants_to_be() -> None:
    wants = Member(OUT, wants_master=True)
    assert sync.feeds("dmz", [wants, Member(IN)]) == []
    master = SyncMaster("sync group dmz: every member wants MASTER")
    assert sync.feeds("dmz", [wants, Member(IN, state="MASTER")]) == [(OUT, master)]
    both = [wants, Member(IN, wants_master=True)]
    assert sync.feeds("dmz", both) == [(OUT, master), (IN, master)]
    # A hold to change comes first.
    held = [
        Member(OUT, Cause("lost its carrier"), wants_master=True),
        Member(IN, wants_master=True),
    ]
    assert [type(e) for _, e in sync.feeds("dmz", held)] == [SyncHold]


# ------------------------------------------------------------------ CARP: OpenBSD's demotion


def _carp(own: ipaddress.IPv4Address, vhid: int, *, preempt: bool = True) -> carp.Machine:
    params = CarpParams(vhid=vhid, own_ip=own, advskew=0, preempt=preempt, synced=True)
    return carp.initial(params)


C_OUT, C_IN = "vhid 51 on eth0", "vhid 52 on eth1"


def carp_masters(*, preempt: bool = True) -> SyncedPair:
    machines = {C_OUT: _carp(ME, 51, preempt=preempt), C_IN: _carp(ME_IN, 52, preempt=preempt)}
    pair = SyncedPair(carp, machines)
    for name in (C_OUT, C_IN):
        pair.feed(name, Start(), 0.0)
        pair.feed(name, TimerFired(Timer.MASTER_DOWN), 4.0)
    assert pair.state(C_OUT) == pair.state(C_IN) == "MASTER"
    return pair


def adverts(actions: list[object]) -> list[tuple[int, int]]:
    return [(a.advbase, a.advskew) for a in actions if isinstance(a, SendAdvert)]


@pytest.mark.parametrize("cause", sorted(CAUSES))
def test_carp_the_member_that_cannot_be_master_bows_out_the_other_advertises_240(
    cause: str,
) -> None:
    pair = carp_masters()
    fail, clear, text = CAUSES[cause]
    done = pair.feed(C_IN, fail(), 10.0)
    if cause != "carrier":  # a link that is down sends nothing
        assert adverts(done[C_IN]) == [BOW_OUT]
    assert pair.state(C_IN) == "BACKUP"
    # The other member stays MASTER, but says at once that it is a slower one now.
    assert pair.state(C_OUT) == "MASTER"
    assert adverts(done[C_OUT]) == [(1, 240)]
    assert pair.machines[C_OUT].advskew == 240
    hold = pair.hold(C_OUT)
    assert hold is not None and hold.reason.startswith(f"sync group dmz: vhid 52 on eth1 {text}")
    # A preempting peer (ucarp -P, skew 100) takes over: the held member yields to it...
    done = pair.feed(C_OUT, AdvertReceived(PEER, 1, 100), 11.0)
    assert pair.state(C_OUT) == "BACKUP"
    # ...without that yield keeping the group held once the cause clears (no loop).
    assert carp.sync_cause(pair.machines[C_OUT]) is None
    done = pair.feed(C_IN, clear(), 20.0)
    assert pair.hold(C_OUT) is None and pair.hold(C_IN) is None
    assert pair.machines[C_OUT].advskew == 0
    # Back with preemption, together: the outside member would preempt at once...
    pair.feed(C_OUT, AdvertReceived(PEER, 1, 100), 21.0)
    assert pair.state(C_OUT) == "BACKUP"
    assert pair.machines[C_OUT].wants is not None
    # ...and does when the inside one would too (its link settled: a master-down interval).
    done = pair.feed(C_IN, AdvertReceived(PEER_IN, 1, 100), 23.5)
    assert pair.state(C_OUT) == pair.state(C_IN) == "MASTER"
    assert any(isinstance(a, BecomeMaster) for a in done[C_OUT])
    assert any(isinstance(a, BecomeMaster) for a in done[C_IN])


def test_carp_a_held_backup_does_not_preempt_a_faster_peer() -> None:
    pair = carp_masters()
    pair.feed(C_IN, LinkChanged(up=False), 10.0)
    pair.feed(C_OUT, AdvertReceived(PEER, 1, 100), 11.0)
    assert pair.state(C_OUT) == "BACKUP"
    # Held at 240, a peer at 100 is faster: no preemption while the cause lasts.
    done = pair.feed(C_OUT, AdvertReceived(PEER, 1, 100), 12.0)
    assert pair.state(C_OUT) == "BACKUP"
    assert not [a for a in done[C_OUT] if isinstance(a, BecomeMaster)]


def test_carp_a_member_that_yields_to_a_preferred_master_lowers_the_other() -> None:
    pair = carp_masters()
    done = pair.feed(C_IN, AdvertReceived(PEER_IN, 0, 10), 10.0)  # a faster peer
    assert pair.state(C_IN) == "BACKUP"
    hold = pair.hold(C_OUT)
    assert hold == SyncHold(
        "sync group dmz: vhid 52 on eth1 yielded to a preferred master 203.0.113.2", fault=False
    )
    assert adverts(done[C_OUT]) == [(1, 240)]
    # It takes the VIP again when the peer goes: the yield ends, the hold with it.
    pair.feed(C_IN, TimerFired(Timer.MASTER_DOWN), 20.0)
    assert pair.state(C_IN) == "MASTER"
    assert pair.hold(C_OUT) is None
    assert pair.machines[C_OUT].advskew == 0


def test_carp_release_readvertises_the_configured_skew() -> None:
    pair = carp_masters()
    pair.feed(C_IN, Demote("SIGUSR2"), 10.0)
    done = pair.feed(C_IN, Promote("SIGUSR2: promoted"), 12.0)
    assert adverts(done[C_OUT]) == [(1, 0)]
    assert pair.state(C_OUT) == "MASTER"


def test_carp_a_synced_member_does_not_preempt_alone() -> None:
    """Preempting a live, slower master waits for every member of the sync group; a faster
    master heard meanwhile ends the wish."""
    pair = SyncedPair(carp, {C_OUT: _carp(ME, 51), C_IN: _carp(ME_IN, 52)})
    for name in (C_OUT, C_IN):
        pair.feed(name, Start(), 0.0)
    pair.feed(C_OUT, AdvertReceived(PEER, 1, 100), 1.0)
    assert pair.state(C_OUT) == "BACKUP" and pair.machines[C_OUT].wants is not None
    pair.feed(C_IN, AdvertReceived(PEER_IN, 0, 10), 1.1)  # a faster master inside
    assert pair.state(C_OUT) == pair.state(C_IN) == "BACKUP"
    pair.feed(C_OUT, AdvertReceived(PEER, 0, 10), 2.0)
    assert pair.machines[C_OUT].wants is None
    # A master-down timer is not gated: a member whose peer is gone takes over at once.
    pair.feed(C_IN, TimerFired(Timer.MASTER_DOWN), 5.0)
    assert pair.state(C_IN) == "MASTER"


def test_carp_a_member_that_wants_to_preempt_but_loses_its_link_is_not_offered_master() -> None:
    """Found by tests/reliability/test_fuzz_sync.py: a wish that SyncMaster cannot act on
    (the member lost its link) must not count, or the sync layer offers it for ever."""
    pair = SyncedPair(carp, {C_OUT: _carp(ME, 51), C_IN: _carp(ME_IN, 52)})
    for name in (C_OUT, C_IN):
        pair.feed(name, Start(), 0.0)
    pair.feed(C_IN, AdvertReceived(PEER_IN, 1, 255), 1.0)  # a slower master: it would preempt
    pair.feed(C_IN, LinkChanged(up=False), 2.0)
    pair.feed(C_OUT, TimerFired(Timer.MASTER_DOWN), 3.0)  # settles (SyncedPair checks it)
    assert pair.state(C_OUT) == "MASTER" and pair.machines[C_OUT].advskew == 240
    assert not carp.sync_member(C_IN, pair.machines[C_IN]).wants_master
