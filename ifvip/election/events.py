"""What both elections share: the events the runtime feeds a machine, the actions it carries
out, the timers both arm, and the backoff after a failed MASTER action.

A machine (carp.py, vrrp.py) is pure: `step(machine, event, now)` returns the next machine
and a list of actions; each protocol adds its own advert event, send action and timers.
The runtime (daemon/runtime.py) handles every action defined here and hands the others to
the group's speaker.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeAlias

FAULT_BACKOFF_FIRST: Final = 30.0  # seconds a group that failed its MASTER action sits out
FAULT_BACKOFF_MAX: Final = 600.0


class Timer(StrEnum):
    """The timers both machines use; each protocol adds its own (CarpTimer, VrrpTimer)."""

    MASTER_DOWN = "master-down"
    ADVERT = "advert"
    # The end of the backoff after a failed MASTER action.
    FAULT_BACKOFF = "fault-backoff"


def fault_backoff(failures: int) -> float:
    """Seconds a group sits out after its `failures`-th MASTER action failure in a row."""
    doublings = min(max(failures - 1, 0), 10)
    return min(FAULT_BACKOFF_FIRST * (1 << doublings), FAULT_BACKOFF_MAX)


class Backoff(float):
    """Seconds of a fault backoff; `str()` is what the log says of them."""

    def __str__(self) -> str:
        return f"eligible again in {float(self):g} s"


def failed_action(failures: int, reason: str) -> tuple[str, int, Backoff]:
    """A MASTER action failed (both protocols): the fault it makes (`reason`, the failing
    line), the failures in a row, and the backoff to sit out."""
    failures += 1
    return reason or "MASTER action failed", failures, Backoff(fault_backoff(failures))


# ------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Start:
    pass


@dataclass(frozen=True)
class TimerFired:
    timer: Hashable  # a Timer, CarpTimer or VrrpTimer


@dataclass(frozen=True)
class LinkChanged:
    up: bool


@dataclass(frozen=True)
class Demote:
    """SIGUSR2 or a failing health check: give up mastership and do not take it back."""

    reason: str = "demoted"


@dataclass(frozen=True)
class Promote:
    reason: str = "promoted"


@dataclass(frozen=True)
class Shutdown:
    pass


@dataclass(frozen=True)
class SendResult:
    ok: bool


@dataclass(frozen=True)
class RoleResult:
    """How the MASTER job ended (VIPs added, managed stanzas up, up-script run); `reason`
    names what failed (the failing line of an ifup) when `ok` is False."""

    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class SyncHold:
    """The member's sync group holds it back (election/sync.py): another member cannot be
    MASTER. `reason` names that member and its cause (`sync group dmz: vrid 52 on eth1
    lost its carrier`); `fault` is keepalived's vrrp_sync_fault (a member cannot be MASTER
    at all: link, demotion, failed MASTER action) as opposed to its vrrp_sync_backup (a
    member yielded to a preferred master). A held VRRP member enters FAULT (or stays BACKUP
    without taking over, when not `fault`); a held CARP member advertises advskew 240, as
    OpenBSD's demoted carp interfaces do."""

    reason: str
    fault: bool = True


@dataclass(frozen=True)
class SyncRelease:
    """The sync group no longer holds the member back: it takes part in the election again."""

    reason: str = "sync group: every member may be MASTER again"


@dataclass(frozen=True)
class SyncMaster:
    """Every member of the sync group is MASTER or wants to be (its down timer expired): a
    VRRP member that wants MASTER takes it now, with the others (keepalived's
    vrrp_sync_master after vrrp_sync_can_goto_master)."""

    reason: str


Event: TypeAlias = (
    Start
    | TimerFired
    | LinkChanged
    | Demote
    | Promote
    | Shutdown
    | SendResult
    | RoleResult
    | SyncHold
    | SyncRelease
    | SyncMaster
)


# ------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class BecomeMaster:
    """Bring the VIPs / managed interfaces up (runs before the first advert and GARP)."""


@dataclass(frozen=True)
class BecomeBackup:
    """Take the VIPs / managed interfaces down; `initial` is the start-up step (-n skips)."""

    initial: bool = False


@dataclass(frozen=True)
class Announce:
    """Gratuitous ARP for the VIPs."""


@dataclass(frozen=True)
class ArmTimer:
    timer: Hashable
    deadline: float


@dataclass(frozen=True)
class CancelTimer:
    timer: Hashable


@dataclass(frozen=True)
class Log:
    level: str
    message: str


@dataclass(frozen=True)
class Exit:
    pass


@dataclass(frozen=True)
class Discarded:
    """An advert the election refused after the speaker let it through (the machine is not
    running, or it preempts a lower priority): the runtime counts it as dropped_<reason>
    and logs `message` at debug level."""

    reason: str
    message: str | None = None


Action: TypeAlias = (
    BecomeMaster | BecomeBackup | Announce | ArmTimer | CancelTimer | Log | Exit | Discarded
)
