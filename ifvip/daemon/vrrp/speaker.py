"""The VRRP speaker: keepalived 2.2.7's wire rules for one group, behind speaker.py's seam.

`VrrpSpeaker` follows speaker.py's `Speaker` protocol. It opens (through the runtime) a
protocol-112 channel for the group's family: 224.0.0.18 or ff02::12, joined unless unicast,
TTL/hop limit 255. On receipt it applies keepalived's checks in keepalived's order
(specs/vrrp.md §1.7): own source, TTL 255 (multicast only), multicast vs unicast mode, the
codec of the configured version (never guessed: CARP and VRRPv2 look alike), VRID, PASS
authentication (constant-time), then the election's own `judge()` (v2 interval, VIP count
and set). Each refusal is a `Dropped(reason)` that the runtime counts and logs.

Adverts leave as keepalived sends them: IPv4 through the kernel socket (TOS 0xc0, TTL
255, the interface's primary address as source, the checksum with the pseudo-header of the
actual destination, or RFC 9568's form); IPv6 multicast as a whole Ethernet frame from the
interface's link-local address (so adding a link-local VIP never changes the source), traffic
class 0xc0, hop limit 255; IPv6 unicast through the kernel socket with that same source named
in IPV6_PKTINFO (never a VIP) and the checksum over it and the peer. Announcements are
keepalived's gratuitous ARP (tha ff:ff:ff:ff:ff:ff) and unsolicited NA (O=1). The protocol
timers run from the advert's kernel receive timestamp (transport.py), are armed a little
early (a tenth of the delay, at most 4 ms) and waited out exactly (a 1 ns timer slack, the
last 250 us spun), so they fire on time despite asyncio's millisecond epoll timeouts.

Notify hooks (notify.py) are queued here, in the order of the transitions, and run one
after the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ipaddress
import logging
import socket
import struct
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ifvip.daemon.speaker import Accepted, ChannelSpec, Dropped, Outgoing
from ifvip.daemon.transport import Received
from ifvip.daemon.vrrp.config import VrrpConfig, link_local_first
from ifvip.daemon.vrrp.notify import NOTIFY_TIMEOUT, run_notify
from ifvip.election.events import ArmTimer, CancelTimer, Event, Timer, TimerFired
from ifvip.election.sync import Member
from ifvip.election.vrrp import (
    Notify,
    SendVrrpAdvert,
    VrrpAction,
    VrrpAdvertReceived,
    VrrpMachine,
    initial,
    judge,
    step,
    sync_member,
)
from ifvip.errors import DecodeError
from ifvip.wire.announce import BROADCAST, gratuitous_arp, mac_bytes, multicast_mac, unsolicited_na
from ifvip.wire.digest import compare_digest
from ifvip.wire.inet import IPPROTO_VRRP
from ifvip.wire.vrrp import (
    AuthType,
    Vrrp2Advert,
    Vrrp3Advert,
    VrrpAdvert,
    decode,
    pass_auth_data,
)

log = logging.getLogger("ifvip")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
TCLASS: Final = 0xC0
TIMER_EARLY: Final = 0.004  # seconds, at most; see VrrpSpeaker._early
SPIN: Final = 0.00025  # seconds before a deadline that are spun out, not slept (_on_time)
PR_SET_TIMERSLACK: Final = 29
PAYLOADS_KEPT: Final = 64  # encoded adverts cached per (priority, destination)
PRECISE_TIMERS: Final = frozenset({Timer.MASTER_DOWN, Timer.ADVERT})


@dataclass
class VrrpSpeaker:
    """One VRRP instance on one interface (specs/vrrp.md)."""

    config: VrrpConfig
    state: str = "INIT"  # the machine's state after the last step (for notify and status)
    _notify_queue: asyncio.Queue[tuple[str, int]] | None = field(default=None, repr=False)
    _notifier: asyncio.Task[None] | None = field(default=None, repr=False)
    _deadlines: dict[Hashable, float] = field(default_factory=dict, repr=False)
    _payloads: dict[tuple[int, IPAddress], bytes] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        c = self.config
        self.name = c.group_name
        self.interface = c.interface
        self.tracks_link = not c.ignoreifstate
        self.channel = ChannelSpec(
            socket.AF_INET if c.family == 4 else socket.AF_INET6,
            str(c.srcip),
            str(c.group),
            join=not c.unicast_peers,
        )
        self.params = c.params()
        self.priority: int | None = c.priority
        self.auth_data = pass_auth_data(c.password.value) if c.password else b"\0" * 8

    # ------------------------------------------------------------ the machine

    def initial(self) -> VrrpMachine:
        precise_sleeps()
        warning = link_local_first(self.config)
        if warning:
            log.warning("%s", warning)
        # The adverts a takeover sends, encoded now rather than after the deadline.
        for destination in self.config.unicast_peers or (self.config.group,):
            self._payload(self.config.priority, destination)
        return initial(self.params)

    def step(
        self, machine: VrrpMachine, event: Event | VrrpAdvertReceived, now: float
    ) -> tuple[VrrpMachine, list[Any]]:
        # Any: the runtime hands what is not a shared action to outgoing() (speaker.py).
        deadline = None
        if isinstance(event, TimerFired):
            deadline = self._deadlines.pop(event.timer, None)
            if deadline is not None:
                now = max(now, deadline)
        actions: list[VrrpAction]
        machine, actions = step(machine, event, now)  # type: ignore[arg-type]
        self.state = str(machine.state)
        early = [self._early(a, now) for a in actions]
        if deadline is not None:
            # The step is computed (it depends only on the deadline): wait out the rest,
            # and the runtime sends the advert the moment we return.
            wait_until(deadline)
        return machine, early

    def _early(self, action: VrrpAction, now: float) -> VrrpAction:
        """Arm the protocol timers a little ahead: asyncio's epoll wait rounds its timeout up
        to a whole millisecond, and a process waking after a long sleep runs slowly, so a
        timer armed for its deadline fires up to a few ms late, later than keepalived's.
        `wait_until` waits out the rest exactly. The lead is a tenth of the delay, at most
        TIMER_EARLY, so that at 10 ms adverts the loop is never held for long."""
        if isinstance(action, ArmTimer) and action.timer in PRECISE_TIMERS:
            self._deadlines[action.timer] = action.deadline
            lead = min(TIMER_EARLY, max(0.0, action.deadline - now) / 10)
            return ArmTimer(action.timer, action.deadline - lead)
        if isinstance(action, CancelTimer):
            self._deadlines.pop(action.timer, None)
        return action

    def state_of(self, machine: VrrpMachine) -> str:
        return str(machine.state)

    def demoted(self, machine: VrrpMachine) -> bool:
        return machine.demoted

    def fault(self, machine: VrrpMachine) -> str | None:
        return machine.fault

    def sync_member(self, name: str, machine: VrrpMachine) -> Member:
        return sync_member(name, machine)

    def status_facts(self, machine: VrrpMachine) -> dict[str, Any]:
        """What `ifvip status` shows for this group."""
        c = self.config
        return {
            "protocol": "vrrp",
            "vrid": c.vrid,
            "version": c.version,
            "priority": machine.priority,
            "advert_interval": machine.master_adver_int_cs / 100,
            "master_priority": machine.master_priority,
            "master_down_interval": machine.master_down_interval_us() / 1e6,
            "vips": tuple(str(v) for v in c.vips),
            "managed": c.manage,
        }

    # ------------------------------------------------------------ receive

    def receive(self, packet: Received) -> Accepted | Dropped:
        """keepalived's vrrp_check_packet, in its order; meaning is left to the election."""
        c = self.config
        prefix = f"({self.name})"
        if packet.src == c.srcip:
            return Dropped("own")
        unicast = bool(c.unicast_peers)
        if not unicast and packet.ttl != 255:
            return Dropped(
                "ttl",
                f"{prefix} invalid TTL/HL. Received {packet.ttl} and expect 255 "
                f"(from {packet.src})",
            )
        # The destination: IPv4's header, or IPV6_PKTINFO (transport.py).
        to_group = packet.dst == c.group
        if unicast and to_group:
            return Dropped("mode", f"{prefix} Expected unicast packet but received multicast")
        if not unicast and not to_group:
            return Dropped("mode", f"{prefix} Expected multicast packet but received unicast")
        try:
            advert = decode(
                packet.payload,
                version=c.version,
                family=c.family,
                src=packet.src,
                dst=packet.dst,
            )
        except DecodeError as exc:
            return Dropped("malformed", f"{prefix} from {packet.src}: {exc}")
        if advert.vrid != c.vrid:
            return Dropped("vrid")
        if isinstance(advert, Vrrp2Advert):
            refused = self._authenticate(advert, prefix, packet.src)
            if refused is not None:
                return refused
        event = VrrpAdvertReceived(
            packet.src, advert.priority, advert.interval_cs(), tuple(advert.addresses)
        )
        verdict = judge(self.params, event)
        if verdict is not None:
            return Dropped(verdict.reason, verdict.message)
        return Accepted((event,), packet.src)

    def _authenticate(self, advert: Vrrp2Advert, prefix: str, src: IPAddress) -> Dropped | None:
        want = self.config.auth_type
        if advert.auth_type != want:
            return Dropped(
                "auth", f"{prefix} received a {advert.auth_type} auth, expecting {want}! ({src})"
            )
        if want == AuthType.PASS and not compare_digest(advert.auth_data, self.auth_data):
            return Dropped("auth", f"{prefix} received an invalid passwd! ({src})")
        return None

    # ------------------------------------------------------------ send

    def outgoing(self, action: Any, mac: str) -> Outgoing | None:
        if isinstance(action, SendVrrpAdvert):
            return self._advert(action, mac)
        if isinstance(action, Notify):
            self._notify(action)
        return None

    def build(self, priority: int, destination: IPAddress | None = None) -> VrrpAdvert:
        c = self.config
        if c.version == 2:
            return Vrrp2Advert(
                vrid=c.vrid,
                priority=priority,
                addresses=c.addresses(),  # type: ignore[arg-type]
                adver_int=c.advert_int_cs // 100,
                auth_type=c.auth_type,
                auth_data=self.auth_data,
            )
        return Vrrp3Advert(c.vrid, priority, c.addresses(), c.advert_int_cs)

    def _payload(self, priority: int, destination: IPAddress) -> bytes:
        """The advert's bytes for this priority and destination (the config never changes:
        each is encoded once)."""
        key = (priority, destination)
        payload = self._payloads.get(key)
        if payload is None:
            c = self.config
            advert = self.build(priority)
            if isinstance(advert, Vrrp2Advert):
                payload = advert.encode()
            else:
                payload = advert.encode(c.srcip, destination, form=c.checksum)
            if len(self._payloads) >= PAYLOADS_KEPT:
                self._payloads.clear()
            self._payloads[key] = payload
        return payload

    def _advert(self, action: SendVrrpAdvert, mac: str) -> Outgoing:
        c = self.config
        destination = action.destination or c.group
        payload = self._payload(action.priority, destination)
        frame = None
        if c.family == 6 and action.destination is None:
            frame = ipv6_frame(mac, c.srcip, destination, payload)
        return Outgoing(payload, str(destination), frame)

    def announcements(self, mac: str, addresses: Sequence[IPAddress]) -> list[bytes]:
        """keepalived's gratuitous ARP (tha broadcast) and unsolicited NA, one per address."""
        frames = []
        for address in addresses:
            if address.version == 4:
                frames.append(gratuitous_arp(mac, address, target_mac=BROADCAST))
            else:
                frames.append(unsolicited_na(mac, address, router=self._forwarding()))
        return frames

    def _forwarding(self) -> bool:
        # keepalived sets R=1 when the interface forwards (specs/vrrp.md §3.4).
        path = f"/proc/sys/net/ipv6/conf/{self.interface}/forwarding"
        try:
            with open(path) as handle:
                return handle.read().strip() == "1"
        except OSError:
            return False

    # ------------------------------------------------------------ notify

    def _notify(self, action: Notify) -> None:
        if not self.config.notify:
            return
        if self._notify_queue is None:
            self._notify_queue = asyncio.Queue()
            self._notifier = asyncio.create_task(self._run_notifies(), name="ifvip-notify")
        self._notify_queue.put_nowait((action.state, action.priority))

    async def _run_notifies(self) -> None:
        assert self._notify_queue is not None
        while True:
            state, priority = await self._notify_queue.get()
            for script in self.config.notify:
                await run_notify(script, self.config.name, state, priority, self.name)
            self._notify_queue.task_done()

    async def drain(self, timeout: float = NOTIFY_TIMEOUT) -> None:
        """Wait for the queued notify calls (at exit), then stop the notifier."""
        if self._notify_queue is None or self._notifier is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._notify_queue.join(), timeout)
        self._notifier.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._notifier


def wait_until(deadline: float) -> None:
    """Hold the loop until `deadline` (time.monotonic, the loop's clock) when it is at most
    TIMER_EARLY away: a sleep ends up to ~100 us late (timer slack, wake-up), so the last
    SPIN is spun, and the advert leaves at the deadline, as keepalived's timerfd."""
    remaining = deadline - time.monotonic()
    if not 0 < remaining <= TIMER_EARLY:
        return
    if remaining > SPIN:
        time.sleep(remaining - SPIN)
    while time.monotonic() < deadline:
        pass


def precise_sleeps() -> None:
    """Timer slack of 1 ns for this process (prctl PR_SET_TIMERSLACK; Linux's default is
    50 us): the loop's epoll waits and the timers' sleeps end when asked. Best effort."""
    with contextlib.suppress(AttributeError, OSError, TypeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)


def ipv6_frame(mac: str, src: IPAddress, dst: IPAddress, payload: bytes) -> bytes:
    """Ethernet + IPv6 header (traffic class 0xc0, hop limit 255, next header 112) + payload."""
    group = ipaddress.IPv6Address(dst)
    header = (
        struct.pack("!IHBB", (6 << 28) | (TCLASS << 20), len(payload), IPPROTO_VRRP, 255)
        + ipaddress.IPv6Address(src).packed
        + group.packed
    )
    return multicast_mac(group) + mac_bytes(mac) + b"\x86\xdd" + header + payload


# ------------------------------------------------------------------ source discovery


# ------------------------------------------------------------------ roles and launch
