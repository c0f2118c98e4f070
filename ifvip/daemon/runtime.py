"""The asyncio runtime of a CARP group: the one clock, the sockets, timers and signals.

It feeds the pure election (election.py) with events (adverts that passed the wire checks,
timer expiries, link changes, signals) and carries out the actions it returns: adverts
through the protocol-112 channel, VIPs through netlink, gratuitous ARPs through AF_PACKET,
ucarp-style up/down scripts as child processes that never block adverts.

Every received packet is either handed to the election or counted as dropped with its
reason (`counters`), as the status command and the metrics will show them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import signal
import socket
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

from ifvip.daemon.config import GroupConfig
from ifvip.daemon.transport import Channel, LinkSender, Received, ipv4_header
from ifvip.election import (
    Action,
    AdvertReceived,
    Announce,
    ArmTimer,
    BecomeBackup,
    BecomeMaster,
    CancelTimer,
    CarpParams,
    Demote,
    Event,
    Exit,
    LinkChanged,
    Log,
    Machine,
    Promote,
    SendAdvert,
    SendResult,
    Shutdown,
    Start,
    State,
    Timer,
    TimerFired,
    initial,
    step,
)
from ifvip.errors import DecodeError
from ifvip.ifupdown.netlink import Kernel, KernelError
from ifvip.wire.announce import gratuitous_arp, mac_bytes
from ifvip.wire.carp import CarpAdvert

log = logging.getLogger("ifvip")

LINK_POLL: Final = 0.1  # seconds between link-state reads (carrier and admin state)
SCRIPT_TIMEOUT: Final = 60.0
SCRIPT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class GroupRuntime:
    """One CARP group on one interface."""

    config: GroupConfig
    kernel: Kernel
    machine: Machine = field(init=False)
    counters: Counter[str] = field(default_factory=Counter)
    mac: str = "00:00:00:00:00:00"
    channel: Channel | None = None
    link: LinkSender | None = None
    counter: int = field(default_factory=lambda: secrets.randbits(64))
    _timers: dict[Timer, asyncio.TimerHandle] = field(default_factory=dict)
    _done: asyncio.Event = field(default_factory=asyncio.Event)
    _scripts: set[asyncio.Task[None]] = field(default_factory=set)
    _last: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        c = self.config
        self.machine = initial(
            CarpParams(
                vhid=c.vhid,
                own_ip=c.srcip,
                advbase=c.advbase,
                advskew=c.advskew,
                deadratio=c.deadratio,
                preempt=c.preempt,
                neutral=c.neutral,
            )
        )

    # ---------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        info = await self.kernel.link(self.config.interface)
        self.mac = info.mac
        self.channel = Channel(
            self.config.interface,
            info.index,
            socket.AF_INET,
            source=str(self.config.srcip),
            multicast=not self.config.nomcast,
            group=str(self.config.mcast),
        )
        self.link = LinkSender(self.config.interface)
        loop.add_reader(self.channel.fileno(), self._readable)
        for signum, event in (
            (signal.SIGTERM, Shutdown()),
            (signal.SIGINT, Shutdown()),
            (signal.SIGHUP, Shutdown()),
        ):
            loop.add_signal_handler(signum, self.feed, event)
        loop.add_signal_handler(signal.SIGUSR2, self._toggle_demotion)
        loop.add_signal_handler(signal.SIGUSR1, self._dump)
        poller = asyncio.create_task(self._watch_link(info.up and info.carrier))
        try:
            self.feed(Start())
            await self._done.wait()
            await asyncio.gather(*self._scripts, return_exceptions=True)
        finally:
            poller.cancel()
            loop.remove_reader(self.channel.fileno())
            for handle in self._timers.values():
                handle.cancel()
            self.channel.close()
            self.link.close()

    def feed(self, event: Event) -> None:
        """Step the election with `event` now and carry out what it asks, in order."""
        now = asyncio.get_running_loop().time()
        self.machine, actions = step(self.machine, event, now)
        for action in actions:
            self._do(action)

    # ---------------------------------------------------------------- actions

    def _do(self, action: Action) -> None:
        match action:
            case SendAdvert(advbase=advbase, advskew=advskew):
                self._send(advbase, advskew)
            case ArmTimer(timer=timer, deadline=deadline):
                self._arm(timer, deadline)
            case CancelTimer(timer=timer):
                handle = self._timers.pop(timer, None)
                if handle is not None:
                    handle.cancel()
            case BecomeMaster():
                self._spawn(self._master())
            case BecomeBackup():
                self._spawn(self._backup())
            case Announce():
                self._announce()
            case Log(level=level, message=message):
                log.log(logging.getLevelName(level.upper()), message)
                self.counters["transitions"] = self.machine.transitions
            case Exit():
                self._done.set()

    def _arm(self, timer: Timer, deadline: float) -> None:
        old = self._timers.pop(timer, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[timer] = loop.call_at(deadline, self.feed, TimerFired(timer))

    def _send(self, advbase: int, advskew: int) -> None:
        assert self.channel is not None and self.link is not None
        c = self.config
        self.counter = (self.counter + 1) & 0xFFFFFFFFFFFFFFFF
        advert = CarpAdvert.build(
            vhid=c.vhid,
            advskew=advskew,
            advbase=advbase,
            counter=self.counter,
            password=c.password.value,
            vip=c.addr,
        ).encode()
        try:
            if c.forge_mac or c.nomcast:
                self.link.send(self._frame(advert))
            else:
                self.channel.send(advert, str(c.mcast))
        except OSError as exc:
            self.counters["send_errors"] += 1
            log.warning("(vhid %d) cannot send advert: %s", c.vhid, exc.strerror)
            self.feed(SendResult(ok=False))
            return
        self.counters["adverts_sent"] += 1
        if self.machine.send_errors or self.machine.suppressed:
            self.feed(SendResult(ok=True))

    def _frame(self, advert: bytes) -> bytes:
        """The whole Ethernet frame, for ucarp's forged source MAC or `-M` broadcast."""
        c = self.config
        group = c.mcast.packed
        dst = b"\xff" * 6 if c.nomcast else bytes([1, 0, 0x5E, group[1] & 0x7F, group[2], group[3]])
        src = bytes([0, 0, 0x5E, 0, 0, c.vhid]) if c.forge_mac else mac_bytes(self.mac)
        ip = ipv4_header(
            str(c.srcip),
            str(c.mcast),
            len(advert),
            ident=secrets.randbits(16),
            tos=0x10,  # ucarp's frame, for parity (shared/vectors/README.md)
            dont_fragment=True,
        )
        return dst + src + b"\x08\x00" + ip + advert

    def _announce(self) -> None:
        assert self.link is not None
        for vip in self.config.vips:
            if vip.interface.version == 4:
                with contextlib.suppress(OSError):
                    self.link.send(gratuitous_arp(self.mac, vip.interface.ip))
                    self.counters["garps_sent"] += 1

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        """Run a kernel/script job after the previous one: MASTER and BACKUP never interleave."""
        previous = self._last

        async def in_order() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            await job

        task = asyncio.create_task(in_order())
        self._last = task
        self._scripts.add(task)
        task.add_done_callback(self._scripts.discard)

    async def _master(self) -> None:
        c = self.config
        for vip in c.vips:
            device = vip.device or c.interface
            try:
                await self.kernel.add_address(device, vip.interface, label=device)
            except KernelError as exc:
                if exc.errno != errno.EEXIST:
                    log.error("(vhid %d) cannot add %s: %s", c.vhid, vip, exc)
        if c.upscript:
            await self._script(c.upscript)

    async def _backup(self) -> None:
        c = self.config
        for vip in c.vips:
            device = vip.device or c.interface
            try:
                await self.kernel.del_address(device, vip.interface)
            except KernelError as exc:
                if exc.errno not in (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV):
                    log.error("(vhid %d) cannot remove %s: %s", c.vhid, vip, exc)
        if c.downscript:
            await self._script(c.downscript)

    async def _script(self, path: str) -> None:
        """ucarp's call: `script IFACE VADDR [XPARAM]`, no shell, bounded in time."""
        argv = [path, self.config.interface, self.config.addr]
        if self.config.xparam is not None:
            argv.append(self.config.xparam)
        env = {**os.environ, "PATH": SCRIPT_PATH}
        try:
            process = await asyncio.create_subprocess_exec(*argv, env=env)
        except OSError as exc:
            log.error("(vhid %d) cannot run %s: %s", self.config.vhid, path, exc.strerror)
            return
        try:
            code = await asyncio.wait_for(process.wait(), SCRIPT_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            log.error(
                "(vhid %d) %s ran over %.0f s and was killed",
                self.config.vhid,
                path,
                SCRIPT_TIMEOUT,
            )
            return
        if code != 0:
            log.warning("(vhid %d) %s exited with %d", self.config.vhid, path, code)

    # ---------------------------------------------------------------- input

    def _readable(self) -> None:
        assert self.channel is not None
        while (packet := self.channel.receive()) is not None:
            self._received(packet)

    def _received(self, packet: Received) -> None:
        c = self.config
        if packet.src == c.srcip:
            self.counters["dropped_own"] += 1
            return
        if packet.ttl != 255:
            self.counters["dropped_ttl"] += 1
            return
        try:
            advert = CarpAdvert.decode(packet.payload)
        except DecodeError:
            self.counters["dropped_malformed"] += 1
            return
        if advert.vhid != c.vhid:
            self.counters["dropped_vhid"] += 1
            return
        if not advert.verify(c.password.value, c.addr):
            self.counters["auth_failures"] += 1
            log.warning(
                "(vhid %d) bad digest from %s: check vhid, password and virtual IP",
                c.vhid,
                packet.src,
            )
            return
        self.counters["adverts_received"] += 1
        # ucarp adopts a valid peer's counter and counts on from it (vectors/README.md).
        self.counter = advert.counter
        self.feed(AdvertReceived(packet.src, advert.advbase, advert.advskew))  # type: ignore[arg-type]

    async def _watch_link(self, up: bool) -> None:
        if self.config.ignoreifstate:
            return
        path = f"/sys/class/net/{self.config.interface}"
        while True:
            await asyncio.sleep(LINK_POLL)
            now_up = _link_running(path)
            if now_up != up:
                up = now_up
                self.feed(LinkChanged(up=up))

    def _toggle_demotion(self) -> None:
        self.feed(Promote("SIGUSR2: promoted") if self.machine.demoted else Demote("SIGUSR2"))

    def _dump(self) -> None:
        state = self.machine.state
        log.info(
            "(vhid %d) %s on %s, counters %s",
            self.config.vhid,
            state,
            self.config.interface,
            dict(self.counters),
        )

    @property
    def is_master(self) -> bool:
        return self.machine.state is State.MASTER


def _link_running(path: str) -> bool:
    """IFF_UP and carrier, as ucarp's IFF_RUNNING test sees it."""
    try:
        with open(f"{path}/flags") as flags, open(f"{path}/carrier") as carrier:
            return bool(int(flags.read(), 16) & 1) and carrier.read().strip() == "1"
    except (OSError, ValueError):
        return False


async def run_group(config: GroupConfig, netns: str | None = None) -> dict[str, int]:
    """Run one CARP group until SIGTERM/SIGINT; return its counters."""
    async with Kernel(netns) as kernel:
        group = GroupRuntime(config, kernel)
        await group.run()
        return dict(group.counters)
