"""The VRRP election (RFC 3768 / RFC 5798, as keepalived 2.2.7 runs it) as a checked state table.

Pure like carp.py: `step(machine, event, now)` returns the next machine and the actions
for the runtime, and nothing here reads a clock, opens a socket or sleeps. It shares
events.py's events (`Start`, `TimerFired`, `LinkChanged`, `Demote`, `Promote`, `Shutdown`,
`SendResult`) and actions (`BecomeMaster`, `BecomeBackup`, `Announce`, `ArmTimer`,
`CancelTimer`, `Log`, `Exit`, `Discarded`); what only VRRP needs is defined here:
`VrrpAdvertReceived`, `SetPriority`, `SendVrrpAdvert`, `Notify`, the `VrrpTimer`s (keepalived's
GARPs).

Timers follow keepalived's integer microsecond formulas (specs/vrrp.md §2.1), so numbers
compare with its `keepalived.data` dump:

- Skew_Time, v3: ``((256 - Priority) * Master_Adver_Interval) / 256``, i.e.
  ``(256 - p) * interval_cs * 625 // 16`` µs; v2: ``(256 - p) / 256`` s, whatever the interval.
- Master_Down_Interval: ``down_timer_adverts (3) * Master_Adver_Interval + Skew_Time``.
- v3 Master_Adver_Interval: a backup adopts the master's advertised interval and reverts to
  its own when it becomes master.

keepalived's habits that peers rely on (§2.4, §2.5, §3): start in BACKUP with a full
Master_Down_Interval unless the owner (priority 255: MASTER at once); a priority-0 advert
sets a backup's timer to Skew_Time; a master that hears a lower priority answers at once
with its own advert and a GARP burst (unless `lower_prio_no_advert`), so ifvip's master
yielding to a higher priority sends one last advert first (`higher_prio_send_advert`, on by
default here) and the winner re-announces when it hears the loser yield (a priority-0 advert
heard as master re-announces too); two owners: the master
lowers itself to 254; on becoming master: advert, VIPs, `garp_master_repeat` announcements
and a second burst `garp_master_delay` later; on leaving as master: one priority-0 advert.
FAULT (link down, or demoted by SIGUSR2 / a failing weight-0 check, or a MASTER action that
failed: `RoleResult(ok=False)`, for a backoff as carp.py's) removes the VIPs, and a
master entering it sends priority 0 first, as keepalived does.

Sync groups (sync.py, keepalived's vrrp_sync_group): `SyncHold` puts a member in FAULT
(another member cannot be MASTER) or, after another member yielded, in BACKUP without
priority 0 and without taking over; a member with `params.synced` whose down timer expires
only wants MASTER (`wants_master`) and takes it on `SyncMaster`, with the others.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Hashable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final, TypeAlias

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

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

PRIORITY_OWNER: Final = 255
PRIORITY_DEFAULT: Final = 100
PRIORITY_LEAVING: Final = 0
US: Final = 1_000_000
V3_INTERVAL_MAX_CS: Final = 4095


class State(StrEnum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"


class VrrpTimer(StrEnum):
    """keepalived's delayed, periodic and lower-priority gratuitous ARPs."""

    GARP_DELAYED = "garp-delayed"
    GARP_REFRESH = "garp-refresh"
    GARP_LOWER_PRIO = "garp-lower-prio"


# Every transition change_state() may make; anything else is a bug and raises.
TRANSITIONS: Final[dict[State, frozenset[State]]] = {
    State.INIT: frozenset({State.BACKUP, State.MASTER, State.FAULT}),
    State.BACKUP: frozenset({State.MASTER, State.FAULT, State.INIT}),
    State.MASTER: frozenset({State.BACKUP, State.FAULT, State.INIT}),
    State.FAULT: frozenset({State.BACKUP, State.MASTER, State.INIT}),
}


@dataclass(frozen=True)
class VrrpParams:
    """One VRRP instance's policy, with keepalived's names and defaults."""

    vrid: int
    own_ip: IPAddress  # primary IPv4 / link-local IPv6: the source of adverts, the tie-break
    addresses: tuple[IPAddress, ...]  # the advertised VIPs, in order (keepalived's set)
    priority: int = PRIORITY_DEFAULT
    version: int = 3
    advert_int_cs: int = 100  # Advertisement_Interval; v2 in whole seconds, so a multiple of 100
    preempt: bool = True
    preempt_delay: float = 0.0  # seconds
    accept: bool = True  # keepalived's default (the RFC's is False)
    down_timer_adverts: int = 3
    garp_master_repeat: int = 5
    garp_master_delay: float = 5.0  # 0: no second burst
    garp_master_refresh: float = 0.0  # 0: no periodic announcements
    garp_master_refresh_repeat: int = 1
    garp_lower_prio_repeat: int = 5
    garp_lower_prio_delay: float = 5.0
    lower_prio_no_advert: bool = False
    # ifvip's default (keepalived's is False): a master that yields to a higher priority
    # sends one last advert at its own, so the winner (ifvip or keepalived) hears a lower
    # priority and re-announces the VIPs: after a partition heals the network ends pointing
    # at the winner, not at the loser the clients resolved to during the split.
    higher_prio_send_advert: bool = True
    unicast_peers: tuple[IPAddress, ...] = ()  # one copy to each; empty: the multicast group
    # A member of a sync group: its expired down timer only makes it want MASTER, and it
    # takes MASTER with the others (SyncMaster, election/sync.py).
    synced: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.vrid <= 255:
            problems.append(f"vrid {self.vrid} is out of range 1..255")
        if not 1 <= self.priority <= PRIORITY_OWNER:
            problems.append(f"priority {self.priority} is out of range 1..255")
        if self.version not in (2, 3):
            problems.append(f"version {self.version} must be 2 or 3")
        if self.version == 2 and (
            self.advert_int_cs % 100 or not 1 <= self.advert_int_cs // 100 <= 255
        ):
            problems.append(f"VRRPv2 interval {self.advert_int_cs} cs: whole seconds 1..255 only")
        if not 1 <= self.advert_int_cs <= V3_INTERVAL_MAX_CS:
            problems.append(f"interval {self.advert_int_cs} cs is out of range 1..4095")
        if not 1 <= self.down_timer_adverts <= 100:
            problems.append(f"down_timer_adverts {self.down_timer_adverts} is out of 1..100")
        if self.preempt_delay and not self.preempt:
            problems.append("preempt_delay needs preemption (it is incompatible with nopreempt)")
        if not 0 <= self.preempt_delay <= 1000:
            problems.append(f"preempt_delay {self.preempt_delay} is out of range 0..1000 s")
        if not self.addresses:
            problems.append("a VRRP instance needs at least one virtual address")
        if self.version == 2 and any(a.version == 6 for a in self.addresses):
            problems.append("VRRPv2 carries IPv4 addresses only")
        if len({a.version for a in (*self.addresses, *self.unicast_peers, self.own_ip)}) > 1:
            problems.append("the source and every virtual address must be of one family")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def owner(self) -> bool:
        return self.priority == PRIORITY_OWNER

    @property
    def family(self) -> int:
        return self.own_ip.version


def skew_time_us(version: int, priority: int, master_adver_int_cs: int) -> int:
    """Skew_Time in µs with keepalived's integer arithmetic (VRRP_TIMER_SKEW_CALC)."""
    if version == 3:
        return ((256 - priority) * master_adver_int_cs * 625) // 16
    return (256 - priority) * US // 256


def master_down_interval_us(
    version: int, priority: int, master_adver_int_cs: int, down_timer_adverts: int = 3
) -> int:
    """Master_Down_Interval in µs: down_timer_adverts * Master_Adver_Interval + Skew_Time."""
    interval_us = master_adver_int_cs * 10_000
    return down_timer_adverts * interval_us + skew_time_us(version, priority, master_adver_int_cs)


def address_key(address: IPAddress) -> int:
    """keepalived's inet_inaddrcmp: addresses compared as unsigned big-endian integers."""
    return int(address)


# ------------------------------------------------------------------------- events


@dataclass(frozen=True)
class VrrpAdvertReceived:
    """An advert for our VRID that passed the wire checks (codec, TTL, auth) in the speaker."""

    src: IPAddress
    priority: int
    max_adver_int_cs: int  # v2: adver_int * 100
    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True)
class SetPriority:
    """A new base priority for a non-owner (health-check weights); clamped to 1..254."""

    priority: int
    reason: str = "priority changed"


VrrpEvent: TypeAlias = (
    Start
    | VrrpAdvertReceived
    | TimerFired
    | LinkChanged
    | Demote
    | Promote
    | SetPriority
    | Shutdown
    | SendResult
    | SyncHold
    | SyncRelease
    | SyncMaster
)


# ------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class SendVrrpAdvert:
    """Send one advert to `destination` (None: the multicast group)."""

    priority: int
    max_adver_int_cs: int
    destination: IPAddress | None = None


@dataclass(frozen=True)
class Notify:
    """keepalived's notify call: `SCRIPT INSTANCE NAME STATE PRIORITY` (MASTER, BACKUP, ...)."""

    state: str
    priority: int


VrrpAction: TypeAlias = (
    SendVrrpAdvert
    | BecomeMaster
    | BecomeBackup
    | Announce
    | ArmTimer
    | CancelTimer
    | Log
    | Notify
    | Discarded
    | Exit
)


# ------------------------------------------------------------------------- the machine


@dataclass(frozen=True)
class VrrpMachine:
    params: VrrpParams
    state: State = State.INIT
    base_priority: int = PRIORITY_DEFAULT  # params.priority, changed by SetPriority/two owners
    master_adver_int_cs: int = 100
    master_ip: IPAddress | None = None
    master_priority: int = 0
    preempt_deadline: float | None = None  # preempt_delay running since a lower advert
    link_up: bool = True
    demoted: bool = False
    transitions: int = 0
    fault: str | None = None  # a failed MASTER action, while its backoff runs
    failures: int = 0  # MASTER action failures in a row
    demote_reason: str = ""  # what demoted it (a check, SIGUSR2), while demoted
    sync_hold: SyncHold | None = None  # held back by its sync group (election/sync.py)
    yielded: str | None = None  # left MASTER for a preferred master, until MASTER again
    wants_master: bool = False  # a synced member's down timer expired (keepalived's wantstate)

    @property
    def priority(self) -> int:
        """The effective priority advertised and compared (keepalived's effective_priority)."""
        return self.base_priority

    @property
    def accepts_vip_traffic(self) -> bool:
        """RFC Accept_Mode: a non-owner master takes packets to the VIPs only with accept."""
        return self.state is State.MASTER and (self.params.owner or self.params.accept)

    def skew_time_us(self) -> int:
        return skew_time_us(self.params.version, self.priority, self.master_adver_int_cs)

    def master_down_interval_us(self) -> int:
        return master_down_interval_us(
            self.params.version,
            self.priority,
            self.master_adver_int_cs,
            self.params.down_timer_adverts,
        )

    def prefix(self) -> str:
        family = "IPv6" if self.params.family == 6 else "IPv4"
        return f"[VRID {self.params.vrid}] [{family}]"


def initial(params: VrrpParams) -> VrrpMachine:
    return VrrpMachine(
        params, base_priority=params.priority, master_adver_int_cs=params.advert_int_cs
    )


def change_state(
    machine: VrrpMachine, new: State, reason: str
) -> tuple[VrrpMachine, list[VrrpAction]]:
    """The one place states change: checked against TRANSITIONS, logged, counted, notified."""
    if new not in TRANSITIONS[machine.state]:
        raise RuntimeError(f"{machine.prefix()} no transition {machine.state} -> {new}")
    log = Log("info", f"{machine.prefix()} {machine.state} -> {new} ({reason})")
    machine = replace(machine, state=new, transitions=machine.transitions + 1, wants_master=False)
    if new is State.MASTER:
        machine = replace(machine, yielded=None)
    return machine, [log]


def _seconds(us: int) -> float:
    return us / US


def _arm_down(machine: VrrpMachine, now: float, us: int | None = None) -> ArmTimer:
    delay = machine.master_down_interval_us() if us is None else us
    return ArmTimer(Timer.MASTER_DOWN, now + _seconds(delay))


def _advert(machine: VrrpMachine, priority: int | None = None) -> list[VrrpAction]:
    """One advert to the group, or one copy to each unicast peer."""
    p = machine.params
    prio = machine.priority if priority is None else priority
    if not p.unicast_peers:
        return [SendVrrpAdvert(prio, p.advert_int_cs)]
    return [SendVrrpAdvert(prio, p.advert_int_cs, peer) for peer in p.unicast_peers]


def _announce(repeat: int) -> list[VrrpAction]:
    return [Announce() for _ in range(max(repeat, 0))]


def step(
    machine: VrrpMachine, event: VrrpEvent, now: float
) -> tuple[VrrpMachine, list[VrrpAction]]:
    """Apply one event at time `now` (seconds, any monotonic origin)."""
    match event:
        case Start():
            return _start(machine, now)
        case VrrpAdvertReceived():
            return _received(machine, event, now)
        case TimerFired(timer=timer):
            return _timer(machine, timer, now)
        case LinkChanged(up=up):
            return _faults(replace(machine, link_up=up), now, "link down" if not up else "link up")
        case Demote(reason=reason):
            return _faults(replace(machine, demoted=True, demote_reason=reason), now, reason)
        case Promote(reason=reason):
            return _faults(replace(machine, demoted=False, demote_reason=""), now, reason)
        case SyncHold():
            return _sync_hold(machine, event, now)
        case SyncRelease(reason=reason):
            return _sync_release(machine, reason, now)
        case SyncMaster(reason=reason):
            if _ready(machine):
                return _become_master(machine, now, reason)
            return machine, []
        case SetPriority(priority=priority, reason=reason):
            return _set_priority(machine, priority, reason)
        case Shutdown():
            return _shutdown(machine)
        case SendResult():
            return machine, []
        case RoleResult(ok=ok, reason=reason):
            return _role_result(machine, ok, reason, now)
    raise TypeError(f"unknown event {event!r}")


def _faulty(machine: VrrpMachine) -> bool:
    held = machine.sync_hold is not None and machine.sync_hold.fault
    return not machine.link_up or machine.demoted or machine.fault is not None or held


def sync_cause(machine: VrrpMachine) -> Cause | None:
    """Why this member cannot be MASTER, for its sync group (election/sync.py); a hold of
    the sync group itself is never one."""
    faults = (machine.link_up, machine.demoted, machine.demote_reason, machine.fault)
    if (cause := fault_cause(*faults)) is not None:
        return cause
    # A yield ends when its down timer expires (wants_master): the preferred master is gone.
    yielding = machine.state is not State.MASTER and not machine.wants_master
    if machine.yielded is not None and yielding:
        return Cause(f"yielded to {machine.yielded}", fault=False)
    return None


def sync_member(name: str, machine: VrrpMachine) -> Member:
    """This member as its sync group sees it (election/sync.py)."""
    return Member(name, sync_cause(machine), machine.sync_hold, str(machine.state), _ready(machine))


def _ready(machine: VrrpMachine) -> bool:
    """Wants MASTER and SyncMaster would make it MASTER: only then does it count as
    wanting, so the sync layer never offers a SyncMaster that changes nothing."""
    return machine.state is State.BACKUP and machine.wants_master and machine.sync_hold is None


def _sync_hold(
    machine: VrrpMachine, hold: SyncHold, now: float
) -> tuple[VrrpMachine, list[VrrpAction]]:
    """keepalived's vrrp_sync_fault (FAULT; a master sends priority 0 first) or, for a
    member that yielded, vrrp_sync_backup (a master goes to BACKUP, no priority 0, and no
    takeover while held)."""
    if machine.sync_hold == hold:
        return machine, []
    machine = replace(machine, sync_hold=hold)
    actions: list[VrrpAction] = [Log("warning", f"{machine.prefix()} held: {hold.reason}")]
    machine, more = _faults(machine, now, hold.reason)
    actions += more
    if machine.state is State.MASTER:
        machine, more = _enter_backup(machine, now, hold.reason)
        actions += more
    return machine, actions


def _sync_release(
    machine: VrrpMachine, reason: str, now: float
) -> tuple[VrrpMachine, list[VrrpAction]]:
    if machine.sync_hold is None:
        return machine, []
    machine = replace(machine, sync_hold=None)
    machine, actions = _faults(machine, now, reason)
    return machine, [Log("info", f"{machine.prefix()} {reason}"), *actions]


def _role_result(
    machine: VrrpMachine, ok: bool, reason: str, now: float
) -> tuple[VrrpMachine, list[VrrpAction]]:
    if ok:
        return replace(machine, failures=0), []
    if machine.state is not State.MASTER:
        return machine, []  # the tenure it was for has ended already
    fault, failures, backoff = failed_action(machine.failures, reason)
    machine = replace(machine, fault=fault, failures=failures)
    log = Log("error", f"{machine.prefix()} MASTER action failed: {fault}; {backoff}")
    machine, actions = _faults(machine, now, "fault: MASTER action failed")
    return machine, [log, *actions, ArmTimer(Timer.FAULT_BACKOFF, now + backoff)]


def _start(machine: VrrpMachine, now: float) -> tuple[VrrpMachine, list[VrrpAction]]:
    # keepalived removes leftover VIPs on every start (§3.1 step 4).
    if _faulty(machine):
        machine, actions = change_state(machine, State.FAULT, "start: fault")
        return machine, [*actions, BecomeBackup(initial=True), Notify("FAULT", machine.priority)]
    if machine.params.owner:
        machine, actions = change_state(machine, State.BACKUP, "start")
        actions += [BecomeBackup(initial=True), Notify("BACKUP", machine.priority)]
        machine, more = _become_master(machine, now, "address owner")
        return machine, actions + more
    return _enter_backup(machine, now, "start", initial_start=True)


def _enter_backup(
    machine: VrrpMachine, now: float, reason: str, *, initial_start: bool = False
) -> tuple[VrrpMachine, list[VrrpAction]]:
    was_master = machine.state is State.MASTER
    machine, actions = change_state(machine, State.BACKUP, reason)
    machine = replace(machine, preempt_deadline=None)
    actions += [
        CancelTimer(Timer.ADVERT),
        CancelTimer(VrrpTimer.GARP_DELAYED),
        CancelTimer(VrrpTimer.GARP_REFRESH),
        CancelTimer(VrrpTimer.GARP_LOWER_PRIO),
    ]
    if initial_start or was_master:
        actions.append(BecomeBackup(initial=initial_start))
    actions += [Notify("BACKUP", machine.priority), _arm_down(machine, now)]
    return machine, actions


def _become_master(
    machine: VrrpMachine, now: float, reason: str
) -> tuple[VrrpMachine, list[VrrpAction]]:
    interval = machine.params.advert_int_cs
    actions: list[VrrpAction] = []
    if machine.master_adver_int_cs != interval:
        actions.append(
            Log(
                "info",
                f"{machine.prefix()} changing advert interval from "
                f"{machine.master_adver_int_cs * 10}ms to locally configured {interval * 10}ms",
            )
        )
    machine = replace(
        machine,
        master_adver_int_cs=interval,
        master_ip=machine.params.own_ip,
        master_priority=machine.priority,
        preempt_deadline=None,
    )
    machine, more = change_state(machine, State.MASTER, reason)
    p = machine.params
    # keepalived: the advert first, then the VIPs, then the announcements (§3.1 step 8);
    # the advert goes out even before the log lines are written.
    actions = [
        *_advert(machine),
        CancelTimer(Timer.MASTER_DOWN),
        *actions,
        *more,
        BecomeMaster(),
        *_announce(p.garp_master_repeat),
        ArmTimer(Timer.ADVERT, now + interval / 100),
        Notify("MASTER", machine.priority),
    ]
    if p.garp_master_delay > 0:
        actions.append(ArmTimer(VrrpTimer.GARP_DELAYED, now + p.garp_master_delay))
    if p.garp_master_refresh > 0:
        actions.append(ArmTimer(VrrpTimer.GARP_REFRESH, now + p.garp_master_refresh))
    return machine, actions


def _leave_master(
    machine: VrrpMachine, new: State, reason: str
) -> tuple[VrrpMachine, list[VrrpAction]]:
    """Master → FAULT or INIT: one priority-0 advert, then the VIPs go (keepalived §3.2)."""
    actions: list[VrrpAction] = [
        CancelTimer(Timer.ADVERT),
        CancelTimer(VrrpTimer.GARP_DELAYED),
        CancelTimer(VrrpTimer.GARP_REFRESH),
        CancelTimer(VrrpTimer.GARP_LOWER_PRIO),
        *_advert(machine, PRIORITY_LEAVING),
    ]
    machine, more = change_state(machine, new, reason)
    return machine, [*actions, *more, BecomeBackup()]


def _received(
    machine: VrrpMachine, advert: VrrpAdvertReceived, now: float
) -> tuple[VrrpMachine, list[VrrpAction]]:
    p = machine.params
    if machine.state in (State.INIT, State.FAULT):
        return machine, [Discarded("not_running")]
    refused = judge(p, advert)
    if refused is not None:
        return machine, [refused]
    if machine.state is State.BACKUP:
        return _backup_received(machine, advert, now)
    return _master_received(machine, advert, now)


def judge(params: VrrpParams, advert: VrrpAdvertReceived) -> Discarded | None:
    """keepalived's checks of an advert's meaning (§1.7 steps 8, 10, 14), or None if it passes.

    The speaker calls it on receipt (so each refusal is counted), the machine again.
    """
    p = params
    prefix = f"[VRID {p.vrid}] [{'IPv6' if p.family == 6 else 'IPv4'}]"
    if advert.src == p.own_ip:
        return Discarded("own")
    if p.version == 2 and advert.max_adver_int_cs != p.advert_int_cs:
        return Discarded(
            "interval",
            f"{prefix} advertisement interval mismatch mine="
            f"{p.advert_int_cs // 100} sec rcv'd={advert.max_adver_int_cs // 100} sec",
        )
    # The count and the set must be exactly ours; order does not matter.
    if len(advert.addresses) != len(p.addresses):
        return Discarded(
            "addresses",
            f"{prefix} received an unexpected ip number count "
            f"{len(advert.addresses)}, expected {len(p.addresses)}!",
        )
    missing = [a for a in p.addresses if a not in advert.addresses]
    if missing:
        return Discarded(
            "addresses",
            f"{prefix} ip address associated with VRID {p.vrid} not present "
            f"in MASTER advert: {missing[0]}",
        )
    return None


def _backup_received(
    machine: VrrpMachine, advert: VrrpAdvertReceived, now: float
) -> tuple[VrrpMachine, list[VrrpAction]]:
    p = machine.params
    if advert.priority == PRIORITY_LEAVING:
        log = Log("info", f"{machine.prefix()} Backup received priority 0 advertisement")
        return machine, [log, _arm_down(machine, now, machine.skew_time_us())]
    delaying = False
    if p.preempt_delay and advert.priority < machine.priority:
        deadline = machine.preempt_deadline
        if deadline is None:
            deadline = now + p.preempt_delay
            machine = replace(machine, preempt_deadline=deadline)
        delaying = now < deadline
    if not p.preempt or advert.priority >= machine.priority or delaying:
        actions: list[VrrpAction] = []
        if p.version == 3 and advert.max_adver_int_cs != machine.master_adver_int_cs:
            actions.append(
                Log(
                    "info",
                    f"{machine.prefix()} advertisement interval updated from "
                    f"{machine.master_adver_int_cs * 10}ms to "
                    f"{advert.max_adver_int_cs * 10}ms by master",
                )
            )
            machine = replace(machine, master_adver_int_cs=advert.max_adver_int_cs)
        # A master is heard: a synced member no longer wants MASTER until its down timer
        # runs out again (a lower priority, discarded below while preempting, does not count).
        machine = replace(
            machine, master_ip=advert.src, master_priority=advert.priority, wants_master=False
        )
        return machine, [*actions, _arm_down(machine, now)]
    # Preempting: a lower priority is discarded and the down timer runs out (RFC §6.4.2).
    return machine, [
        Discarded(
            "lower_priority",
            f"{machine.prefix()} received lower priority ({advert.priority}) advert "
            f"from {advert.src} - discarding",
        )
    ]


def _master_received(
    machine: VrrpMachine, advert: VrrpAdvertReceived, now: float
) -> tuple[VrrpMachine, list[VrrpAction]]:
    p = machine.params
    ours = machine.priority
    if advert.priority == PRIORITY_LEAVING:
        # A peer leaving as master was master beside us (a split): clients may have its MAC,
        # so re-announce as for a lower priority (keepalived only sends the advert).
        return machine, [
            *_advert(machine),
            ArmTimer(Timer.ADVERT, now + p.advert_int_cs / 100),
            *_announce(p.garp_lower_prio_repeat),
        ]
    if advert.priority == PRIORITY_OWNER and ours == PRIORITY_OWNER:
        message = (
            f"{machine.prefix()} CONFIGURATION ERROR: local instance and a remote instance "
            f"({advert.src}) are both configured as address owner, please fix - "
            "reducing local priority"
        )
        return replace(machine, base_priority=PRIORITY_OWNER - 1), [Log("error", message)]
    higher = advert.priority > ours
    tie_won = advert.priority == ours and address_key(advert.src) > address_key(p.own_ip)
    if higher or tie_won:
        actions: list[VrrpAction] = []
        if p.higher_prio_send_advert:
            actions += _advert(machine)
        why = (
            f"higher priority {advert.priority} from {advert.src}"
            if higher
            else f"same priority {ours} but higher IP address {advert.src}"
        )
        if p.version == 3:
            machine = replace(machine, master_adver_int_cs=advert.max_adver_int_cs)
        machine = replace(machine, master_ip=advert.src, master_priority=advert.priority)
        if machine.sync_hold is None:  # a held member's yield is its sync group's doing
            machine = replace(machine, yielded=f"a preferred master {advert.src}")
        machine, more = _enter_backup(machine, now, why)
        return machine, actions + more
    if p.lower_prio_no_advert:
        return machine, [Discarded("lower_priority")]
    # keepalived heals split brain: answer at once and re-announce (§2.4 item 2).
    message = (
        f"{machine.prefix()} Received advert from {advert.src} with lower priority "
        f"{advert.priority}, ours {ours}, forcing new election"
    )
    actions = [
        Log("info", message),
        *_advert(machine),
        ArmTimer(Timer.ADVERT, now + p.advert_int_cs / 100),
        *_announce(p.garp_lower_prio_repeat),
    ]
    if p.garp_lower_prio_delay > 0 and p.garp_lower_prio_repeat > 0:
        actions.append(ArmTimer(VrrpTimer.GARP_LOWER_PRIO, now + p.garp_lower_prio_delay))
    return machine, actions


def _timer(
    machine: VrrpMachine, timer: Hashable, now: float
) -> tuple[VrrpMachine, list[VrrpAction]]:
    p = machine.params
    if timer is Timer.FAULT_BACKOFF:
        if machine.fault is None:
            return machine, []
        return _faults(replace(machine, fault=None), now, "fault backoff over")
    if timer is Timer.MASTER_DOWN:
        if machine.state is not State.BACKUP:
            return machine, []
        if machine.params.synced or machine.sync_hold is not None:
            # keepalived's vrrp_sync_can_goto_master: it wants MASTER, and takes it when every
            # member does (SyncMaster); meanwhile its down timer runs again.
            actions: list[VrrpAction] = [_arm_down(machine, now)]
            if not machine.wants_master:
                message = "master down timer expired: wants MASTER, with its sync group"
                actions.insert(0, Log("info", f"{machine.prefix()} {message}"))
            return replace(machine, wants_master=True), actions
        return _become_master(machine, now, "master down timer expired")
    if machine.state is not State.MASTER:
        return machine, []
    if timer is Timer.ADVERT:
        return machine, [*_advert(machine), ArmTimer(Timer.ADVERT, now + p.advert_int_cs / 100)]
    if timer is VrrpTimer.GARP_DELAYED:
        return machine, _announce(p.garp_master_repeat)
    if timer is VrrpTimer.GARP_REFRESH:
        return machine, [
            *_announce(p.garp_master_refresh_repeat),
            ArmTimer(VrrpTimer.GARP_REFRESH, now + p.garp_master_refresh),
        ]
    if timer is VrrpTimer.GARP_LOWER_PRIO:
        return machine, _announce(p.garp_lower_prio_repeat)
    return machine, []


def _faults(machine: VrrpMachine, now: float, reason: str) -> tuple[VrrpMachine, list[VrrpAction]]:
    """Enter FAULT when the link is down or we are demoted; leave it when neither holds."""
    if machine.state is State.INIT:
        return machine, []
    if _faulty(machine):
        if machine.state is State.FAULT:
            return machine, []
        if machine.state is State.MASTER:
            machine, actions = _leave_master(machine, State.FAULT, reason)
        else:
            actions = [CancelTimer(Timer.MASTER_DOWN)]
            machine, more = change_state(machine, State.FAULT, reason)
            actions += more
        return machine, [*actions, Notify("FAULT", machine.priority)]
    if machine.state is not State.FAULT:
        return machine, []
    # Leaving FAULT: BACKUP with a full Master_Down_Interval, or MASTER for an owner.
    machine = replace(machine, master_adver_int_cs=machine.params.advert_int_cs)
    if machine.params.owner:
        return _become_master(machine, now, reason)
    return _enter_backup(machine, now, reason)


def _set_priority(
    machine: VrrpMachine, priority: int, reason: str
) -> tuple[VrrpMachine, list[VrrpAction]]:
    # An owner's priority is never changed; others stay 1..254. No immediate advert: the
    # next periodic one carries it (keepalived §2.5).
    if machine.params.owner:
        return machine, []
    clamped = min(max(priority, 1), PRIORITY_OWNER - 1)
    if clamped == machine.base_priority:
        return machine, []
    log = Log(
        "info", f"{machine.prefix()} priority {machine.base_priority} -> {clamped} ({reason})"
    )
    return replace(machine, base_priority=clamped), [log]


def _shutdown(machine: VrrpMachine) -> tuple[VrrpMachine, list[VrrpAction]]:
    """SIGTERM: a master sends priority 0 and releases the VIPs; others just leave."""
    actions: list[VrrpAction] = [CancelTimer(Timer.MASTER_DOWN)]
    if machine.state is State.MASTER:
        machine, more = _leave_master(machine, State.INIT, "shutdown")
        actions += more
    elif machine.state is not State.INIT:
        machine, more = change_state(machine, State.INIT, "shutdown")
        actions += more
    return machine, [*actions, Notify("STOP", machine.priority), Exit()]
