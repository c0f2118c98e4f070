"""Sync groups: the members of one sync group are MASTER together or not at all.

Pure like the machines: `decide(group, members)` takes each member's own `Cause` (why it
cannot be MASTER now, or None) and returns, per member, the `SyncHold` it must have (None:
not held); `feeds(group, members)` the events that get it there, for the members whose
hold changes. The runtime (daemon/runtime.py) describes the members after every step of
one (`carp.sync_cause()`, `vrrp.sync_cause()`, the machine's `sync_hold`) and feeds each
`SyncHold` / `SyncRelease` that `feeds()` returns, then asks again until nothing changes.

A member's own causes, as keepalived's vrrp_sync.c sorts them (daemon/SYNC.md has the
sources):

- it cannot be MASTER at all (`fault=True`): its carrier is lost, it is demoted (a failing
  check, SIGUSR2), or its MASTER action failed (the fault backoff runs). keepalived's
  vrrp_sync_fault: every other member enters FAULT, a master sending priority 0 first,
  so the peer takes all of them at once;
- it yielded to a preferred master (`fault=False`): it was MASTER and heard a better peer.
  keepalived's vrrp_sync_backup: every other master goes to BACKUP (no priority-0 advert),
  and no member takes over again while one still yields (vrrp_sync_can_goto_master).
  The yield lasts until the member is MASTER again, or wants to be (its down timer
  expired: the preferred master is gone).

Together back: a VRRP member of a sync group whose down timer expires only wants MASTER
(keepalived's wantstate); `feeds()` lets the members that want it take it at once when
every member is MASTER or wants to be (vrrp_sync_can_goto_master, vrrp_sync_master).
CARP members follow OpenBSD's carp: a held member advertises advskew 240 and the peer takes
over if it preempts; coming back, a synced member that would preempt a slower master only
wants to, and all preempt together on `SyncMaster` (a takeover by the master-down timer or
a bow-out is never gated: the peer is gone).

No feedback loop: a hold is never a cause. A held member's FAULT (VRRP) or raised advskew
(CARP) is not its own reason not to be MASTER, and a member that yields while held (its
peer preempted the demoted master) records no yield; so when the last cause clears, every
hold is released at once and the members come back together, by preemption where it is
configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ifvip.election.events import SyncHold, SyncMaster, SyncRelease


@dataclass(frozen=True)
class Cause:
    """Why one member cannot be MASTER now: `text` follows its name in the log (`lost its
    carrier`), `fault` as SyncHold's."""

    text: str
    fault: bool = True


def fault_cause(
    link_up: bool, demoted: bool, demote_reason: str | None, fault: str | None
) -> Cause | None:
    """The faults that keep a member of either protocol from MASTER (carp/vrrp.sync_cause()
    add their own yield)."""
    if not link_up:
        return Cause("lost its carrier")
    if demoted:
        return Cause(f"is demoted ({demote_reason or 'demoted'})")
    if fault is not None:
        return Cause(f"failed its MASTER action ({fault})")
    return None


@dataclass(frozen=True)
class Member:
    name: str  # "vrid 52 on eth1": unique in its sync group
    cause: Cause | None = None  # its own reason not to be MASTER (carp/vrrp.sync_cause())
    hold: SyncHold | None = None  # the hold its machine has now
    state: str = "BACKUP"
    wants_master: bool = False  # a VRRP member whose down timer expired (keepalived's wantstate)


def decide(group: str, members: Sequence[Member]) -> Mapping[str, SyncHold | None]:
    """The hold of every member of sync group `group`: the first other member that cannot
    be MASTER at all names it (else the first that yields), None when no other has a cause."""
    causes = [(m.name, m.cause) for m in members if m.cause is not None]
    holds: dict[str, SyncHold | None] = {}
    for member in members:
        others = [(name, cause) for name, cause in causes if name != member.name]
        faults = [(name, cause) for name, cause in others if cause.fault]
        chosen = faults or others
        if not chosen:
            holds[member.name] = None
            continue
        name, cause = chosen[0]
        holds[member.name] = SyncHold(f"sync group {group}: {name} {cause.text}", bool(faults))
    return holds


def feeds(
    group: str, members: Sequence[Member]
) -> list[tuple[str, SyncHold | SyncRelease | SyncMaster]]:
    """(member name, event) for every member whose hold must change, in member order; when
    none must, `SyncMaster` for the members that want MASTER once every member is MASTER
    or wants to be (keepalived's vrrp_sync_can_goto_master: "prefer backup state to avoid
    thrashing")."""
    holds = decide(group, members)
    found: list[tuple[str, SyncHold | SyncRelease | SyncMaster]] = []
    for member in members:
        hold = holds[member.name]
        if hold == member.hold:
            continue
        released = SyncRelease(f"sync group {group}: every member may be MASTER again")
        found.append((member.name, hold if hold is not None else released))
    if found:
        return found
    wanting = [m.name for m in members if m.wants_master]
    if wanting and all(m.wants_master or m.state == "MASTER" for m in members):
        master = SyncMaster(f"sync group {group}: every member wants MASTER")
        return [(name, master) for name in wanting]
    return []
