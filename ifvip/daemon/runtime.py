"""The asyncio runtime of ifvip run: one loop, one clock, signals, and many groups in it.

`Daemon` runs every group (CARP VHIDs now, VRRP groups too) in one asyncio loop. A group is
a protocol `Speaker` (speaker.py: wire checks, advert bytes, the pure machine and its step
function) plus a `Role` (roles.py: what MASTER and BACKUP mean). The runtime feeds each
machine its events (packets that passed the speaker's wire checks, timer expiries, link
changes from netlink, signals) with `now` from the loop's monotonic clock, and carries out
the actions the machine returns:

- sends go out at once, on the protocol-112 socket or as an AF_PACKET frame, and are never
  queued behind a role job;
- role jobs (`BecomeMaster`, `BecomeBackup`, the announcements that follow them, lifetime
  refreshes) run one at a time per group, in order, as tasks: a slow ifup or script never
  delays an advert; `BecomeBackup` (and `Exit`) cancel a MASTER job still running, so a
  hanging up-script or ifup never holds the release behind it;
- timers are `loop.call_at` handles keyed by the machine's own timer keys.

To add a protocol, write a speaker that follows speaker.py's seam and pass it to
`Daemon.add()`; this module does not change.

Signals are shared: SIGTERM/SIGINT shut every group down gracefully (bow-out advert,
release), SIGHUP calls the launcher's `reload` (launch.py: re-read the configuration, keep
unchanged groups running untouched, `retire()` changed and removed ones, `launch()` new ones),
SIGUSR1 logs every group's status, SIGUSR2 toggles a demotion that lasts until the next
SIGUSR2. Link state comes from RTM_NEWLINK/RTM_DELLINK events on one netlink socket, never
from polling. Per-group state, since-when, the master's address and counters live in
`GroupSnapshot`s (`Daemon.snapshots()`), which a status server can read.

Under systemd (`Type=notify`, daemon/sd_notify.py) the daemon says READY=1 once every group has
started, STATUS= on every transition (`vhid 42 MASTER; vrid 51 BACKUP`), STOPPING=1 on
SIGTERM/SIGINT, RELOADING=1 ... READY=1 around a reload, and WATCHDOG=1 at half of
$WATCHDOG_USEC.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ifvip.daemon.roles import Role
from ifvip.daemon.sd_notify import Notifier
from ifvip.daemon.speaker import Accepted, Outgoing, Speaker
from ifvip.daemon.transport import Channel, LinkSender
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
    TimerFired,
)
from ifvip.election.sync import feeds
from ifvip.ifupdown.netlink import Kernel

log = logging.getLogger("ifvip")

IFF_UP: Final = 0x1
IFF_RUNNING: Final = 0x40
RTMGRP_LINK: Final = 0x1
DROP_LOG_INTERVAL: Final = 1.0  # seconds between two log lines for one drop reason
EXIT_GRACE: Final = 70.0  # seconds the role jobs may take after the last group exits
SYNC_PASSES_MAX: Final = 16  # sync-group passes after one step (they settle in two)


@dataclass(frozen=True)
class GroupSnapshot:
    """One group as a status dump, the control socket or metrics show it."""

    name: str
    interface: str
    state: str
    since: float  # wall-clock time of the last transition
    master: str | None  # who is master as far as we know (ourselves included)
    demoted: bool
    link_up: bool
    counters: dict[str, int]
    addresses: tuple[str, ...]
    fault: str | None = None  # the MASTER action that failed, while its backoff runs
    sync_group: str | None = None  # the sync group it is a member of
    sync_hold: str | None = None  # why its sync group holds it back (another member's cause)


@dataclass
class Group:
    """One speaker + role in the loop: its machine, timers, sockets, jobs and counters."""

    speaker: Speaker
    role: Role
    kernel: Kernel
    garp_repeat: float = 0.0  # seconds between repeated announcements while MASTER (0: off)
    machine: Any = None
    counters: Counter[str] = field(default_factory=Counter)
    mac: str = "00:00:00:00:00:00"
    since: float = field(default_factory=time.time)
    master: str | None = None
    link_up: bool = True
    exiting: bool = False  # after Exit: the machine takes no more events
    channel: Channel | None = None
    link: LinkSender | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _timers: dict[Hashable, asyncio.TimerHandle] = field(default_factory=dict)
    _jobs: set[asyncio.Task[None]] = field(default_factory=set)
    _last: asyncio.Task[None] | None = None
    _master_job: asyncio.Task[None] | None = None
    _refresh_pending: bool = False
    _drop_logged: dict[str, float] = field(default_factory=dict)
    _repeat: asyncio.TimerHandle | None = None
    on_change: Callable[[Group], None] | None = None  # after every state change
    sync_group: str | None = None  # members of one sync group are MASTER together or not at all
    on_step: Callable[[Group], None] | None = None  # after every step (the sync groups)

    def __post_init__(self) -> None:
        self.machine = self.speaker.initial()
        # Shown (status) and exported (/metrics) from the start, as keepalived's exporter.
        for name in ("transitions", "become_master", "release_master"):
            self.counters[name] += 0

    @property
    def prefix(self) -> str:
        return f"({self.speaker.name})"

    @property
    def state(self) -> str:
        return self.speaker.state_of(self.machine)

    @property
    def member(self) -> str:
        """Its name in its sync group, and in the reasons a hold gives: `vrid 52 on eth1`."""
        name, where = self.speaker.name, f" on {self.speaker.interface}"
        return name if name.endswith(where) else name + where

    # ---------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        info = await self.kernel.link(self.speaker.interface)
        self.mac = info.mac
        self.link_up = info.up and info.carrier
        spec = self.speaker.channel
        self.channel = Channel(
            self.speaker.interface,
            info.index,
            spec.family,
            source=spec.source,
            multicast=spec.join,
            group=spec.group,
        )
        self.link = LinkSender(self.speaker.interface)
        asyncio.get_running_loop().add_reader(self.channel.fileno(), self._readable)

    async def start(self) -> None:
        # Remove what a crashed earlier run left before joining as BACKUP.
        await self.role.recover()
        if self.speaker.tracks_link and not self.link_up:
            self.feed(LinkChanged(up=False))
        self.feed(Start())

    def close(self) -> None:
        self._stop_repeating()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self.channel is not None:
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
            self.channel.close()
        if self.link is not None:
            self.link.close()

    async def drain(self) -> None:
        if self._jobs:
            await asyncio.gather(*list(self._jobs), return_exceptions=True)

    # ---------------------------------------------------------------- the machine

    def feed(self, event: object, at: float | None = None) -> None:
        """Step the machine with `event` now (or at `at`, a received packet's kernel
        timestamp on the loop's clock) and carry out what it asks, in order."""
        if self.exiting:
            return
        now = asyncio.get_running_loop().time() if at is None else at
        before = self.state
        self.machine, actions = self.speaker.step(self.machine, event, now)
        if self.state != before:
            self.since = time.time()
            self.counters["transitions"] += 1
            if self.state == "MASTER":
                self.counters["become_master"] += 1
                self.master = self.speaker.channel.source
            elif before == "MASTER":
                self.counters["release_master"] += 1
                self.master = None
        for action in actions:
            self._do(action)
        if self.state != before and self.on_change is not None:
            self.on_change(self)
        if self.on_step is not None:
            self.on_step(self)

    def _do(self, action: Any) -> None:
        match action:
            case ArmTimer(timer=timer, deadline=deadline):
                self._cancel(timer)
                loop = asyncio.get_running_loop()
                self._timers[timer] = loop.call_at(deadline, self.feed, TimerFired(timer))
            case CancelTimer(timer=timer):
                self._cancel(timer)
            case BecomeMaster():
                self._master_job = self._job(self._master())
                self._repeat_announcements()
            case BecomeBackup(initial=initial):
                self._stop_repeating()
                self._cancel_master_job()
                self._job(self.role.backup(initial))
            case Announce():
                self._job(self._announce())
            case Log(level=level, message=message):
                log.log(logging.getLevelName(level.upper()), message)
            case Discarded(reason=reason, message=message):
                self.counters[f"dropped_{reason}"] += 1
                if message is not None:
                    log.debug("%s", message)
            case Exit():
                # Released and bowed out: hearing a peer now must not make us master again.
                self.exiting = True
                self._stop_repeating()
                self._cancel_master_job()
                for handle in self._timers.values():
                    handle.cancel()
                self._timers.clear()
                if self.channel is not None:
                    asyncio.get_running_loop().remove_reader(self.channel.fileno())
                self._job(self._exit())
            case _:
                outgoing = self.speaker.outgoing(action, self.mac)
                if outgoing is not None:
                    self._send(outgoing)

    def _cancel(self, timer: Hashable) -> None:
        handle = self._timers.pop(timer, None)
        if handle is not None:
            handle.cancel()

    def _send(self, outgoing: Outgoing) -> None:
        try:
            if self.channel is None or self.link is None:
                raise OSError(errno.ENODEV, "the interface's sockets are closed")
            if outgoing.frame is not None:
                self.link.send(outgoing.frame)
            else:
                self.channel.send(outgoing.payload, outgoing.destination)
        except OSError as exc:
            self.counters["send_errors"] += 1
            log.warning("%s cannot send advert: %s", self.prefix, exc.strerror)
            self.feed(SendResult(ok=False))
            return
        self.counters["adverts_sent"] += 1
        self.feed(SendResult(ok=True))
        if self.state == "MASTER" and not self._refresh_pending:
            # Every advert extends the VIPs' lifetime: the dead man's switch (roles.py).
            self._refresh_pending = True
            self._job(self._refresh())

    async def _refresh(self) -> None:
        self._refresh_pending = False
        try:
            await self.role.refresh()
        except Exception as exc:  # e.g. re-bringing up stanzas after a freeze failed
            self.feed(RoleResult(ok=False, reason=str(exc) or type(exc).__name__))

    async def _master(self) -> None:
        """The MASTER job. How it ended goes back to the machine: a failure is a fault (the
        group bows out and sits out a backoff), never a MASTER that serves nothing."""
        try:
            await self.role.master()
        except Exception as exc:
            log.debug("%s MASTER action failed", self.prefix, exc_info=True)
            self._master_ended()
            self.feed(RoleResult(ok=False, reason=str(exc) or type(exc).__name__))
            return
        self._master_ended()
        self.feed(RoleResult(ok=True))

    def _master_ended(self) -> None:
        # The release the machine may now ask for must not cancel this very job.
        if self._master_job is asyncio.current_task():
            self._master_job = None

    async def _announce(self) -> None:
        if self.link is None:
            return
        for frame in self.speaker.announcements(self.mac, self.role.addresses()):
            try:
                self.link.send(frame)
                self.counters["announcements_sent"] += 1
            except OSError as exc:
                log.warning("%s cannot announce: %s", self.prefix, exc.strerror)

    def _repeat_announcements(self) -> None:
        self._stop_repeating()
        if self.garp_repeat > 0:
            loop = asyncio.get_running_loop()
            self._repeat = loop.call_later(self.garp_repeat, self._repeat_now)

    def _repeat_now(self) -> None:
        if self.state == "MASTER":
            self._job(self._announce())
            self._repeat_announcements()

    def _stop_repeating(self) -> None:
        if self._repeat is not None:
            self._repeat.cancel()
            self._repeat = None

    async def _exit(self) -> None:
        self.done.set()

    def _job(self, job: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a role job after the previous one: MASTER and BACKUP never interleave."""
        previous = self._last

        async def in_order() -> None:
            cancelled = False
            while previous is not None and not previous.done():
                try:
                    # wait(), not gather(): cancelling this job must not cancel the previous;
                    # and a cancelled job still ends after it, so that the next one does.
                    await asyncio.wait([previous])
                except asyncio.CancelledError:
                    cancelled = True
            if cancelled:
                job.close()  # cancelled before it began: it never runs
                raise asyncio.CancelledError
            try:
                await job
            except Exception:
                log.exception("%s role action failed", self.prefix)

        task = asyncio.create_task(in_order())
        self._last = task
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return task

    def _cancel_master_job(self) -> None:
        """BACKUP (or shutdown) while the MASTER job still runs (a hanging up-script or
        ifup): cancel it (the script's process group is killed, an ifup undoes its work),
        so the release that follows never waits behind it."""
        task, self._master_job = self._master_job, None
        if task is not None and not task.done():
            log.warning("%s releasing: the MASTER actions still running are cancelled", self.prefix)
            task.cancel()

    # ---------------------------------------------------------------- input

    def _readable(self) -> None:
        assert self.channel is not None
        while (packet := self.channel.receive()) is not None:
            if packet.malformed:
                self.counters["dropped_malformed"] += 1
                continue
            verdict = self.speaker.receive(packet)
            if isinstance(verdict, Accepted):
                self.counters["adverts_received"] += 1
                for event in verdict.events:
                    # Timers run from the arrival, not from when we read it.
                    self.feed(event, packet.arrived)
                if self.state != "MASTER":
                    self.master = str(verdict.src)
                continue
            self.counters[f"dropped_{verdict.reason}"] += 1
            if verdict.message is not None:
                now = asyncio.get_running_loop().time()
                if now - self._drop_logged.get(verdict.reason, -DROP_LOG_INTERVAL) >= (
                    DROP_LOG_INTERVAL
                ):
                    self._drop_logged[verdict.reason] = now
                    log.warning("%s", verdict.message)

    def relink(self, index: int, mac: str | None) -> None:
        """The interface was made anew under the same name (a NIC reset, a VM hot-plug, a
        container network reconnect): its sockets still point at the old link, which is
        gone. Open them again on the new one; the link events that follow do the rest."""
        channel = self.channel
        if channel is None or self.exiting or index == channel.ifindex:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(channel.fileno())
        channel.close()
        if self.link is not None:
            self.link.close()
        spec = self.speaker.channel
        try:
            self.channel = Channel(
                self.speaker.interface,
                index,
                spec.family,
                source=spec.source,
                multicast=spec.join,
                group=spec.group,
            )
            self.link = LinkSender(self.speaker.interface)
        except OSError as exc:
            self.channel, self.link = None, None
            log.error("%s cannot open %s again: %s", self.prefix, self.speaker.interface, exc)
            self.link_changed(False)  # nothing can be sent: not eligible, truthfully
            return
        loop.add_reader(self.channel.fileno(), self._readable)
        if mac:
            self.mac = mac
        self.counters["relinked"] += 1
        log.warning(
            "%s %s was made anew (index %d -> %d): its sockets are open on the new link",
            self.prefix,
            self.speaker.interface,
            channel.ifindex,
            index,
        )

    def link_changed(self, up: bool) -> None:
        if up != self.link_up:
            self.link_up = up
            if self.speaker.tracks_link:
                self.feed(LinkChanged(up=up))

    def snapshot(self) -> GroupSnapshot:
        hold = None
        if self.sync_group is not None:
            hold = self.speaker.sync_member(self.member, self.machine).hold
        return GroupSnapshot(
            name=self.speaker.name,
            interface=self.speaker.interface,
            state=self.state,
            since=self.since,
            master=self.master,
            demoted=self.speaker.demoted(self.machine),
            link_up=self.link_up,
            counters=dict(self.counters),
            addresses=tuple(str(a) for a in self.role.addresses()),
            fault=self.speaker.fault(self.machine),
            sync_group=self.sync_group,
            sync_hold=hold.reason if hold is not None else None,
        )


Reload = Callable[["Daemon"], Awaitable[None]]


def status_line(groups: Sequence[Group]) -> str:
    """One line for `systemctl status`: `vhid 42 MASTER; vrid 51 BACKUP`."""
    return "; ".join(f"{g.speaker.name} {g.state}" for g in groups) or "no group"


class Daemon:
    """Every group of one `ifvip run`, one loop, shared signals and link events."""

    def __init__(
        self,
        kernel: Kernel,
        *,
        netns: str | None = None,
        notifier: Notifier | None = None,
        watchdog: float | None = None,
    ) -> None:
        self.kernel = kernel
        self.netns = netns
        self.notifier = notifier or Notifier(None)
        self.watchdog = watchdog  # seconds between WATCHDOG=1 (None: systemd wants none)
        self.groups: list[Group] = []
        self._stopping = False
        self._opened: list[Group] = []
        self._reload: Reload | None = None
        self._reloading: asyncio.Task[None] | None = None
        self._reload_again = False
        self._ready = False
        self._status = ""
        self._syncing = False
        self._sync_again: set[str] = set()

    def add(
        self,
        speaker: Speaker,
        role: Role,
        *,
        garp_repeat: float = 0.0,
        sync_group: str | None = None,
    ) -> Group:
        group = Group(speaker, role, self.kernel, garp_repeat, sync_group=sync_group)
        group.on_change = self._changed
        group.on_step = self._stepped
        self.groups.append(group)
        return group

    # ---------------------------------------------------------------- sync groups

    def _stepped(self, group: Group) -> None:
        """After any step of a sync group's member: hold back or release its other members
        (election/sync.py decides). The holds fed here step members too; those steps only
        mark the group for one more pass, so a pass never runs inside another."""
        name = group.sync_group
        if name is None:
            return
        self._sync_again.add(name)
        if self._syncing:
            return
        self._syncing = True
        try:
            for _ in range(SYNC_PASSES_MAX):
                if not self._sync_again:
                    return
                self._sync(self._sync_again.pop())
            log.error("sync groups %s do not settle", ", ".join(sorted(self._sync_again)))
            self._sync_again.clear()
        finally:
            self._syncing = False

    def _sync(self, name: str) -> None:
        members = {g.member: g for g in self.groups if g.sync_group == name and not g.exiting}
        views = [g.speaker.sync_member(m, g.machine) for m, g in members.items()]
        for member, event in feeds(name, views):
            members[member].feed(event)

    def snapshots(self) -> list[GroupSnapshot]:
        return [g.snapshot() for g in self.groups]

    @property
    def stopping(self) -> bool:
        return self._stopping

    def status_line(self) -> str:
        return status_line(self.groups)

    async def run(
        self,
        ready: Callable[[Daemon], None] | None = None,
        reload: Reload | None = None,
    ) -> list[GroupSnapshot]:
        """Run every group until a shutdown signal; return their final snapshots.

        `ready` is called once every group has started (then READY=1 goes to systemd);
        `reload`, when given, is awaited on SIGHUP (one at a time) between RELOADING=1 and
        READY=1, and may `launch()` and `retire()` groups while they run."""
        from ifvip.ifupdown.rtnl import RtnlSocket as AsyncIPRoute  # noqa: PLC0415 - the one listener

        loop = asyncio.get_running_loop()
        self._reload = reload
        # Listen before the first link read, so no change falls between the two.
        links = AsyncIPRoute(netns=self.netns) if self.netns else AsyncIPRoute()
        await links.bind(groups=RTMGRP_LINK)
        watcher = asyncio.create_task(self._watch_links(links), name="ifvip-links")
        keepalive: asyncio.Task[None] | None = None
        try:
            for group in self.groups:
                await group.open()
                self._opened.append(group)
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.shutdown)
            loop.add_signal_handler(signal.SIGHUP, self._hangup)
            loop.add_signal_handler(signal.SIGUSR2, self._toggle_demotion)
            loop.add_signal_handler(signal.SIGUSR1, self._dump)
            if self.watchdog:
                keepalive = asyncio.create_task(self._keepalive(self.watchdog), name="ifvip-wd")
            for group in self.groups:
                await group.start()
            if ready is not None:
                ready(self)
            self._announce_ready()
            await self._until_done()
            async with asyncio.timeout(EXIT_GRACE):
                await asyncio.gather(*(g.drain() for g in self.groups))
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
                loop.remove_signal_handler(signum)
            loop.remove_signal_handler(signal.SIGUSR2)
            watcher.cancel()
            if keepalive is not None:
                keepalive.cancel()
            if self._reloading is not None:
                self._reloading.cancel()
            for group in self._opened:
                group.close()
            self._opened.clear()
        return self.snapshots()

    async def _until_done(self) -> None:
        """Until every group has exited; a reload may change the groups meanwhile."""
        while True:
            await asyncio.gather(*(g.done.wait() for g in list(self.groups)))
            if self._reloading is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(self._reloading)
                continue
            if all(g.done.is_set() for g in self.groups):
                return

    def shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self.notifier.stopping(f"stopping: {self.status_line()}")
        for group in self.groups:
            group.feed(Shutdown())

    # ---------------------------------------------------------------- reload

    async def launch(self, group: Group) -> None:
        """Open and start a group added (`add()`) while the daemon runs, as BACKUP."""
        if group not in self.groups:
            self.groups.append(group)
        await group.open()
        self._opened.append(group)
        if self._stopping:  # a SIGTERM came while we opened it: it never starts
            group.close()
            self._opened.remove(group)
            self.groups.remove(group)
            return
        await group.start()
        self._changed(group)

    async def retire(self, group: Group) -> None:
        """Shut one group down gracefully (a master bows out and releases) and forget it."""
        group.feed(Shutdown())
        async with asyncio.timeout(EXIT_GRACE):
            await group.done.wait()
            await group.drain()
        group.close()
        if group in self._opened:
            self._opened.remove(group)
        if group in self.groups:
            self.groups.remove(group)

    def _hangup(self) -> None:
        if self._reload is None:
            log.warning("SIGHUP: this daemon has no configuration to reload; ignored")
            return
        if self._stopping:
            return
        if self._reloading is not None:
            self._reload_again = True  # one more pass after this one: it reads the newest
            return
        self._reloading = asyncio.create_task(self._reload_loop(self._reload), name="ifvip-hup")

    async def _reload_loop(self, reload: Reload) -> None:
        try:
            while True:
                self._reload_again = False
                log.info("SIGHUP: reloading the configuration")
                self.notifier.reloading(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)
                try:
                    await reload(self)
                except Exception:
                    log.exception("reload failed; the running groups are kept")
                self._announce_ready()
                if not self._reload_again or self._stopping:
                    return
        finally:
            self._reloading = None

    # ---------------------------------------------------------------- systemd

    def _changed(self, group: Group) -> None:
        """STATUS= after a transition, once READY=1 went out, and only when it says
        something new."""
        if not self._ready or group not in self.groups:
            return
        line = self.status_line()
        if line != self._status:
            self._status = line
            self.notifier.status(line)

    def _announce_ready(self) -> None:
        self._ready = True
        self._status = self.status_line()
        self.notifier.ready(self._status)

    async def _keepalive(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    def _toggle_demotion(self) -> None:
        for group in self.groups:
            demoted = group.speaker.demoted(group.machine)
            group.feed(Promote("SIGUSR2: promoted") if demoted else Demote("SIGUSR2"))

    def _dump(self) -> None:
        for snap in self.snapshots():
            log.info(
                "(%s) %s on %s since %s, master %s, counters %s",
                snap.name,
                snap.state,
                snap.interface,
                time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(snap.since)),
                snap.master or "unknown",
                snap.counters,
            )

    async def _watch_links(self, ipr: Any) -> None:
        """RTM_NEWLINK/RTM_DELLINK → LinkChanged for the groups on that interface."""
        try:
            while True:
                async for msg in ipr.get():
                    self._link_message(msg)
        finally:
            ipr.close()

    def _link_message(self, msg: Any) -> None:
        event = msg.get("event")
        name = msg.get_attr("IFLA_IFNAME")
        if event == "RTM_DELLINK":
            up = False
        elif event == "RTM_NEWLINK":
            flags = int(msg["flags"])
            up = bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)
        else:
            return
        for group in self.groups:
            if group.speaker.interface.split(":", 1)[0] == name:
                if event == "RTM_NEWLINK":
                    group.relink(int(msg["index"]), msg.get_attr("IFLA_ADDRESS"))
                group.link_changed(up)


def interface_of_default_route(routes: Sequence[dict[str, Any]]) -> int | None:
    """The output interface index of the IPv4 default route with the lowest metric."""
    best: tuple[int, int] | None = None
    for route in routes:
        if route.get("dst_len") != 0 or route.get("table", 254) != 254:
            continue
        oif = route.get("RTA_OIF") or route.get("oif")
        if oif is None:
            continue
        metric = int(route.get("RTA_PRIORITY") or route.get("priority") or 0)
        if best is None or metric < best[0]:
            best = (metric, int(oif))
    return best[1] if best else None


async def discover_defaults(netns: str | None = None) -> tuple[str | None, str | None]:
    """(interface of the default route, its first IPv4 address): kubernetize's defaults."""
    async with Kernel(netns) as kernel:
        routes = await kernel.routes(socket.AF_INET)
        index = interface_of_default_route(routes)
        if index is None:
            return None, None
        name = next((link.name for link in await kernel.links() if link.index == index), None)
        if name is None:
            return None, None
        addresses = await kernel.addresses(name, socket.AF_INET)
        first = next((str(a.address.ip) for a in addresses if a.label == name), None)
        if first is None and addresses:
            first = str(addresses[0].address.ip)
        return name, first
