"""The CARP election (ucarp's) as a table-driven state machine: pure, timers as data, `now`
passed in.

`step(machine, event, now)` returns the next machine and the actions the runtime must carry
out (send an advert, become master or backup, announce the VIP, arm or cancel a timer,
log). Nothing here reads a clock, opens a socket or sleeps, so every behaviour is tested
with events and times alone.

The rules are ucarp 1.5.2's (specs/carp.md §3), with ifvip's deliberate improvements:
timers to the millisecond (no poll-granularity or pcap delay), a bow-out advert
(advbase 255, advskew 255) when a master leaves or is demoted so that peers, real ucarp
included, take over at once (§3.3 rule 2), a demotion that lasts until promoted, and an
answer to a master that should not be one: a MASTER that hears a valid advert from a peer
it beats (a peer that thinks it is master, e.g. after a partition heals) sends one advert
at once, as keepalived does for VRRP, so the loser (ucarp too: it backs off on a preferred
master's advert) yields within a round trip instead of up to one interval. At most one
answer per advert heard and `ANSWERS_PER_INTERVAL` between two scheduled adverts.

A bow-out beats preemption: a backup takes over at once from a master that bows out,
whether it preempts or not (preemption's hold is for a live master that is merely slower).
A node preempts only once its link has been up for a whole master-down interval: a
preferred node whose carrier flaps would otherwise take the VIP back on every brief link-up
and cancel the backup's takeover each time (VRRP gets the same from its down timer).
A MASTER action that fails (the VIPs, the managed ifup, the up-script: `RoleResult(ok=False)`)
is a fault, not a MASTER: the group bows out and is not eligible again for a backoff that
starts at `FAULT_BACKOFF_FIRST` and doubles up to `FAULT_BACKOFF_MAX` while the action keeps
failing; a MASTER action that succeeds resets it.

Sync groups (sync.py): a member held back by its sync group (`SyncHold`: another member
cannot be MASTER) advertises advskew 240, at once, as OpenBSD's carp does while its
interface group is demoted: a peer sees an ordinary slower master and takes over if it
preempts. `SyncRelease` gives it its own advskew back.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final, TypeAlias

from ifvip.election.events import (
    Action,
    Announce,
    ArmTimer,
    BecomeBackup,
    BecomeMaster,
    CancelTimer,
    Demote,
    Event,
    Exit,
    LinkChanged,
    Log,
    Promote,
    RoleResult,
    SendResult,
    Shutdown,
    Start,
    SyncHold,
    SyncMaster,
    SyncRelease,
    Timer,
    TimerFired,
    failed_action,
)
from ifvip.election.sync import Cause, Member, fault_cause

BOW_OUT: Final = (255, 255)  # advbase, advskew of a leaving master (BSD's convention)
SUPPRESSED_SKEW: Final = 240  # advskew while sends keep failing (§3.9)
DEMOTED_SKEW: Final = 240  # advskew while held by the sync group (OpenBSD's demoted carp)
SEND_ERRORS_MAX: Final = 3
HANDBACK_MARGIN: Final = 0.1  # seconds beyond the old master's interval (hold_on_preempt)
ANSWERS_PER_INTERVAL: Final = 3  # immediate adverts to losing masters between two scheduled


class State(StrEnum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"


# Every transition change_state() may make; anything else is a bug and raises.
TRANSITIONS: Final[dict[State, frozenset[State]]] = {
    State.INIT: frozenset({State.BACKUP}),
    State.BACKUP: frozenset({State.MASTER}),
    State.MASTER: frozenset({State.BACKUP}),
}


class CarpTimer(StrEnum):
    # With hold_on_preempt: the longest a preempting node waits for the old master.
    HANDBACK = "handback"


@dataclass(frozen=True)
class CarpParams:
    """One group's timing and policy, as ucarp's options give them."""

    vhid: int
    own_ip: ipaddress.IPv4Address
    advbase: int = 1
    advskew: int = 0
    deadratio: int = 3
    preempt: bool = False
    neutral: bool = False
    # Preempting a live master: advertise first and take the VIPs only once the old master
    # answers (its last advert as it yields) or one of its intervals has passed, so the two
    # never hold them together for longer than the old master takes to release.
    hold_on_preempt: bool = False
    # A member of a sync group: it preempts a live master only with the other members
    # (SyncMaster, election/sync.py), so their VIPs come back at the same moment.
    synced: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.vhid <= 255:
            raise ValueError(f"vhid {self.vhid} is out of range 1..255")
        if not (0 <= self.advbase <= 255 and 0 <= self.advskew <= 255):
            raise ValueError("advbase and advskew must be 0..255")
        if self.advbase == 0 and self.advskew == 0:
            raise ValueError("advbase 0 with advskew 0 is not allowed")
        if self.deadratio < 1:
            raise ValueError(f"deadratio {self.deadratio} must be at least 1")


def skew_seconds(advskew: int) -> float:
    # ucarp: skew_us = advskew * 1_000_000 / 256 (integer microseconds).
    return (advskew * 1_000_000 // 256) / 1_000_000


def master_down_interval(advbase: int, deadratio: int, advskew: int) -> float:
    """advbase * deadratio + advskew/256 seconds: only advbase is multiplied (§3.2)."""
    return advbase * deadratio + skew_seconds(advskew)


def ucarp_ip_key(address: ipaddress.IPv4Address) -> int:
    """ucarp compares `s_addr` as a host integer: little-endian on amd64/arm64 (§1.9)."""
    return int.from_bytes(address.packed, "little")


# ------------------------------------------------------------------------- events


@dataclass(frozen=True)
class AdvertReceived:
    """A valid advert for our vhid (checksum, TTL, HMAC already checked by the runtime)."""

    src: ipaddress.IPv4Address
    advbase: int
    advskew: int


CarpEvent: TypeAlias = Event | AdvertReceived


# ------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class SendAdvert:
    advbase: int
    advskew: int


CarpAction: TypeAlias = Action | SendAdvert


# ------------------------------------------------------------------------- the machine


@dataclass(frozen=True)
class Machine:
    params: CarpParams
    state: State = State.INIT
    link_up: bool = True
    demoted: bool = False
    delayed_garp: int = 0
    send_errors: int = 0
    send_ok: int = 0
    suppressed: bool = False
    transitions: int = 0
    handback: bool = False  # MASTER by the election, the VIPs not taken yet (hold_on_preempt)
    answers: int = 0  # immediate adverts sent since the last scheduled one
    fault: str | None = None  # a failed MASTER action, while its backoff runs
    failures: int = 0  # MASTER action failures in a row
    link_up_since: float | None = None  # when the link last came up (None: up from start)
    demote_reason: str = ""  # what demoted it (a check, SIGUSR2), while demoted
    sync_hold: SyncHold | None = None  # held back by its sync group (election/sync.py)
    yielded: str | None = None  # left MASTER for a preferred master, until MASTER again
    wants: AdvertReceived | None = None  # a synced member would preempt this slower master

    @property
    def eligible(self) -> bool:
        """May become master: link up, not demoted, no fault backoff running."""
        return self.link_up and not self.demoted and self.fault is None

    @property
    def advskew(self) -> int:
        """The skew we advertise and compare with: 240 while sends fail (§3.9) or while the
        sync group holds us back (OpenBSD advertises 240 while its carp group is demoted)."""
        skew = self.params.advskew
        if self.suppressed and skew < SUPPRESSED_SKEW:
            return SUPPRESSED_SKEW
        if self.sync_hold is not None and skew < DEMOTED_SKEW:
            return DEMOTED_SKEW
        return skew

    def interval(self) -> float:
        """Advert interval: advbase + advskew/256 seconds."""
        return self.params.advbase + skew_seconds(self.advskew)

    def master_down_interval(self) -> float:
        return master_down_interval(self.params.advbase, self.params.deadratio, self.advskew)

    def _tv(self) -> tuple[int, int]:
        return (self.params.advbase, self.advskew)

    def prefix(self) -> str:
        return f"(vhid {self.params.vhid})"


def initial(params: CarpParams) -> Machine:
    return Machine(params)


def change_state(machine: Machine, new: State, reason: str) -> tuple[Machine, list[CarpAction]]:
    """The one place states change: checked against TRANSITIONS, logged, counted."""
    if new not in TRANSITIONS[machine.state]:
        raise RuntimeError(f"{machine.prefix()} no transition {machine.state} -> {new}")
    log = Log("info", f"{machine.prefix()} Entering {new} STATE ({reason})")
    machine = replace(machine, state=new, transitions=machine.transitions + 1, wants=None)
    if new is State.MASTER:
        machine = replace(machine, yielded=None)
    return machine, [log]


def _become_master(machine: Machine, now: float, reason: str) -> tuple[Machine, list[CarpAction]]:
    machine, actions = change_state(machine, State.MASTER, reason)
    # ucarp: upscript, then one GARP, then the first advert; a second GARP goes out with
    # the second advert after the transition (§2.1).
    actions += [
        CancelTimer(Timer.MASTER_DOWN),
        BecomeMaster(),
        Announce(),
        SendAdvert(machine.params.advbase, machine.advskew),
        ArmTimer(Timer.ADVERT, now + machine.interval()),
    ]
    return replace(machine, delayed_garp=2), actions


def _preempt(
    machine: Machine,
    advert: AdvertReceived,
    now: float,
    reason: str = "preemption: peer advertises slower",
) -> tuple[Machine, list[CarpAction]]:
    """Preemption of a live master: with hold_on_preempt, advertise now and take later."""
    if not machine.params.hold_on_preempt:
        return _become_master(machine, now, reason)
    machine, actions = change_state(machine, State.MASTER, reason)
    wait = advert.advbase + skew_seconds(advert.advskew) + HANDBACK_MARGIN
    actions += [
        CancelTimer(Timer.MASTER_DOWN),
        SendAdvert(machine.params.advbase, machine.advskew),
        ArmTimer(Timer.ADVERT, now + machine.interval()),
        ArmTimer(CarpTimer.HANDBACK, now + wait),
    ]
    return replace(machine, handback=True, delayed_garp=0), actions


def _take(machine: Machine) -> tuple[Machine, list[CarpAction]]:
    """End of the handback wait: bring the VIPs up and announce them."""
    actions: list[CarpAction] = [
        CancelTimer(CarpTimer.HANDBACK),
        Log("info", f"{machine.prefix()} taking the virtual addresses"),
        BecomeMaster(),
        Announce(),
    ]
    return replace(machine, handback=False, delayed_garp=2), actions


def _become_backup(
    machine: Machine, now: float, reason: str, *, arm: bool = True
) -> tuple[Machine, list[CarpAction]]:
    machine, actions = change_state(machine, State.BACKUP, reason)
    machine = replace(machine, handback=False)
    actions += [CancelTimer(Timer.ADVERT), CancelTimer(CarpTimer.HANDBACK), BecomeBackup()]
    if arm:
        actions.append(ArmTimer(Timer.MASTER_DOWN, now + machine.master_down_interval()))
    return replace(machine, delayed_garp=0), actions


def _arm_master_down(machine: Machine, now: float) -> list[CarpAction]:
    return [ArmTimer(Timer.MASTER_DOWN, now + machine.master_down_interval())]


def step(machine: Machine, event: CarpEvent, now: float) -> tuple[Machine, list[CarpAction]]:
    """Apply one event at time `now` (seconds, any monotonic origin)."""
    match event:
        case Start():
            return _start(machine, now)
        case AdvertReceived():
            return _advert(machine, event, now)
        case TimerFired(timer=Timer.MASTER_DOWN):
            return _master_down(machine, now)
        case TimerFired(timer=Timer.ADVERT):
            return _advert_timer(machine, now)
        case TimerFired(timer=CarpTimer.HANDBACK):
            if machine.state is State.MASTER and machine.handback:
                return _take(machine)
            return machine, []
        case TimerFired(timer=Timer.FAULT_BACKOFF):
            return _fault_over(machine, now)
        case LinkChanged(up=up):
            return _link(machine, up, now)
        case Demote(reason=reason):
            return _demote(machine, reason, now)
        case SyncHold():
            return _sync_hold(machine, event, now)
        case SyncRelease(reason=reason):
            return _sync_release(machine, reason, now)
        case SyncMaster(reason=reason):
            if machine.wants is not None and _ready(machine):
                return _preempt(machine, machine.wants, now, reason)
            return machine, []
        case Promote(reason=reason):
            return _promote(machine, reason, now)
        case Shutdown():
            return _shutdown(machine)
        case SendResult(ok=ok):
            return _send_result(machine, ok), []
        case RoleResult(ok=ok, reason=reason):
            return _role_result(machine, ok, reason, now)
    raise TypeError(f"unknown event {event!r}")


def _start(machine: Machine, now: float) -> tuple[Machine, list[CarpAction]]:
    machine, actions = change_state(machine, State.BACKUP, "start")
    # ucarp runs the downscript on start unless -n (§3.1): it clears a stale VIP.
    if not machine.params.neutral:
        actions.append(BecomeBackup(initial=True))
    if machine.eligible:
        actions += _arm_master_down(machine, now)
    return machine, actions


def _master_down(machine: Machine, now: float) -> tuple[Machine, list[CarpAction]]:
    if machine.state is not State.BACKUP or not machine.link_up:
        return machine, []
    if machine.demoted:
        return machine, [Log("info", f"{machine.prefix()} demoted: not taking over")]
    if machine.fault is not None:
        return machine, [Log("info", f"{machine.prefix()} fault backoff: not taking over")]
    return _become_master(machine, now, "master down timer expired")


def _advert(
    machine: Machine, advert: AdvertReceived, now: float
) -> tuple[Machine, list[CarpAction]]:
    if advert.src == machine.params.own_ip or machine.state is State.INIT:
        return machine, []
    theirs = (advert.advbase, advert.advskew)
    ours = machine._tv()
    if machine.state is State.BACKUP:
        if not machine.eligible:
            return machine, []
        # A peer slower than our whole master-down time is leaving (BSD bow-out 255/255):
        # take over now, preempting or not; preemption's hold is for a live, slower master.
        down = (machine.params.advbase * machine.params.deadratio, machine.advskew)
        if _slower(theirs, down):
            return _become_master(machine, now, "peer is going to time out (bow-out)")
        if machine.params.preempt and _slower(theirs, ours) and _link_settled(machine, now):
            if not machine.params.synced:
                return _preempt(machine, advert, now)
            # It preempts when every member of its sync group would (SyncMaster).
            actions = _arm_master_down(machine, now)
            if machine.wants is None:
                said = "would preempt a slower master: waits for its sync group"
                actions.insert(0, Log("info", f"{machine.prefix()} {said}"))
            return replace(machine, wants=advert), actions
        return replace(machine, wants=None), _arm_master_down(machine, now)
    # MASTER
    equal = theirs == ours
    peer_lower = ucarp_ip_key(advert.src) < ucarp_ip_key(machine.params.own_ip)
    if _slower(ours, theirs) or (equal and peer_lower):
        # One more advert, so a flapping ex-master learns it must reassert (§3.4).
        send = SendAdvert(machine.params.advbase, machine.advskew)
        if machine.sync_hold is None:  # a held member's yield is its sync group's doing
            machine = replace(machine, yielded=f"a preferred master {advert.src}")
        machine, actions = _become_backup(machine, now, f"preferred master {advert.src}")
        return machine, [send, *actions]
    if machine.handback:
        # The old master answered our advert (its last one as it yields): take over now.
        return _take(machine)
    answers = machine.answers
    if answers >= ANSWERS_PER_INTERVAL:
        return replace(machine, delayed_garp=2), [Announce()]
    # A peer that thinks it is master: tell it now, not at our next interval.
    answer = SendAdvert(machine.params.advbase, machine.advskew)
    return replace(machine, delayed_garp=2, answers=answers + 1), [answer, Announce()]


def _link_settled(machine: Machine, now: float) -> bool:
    """Up for a whole master-down interval since the link last came up (or from the start)."""
    since = machine.link_up_since
    return since is None or now - since >= machine.master_down_interval()


def _slower(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether interval a is longer than b: ucarp compares (advbase, skew µs) as a timeval."""
    return (a[0], skew_seconds(a[1])) > (b[0], skew_seconds(b[1]))


def _advert_timer(machine: Machine, now: float) -> tuple[Machine, list[CarpAction]]:
    if machine.state is not State.MASTER:
        return machine, []
    actions: list[CarpAction] = [SendAdvert(machine.params.advbase, machine.advskew)]
    delayed = machine.delayed_garp
    if delayed > 0:
        delayed -= 1
        if delayed == 0:
            actions.append(Announce())
    actions.append(ArmTimer(Timer.ADVERT, now + machine.interval()))
    return replace(machine, delayed_garp=delayed, answers=0), actions


def _link(machine: Machine, up: bool, now: float) -> tuple[Machine, list[CarpAction]]:
    if up == machine.link_up:
        return machine, []
    machine = replace(machine, link_up=up)
    if not up:
        actions: list[CarpAction] = [Log("warning", f"{machine.prefix()} link down")]
        if machine.state is State.MASTER:
            machine, more = _become_backup(machine, now, "link down", arm=False)
            actions += more
        return machine, [*actions, CancelTimer(Timer.MASTER_DOWN)]
    machine = replace(machine, link_up_since=now)
    actions = [Log("info", f"{machine.prefix()} link up")]
    if machine.state is State.BACKUP and machine.eligible:
        actions += _arm_master_down(machine, now)
    return machine, actions


def _demote(machine: Machine, reason: str, now: float) -> tuple[Machine, list[CarpAction]]:
    if machine.demoted:
        return machine, []
    machine = replace(machine, demoted=True, demote_reason=reason)
    actions: list[CarpAction] = [Log("warning", f"{machine.prefix()} demoted: {reason}")]
    if machine.state is State.MASTER:
        # Bow out so peers take over now instead of after their master-down time.
        actions.append(SendAdvert(*BOW_OUT))
        machine, more = _become_backup(machine, now, reason, arm=False)
        actions += more
    return machine, [*actions, CancelTimer(Timer.MASTER_DOWN)]


def _promote(machine: Machine, reason: str, now: float) -> tuple[Machine, list[CarpAction]]:
    if not machine.demoted:
        return machine, []
    return _maybe_eligible(replace(machine, demoted=False, demote_reason=""), reason, now)


def sync_cause(machine: Machine) -> Cause | None:
    """Why this member cannot be MASTER, for its sync group (election/sync.py); a hold of
    the sync group itself (advskew 240) is never one."""
    faults = (machine.link_up, machine.demoted, machine.demote_reason, machine.fault)
    if (cause := fault_cause(*faults)) is not None:
        return cause
    if machine.yielded is not None and machine.state is not State.MASTER:
        return Cause(f"yielded to {machine.yielded}", fault=False)
    return None


def sync_member(name: str, machine: Machine) -> Member:
    """This member as its sync group sees it (election/sync.py)."""
    return Member(name, sync_cause(machine), machine.sync_hold, str(machine.state), _ready(machine))


def _ready(machine: Machine) -> bool:
    """Wants MASTER and SyncMaster would make it MASTER: only then does it count as
    wanting, so the sync layer never offers a SyncMaster that changes nothing."""
    free = machine.eligible and machine.sync_hold is None
    return machine.state is State.BACKUP and machine.wants is not None and free


def _sync_hold(machine: Machine, hold: SyncHold, now: float) -> tuple[Machine, list[CarpAction]]:
    """OpenBSD's demoted carp group: advskew 240, so a peer sees an ordinary slower master
    and takes over if it preempts; sent at once, not at the next interval."""
    if machine.sync_hold == hold:
        return machine, []
    before = machine.advskew
    machine = replace(machine, sync_hold=hold, wants=None)
    log = Log("warning", f"{machine.prefix()} held: {hold.reason}; advskew {machine.advskew}")
    return machine, [log, *_readvertise(machine, before, now)]


def _sync_release(machine: Machine, reason: str, now: float) -> tuple[Machine, list[CarpAction]]:
    if machine.sync_hold is None:
        return machine, []
    before = machine.advskew
    machine = replace(machine, sync_hold=None)
    log = Log("info", f"{machine.prefix()} {reason}; advskew {machine.advskew}")
    return machine, [log, *_readvertise(machine, before, now)]


def _readvertise(machine: Machine, before: int, now: float) -> list[CarpAction]:
    """A master whose advskew changed says so now and keeps its new interval."""
    if machine.state is not State.MASTER or machine.advskew == before:
        return []
    return [
        SendAdvert(machine.params.advbase, machine.advskew),
        ArmTimer(Timer.ADVERT, now + machine.interval()),
    ]


def _maybe_eligible(machine: Machine, said: str, now: float) -> tuple[Machine, list[CarpAction]]:
    """A reason not to take over went away: a backup that may now runs its down timer."""
    actions: list[CarpAction] = [Log("info", f"{machine.prefix()} {said}")]
    if machine.state is State.BACKUP and machine.eligible:
        actions += _arm_master_down(machine, now)
    return machine, actions


def _shutdown(machine: Machine) -> tuple[Machine, list[CarpAction]]:
    actions: list[CarpAction] = [
        CancelTimer(Timer.ADVERT),
        CancelTimer(Timer.MASTER_DOWN),
        CancelTimer(CarpTimer.HANDBACK),
    ]
    if machine.state is State.MASTER:
        machine = replace(machine, handback=False)
        actions += [SendAdvert(*BOW_OUT)]
        machine, more = change_state(machine, State.BACKUP, "shutdown")
        actions += [*more, BecomeBackup()]
    return machine, [*actions, Exit()]


def _role_result(
    machine: Machine, ok: bool, reason: str, now: float
) -> tuple[Machine, list[CarpAction]]:
    if ok:
        return replace(machine, failures=0), []
    if machine.state is not State.MASTER:
        return machine, []  # the tenure it was for has ended already
    fault, failures, backoff = failed_action(machine.failures, reason)
    machine = replace(machine, fault=fault, failures=failures)
    actions: list[CarpAction] = [
        Log("error", f"{machine.prefix()} MASTER action failed: {fault}; bowing out, {backoff}"),
        SendAdvert(*BOW_OUT),
    ]
    machine, more = _become_backup(machine, now, "fault: MASTER action failed", arm=False)
    return machine, [
        *actions,
        *more,
        CancelTimer(Timer.MASTER_DOWN),
        ArmTimer(Timer.FAULT_BACKOFF, now + backoff),
    ]


def _fault_over(machine: Machine, now: float) -> tuple[Machine, list[CarpAction]]:
    if machine.fault is None:
        return machine, []
    return _maybe_eligible(replace(machine, fault=None), "fault backoff over: eligible", now)


def _send_result(machine: Machine, ok: bool) -> Machine:
    if ok:
        streak = machine.send_ok + 1
        suppressed = machine.suppressed and streak < SEND_ERRORS_MAX
        return replace(machine, send_ok=streak, send_errors=0, suppressed=suppressed)
    errors = machine.send_errors + 1
    suppressed = machine.suppressed or errors >= SEND_ERRORS_MAX
    return replace(machine, send_errors=errors, send_ok=0, suppressed=suppressed)
