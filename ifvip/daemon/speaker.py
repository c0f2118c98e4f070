"""The protocol seam of the daemon: what one group's protocol must provide to the runtime.

The runtime (runtime.py) runs many groups in one asyncio loop. It knows nothing of CARP or
VRRP: each group is a `Speaker` plus a `Role` (roles.py, what MASTER/BACKUP mean). A
speaker is a small object with

- `name` (`"vhid 42"`, `"vrid 7"`): the log prefix is `(name)`, keepalived-style;
- `interface`, `tracks_link` (False for ucarp's `-S`) and `channel`: a `ChannelSpec` saying
  which protocol-112 socket the runtime opens for it (family, source, group, join or not);
- `initial()` and `step(machine, event, now)`: the group's pure machine and step function
  (election/carp.py, election/vrrp.py). The runtime feeds it the shared events
  of election/events.py (`Start`, `TimerFired`, `LinkChanged`, `Demote`, `Promote`, `Shutdown`,
  `SendResult`, and whatever `receive()` returns) and carries out the shared actions
  (`ArmTimer`/`CancelTimer` with any hashable timer key, `BecomeMaster`, `BecomeBackup`,
  `Announce`, `Log`, `Exit`). Any other action is handed to `outgoing()`;
- `state_of(machine)`: the state name (`"MASTER"`, `"BACKUP"`, ...), `demoted(machine)`, and
  `fault(machine)`: the MASTER action that failed, while the group sits out its backoff;
- `sync_member(name, machine)`: the group as its sync group sees it (election/sync.py's
  `Member`: why it cannot be MASTER now, the hold its sync group put on it, its state,
  whether it wants MASTER);
- `receive(packet)`: wire checks on one received packet (the codec's `decode()`, TTL 255,
  own source, group id, authentication) returning `Accepted(events)` or
  `Dropped(reason, message)`. The runtime counts each drop as `dropped_<reason>` and logs
  `message` (rate limited) when there is one. Meaning (priorities, timers) stays in the
  machine (STYLE rule 6);
- `outgoing(action)`: the bytes of an advert for a send action (`Outgoing`: the IP
  payload for the kernel socket, or a whole Ethernet frame for AF_PACKET), or None when the
  action is not a send;
- `announcements(mac, addresses)`: the gratuitous ARP / unsolicited NA frames that tell the
  LAN `addresses` are now at `mac`;
- `status_facts(machine)`: what `ifvip status` and the metrics show of the group
  (protocol, vrid, priority or advskew, advert interval, VIPs, managed stanzas), and
  `priority`: the base priority a `--check-weight` moves, None where the protocol has none;
- `drain()`: at exit or retirement, finish what the speaker still runs (VRRP's queued
  notify scripts; nothing for CARP).

CARP's speaker is carp/speaker.py, VRRP's vrrp/speaker.py; launch.py's registry builds either
from a group definition and starts it through `runtime.Daemon.add(speaker, role)`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from ifvip.daemon.roles import Role
from ifvip.daemon.transport import Received
from ifvip.election.sync import Member

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ChannelSpec:
    """The protocol-112 socket a group needs."""

    family: int  # socket.AF_INET or AF_INET6
    source: str
    group: str
    join: bool = True


@dataclass(frozen=True)
class Accepted:
    events: tuple[object, ...]  # the protocol's own events, fed to its machine
    src: IPAddress


@dataclass(frozen=True)
class Dropped:
    reason: str  # counted as dropped_<reason>
    message: str | None = None  # logged (rate limited) when not None


@dataclass(frozen=True)
class Outgoing:
    """An advert: `payload` for the protocol socket, or a whole Ethernet `frame`."""

    payload: bytes
    destination: str
    frame: bytes | None = None


class Speaker(Protocol):
    name: str
    interface: str
    tracks_link: bool
    channel: ChannelSpec
    # The base priority a check weight moves (VRRP's); None: the protocol has none (CARP).
    priority: int | None

    def initial(self) -> Any: ...

    def step(self, machine: Any, event: Any, now: float) -> tuple[Any, Sequence[object]]: ...

    def state_of(self, machine: Any) -> str: ...

    def demoted(self, machine: Any) -> bool: ...

    def fault(self, machine: Any) -> str | None: ...

    def sync_member(self, name: str, machine: Any) -> Member: ...

    def receive(self, packet: Received) -> Accepted | Dropped: ...

    def outgoing(self, action: Any, mac: str) -> Outgoing | None: ...

    def announcements(self, mac: str, addresses: Sequence[IPAddress]) -> list[bytes]: ...

    def status_facts(self, machine: Any) -> dict[str, Any]: ...

    async def drain(self) -> None: ...


class Started(NamedTuple):
    """What a protocol's `start()` (carp/role.py, vrrp/role.py) gives launch.py for one
    group: its speaker, its role, and the seconds between repeated announcements while
    MASTER (ucarp's --garp; 0: none)."""

    speaker: Speaker
    role: Role
    garp_repeat: float = 0.0
