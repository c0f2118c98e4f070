"""The VRRP election, driven with events and times only (keepalived 2.2.7's numbers)."""

from __future__ import annotations

import heapq
import ipaddress
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ifvip.election.events import (
    Announce,
    ArmTimer,
    BecomeBackup,
    BecomeMaster,
    CancelTimer,
    Demote,
    Discarded,
    Exit,
    LinkChanged,
    Log,
    Promote,
    Shutdown,
    Start,
    Timer,
    TimerFired,
)
from ifvip.election.vrrp import (
    TRANSITIONS,
    Notify,
    SendVrrpAdvert,
    SetPriority,
    State,
    VrrpAction,
    VrrpAdvertReceived,
    VrrpEvent,
    VrrpMachine,
    VrrpParams,
    VrrpTimer,
    change_state,
    initial,
    master_down_interval_us,
    skew_time_us,
    step,
)

VIP = ipaddress.IPv4Address("198.51.100.100")
ME = ipaddress.IPv4Address("198.51.100.1")
PEER = ipaddress.IPv4Address("198.51.100.2")
LOWER_PEER = ipaddress.IPv4Address("198.51.100.0")


def params(**kw: object) -> VrrpParams:
    base: dict[str, object] = {"vrid": 51, "own_ip": ME, "addresses": (VIP,)}
    base.update(kw)
    return VrrpParams(**base)  # type: ignore[arg-type]


def advert(
    prio: int, src: ipaddress.IPv4Address = PEER, cs: int = 100, addrs: tuple[object, ...] = (VIP,)
) -> VrrpAdvertReceived:
    return VrrpAdvertReceived(src, prio, cs, addrs)  # type: ignore[arg-type]


def run(
    machine: VrrpMachine, *events: tuple[VrrpEvent, float]
) -> tuple[VrrpMachine, list[VrrpAction]]:
    actions: list[VrrpAction] = []
    for event, now in events:
        machine, more = step(machine, event, now)
        actions += more
    return machine, actions


def arms(actions: list[VrrpAction], timer: object) -> list[float]:
    return [a.deadline for a in actions if isinstance(a, ArmTimer) and a.timer is timer]


def sends(actions: list[VrrpAction]) -> list[SendVrrpAdvert]:
    return [a for a in actions if isinstance(a, SendVrrpAdvert)]


def backup(**kw: object) -> VrrpMachine:
    machine, _ = step(initial(params(**kw)), Start(), 0.0)
    assert machine.state is State.BACKUP
    return machine


def master(**kw: object) -> VrrpMachine:
    machine, _ = step(backup(**kw), TimerFired(Timer.MASTER_DOWN), 10.0)
    assert machine.state is State.MASTER
    return machine


# ------------------------------------------------------------------------ timers


@pytest.mark.parametrize(
    ("version", "prio", "cs", "skew", "down"),
    [
        (3, 100, 100, 609_375, 3_609_375),  # keepalived.data: Master down timer = 3609375 usecs
        (3, 50, 100, 804_687, 3_804_687),
        (3, 100, 50, 304_687, 1_804_687),
        (3, 254, 100, 7_812, 3_007_812),
        (2, 100, 300, 609_375, 9_609_375),  # v2 skew does not scale with the interval
        (3, 100, 1, 6_093, 36_093),  # 10 ms adverts
    ],
)
def test_keepalived_timer_formulas(version: int, prio: int, cs: int, skew: int, down: int) -> None:
    assert skew_time_us(version, prio, cs) == skew
    assert master_down_interval_us(version, prio, cs) == down


def test_start_is_backup_with_a_full_master_down_interval() -> None:
    machine, actions = step(initial(params()), Start(), 100.0)
    assert machine.state is State.BACKUP
    assert BecomeBackup(initial=True) in actions  # leftover VIPs removed, as keepalived does
    assert Notify("BACKUP", 100) in actions
    assert arms(actions, Timer.MASTER_DOWN) == [100 + 3.609375]
    assert not sends(actions)


def test_owner_becomes_master_at_once() -> None:
    machine, actions = step(initial(params(priority=255)), Start(), 0.0)
    assert machine.state is State.MASTER
    assert sends(actions) == [SendVrrpAdvert(255, 100)]


def test_becoming_master_sends_advert_then_vips_then_five_garps_and_a_second_burst() -> None:
    machine, actions = step(backup(), TimerFired(Timer.MASTER_DOWN), 10.0)
    assert machine.state is State.MASTER
    kinds = [type(a) for a in actions if not isinstance(a, Log | CancelTimer)]
    assert kinds[:7] == [SendVrrpAdvert, BecomeMaster, *[Announce] * 5]
    assert arms(actions, Timer.ADVERT) == [11.0]
    assert arms(actions, VrrpTimer.GARP_DELAYED) == [15.0]
    assert Notify("MASTER", 100) in actions
    machine, later = step(machine, TimerFired(VrrpTimer.GARP_DELAYED), 15.0)
    assert later == [Announce()] * 5


def test_garp_counts_and_delays_are_configurable() -> None:
    machine, actions = step(
        backup(garp_master_repeat=2, garp_master_delay=0, garp_master_refresh=30),
        TimerFired(Timer.MASTER_DOWN),
        10.0,
    )
    assert actions.count(Announce()) == 2 and not arms(actions, VrrpTimer.GARP_DELAYED)
    assert arms(actions, VrrpTimer.GARP_REFRESH) == [40.0]
    _, refresh = step(machine, TimerFired(VrrpTimer.GARP_REFRESH), 40.0)
    assert refresh.count(Announce()) == 1 and arms(refresh, VrrpTimer.GARP_REFRESH) == [70.0]


def test_master_adverts_at_its_interval_down_to_10ms() -> None:
    machine = master(advert_int_cs=1)
    machine, actions = step(machine, TimerFired(Timer.ADVERT), 10.01)
    assert sends(actions) == [SendVrrpAdvert(100, 1)]
    assert arms(actions, Timer.ADVERT) == [pytest.approx(10.02)]


# ------------------------------------------------------------------------ backup


def test_priority_zero_makes_a_backup_take_over_after_skew_time() -> None:
    machine, actions = step(backup(priority=50), advert(0), 20.0)
    assert arms(actions, Timer.MASTER_DOWN) == [pytest.approx(20.804687)]
    assert machine.state is State.BACKUP


def test_backup_accepts_higher_or_equal_and_rearms() -> None:
    for prio in (100, 200):
        _, actions = step(backup(), advert(prio), 5.0)
        assert arms(actions, Timer.MASTER_DOWN) == [5 + 3.609375]


def test_preempting_backup_discards_lower_priority_and_times_out() -> None:
    _machine, actions = step(backup(), advert(50), 1.0)
    assert not arms(actions, Timer.MASTER_DOWN)
    assert isinstance(actions[0], Discarded) and actions[0].reason == "lower_priority"
    assert "received lower priority (50) advert from 198.51.100.2 - discarding" in str(actions[0])


def test_nopreempt_backup_never_takes_over_from_a_live_master() -> None:
    _, actions = step(backup(preempt=False), advert(50), 1.0)
    assert arms(actions, Timer.MASTER_DOWN) == [1 + 3.609375]


def test_preempt_delay_accepts_lower_adverts_until_it_expires() -> None:
    machine = backup(preempt_delay=10)
    machine, first = step(machine, advert(50), 1.0)
    assert arms(first, Timer.MASTER_DOWN) == [1 + 3.609375]
    machine, mid = step(machine, advert(50), 10.9)
    assert arms(mid, Timer.MASTER_DOWN)
    machine, late = step(machine, advert(50), 11.0)
    assert not arms(late, Timer.MASTER_DOWN)
    # Reset on entering BACKUP again.
    machine, _ = step(machine, TimerFired(Timer.MASTER_DOWN), 14.7)
    machine, _ = step(machine, advert(200), 15.0)
    assert machine.state is State.BACKUP and machine.preempt_deadline is None


def test_v3_backup_adopts_the_masters_interval_and_reverts_as_master() -> None:
    machine, actions = step(backup(), advert(200, cs=50), 1.0)
    assert machine.master_adver_int_cs == 50
    assert arms(actions, Timer.MASTER_DOWN) == [1 + 1.804687]
    assert any("updated from 1000ms to 500ms by master" in str(a) for a in actions)
    machine, actions = step(machine, TimerFired(Timer.MASTER_DOWN), 3.0)
    assert machine.master_adver_int_cs == 100
    assert sends(actions) == [SendVrrpAdvert(100, 100)]
    assert any("to locally configured 1000ms" in str(a) for a in actions)


def test_v2_interval_mismatch_is_discarded_like_keepalived() -> None:
    machine = backup(version=2)
    _, actions = step(machine, advert(200, cs=200), 1.0)
    assert actions == [
        Discarded(
            "interval", "[VRID 51] [IPv4] advertisement interval mismatch mine=1 sec rcv'd=2 sec"
        )
    ]
    # ... and v2 does not learn an interval.
    _, ok = step(machine, advert(200, cs=100), 1.0)
    assert arms(ok, Timer.MASTER_DOWN) == [1 + 3.609375]


def test_the_address_set_must_be_exactly_ours() -> None:
    other = ipaddress.IPv4Address("198.51.100.101")
    machine = backup()
    _, two = step(machine, advert(200, addrs=(VIP, other)), 1.0)
    assert two == [
        Discarded(
            "addresses",
            "[VRID 51] [IPv4] received an unexpected ip number count 2, expected 1!",
        )
    ]
    _, wrong = step(machine, advert(200, addrs=(other,)), 1.0)
    assert isinstance(wrong[0], Discarded)
    assert "not present in MASTER advert: 198.51.100.100" in str(wrong[0].message)
    two_vips = backup(addresses=(VIP, other))
    _, reordered = step(two_vips, advert(200, addrs=(other, VIP)), 1.0)
    assert arms(reordered, Timer.MASTER_DOWN)


# ------------------------------------------------------------------------ master


def test_master_yields_to_higher_priority() -> None:
    # keepalived's default: the yield is silent.
    machine, actions = step(master(higher_prio_send_advert=False), advert(200, cs=50), 20.0)
    assert machine.state is State.BACKUP
    assert BecomeBackup() in actions and Notify("BACKUP", 100) in actions
    assert CancelTimer(Timer.ADVERT) in actions
    assert machine.master_adver_int_cs == 50 and machine.master_ip == PEER
    assert arms(actions, Timer.MASTER_DOWN) == [20 + 1.804687]
    assert not sends(actions)


def test_higher_prio_send_advert_sends_one_more_before_yielding() -> None:
    # ifvip's default: one last advert at our own priority, before the VIPs are released.
    machine, actions = step(master(), advert(200), 20.0)
    assert machine.state is State.BACKUP
    assert sends(actions) == [SendVrrpAdvert(100, 100)]
    assert actions.index(SendVrrpAdvert(100, 100)) < actions.index(BecomeBackup())
    _, unicast = step(master(unicast_peers=(PEER,)), advert(200), 20.0)
    assert sends(unicast) == [SendVrrpAdvert(100, 100, PEER)]


def heal(winner_first: bool) -> tuple[list[VrrpAction], list[VrrpAction]]:
    """Both sides master after a split; the heal at t=30; returns (winner's, loser's) actions.

    The winner (200, 198.51.100.2) and the loser (100, 198.51.100.1) exchange only what they
    send: each SendVrrpAdvert reaches the other 1 ms later.
    """
    loser = master()
    win_params = params(own_ip=PEER, priority=200)
    winner, _ = run(initial(win_params), (Start(), 0.0), (TimerFired(Timer.MASTER_DOWN), 4.0))
    assert winner.state is State.MASTER
    machines = {"winner": winner, "loser": loser}
    src = {"winner": PEER, "loser": ME}
    other = {"winner": "loser", "loser": "winner"}
    log: dict[str, list[VrrpAction]] = {"winner": [], "loser": []}
    queue: list[tuple[float, int, str, VrrpEvent]] = []
    first = "winner" if winner_first else "loser"
    # The first advert after the heal: the side whose advert timer fires first.
    heapq.heappush(queue, (30.0, 0, first, TimerFired(Timer.ADVERT)))
    n = 1
    while queue:
        now, _, who, event = heapq.heappop(queue)
        if now > 30.5:
            break
        machines[who], actions = step(machines[who], event, now)
        log[who] += actions
        for action in actions:
            if isinstance(action, SendVrrpAdvert):
                rx = advert(action.priority, src=src[who])
                heapq.heappush(queue, (now + 0.001, n, other[who], rx))
                n += 1
    assert machines["winner"].state is State.MASTER
    assert machines["loser"].state is State.BACKUP
    return log["winner"], log["loser"]


@pytest.mark.parametrize("winner_first", [True, False])
def test_after_a_heal_the_winner_announces_after_the_loser_yields(winner_first: bool) -> None:
    # The loser's clients resolved the VIP to its MAC during the split: whoever's advert goes
    # first after the heal, the winner's GARP/NA must follow the loser's yield (issue 8).
    winner, loser = heal(winner_first)
    assert BecomeBackup() in loser
    assert Announce() in winner
    assert loser.index(BecomeBackup()) > loser.index(SendVrrpAdvert(100, 100))


def test_a_silent_yield_leaves_the_winner_without_a_reason_to_announce() -> None:
    # keepalived's default (higher_prio_send_advert off): when the winner's advert reaches the
    # loser first, the winner never hears the loser again and announces nothing.
    loser = master(higher_prio_send_advert=False)
    loser, actions = step(loser, advert(200), 30.0)
    assert loser.state is State.BACKUP and not sends(actions)


def test_equal_priority_tie_break_by_primary_address_big_endian() -> None:
    machine, _ = step(master(), advert(100, src=PEER), 20.0)
    assert machine.state is State.BACKUP  # 198.51.100.2 > 198.51.100.1
    machine, _actions = step(master(), advert(100, src=LOWER_PEER), 20.0)
    assert machine.state is State.MASTER
    # Big-endian, not ucarp's little-endian: 198.51.100.1 vs 199.0.0.0.
    high = ipaddress.IPv4Address("199.0.0.0")
    machine, _ = step(master(), advert(100, src=high), 20.0)
    assert machine.state is State.BACKUP


def test_ipv6_tie_break_uses_the_link_local_source() -> None:
    vip6 = ipaddress.IPv6Address("2001:db8::51")
    me = ipaddress.IPv6Address("fe80::1")
    p = params(own_ip=me, addresses=(vip6,))
    machine, _ = run(initial(p), (Start(), 0.0), (TimerFired(Timer.MASTER_DOWN), 4.0))
    assert machine.prefix() == "[VRID 51] [IPv6]"
    peer = ipaddress.IPv6Address("fe80::2")
    machine, _ = step(machine, VrrpAdvertReceived(peer, 100, 100, (vip6,)), 5.0)
    assert machine.state is State.BACKUP


def test_master_answers_lower_priority_with_an_advert_and_garps() -> None:
    machine, actions = step(master(), advert(50), 20.0)
    assert machine.state is State.MASTER
    assert sends(actions) == [SendVrrpAdvert(100, 100)]
    assert actions.count(Announce()) == 5
    assert arms(actions, VrrpTimer.GARP_LOWER_PRIO) == [25.0]
    assert any("lower priority 50, ours 100, forcing new election" in str(a) for a in actions)
    _, quiet = step(master(lower_prio_no_advert=True), advert(50), 20.0)
    assert not sends(quiet) and Announce() not in quiet


def test_master_answers_priority_zero_with_an_advert_at_once() -> None:
    machine, actions = step(master(), advert(0), 20.3)
    assert machine.state is State.MASTER
    assert sends(actions) == [SendVrrpAdvert(100, 100)]
    assert arms(actions, Timer.ADVERT) == [pytest.approx(21.3)]
    # A peer leaving as master was master beside us: re-announce (garp_lower_prio_repeat).
    assert actions.count(Announce()) == 5
    _, none = step(master(garp_lower_prio_repeat=0), advert(0), 20.3)
    assert Announce() not in none


def test_two_owners_the_master_lowers_itself_to_254() -> None:
    machine, _ = step(initial(params(priority=255)), Start(), 0.0)
    machine, actions = step(machine, advert(255), 1.0)
    assert machine.priority == 254 and machine.state is State.MASTER
    assert any("both configured as address owner" in str(a) for a in actions)
    machine, actions = step(machine, TimerFired(Timer.ADVERT), 2.0)
    assert sends(actions) == [SendVrrpAdvert(254, 100)]


def test_own_adverts_are_ignored() -> None:
    _, actions = step(master(), advert(200, src=ME), 20.0)
    assert actions == [Discarded("own")]


def test_accept_mode() -> None:
    assert master().accepts_vip_traffic
    assert not master(accept=False).accepts_vip_traffic
    assert not backup().accepts_vip_traffic
    owner, _ = step(initial(params(priority=255, accept=False)), Start(), 0.0)
    assert owner.accepts_vip_traffic


# ------------------------------------------------------------------------ leaving, faults


def test_graceful_stop_as_master_sends_priority_zero_then_releases() -> None:
    machine, actions = step(master(), Shutdown(), 30.0)
    relevant = [a for a in actions if isinstance(a, SendVrrpAdvert | BecomeBackup | Exit | Notify)]
    assert relevant == [SendVrrpAdvert(0, 100), BecomeBackup(), Notify("STOP", 100), Exit()]
    assert machine.state is State.INIT


def test_graceful_stop_as_backup_just_leaves() -> None:
    _machine, actions = step(backup(), Shutdown(), 30.0)
    assert not sends(actions) and BecomeBackup() not in actions
    assert CancelTimer(Timer.MASTER_DOWN) in actions and actions[-1] == Exit()


def test_link_down_as_master_is_fault_with_priority_zero() -> None:
    machine, actions = step(master(), LinkChanged(up=False), 30.0)
    assert machine.state is State.FAULT
    assert sends(actions) == [SendVrrpAdvert(0, 100)] and BecomeBackup() in actions
    assert Notify("FAULT", 100) in actions
    _, ignored = step(machine, advert(200), 31.0)
    assert ignored == [Discarded("not_running")]
    machine, actions = step(machine, LinkChanged(up=True), 32.0)
    assert machine.state is State.BACKUP
    assert arms(actions, Timer.MASTER_DOWN) == [32 + 3.609375]


def test_demotion_is_fault_until_promoted() -> None:
    machine, actions = step(backup(), Demote("SIGUSR2"), 1.0)
    assert machine.state is State.FAULT and CancelTimer(Timer.MASTER_DOWN) in actions
    machine, _ = step(machine, TimerFired(Timer.MASTER_DOWN), 5.0)
    assert machine.state is State.FAULT
    machine, _ = step(machine, LinkChanged(up=False), 6.0)
    machine, _ = step(machine, Promote(), 7.0)
    assert machine.state is State.FAULT  # the link is still down
    machine, _ = step(machine, LinkChanged(up=True), 8.0)
    assert machine.state is State.BACKUP


def test_set_priority_changes_what_is_advertised_within_1_254() -> None:
    machine = master()
    machine, _ = step(machine, SetPriority(300), 1.0)
    assert machine.priority == 254
    machine, actions = step(machine, SetPriority(-5), 2.0)
    assert machine.priority == 1 and not sends(actions)
    _, actions = step(machine, TimerFired(Timer.ADVERT), 3.0)
    assert sends(actions) == [SendVrrpAdvert(1, 100)]
    owner, _ = step(initial(params(priority=255)), Start(), 0.0)
    assert step(owner, SetPriority(10), 1.0)[0].priority == 255


def test_transitions_are_checked() -> None:
    machine = initial(params())
    assert State.MASTER in TRANSITIONS[State.INIT]
    with pytest.raises(RuntimeError, match="no transition INIT -> INIT"):
        change_state(machine, State.INIT, "bug")


@pytest.mark.parametrize(
    "bad",
    [
        {"vrid": 0},
        {"priority": 0},
        {"version": 2, "advert_int_cs": 50},
        {"advert_int_cs": 4096},
        {"preempt": False, "preempt_delay": 5},
        {"addresses": ()},
        {"version": 2, "addresses": (ipaddress.IPv6Address("2001:db8::1"),)},
    ],
)
def test_bad_params_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        params(**bad)


# ------------------------------------------------------------------------ many peers


def simulate(
    peers: list[VrrpParams], starts: list[float], until: float, delay: float = 0.001
) -> tuple[list[tuple[float, int]], list[VrrpMachine]]:
    """A LAN of perfect multicast: returns (time, masters) after every event, and the end."""
    machines = [initial(p) for p in peers]
    queue: list[tuple[float, int, int, VrrpEvent]] = []
    generation: dict[tuple[int, Timer], int] = {}
    timer_gen: dict[int, tuple[Timer, int]] = {}
    seq = 0

    def push(at: float, node: int, event: VrrpEvent) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(queue, (at, seq, node, event))
        if isinstance(event, TimerFired):
            timer_gen[seq] = (event.timer, generation.get((node, event.timer), 0))

    for node, at in enumerate(starts):
        push(at, node, Start())
    history: list[tuple[float, int]] = []
    while queue:
        now, number, node, event = heapq.heappop(queue)
        if now > until:
            break
        if isinstance(event, TimerFired):
            timer, gen = timer_gen.pop(number)
            if generation.get((node, timer), 0) != gen:
                continue  # cancelled or re-armed
        machines[node], actions = step(machines[node], event, now)
        for action in actions:
            if isinstance(action, SendVrrpAdvert):
                p = peers[node]
                received = VrrpAdvertReceived(
                    p.own_ip, action.priority, action.max_adver_int_cs, p.addresses
                )
                for other in range(len(peers)):
                    if other != node:
                        push(now + delay, other, received)
            elif isinstance(action, ArmTimer | CancelTimer):
                key = (node, action.timer)
                generation[key] = generation.get(key, 0) + 1
                if isinstance(action, ArmTimer):
                    push(action.deadline, node, TimerFired(action.timer))
        history.append((now, sum(m.state is State.MASTER for m in machines)))
    return history, machines


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 254), min_size=2, max_size=4),
    st.lists(st.floats(0, 2), min_size=4, max_size=4),
    st.sampled_from([2, 3]),
    st.sampled_from([1, 10, 100]),
    st.booleans(),
)
def test_at_most_one_master_once_adverts_flow(
    prios: list[int], starts: list[float], version: int, cs: int, preempt: bool
) -> None:
    if version == 2:
        cs = 100
    peers = [
        params(
            own_ip=ipaddress.IPv4Address(f"198.51.100.{i + 1}"),
            priority=prio,
            version=version,
            advert_int_cs=cs,
            preempt=preempt,
        )
        for i, prio in enumerate(prios)
    ]
    starts = starts[: len(peers)]
    interval = cs / 100
    settle = max(starts) + 3 * interval + 1 + 2 * interval + 0.01
    history, machines = simulate(peers, starts, until=settle + 20 * interval)
    assert all(masters <= 1 for at, masters in history if at >= settle)
    assert sum(m.state is State.MASTER for m in machines) == 1
    if preempt:
        # The highest priority wins; among equals the one that got there first stays (a
        # backup compares priorities only, RFC 5798 §6.4.2).
        (winner,) = (m for m in machines if m.state is State.MASTER)
        assert winner.priority == max(prios)


def test_graceful_handover_in_a_simulated_pair_takes_skew_time() -> None:
    peers = [params(priority=100), params(own_ip=PEER, priority=50)]
    _history, machines = simulate(peers, [0.0, 0.5], until=10.0)
    assert machines[0].state is State.MASTER and machines[1].state is State.BACKUP
    # Stop the master at t=10 and let the backup run on.
    machines[0], actions = step(machines[0], Shutdown(), 10.0)
    zero = sends(actions)[0]
    assert zero.priority == 0
    backup_machine, actions = step(machines[1], advert(0, src=ME), 10.001)
    (deadline,) = arms(actions, Timer.MASTER_DOWN)
    assert deadline == pytest.approx(10.001 + 0.804687)
    backup_machine, _ = step(backup_machine, TimerFired(Timer.MASTER_DOWN), deadline)
    assert backup_machine.state is State.MASTER
    assert replace(backup_machine).master_ip == PEER


def test_unicast_peers_get_one_copy_each() -> None:
    third = ipaddress.IPv4Address("198.51.100.3")
    machine, actions = step(
        backup(unicast_peers=(PEER, third)), TimerFired(Timer.MASTER_DOWN), 10.0
    )
    assert sends(actions) == [SendVrrpAdvert(100, 100, PEER), SendVrrpAdvert(100, 100, third)]
    _, actions = step(machine, Shutdown(), 11.0)
    assert sends(actions) == [SendVrrpAdvert(0, 100, PEER), SendVrrpAdvert(0, 100, third)]


def test_judge_is_the_machines_own_check() -> None:
    from ifvip.election.vrrp import judge

    p = params(version=2)
    assert judge(p, advert(200)) is None
    refused = judge(p, advert(200, cs=300))
    assert refused is not None and refused.reason == "interval"
    assert step(backup(version=2), advert(200, cs=300), 1.0)[1] == [refused]
