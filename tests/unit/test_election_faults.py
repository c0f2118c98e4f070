"""Bow-outs beat preemption, and a failed MASTER action is a fault, not a MASTER (issue 13).

Both machines are driven with events and times only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from ifvip.election import carp as election
from ifvip.election import vrrp as election_vrrp
from ifvip.election.carp import BOW_OUT, AdvertReceived, CarpParams, CarpTimer, SendAdvert, State
from ifvip.election.events import (
    FAULT_BACKOFF_FIRST,
    FAULT_BACKOFF_MAX,
    ArmTimer,
    BecomeBackup,
    BecomeMaster,
    Demote,
    Promote,
    RoleResult,
    Start,
    Timer,
    TimerFired,
    fault_backoff,
)
from ifvip.election.vrrp import SendVrrpAdvert, VrrpAdvertReceived, VrrpParams

ME = ipaddress.IPv4Address("198.51.100.1")
PEER = ipaddress.IPv4Address("198.51.100.2")
VIP = ipaddress.IPv4Address("198.51.100.100")


def carp_backup(**params: object) -> election.Machine:
    defaults: dict[str, object] = {"vhid": 42, "own_ip": ME}
    machine, _ = election.step(
        election.initial(CarpParams(**{**defaults, **params})),  # type: ignore[arg-type]
        Start(),
        0.0,
    )
    return machine


def carp_master(**params: object) -> election.Machine:
    machine, _ = election.step(carp_backup(**params), TimerFired(Timer.MASTER_DOWN), 10.0)
    assert machine.state is State.MASTER
    return machine


def armed(actions: list[object], timer: Timer) -> list[float]:
    return [a.deadline for a in actions if isinstance(a, ArmTimer) and a.timer is timer]


# ------------------------------------------------------------------ CARP: bow-out first


@pytest.mark.parametrize("hold", [False, True])
@pytest.mark.parametrize("advskew", [0, 100])
def test_preempting_carp_backup_takes_a_bow_out_at_once(hold: bool, advskew: int) -> None:
    """Both hosts -P (the README's quick start): the master's SIGTERM bow-out (255/255) makes
    the backup master now, VIPs included, without waiting for a hand-back."""
    backup = carp_backup(preempt=True, hold_on_preempt=hold, advskew=advskew)
    machine, actions = election.step(backup, AdvertReceived(PEER, *BOW_OUT), 5.0)
    assert machine.state is State.MASTER
    assert not machine.handback
    assert any(isinstance(a, BecomeMaster) for a in actions)
    assert armed(actions, CarpTimer.HANDBACK) == []


def test_preempting_carp_backup_still_holds_for_a_live_slower_master() -> None:
    backup = carp_backup(preempt=True, hold_on_preempt=True)
    machine, actions = election.step(backup, AdvertReceived(PEER, 1, 100), 5.0)
    assert machine.state is State.MASTER and machine.handback
    assert not any(isinstance(a, BecomeMaster) for a in actions)
    assert armed(actions, CarpTimer.HANDBACK)


@pytest.mark.parametrize("preempt", [False, True])
def test_carp_demotion_bows_out_and_a_preempting_peer_takes_over(preempt: bool) -> None:
    master = carp_master()
    _, actions = election.step(master, Demote("check failed"), 20.0)
    (bow,) = [a for a in actions if isinstance(a, SendAdvert)]
    peer = carp_backup(preempt=preempt, advskew=50)
    peer, taken = election.step(peer, AdvertReceived(PEER, bow.advbase, bow.advskew), 20.001)
    assert peer.state is State.MASTER
    assert any(isinstance(a, BecomeMaster) for a in taken)


# ------------------------------------------------------------------ CARP: faults


def test_failed_carp_master_action_bows_out_and_sits_out_a_backoff() -> None:
    master = carp_master()
    machine, actions = election.step(master, RoleResult(ok=False, reason="eth1: File exists"), 11)
    assert machine.state is State.BACKUP
    assert machine.fault == "eth1: File exists"
    assert SendAdvert(*BOW_OUT) in actions
    assert any(isinstance(a, BecomeBackup) for a in actions)
    assert armed(actions, Timer.FAULT_BACKOFF) == [11 + FAULT_BACKOFF_FIRST]
    assert armed(actions, Timer.MASTER_DOWN) == []
    # During the backoff: neither the master-down timer nor a bow-out makes it master.
    for event in (TimerFired(Timer.MASTER_DOWN), AdvertReceived(PEER, *BOW_OUT)):
        after, more = election.step(machine, event, 20.0)
        assert after.state is State.BACKUP
        assert not any(isinstance(a, BecomeMaster) for a in more)
    # Promote (a check recovering) does not end the backoff either.
    after, more = election.step(replace(machine, demoted=True), Promote(), 21.0)
    assert armed(more, Timer.MASTER_DOWN) == []
    # The backoff's end makes it eligible: the master-down timer runs again.
    machine, actions = election.step(machine, TimerFired(Timer.FAULT_BACKOFF), 41.0)
    assert machine.fault is None
    assert armed(actions, Timer.MASTER_DOWN) == [41.0 + machine.master_down_interval()]


def test_carp_backoff_doubles_while_failing_and_resets_on_success() -> None:
    machine = carp_master()
    backoffs = []
    now = 10.0
    for _ in range(7):
        machine, actions = election.step(machine, RoleResult(ok=False, reason="x"), now)
        (deadline,) = armed(actions, Timer.FAULT_BACKOFF)
        backoffs.append(deadline - now)
        now = deadline
        machine, _ = election.step(machine, TimerFired(Timer.FAULT_BACKOFF), now)
        now += machine.master_down_interval()
        machine, _ = election.step(machine, TimerFired(Timer.MASTER_DOWN), now)
        assert machine.state is State.MASTER
    assert backoffs == [30, 60, 120, 240, 480, 600, 600]
    machine, _ = election.step(machine, RoleResult(ok=True), now)
    machine, actions = election.step(machine, RoleResult(ok=False, reason="x"), now)
    assert armed(actions, Timer.FAULT_BACKOFF) == [now + FAULT_BACKOFF_FIRST]


def test_carp_role_failure_after_the_tenure_ended_is_ignored() -> None:
    backup = carp_backup()
    machine, actions = election.step(backup, RoleResult(ok=False, reason="late"), 3.0)
    assert machine == backup and actions == []


def test_fault_backoff_formula() -> None:
    assert [fault_backoff(n) for n in (1, 2, 3, 5, 6, 50)] == [30, 60, 120, 480, 600, 600]
    assert fault_backoff(99) == FAULT_BACKOFF_MAX


# ------------------------------------------------------------------ VRRP


def vrrp_backup(**params: object) -> election_vrrp.VrrpMachine:
    base: dict[str, object] = {"vrid": 51, "own_ip": ME, "addresses": (VIP,)}
    machine, _ = election_vrrp.step(
        election_vrrp.initial(VrrpParams(**{**base, **params})),  # type: ignore[arg-type]
        Start(),
        0.0,
    )
    return machine


def vrrp_master(**params: object) -> election_vrrp.VrrpMachine:
    machine, _ = election_vrrp.step(vrrp_backup(**params), TimerFired(Timer.MASTER_DOWN), 10.0)
    assert machine.state is election_vrrp.State.MASTER
    return machine


@pytest.mark.parametrize(("preempt", "preempt_delay"), [(False, 0.0), (True, 0.0), (True, 60.0)])
def test_vrrp_backup_takes_a_priority_0_advert_within_skew(
    preempt: bool, preempt_delay: float
) -> None:
    """A leaving master's priority 0 sets the down timer to Skew_Time, preempting or not,
    whatever the preempt delay (which is for a live master of lower priority)."""
    backup = vrrp_backup(priority=100, preempt=preempt, preempt_delay=preempt_delay)
    leaving = VrrpAdvertReceived(PEER, 0, 100, (VIP,))
    machine, actions = election_vrrp.step(backup, leaving, 5.0)
    (deadline,) = armed(actions, Timer.MASTER_DOWN)
    assert deadline == pytest.approx(5.0 + machine.skew_time_us() / 1e6)
    machine, actions = election_vrrp.step(machine, TimerFired(Timer.MASTER_DOWN), deadline)
    assert machine.state is election_vrrp.State.MASTER


def test_failed_vrrp_master_action_is_a_fault_with_backoff() -> None:
    master = vrrp_master()
    machine, actions = election_vrrp.step(master, RoleResult(ok=False, reason="ifup: x"), 11.0)
    assert machine.state is election_vrrp.State.FAULT
    assert machine.fault == "ifup: x"
    assert SendVrrpAdvert(0, 100) in actions
    assert any(isinstance(a, BecomeBackup) for a in actions)
    assert armed(actions, Timer.FAULT_BACKOFF) == [11.0 + FAULT_BACKOFF_FIRST]
    # Still FAULT when a check recovers or the link comes back during the backoff.
    for event in (Promote(), election.LinkChanged(up=True)):
        after, _ = election_vrrp.step(machine, event, 20.0)
        assert after.state is election_vrrp.State.FAULT
    machine, actions = election_vrrp.step(machine, TimerFired(Timer.FAULT_BACKOFF), 41.0)
    assert machine.state is election_vrrp.State.BACKUP
    assert machine.fault is None
    assert armed(actions, Timer.MASTER_DOWN)


def test_vrrp_backoff_doubles_and_resets() -> None:
    machine = vrrp_master()
    now = 10.0
    got = []
    for _ in range(3):
        machine, actions = election_vrrp.step(machine, RoleResult(ok=False, reason="x"), now)
        (deadline,) = armed(actions, Timer.FAULT_BACKOFF)
        got.append(deadline - now)
        now = deadline
        machine, _ = election_vrrp.step(machine, TimerFired(Timer.FAULT_BACKOFF), now)
        machine, _ = election_vrrp.step(machine, TimerFired(Timer.MASTER_DOWN), now + 4)
        now += 4
    assert got == [30, 60, 120]
    machine, _ = election_vrrp.step(machine, RoleResult(ok=True), now)
    assert machine.failures == 0


def test_vrrp_demoted_master_in_fault_keeps_fault_after_backoff_if_still_demoted() -> None:
    master = vrrp_master()
    machine, _ = election_vrrp.step(master, RoleResult(ok=False, reason="x"), 11.0)
    machine, _ = election_vrrp.step(machine, Demote("SIGUSR2"), 12.0)
    machine, _ = election_vrrp.step(machine, TimerFired(Timer.FAULT_BACKOFF), 41.0)
    assert machine.state is election_vrrp.State.FAULT
    machine, _ = election_vrrp.step(machine, Promote(), 42.0)
    assert machine.state is election_vrrp.State.BACKUP


# ------------------------------------------------------------------ CARP: a flapping link


def test_carp_preempts_only_after_its_link_was_up_a_whole_master_down_interval() -> None:
    """A preferred node whose carrier flaps must not take the VIP back on every brief
    link-up (issue 18: nobody held it for 10 s of 12): it preempts once the link has been
    up for a master-down interval, and hearing the master meanwhile keeps it BACKUP."""
    machine = carp_backup(preempt=True)
    machine, _ = election.step(machine, election.LinkChanged(up=False), 1.0)
    machine, _ = election.step(machine, election.LinkChanged(up=True), 1.4)
    slower = AdvertReceived(PEER, 1, 100)
    early, actions = election.step(machine, slower, 2.0)
    assert early.state is State.BACKUP
    assert armed(actions, Timer.MASTER_DOWN) == [2.0 + machine.master_down_interval()]
    settled = 1.4 + machine.master_down_interval()
    late, actions = election.step(early, slower, settled)
    assert late.state is State.MASTER


def test_a_bow_out_is_taken_even_right_after_a_link_up() -> None:
    machine = carp_backup(preempt=True)
    machine, _ = election.step(machine, election.LinkChanged(up=False), 1.0)
    machine, _ = election.step(machine, election.LinkChanged(up=True), 1.4)
    machine, _ = election.step(machine, AdvertReceived(PEER, *BOW_OUT), 1.5)
    assert machine.state is State.MASTER
