"""Invariants of the CARP election over random event sequences, random times, lossy LANs.

The LAN is tests/unit/test_election.py's simulator, extended with loss, delivery jitter
(so adverts reorder) and injected events (demotion, promotion, link flaps, send errors).
Over any such history: no exception, every state change is one TRANSITIONS allows, and
once the loss and the disturbances stop, exactly one correctly configured peer is MASTER
within the time the protocol promises, and stays so. A valid advert from a preferred peer
makes a master yield on receipt, and a preferred preempting peer wins within one interval.
"""

from __future__ import annotations

import ipaddress
import itertools
import random

from hypothesis import given
from hypothesis import strategies as st

from ifvip.election.carp import (
    TRANSITIONS,
    AdvertReceived,
    CarpParams,
    Machine,
    SendAdvert,
    State,
    initial,
    skew_seconds,
    step,
    ucarp_ip_key,
)
from ifvip.election.events import (
    BecomeBackup,
    Demote,
    Event,
    LinkChanged,
    Promote,
    SendResult,
    Start,
    Timer,
    TimerFired,
)
from tests.reliability._fuzz import fuzz
from tests.unit.test_election import _simulate

SUBNET_HOSTS = st.integers(1, 254)


def _ip(host: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(f"198.51.100.{host}")


@st.composite
def groups(draw: st.DrawFn) -> list[CarpParams]:
    """2-4 peers of one vhid with distinct sources and any sane timing and policy."""
    hosts = draw(st.lists(SUBNET_HOSTS, min_size=2, max_size=4, unique=True))
    return [
        CarpParams(
            vhid=7,
            own_ip=_ip(host),
            advbase=draw(st.integers(1, 2)),
            advskew=draw(st.integers(0, 200)),
            preempt=draw(st.booleans()),
            neutral=draw(st.booleans()),
        )
        for host in hosts
    ]


DISTURBANCES = st.sampled_from(
    [
        Demote("fuzz"),
        Promote(),
        LinkChanged(up=False),
        LinkChanged(up=True),
        SendResult(ok=False),
        SendResult(ok=True),
    ]
)


def _check_transitions(history: list[tuple[float, list[State]]]) -> None:
    for (_, before), (_, after) in itertools.pairwise(history):
        for old, new in zip(before, after, strict=True):
            assert old == new or new in TRANSITIONS[old], (old, new)


def _worst_interval(params: list[CarpParams]) -> float:
    # Suppressed senders advertise skew 240 (§3.9): the slowest any peer may get.
    return max(p.advbase for p in params) + skew_seconds(255)


def _worst_master_down(params: list[CarpParams]) -> float:
    return max(p.advbase * p.deadratio for p in params) + skew_seconds(255)


@fuzz(120)
@given(
    params=groups(),
    seed=st.integers(0, 2**32 - 1),
    loss=st.floats(0.0, 0.7),
    lossy_for=st.floats(0.0, 40.0),
    starts=st.lists(st.floats(0.0, 5.0), min_size=4, max_size=4),
    disturbances=st.lists(
        st.tuples(st.floats(0.0, 40.0), st.integers(0, 3), DISTURBANCES), max_size=12
    ),
)
def test_after_loss_and_disturbances_stop_exactly_one_master_remains(
    params: list[CarpParams],
    seed: int,
    loss: float,
    lossy_for: float,
    starts: list[float],
    disturbances: list[tuple[float, int, Event]],
) -> None:
    rng = random.Random(seed)
    n = len(params)
    calm = max(lossy_for, *(at for at, _, _ in disturbances), *starts[:n])
    events: list[tuple[float, int, object]] = [
        (at, node % n, event) for at, node, event in disturbances if at < calm
    ]
    # Calm returns: every link up, every demotion lifted, sends succeed again.
    for node in range(n):
        events += [(calm, node, LinkChanged(up=True)), (calm, node, Promote())]
        events += [(calm, node, SendResult(ok=True))] * 3

    def lost(at: float, _sender: int, _receiver: int) -> bool:
        return at < calm and rng.random() < loss

    # Settled: a master-down for an empty LAN, then one advert round per possible
    # preemption step (at most one per peer), plus the delivery jitter.
    settle = calm + _worst_master_down(params) + (n + 1) * _worst_interval(params) + 0.5
    history = _simulate(
        params,
        starts[:n],
        until=settle + 20.0,
        lost=lost,
        latency=lambda: rng.uniform(0.0001, 0.05),
        events=events,
    )
    _check_transitions(history)
    settled = [states for at, states in history if at > settle]
    assert settled
    for states in settled:
        assert states.count(State.MASTER) == 1, states


def _master_of(params: CarpParams) -> Machine:
    machine, _ = step(initial(params), Start(), 0.0)
    machine, _ = step(machine, TimerFired(Timer.MASTER_DOWN), 10.0)
    assert machine.state is State.MASTER
    return machine


@fuzz(300)
@given(
    own=SUBNET_HOSTS,
    peer=SUBNET_HOSTS,
    own_timing=st.tuples(st.integers(1, 255), st.integers(0, 255)),
    peer_timing=st.tuples(st.integers(1, 255), st.integers(0, 255)),
    suppressed=st.booleans(),
)
def test_a_master_yields_to_a_preferred_advert_on_receipt_and_only_then(
    own: int,
    peer: int,
    own_timing: tuple[int, int],
    peer_timing: tuple[int, int],
    suppressed: bool,
) -> None:
    machine = _master_of(
        CarpParams(vhid=7, own_ip=_ip(own), advbase=own_timing[0], advskew=own_timing[1])
    )
    if suppressed:
        for _ in range(3):
            machine, _ = step(machine, SendResult(ok=False), 10.0)
    ours = (machine.params.advbase, skew_seconds(machine.advskew))
    theirs = (peer_timing[0], skew_seconds(peer_timing[1]))
    preferred = theirs < ours or (
        theirs == ours and ucarp_ip_key(_ip(peer)) < ucarp_ip_key(_ip(own))
    )
    after, actions = step(machine, AdvertReceived(_ip(peer), *peer_timing), 11.0)
    if own == peer:
        assert after == machine and actions == []  # our own source: ignored
    elif preferred:
        assert after.state is State.BACKUP
        assert isinstance(actions[0], SendAdvert) and BecomeBackup() in actions
    else:
        assert after.state is State.MASTER


@fuzz(80)
@given(
    slow=st.tuples(st.integers(1, 2), st.integers(1, 255)),
    fast_skew=st.integers(0, 254),
    hosts=st.lists(SUBNET_HOSTS, min_size=2, max_size=2, unique=True),
    joins=st.floats(10.0, 20.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_preferred_preempting_peer_wins_within_one_interval_of_the_master(
    slow: tuple[int, int], fast_skew: int, hosts: list[int], joins: float, seed: int
) -> None:
    rng = random.Random(seed)
    fast_skew = min(fast_skew, slow[1] - 1) if slow[0] == 1 else fast_skew
    master = CarpParams(vhid=7, own_ip=_ip(hosts[0]), advbase=slow[0], advskew=slow[1])
    joiner = CarpParams(vhid=7, own_ip=_ip(hosts[1]), advskew=fast_skew, preempt=True)
    history = _simulate(
        [master, joiner], [0.0, joins], until=joins + 10.0, latency=lambda: rng.uniform(0, 0.05)
    )
    _check_transitions(history)
    # The joiner takes over on the master's next advert; the master yields on the
    # joiner's first advert. Both within one master interval (+ deliveries) of the join.
    deadline = joins + slow[0] + skew_seconds(slow[1]) + 0.1
    before = [states[0] for at, states in history if 5.0 < at < joins]
    assert before and all(state is State.MASTER for state in before)
    for at, states in history:
        if at > deadline:
            assert states == [State.BACKUP, State.MASTER], (at, states)
