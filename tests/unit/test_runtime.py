"""Runtime helpers that decide without a loop: the default route's interface, the master
counters and STATUS= line of a group, and the reload diff by group identity."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

from ifvip.daemon.carp.config import GroupConfig, build_carp_group
from ifvip.daemon.checks import parse_check_options
from ifvip.daemon.launch import RunPlan
from ifvip.daemon.operations import OperationsConfig
from ifvip.daemon.runtime import Daemon, Group, interface_of_default_route, status_line
from ifvip.daemon.sd_notify import Notifier
from ifvip.daemon.settings import GroupDiff, diff_groups
from ifvip.daemon.speaker import ChannelSpec
from ifvip.election import carp as election
from ifvip.election import vrrp
from ifvip.election.carp import CarpParams
from ifvip.election.events import (
    BecomeBackup,
    BecomeMaster,
    Demote,
    Promote,
    Start,
    Timer,
    TimerFired,
)


def test_the_default_route_with_the_lowest_metric_wins() -> None:
    routes: list[dict[str, Any]] = [
        {"dst_len": 24, "table": 254, "RTA_OIF": 2},
        {"dst_len": 0, "table": 254, "RTA_OIF": 3, "RTA_PRIORITY": 100},
        {"dst_len": 0, "table": 254, "RTA_OIF": 4, "RTA_PRIORITY": 10},
        {"dst_len": 0, "table": 100, "RTA_OIF": 5},
    ]
    assert interface_of_default_route(routes) == 4
    assert interface_of_default_route(routes[:1]) is None
    assert interface_of_default_route([{"dst_len": 0, "table": 254, "RTA_OIF": 7}]) == 7


# ------------------------------------------------------------------ counters and STATUS=


@dataclass
class _Speaker:
    """A machine that is just its state name: Start → BACKUP, Promote → MASTER,
    Demote → BACKUP."""

    name: str = "vhid 42"
    interface: str = "eth0"
    tracks_link: bool = True
    channel: ChannelSpec = field(
        default_factory=lambda: ChannelSpec(socket.AF_INET, "198.51.100.1", "224.0.0.18")
    )

    def initial(self) -> str:
        return "INIT"

    def step(self, machine: str, event: Any, now: float) -> tuple[str, list[Any]]:
        match event:
            case Start():
                return "BACKUP", []
            case Promote():
                return "MASTER", []
            case Demote():
                return "BACKUP", []
        return machine, []

    def state_of(self, machine: str) -> str:
        return machine

    def demoted(self, machine: str) -> bool:
        return False

    def fault(self, machine: str) -> str | None:
        return None

    priority = None

    def status_facts(self, machine: str) -> dict[str, Any]:
        return {"protocol": "carp", "vrid": 42}

    async def drain(self) -> None:
        return None


class _Role:
    def addresses(self) -> list[Any]:
        return []


def test_master_changes_are_counted_and_reported_at_the_one_change_point() -> None:
    seen: list[str] = []

    async def main() -> dict[str, int]:
        group = Group(_Speaker(), _Role(), kernel=None)  # type: ignore[arg-type]
        group.on_change = lambda g: seen.append(status_line([g]))
        for event in (Start(), Promote("x"), Promote("again"), Demote("check"), Promote("y")):
            group.feed(event)
        return dict(group.counters)

    counters = asyncio.run(main())
    assert counters["transitions"] == 4
    assert counters["become_master"] == 2
    assert counters["release_master"] == 1
    # One STATUS= line per change, none for an event that changes nothing.
    assert seen == ["vhid 42 BACKUP", "vhid 42 MASTER", "vhid 42 BACKUP", "vhid 42 MASTER"]


@dataclass
class _CarpOnly(_Speaker):
    """The real CARP machine, sending nothing (outgoing() is None)."""

    def initial(self) -> Any:
        return election.initial(CarpParams(vhid=42, own_ip=ipaddress.IPv4Address("198.51.100.1")))

    def step(self, machine: Any, event: Any, now: float) -> tuple[Any, list[Any]]:
        return election.step(machine, event, now)

    def state_of(self, machine: Any) -> str:
        return str(machine.state)

    def fault(self, machine: Any) -> str | None:
        return machine.fault  # type: ignore[no-any-return]

    def outgoing(self, action: Any, mac: str) -> None:
        return None


@dataclass
class _FailingRole:
    calls: list[str] = field(default_factory=list)

    async def master(self) -> None:
        self.calls.append("master")
        raise RuntimeError("/etc/network/interfaces:27: pre-up: Read-only file system")

    async def backup(self, initial: bool) -> None:
        self.calls.append("backup")

    def addresses(self) -> list[Any]:
        return []


def test_a_failed_master_action_is_a_fault_and_releases() -> None:
    """The MASTER job's failure reaches the machine: it bows out (BACKUP, release run) and
    the snapshot names the failing line; the group is not MASTER with nothing served."""

    async def main() -> tuple[str, str | None, list[str]]:
        role = _FailingRole()
        group = Group(_CarpOnly(), role, kernel=None)  # type: ignore[arg-type]
        group.feed(Start())
        group.feed(TimerFired(Timer.MASTER_DOWN))
        assert group.state == "MASTER"
        for _ in range(50):
            await asyncio.sleep(0)
        await group.drain()
        snap = group.snapshot()
        group.close()
        return snap.state, snap.fault, role.calls

    state, fault, calls = asyncio.run(main())
    assert state == "BACKUP"
    assert fault == "/etc/network/interfaces:27: pre-up: Read-only file system"
    assert calls == ["backup", "master", "backup"]


def test_status_line_names_every_group() -> None:
    class G:
        def __init__(self, name: str, state: str) -> None:
            self.speaker = _Speaker(name=name)
            self.state = state

    groups: Any = [G("vhid 42", "MASTER"), G("vrid 51", "BACKUP")]
    assert status_line(groups) == "vhid 42 MASTER; vrid 51 BACKUP"
    assert status_line([]) == "no group"


# ------------------------------------------------------------------ reload (SIGHUP) diff


def _carp(vhid: int = 42, interface: str = "eth0", **changes: Any) -> GroupConfig:
    base: dict[str, Any] = {
        "interface": interface,
        "srcip": "198.51.100.1",
        "vhid": str(vhid),
        "password": "secret",
        "passfile": None,
        "addr": "198.51.100.100",
    }
    base.update(changes)
    return build_carp_group(**base)


def test_the_diff_keeps_equal_groups_and_restarts_changed_ones() -> None:
    old = {"a": 1, "b": 2, "c": 3}
    new = {"b": 2, "c": 30, "d": 4}
    diff = diff_groups(old, new)
    assert diff == GroupDiff(unchanged=("b",), changed=("c",), removed=("a",), added=("d",))
    assert not diff.idle
    assert diff_groups(old, dict(old)).idle
    assert diff_groups(old, dict(old)).unchanged == ("a", "b", "c")


def test_plan_identity_is_protocol_interface_and_vhid() -> None:
    ops = OperationsConfig(state_dir="/nonexistent")
    before = RunPlan("/x", ops, (_carp(42), _carp(43), _carp(42, "eth1")))
    same = RunPlan("/x", ops, (_carp(42), _carp(43), _carp(42, "eth1")))
    assert set(before.groups()) == {
        ("carp", "eth0", 42),
        ("carp", "eth0", 43),
        ("carp", "eth1", 42),
    }
    assert diff_groups(before.groups(), same.groups()).idle
    changed = RunPlan(
        "/x",
        ops,
        (_carp(42, advskew="100"), _carp(43, password="other"), _carp(44)),
    )
    diff = diff_groups(before.groups(), changed.groups())
    assert diff.changed == (("carp", "eth0", 42), ("carp", "eth0", 43))
    assert diff.removed == (("carp", "eth1", 42),)
    assert diff.added == (("carp", "eth0", 44),)
    summary = diff.summary()
    assert "2 changed (vhid 42 on eth0, vhid 43 on eth0)" in summary
    assert "other" not in summary and "secret" not in summary


def test_new_checks_for_a_group_are_a_change() -> None:
    plain = RunPlan("/x", OperationsConfig(state_dir="/x"), (_carp(42),))
    checked = RunPlan(
        "/x",
        OperationsConfig(checks=parse_check_options(tcp=["8080"]), state_dir="/x"),
        (_carp(42),),
    )
    assert diff_groups(plain.groups(), checked.groups()).changed == (("carp", "eth0", 42),)


def test_master_counters_reach_the_status_and_metrics_from_the_start() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from ifvip.daemon.metrics import SnapshotCollector
    from ifvip.daemon.status import Snapshot, group_status

    async def main() -> tuple[Snapshot, Snapshot]:
        group = Group(_Speaker(), _Role(), kernel=None)  # type: ignore[arg-type]
        fresh = Snapshot("0", 1, 0.0, 0.0, (group_status(group),))
        for event in (Start(), Promote("x"), Demote("check")):
            group.feed(event)
        return fresh, Snapshot("0", 1, 0.0, 0.0, (group_status(group),))

    fresh, later = asyncio.run(main())
    assert fresh.groups[0].counter("become_master") == 0
    assert later.groups[0].counter("become_master") == 1
    assert later.groups[0].counter("release_master") == 1

    def text(snapshot: Snapshot) -> str:
        registry = CollectorRegistry()
        registry.register(SnapshotCollector(lambda: snapshot))
        return generate_latest(registry).decode()

    assert "ifvip_become_master_total{" in text(fresh)
    lines = [line for line in text(later).splitlines() if "_master_total{" in line]
    assert [line.rsplit(" ", 1)[1] for line in lines] == ["1.0", "1.0"], lines


class _Notifier(Notifier):
    """Records what would go to $NOTIFY_SOCKET."""

    def __init__(self) -> None:
        super().__init__("/nonexistent")
        self.sent: list[dict[str, str]] = []

    def send(self, **fields: str) -> bool:
        self.sent.append(fields)
        return True


def test_the_daemon_says_ready_once_started_then_status_on_each_change() -> None:
    notifier = _Notifier()

    async def main() -> None:
        daemon = Daemon(None, notifier=notifier)  # type: ignore[arg-type]
        one = daemon.add(_Speaker(name="vhid 42"), _Role())  # type: ignore[arg-type]
        two = daemon.add(_Speaker(name="vrid 51"), _Role())  # type: ignore[arg-type]
        one.feed(Start())  # before READY=1: no STATUS= yet
        two.feed(Start())
        daemon._announce_ready()
        one.feed(Promote("x"))
        one.feed(Promote("again"))  # no change: nothing sent
        daemon.shutdown()

    asyncio.run(main())
    assert notifier.sent[0] == {"READY": "1", "STATUS": "vhid 42 BACKUP; vrid 51 BACKUP"}
    assert notifier.sent[1] == {"STATUS": "vhid 42 MASTER; vrid 51 BACKUP"}
    assert notifier.sent[2] == {
        "STOPPING": "1",
        "STATUS": "stopping: vhid 42 MASTER; vrid 51 BACKUP",
    }
    assert len(notifier.sent) == 3


class _RoleSpeaker(_Speaker):
    """Start → BACKUP (initial), Promote → MASTER, Demote → BACKUP, with the role actions."""

    def step(self, machine: str, event: Any, now: float) -> tuple[str, list[Any]]:
        match event:
            case Start():
                return "BACKUP", [BecomeBackup(initial=True)]
            case Promote():
                return "MASTER", [BecomeMaster()]
            case Demote():
                return "BACKUP", [BecomeBackup(initial=False)]
        return machine, []


class _HangingUp:
    """master() hangs (an up-script that never ends); backup() may be held up once."""

    def __init__(self, first_backup: asyncio.Event | None = None) -> None:
        self.log: list[str] = []
        self.first_backup = first_backup

    async def master(self) -> None:
        self.log.append("up")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.log.append("up cancelled")
            raise

    async def backup(self, initial: bool) -> None:
        if initial and self.first_backup is not None:
            await self.first_backup.wait()
        self.log.append("down (initial)" if initial else "down")

    def addresses(self) -> list[Any]:
        return []


def test_backup_cancels_a_hanging_master_job_and_releases_at_once() -> None:
    role = _HangingUp()

    async def main() -> None:
        group = Group(_RoleSpeaker(), role, kernel=None)  # type: ignore[arg-type]
        group.feed(Start())
        group.feed(Promote("x"))
        await asyncio.sleep(0.05)
        group.feed(Demote("peer"))
        await asyncio.wait_for(group.drain(), 2)  # not the hour the up-job would take

    asyncio.run(main())
    assert role.log == ["down (initial)", "up", "up cancelled", "down"]


def test_cancelling_a_queued_master_job_leaves_the_job_before_it_alone() -> None:
    async def main() -> list[str]:
        release = asyncio.Event()
        role = _HangingUp(first_backup=release)
        group = Group(_RoleSpeaker(), role, kernel=None)  # type: ignore[arg-type]
        group.feed(Start())  # the initial release, held up
        group.feed(Promote("x"))  # queued behind it
        await asyncio.sleep(0.05)
        group.feed(Demote("peer"))  # cancels the MASTER job before it began
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.wait_for(group.drain(), 2)
        return role.log

    # The initial release finished (not cancelled with the MASTER job); MASTER never ran.
    assert asyncio.run(main()) == ["down (initial)", "down"]


# ------------------------------------------------------------------ sync groups (issue 17)


@dataclass
class _VrrpOnly(_Speaker):
    """The real VRRP machine, sending nothing (outgoing() is None)."""

    vrid: int = 51
    synced: bool = False

    def initial(self) -> Any:
        own = ipaddress.IPv4Address(self.channel.source)
        vip = ipaddress.IPv4Address(int(own) + 99)
        params = vrrp.VrrpParams(vrid=self.vrid, own_ip=own, addresses=(vip,), synced=self.synced)
        return vrrp.initial(params)

    def step(self, machine: Any, event: Any, now: float) -> tuple[Any, list[Any]]:
        return vrrp.step(machine, event, now)

    def state_of(self, machine: Any) -> str:
        return str(machine.state)

    def sync_member(self, name: str, machine: Any) -> Any:
        return vrrp.sync_member(name, machine)

    def outgoing(self, action: Any, mac: str) -> None:
        return None


@dataclass
class _QuietRole:
    async def master(self) -> None:
        return None

    async def backup(self, initial: bool) -> None:
        return None

    def addresses(self) -> list[Any]:
        return []


def _vrrp_speaker(vrid: int, interface: str, source: str, *, synced: bool = True) -> _VrrpOnly:
    channel = ChannelSpec(socket.AF_INET, source, "224.0.0.18")
    name = f"vrid {vrid}"
    return _VrrpOnly(name=name, interface=interface, channel=channel, vrid=vrid, synced=synced)


def test_the_daemon_holds_back_the_other_members_of_a_sync_group() -> None:
    """A member that loses its carrier takes the other member of its sync group to FAULT
    (not a group outside it), the snapshot says why, and both come back when it clears."""

    async def main() -> list[tuple[str, str, str | None, str | None]]:
        daemon = Daemon(kernel=None)  # type: ignore[arg-type]
        outside = daemon.add(
            _vrrp_speaker(51, "eth0", "198.51.100.1"), _QuietRole(), sync_group="dmz"
        )
        inside = daemon.add(
            _vrrp_speaker(52, "eth1", "203.0.113.1"), _QuietRole(), sync_group="dmz"
        )
        alone = daemon.add(_vrrp_speaker(53, "eth2", "198.51.100.129", synced=False), _QuietRole())
        seen = []
        for group in (outside, inside, alone):
            group.feed(Start())
            group.feed(TimerFired(Timer.MASTER_DOWN))
        for _ in range(20):
            await asyncio.sleep(0)
        seen += [(s.name, s.state, s.sync_group, s.sync_hold) for s in daemon.snapshots()]
        inside.link_changed(False)
        seen += [(s.name, s.state, s.sync_group, s.sync_hold) for s in daemon.snapshots()]
        for _ in range(20):
            await asyncio.sleep(0)
        inside.link_changed(True)
        seen += [(s.name, s.state, s.sync_group, s.sync_hold) for s in daemon.snapshots()]
        for group in daemon.groups:
            await group.drain()
            group.close()
        return seen

    seen = asyncio.run(main())
    # The members' timers ran out one after the other: they took MASTER together.
    assert [state for _, state, _, _ in seen[:3]] == ["MASTER"] * 3
    seen = seen[3:]
    assert seen[:3] == [
        ("vrid 51", "FAULT", "dmz", "sync group dmz: vrid 52 on eth1 lost its carrier"),
        ("vrid 52", "FAULT", "dmz", None),
        ("vrid 53", "MASTER", None, None),
    ]
    assert seen[3:] == [
        ("vrid 51", "BACKUP", "dmz", None),
        ("vrid 52", "BACKUP", "dmz", None),
        ("vrid 53", "MASTER", None, None),
    ]
