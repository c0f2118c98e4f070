"""The CARP election table, driven by events and times only (specs/carp.md §3)."""

from __future__ import annotations

import heapq
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ifvip.election.carp import (
    ANSWERS_PER_INTERVAL,
    TRANSITIONS,
    AdvertReceived,
    CarpParams,
    Machine,
    SendAdvert,
    State,
    change_state,
    initial,
    step,
    ucarp_ip_key,
)
from ifvip.election.events import (
    Action,
    Announce,
    ArmTimer,
    BecomeBackup,
    BecomeMaster,
    CancelTimer,
    Demote,
    Exit,
    LinkChanged,
    Promote,
    SendResult,
    Shutdown,
    Start,
    Timer,
    TimerFired,
)

A = ipaddress.IPv4Address("198.51.100.1")
B = ipaddress.IPv4Address("198.51.100.2")


def _started(**params: object) -> tuple[Machine, list[Action]]:
    defaults: dict[str, object] = {"vhid": 42, "own_ip": A}
    return step(initial(CarpParams(**{**defaults, **params})), Start(), 0.0)  # type: ignore[arg-type]


def _kinds(actions: list[Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


def _deadline(actions: list[Action], timer: Timer) -> float:
    (armed,) = [a for a in actions if isinstance(a, ArmTimer) and a.timer is timer]
    return armed.deadline


def test_start_runs_the_downscript_and_arms_master_down() -> None:
    machine, actions = _started(advskew=44)
    assert machine.state is State.BACKUP
    assert BecomeBackup(initial=True) in actions
    # advbase * deadratio + advskew/256: 3 s + 171875 µs.
    assert _deadline(actions, Timer.MASTER_DOWN) == pytest.approx(3.171875)


def test_neutral_start_leaves_the_vip_alone() -> None:
    _, actions = _started(neutral=True)
    assert not any(isinstance(a, BecomeBackup) for a in actions)


def test_master_down_makes_master_with_script_garp_then_advert() -> None:
    machine, _ = _started()
    machine, actions = step(machine, TimerFired(Timer.MASTER_DOWN), 3.0)
    assert machine.state is State.MASTER
    order = _kinds(actions)
    assert order.index("BecomeMaster") < order.index("Announce") < order.index("SendAdvert")
    assert _deadline(actions, Timer.ADVERT) == pytest.approx(4.0)
    assert any("Entering MASTER STATE" in a.message for a in actions if hasattr(a, "message"))


def test_second_garp_goes_out_with_the_second_advert() -> None:
    machine, _ = _started()
    machine, _ = step(machine, TimerFired(Timer.MASTER_DOWN), 3.0)
    machine, first = step(machine, TimerFired(Timer.ADVERT), 4.0)
    machine, second = step(machine, TimerFired(Timer.ADVERT), 5.0)
    _, third = step(machine, TimerFired(Timer.ADVERT), 6.0)
    assert Announce() not in first
    assert Announce() in second
    assert Announce() not in third


def test_backup_rearms_on_adverts_and_equal_timing_never_preempts() -> None:
    machine, _ = _started(preempt=True)
    machine, actions = step(machine, AdvertReceived(B, 1, 0), 1.5)
    assert machine.state is State.BACKUP
    assert _deadline(actions, Timer.MASTER_DOWN) == pytest.approx(4.5)


def test_preempt_takes_over_a_slower_master_at_once() -> None:
    machine, _ = _started(preempt=True)
    machine, _ = step(machine, AdvertReceived(B, 1, 100), 1.0)
    assert machine.state is State.MASTER


def test_without_preempt_a_slower_master_stays() -> None:
    machine, _ = _started()
    machine, _ = step(machine, AdvertReceived(B, 1, 100), 1.0)
    assert machine.state is State.BACKUP


def test_bow_out_advert_makes_backup_take_over_without_preempt() -> None:
    machine, _ = _started()
    machine, _ = step(machine, AdvertReceived(B, 255, 255), 1.0)
    assert machine.state is State.MASTER


def _master(**params: object) -> Machine:
    machine, _ = _started(**params)
    machine, _ = step(machine, TimerFired(Timer.MASTER_DOWN), 3.0)
    assert machine.state is State.MASTER
    return machine


def test_master_yields_to_a_faster_peer_with_one_last_advert() -> None:
    machine = _master(advskew=10)
    machine, actions = step(machine, AdvertReceived(B, 1, 0), 3.5)
    assert machine.state is State.BACKUP
    order = _kinds(actions)
    assert order[0] == "SendAdvert" and "BecomeBackup" in order


def test_equal_timing_tie_break_is_ucarps_little_endian_compare() -> None:
    # 198.51.100.2 vs 198.51.100.1: in one /24 the last octet decides, lower wins.
    assert ucarp_ip_key(A) < ucarp_ip_key(B)
    machine = _master()  # we are A, the lower
    machine, actions = step(machine, AdvertReceived(B, 1, 0), 3.5)
    # We win the tie: B is told at once (one advert) and the VIP is announced again.
    assert machine.state is State.MASTER and actions == [SendAdvert(1, 0), Announce()]
    # Across subnets the little-endian order differs from the numeric one.
    low = ipaddress.IPv4Address("10.0.0.2")
    high = ipaddress.IPv4Address("11.0.0.1")
    assert int(low) < int(high) and ucarp_ip_key(low) > ucarp_ip_key(high)
    machine = _master(own_ip=low)
    machine, _ = step(machine, AdvertReceived(high, 1, 0), 3.5)
    assert machine.state is State.BACKUP


def test_own_adverts_are_ignored() -> None:
    machine = _master()
    assert step(machine, AdvertReceived(A, 1, 0), 3.5) == (machine, [])


def test_shutdown_of_a_master_bows_out_and_releases() -> None:
    machine = _master()
    machine, actions = step(machine, Shutdown(), 4.0)
    assert SendAdvert(255, 255) in actions
    assert BecomeBackup() in actions and actions[-1] == Exit()
    _, backup_actions = step(_started()[0], Shutdown(), 1.0)
    assert not any(isinstance(a, (SendAdvert, BecomeBackup)) for a in backup_actions)


def test_demotion_persists_until_promoted() -> None:
    machine = _master()
    machine, actions = step(machine, Demote("SIGUSR2"), 4.0)
    assert machine.state is State.BACKUP and SendAdvert(255, 255) in actions
    machine, actions = step(machine, TimerFired(Timer.MASTER_DOWN), 10.0)
    assert machine.state is State.BACKUP
    machine, actions = step(machine, AdvertReceived(B, 255, 255), 11.0)
    assert machine.state is State.BACKUP
    machine, actions = step(machine, Promote(), 12.0)
    assert _deadline(actions, Timer.MASTER_DOWN) == pytest.approx(15.0)
    machine, _ = step(machine, TimerFired(Timer.MASTER_DOWN), 15.0)
    assert machine.state is State.MASTER


def test_link_down_releases_and_link_up_waits_a_full_master_down() -> None:
    machine = _master()
    machine, actions = step(machine, LinkChanged(up=False), 4.0)
    assert machine.state is State.BACKUP and BecomeBackup() in actions
    machine, actions = step(machine, TimerFired(Timer.MASTER_DOWN), 7.0)
    assert machine.state is State.BACKUP
    machine, actions = step(machine, LinkChanged(up=True), 8.0)
    assert _deadline(actions, Timer.MASTER_DOWN) == pytest.approx(11.0)


def test_three_send_errors_advertise_skew_240_until_three_successes() -> None:
    machine = _master(advskew=5)
    for _ in range(3):
        machine, _ = step(machine, SendResult(ok=False), 4.0)
    _, actions = step(machine, TimerFired(Timer.ADVERT), 4.0)
    assert SendAdvert(1, 240) in actions
    for _ in range(3):
        machine, _ = step(machine, SendResult(ok=True), 5.0)
    _, actions = step(machine, TimerFired(Timer.ADVERT), 5.0)
    assert SendAdvert(1, 5) in actions


def test_transitions_are_checked() -> None:
    machine, _ = _started()
    with pytest.raises(RuntimeError):
        change_state(machine, State.INIT, "impossible")
    assert State.MASTER in TRANSITIONS[State.BACKUP]


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="vhid"):
        CarpParams(vhid=0, own_ip=A)
    with pytest.raises(ValueError, match="advbase 0"):
        CarpParams(vhid=1, own_ip=A, advbase=0, advskew=0)


# ---------------------------------------------------------------- a simulated LAN


@dataclass(order=True)
class _Pending:
    at: float
    seq: int
    node: int = field(compare=False)
    event: object = field(compare=False)


def _simulate(
    params: list[CarpParams],
    starts: list[float],
    until: float,
    *,
    lost: Callable[[float, int, int], bool] | None = None,
    latency: Callable[[], float] | None = None,
    events: Sequence[tuple[float, int, object]] = (),
) -> list[tuple[float, list[State]]]:
    """Run machines on a LAN with 1 ms delivery; return states after each event.

    tests/reliability extends the LAN: `lost(at, sender, receiver)` drops an advert,
    `latency()` draws each delivery's delay (jitter, reordering), `events` are injected
    as (time, node, event); a node that exits (Shutdown) receives nothing more.
    """
    machines = [initial(p) for p in params]
    queue: list[_Pending] = []
    seq = 0
    timers: dict[tuple[int, Timer], int] = {}
    dead: set[int] = set()

    def push(at: float, node: int, event: object) -> int:
        nonlocal seq
        seq += 1
        heapq.heappush(queue, _Pending(at, seq, node, event))
        return seq

    for node, at in enumerate(starts):
        push(at, node, Start())
    for at, node, event in events:
        push(at, node, event)
    history = []
    while queue and queue[0].at <= until:
        item = heapq.heappop(queue)
        stale = timers.get((item.node, getattr(item.event, "timer", None))) != item.seq
        if (isinstance(item.event, TimerFired) and stale) or item.node in dead:
            continue  # cancelled or re-armed
        machine, actions = step(machines[item.node], item.event, item.at)  # type: ignore[arg-type]
        machines[item.node] = machine
        for action in actions:
            if isinstance(action, ArmTimer):
                timers[(item.node, action.timer)] = push(
                    action.deadline, item.node, TimerFired(action.timer)
                )
            elif isinstance(action, SendAdvert):
                for other in range(len(machines)):
                    if other != item.node and not (lost and lost(item.at, item.node, other)):
                        push(
                            item.at + (latency() if latency else 0.001),
                            other,
                            AdvertReceived(machine.params.own_ip, action.advbase, action.advskew),
                        )
            elif isinstance(action, CancelTimer):
                timers.pop((item.node, action.timer), None)
            elif isinstance(action, Exit):
                dead.add(item.node)
        history.append((item.at, [m.state for m in machines]))
    return history


@settings(max_examples=60, deadline=None)
@given(
    skews=st.lists(st.integers(0, 200), min_size=2, max_size=3),
    starts=st.lists(st.floats(0, 5), min_size=3, max_size=3),
    preempt=st.booleans(),
)
def test_once_adverts_flow_there_is_exactly_one_master(
    skews: list[int], starts: list[float], preempt: bool
) -> None:
    params = [
        CarpParams(
            vhid=7, own_ip=ipaddress.IPv4Address(f"198.51.100.{i + 1}"), advskew=s, preempt=preempt
        )
        for i, s in enumerate(skews)
    ]
    history = _simulate(params, starts[: len(params)], until=30.0)
    settled = [states for at, states in history if at > max(starts) + 10]
    assert settled
    for states in settled:
        assert states.count(State.MASTER) == 1, states


def test_master_killed_then_backup_takes_over_within_master_down() -> None:
    params = [CarpParams(vhid=7, own_ip=A), CarpParams(vhid=7, own_ip=B, advskew=50)]
    history = _simulate(params, [0.0, 0.0], until=10.0)
    assert history[-1][1] == [State.MASTER, State.BACKUP]
    # Now only B runs: its master-down (3 s + 50/256 s) after A's last advert.
    backup = initial(params[1])
    backup, _ = step(backup, Start(), 0.0)
    backup, actions = step(backup, AdvertReceived(A, 1, 0), 9.0)
    deadline = next(a.deadline for a in actions if isinstance(a, ArmTimer))
    assert deadline == pytest.approx(9.0 + 3 + 50 / 256, abs=1e-6)
    backup, actions = step(backup, TimerFired(Timer.MASTER_DOWN), deadline)
    assert backup.state is State.MASTER and BecomeMaster() in actions


def test_a_master_answers_a_losing_master_at_once_and_the_loser_yields() -> None:
    """After a partition heals both are MASTER; the winner's answer makes the loser yield
    within a round trip (ucarp backs off on a preferred master's advert the same way)."""
    winner = _master(advskew=0)
    loser = _master(own_ip=B, advskew=10)
    loser, sent = step(loser, TimerFired(Timer.ADVERT), 10.0)
    assert SendAdvert(1, 10) in sent
    winner, answer = step(winner, AdvertReceived(B, 1, 10), 10.001)
    assert winner.state is State.MASTER
    assert answer[0] == SendAdvert(1, 0) and Announce() in answer
    assert not any(isinstance(a, ArmTimer) for a in answer)  # the schedule is unchanged
    loser, yielded = step(loser, AdvertReceived(A, 1, 0), 10.002)
    assert loser.state is State.BACKUP and any(isinstance(a, BecomeBackup) for a in yielded)


def test_answers_are_rate_limited_per_interval() -> None:
    machine = _master()
    sends = 0
    for i in range(10):  # a flood of valid losing adverts within one interval
        machine, actions = step(machine, AdvertReceived(B, 1, 20), 3.0 + i * 0.01)
        answered = [a for a in actions if isinstance(a, SendAdvert)]
        assert len(answered) <= 1  # at most one answer per advert heard
        sends += len(answered)
    assert sends == ANSWERS_PER_INTERVAL
    machine, actions = step(machine, TimerFired(Timer.ADVERT), 3.5)  # the scheduled advert
    machine, actions = step(machine, AdvertReceived(B, 1, 20), 3.6)
    assert SendAdvert(1, 0) in actions  # a new interval, a new allowance


def test_a_preferred_peers_advert_is_not_answered_but_yielded_to() -> None:
    machine = _master(advskew=30)
    machine, actions = step(machine, AdvertReceived(B, 1, 0), 3.5)
    # The one last advert of a yielding master (§3.4), then BACKUP: no answer loop.
    assert [a for a in actions if isinstance(a, SendAdvert)] == [SendAdvert(1, 30)]
    assert machine.state is State.BACKUP
