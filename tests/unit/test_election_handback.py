"""hold_on_preempt: a preempting node advertises first and takes the VIPs when the old master
answers (its yielding advert) or after one of the old master's intervals."""

from __future__ import annotations

import ipaddress

import pytest

from ifvip.election.carp import (
    AdvertReceived,
    CarpParams,
    CarpTimer,
    SendAdvert,
    State,
    initial,
    step,
)
from ifvip.election.events import (
    Announce,
    ArmTimer,
    BecomeBackup,
    BecomeMaster,
    Demote,
    Shutdown,
    Start,
    TimerFired,
)

OLD = ipaddress.IPv4Address("198.51.100.2")


def _preempting(hold: bool = True) -> tuple[object, list[object]]:
    params = CarpParams(
        vhid=42, own_ip=ipaddress.IPv4Address("198.51.100.1"), preempt=True, hold_on_preempt=hold
    )
    machine, _ = step(initial(params), Start(), 0.0)
    return step(machine, AdvertReceived(OLD, 1, 50), 1.0)


def test_the_preempting_advert_goes_first_and_the_vips_wait() -> None:
    machine, actions = _preempting()
    assert machine.state is State.MASTER and machine.handback  # type: ignore[attr-defined]
    assert SendAdvert(1, 0) in actions
    assert not any(isinstance(a, BecomeMaster | Announce) for a in actions)
    (wait,) = [a for a in actions if isinstance(a, ArmTimer) and a.timer is CarpTimer.HANDBACK]
    assert wait.deadline == pytest.approx(1.0 + 1 + 0.195312 + 0.1)  # ucarp's integer µs


def test_the_old_masters_answer_hands_the_vips_over() -> None:
    machine, _ = _preempting()
    machine, actions = step(machine, AdvertReceived(OLD, 1, 50), 1.002)  # type: ignore[arg-type]
    assert [type(a) for a in actions if isinstance(a, BecomeMaster | Announce)] == [
        BecomeMaster,
        Announce,
    ]
    assert not machine.handback and machine.delayed_garp == 2
    # From then on an old master's advert is the ordinary "non-preferred master": answered
    # at once, and the VIP announced again.
    machine, actions = step(machine, AdvertReceived(OLD, 1, 50), 2.0)
    assert actions == [SendAdvert(1, 0), Announce()]


def test_silence_of_the_old_master_hands_over_after_its_interval() -> None:
    machine, _ = _preempting()
    machine, actions = step(machine, TimerFired(CarpTimer.HANDBACK), 2.3)  # type: ignore[arg-type]
    assert BecomeMaster() in actions and not machine.handback
    machine, actions = step(machine, TimerFired(CarpTimer.HANDBACK), 2.4)
    assert actions == []


def test_a_faster_answer_makes_it_step_down_and_a_demotion_bows_out() -> None:
    machine, _ = _preempting()
    down, actions = step(machine, AdvertReceived(OLD, 0, 10), 1.01)  # type: ignore[arg-type]
    assert down.state is State.BACKUP and not down.handback and BecomeBackup() in actions
    assert not any(isinstance(a, BecomeMaster) for a in actions)
    demoted, actions = step(machine, Demote(), 1.01)  # type: ignore[arg-type]
    assert demoted.state is State.BACKUP and SendAdvert(255, 255) in actions
    stopped, actions = step(machine, Shutdown(), 1.01)  # type: ignore[arg-type]
    assert not stopped.handback and SendAdvert(255, 255) in actions


def test_without_hold_preemption_takes_at_once_as_ucarp() -> None:
    machine, actions = _preempting(hold=False)
    assert BecomeMaster() in actions and not machine.handback  # type: ignore[attr-defined]
