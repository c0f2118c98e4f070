"""Turn validated group configurations into running groups: speaker + role, in one Daemon.

This is the glue between config.py (what the user asked for), speaker.py (the protocol),
actions.py (what MASTER means) and runtime.py (the loop). The role follows issue 4's order
of precedence: managed stanzas, then the `IFACE:ucarp` stanza of a `ucarp-*` group, then
`-u/-d` scripts, then ifvip's own VIPs; `--vip` addresses given explicitly are always added.

`run_plan()` runs a `Plan` (every CARP and VRRP group of one `ifvip run`, with its checks,
status/metrics and policy routing) and, on SIGHUP, calls the CLI's `build` again (the same
command line and environment, the files read anew), validates it, and applies the
difference group by group (config.diff_groups): unchanged groups keep running untouched,
changed ones are retired gracefully and started anew as BACKUP, removed ones are retired,
new ones started. A configuration with problems logs each one and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ifvip.daemon.actions import (
    SCRIPT_TIMEOUT,
    GroupBusy,
    Roles,
    StateDir,
    netns_id,
)
from ifvip.daemon.carp.config import GroupConfig
from ifvip.daemon.carp.role import carp_role
from ifvip.daemon.carp.speaker import CarpSpeaker
from ifvip.daemon.ifup import EngineFactory, engine_factory
from ifvip.daemon.notify import ENV_WATCHDOG_PID, ENV_WATCHDOG_USEC, Notifier, watchdog_interval
from ifvip.daemon.operations import Operations, OperationsConfig
from ifvip.daemon.runtime import Daemon, Group, GroupSnapshot
from ifvip.daemon.settings import ConfigProblems, diff_groups
from ifvip.ifupdown.netlink import Kernel

if TYPE_CHECKING:  # policy routing (and its planner) loads only when --rtable asks for it
    from ifvip.daemon.checks import CheckConfig
    from ifvip.daemon.policy import PolicyRouting

log = logging.getLogger("ifvip")

SYSLOG_SOCKET: Final = "/dev/log"


def detach(facility: str | None) -> None:
    """ucarp's -B: double fork, new session, cwd /, stdio on /dev/null, logs to syslog."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    name = (facility or "daemon").lower()
    if name == "none" or not os.path.exists(SYSLOG_SOCKET):
        root.addHandler(logging.NullHandler())
        return
    from logging.handlers import SysLogHandler  # noqa: PLC0415 - only a detached daemon logs there

    code = SysLogHandler.facility_names.get(name, SysLogHandler.LOG_DAEMON)
    syslog = SysLogHandler(SYSLOG_SOCKET, facility=code)
    syslog.setFormatter(logging.Formatter("ifvip[%(process)d]: %(message)s"))
    root.addHandler(syslog)


# ------------------------------------------------------------------------- plans and reload

GroupKey = tuple[str, str, int]  # (protocol, interface, vhid/vrid): a group's identity


@dataclass(frozen=True)
class GroupDef:
    """Everything one group runs with; equal definitions mean an unchanged group."""

    protocol: str  # "carp" | "vrrp"
    config: Any  # GroupConfig | vrrp_config.VrrpConfig
    checks: CheckConfig
    policy: PolicyRouting | None = None


@dataclass(frozen=True)
class Plan:
    """One validated `ifvip run` configuration: its groups and what runs beside them."""

    state_dir: str
    operations: OperationsConfig
    carp: tuple[GroupConfig, ...] = ()
    vrrp: tuple[Any, ...] = ()
    policy: PolicyRouting | None = None
    engines: EngineFactory | None = field(default=None, compare=False)
    script_timeout: float = SCRIPT_TIMEOUT  # seconds a -u/-d script may run

    def groups(self) -> dict[GroupKey, GroupDef]:
        found: dict[GroupKey, GroupDef] = {}
        per_group = self.operations.per_group
        for c in self.carp:
            checks = per_group.get(c.name, self.operations.checks)
            found[("carp", c.interface, c.vhid)] = GroupDef("carp", c, checks, self.policy)
        for v in self.vrrp:
            checks = per_group.get(f"vrid {v.vrid}", self.operations.checks)
            found[("vrrp", v.interface, v.vrid)] = GroupDef("vrrp", v, checks, self.policy)
        return found


class Builder:
    """Speaker + role of one group definition."""

    def __init__(
        self,
        kernel: Kernel,
        state: StateDir,
        engines: EngineFactory | None,
        script_timeout: float = SCRIPT_TIMEOUT,
    ) -> None:
        self.kernel = kernel
        self.state = state
        self.engines = engines
        self.script_timeout = script_timeout

    def add(self, daemon: Daemon, definition: GroupDef) -> Group:
        config = definition.config
        if definition.protocol == "carp":
            prefix = f"(vhid {config.vhid})"
            engines = self.engines or engine_factory(hook_timeout=self.script_timeout)
            role = carp_role(config, self.kernel, self.state, engines, self.script_timeout)
            speaker: Any = CarpSpeaker(config)
        else:
            from ifvip.daemon.vrrp.role import vrrp_role  # noqa: PLC0415
            from ifvip.daemon.vrrp.speaker import VrrpSpeaker  # noqa: PLC0415

            prefix = f"(vrid {config.vrid})"
            speaker = VrrpSpeaker(config)
            role = vrrp_role(config, self.kernel, self.state, self.engines, self.script_timeout)
        if definition.policy is not None:
            from ifvip.daemon.policy import policy_role  # noqa: PLC0415 - see TYPE_CHECKING

            routes = policy_role(
                prefix, self.kernel, definition.policy, config.vips[0], config.interface
            )
            role = Roles([role, routes])
        return daemon.add(speaker, role, garp_repeat=getattr(config, "garp_repeat", 0.0))


def systemd_notifier(
    environ: MutableMapping[str, str] | None = None,
) -> tuple[Notifier, float | None]:
    """The notifier and the watchdog interval; the variables are removed from the
    environment so that scripts ifvip starts do not speak for it."""
    env = os.environ if environ is None else environ
    notifier = Notifier.from_environ(env)
    interval = watchdog_interval(env, os.getpid()) if notifier.enabled else None
    env.pop(ENV_WATCHDOG_USEC, None)
    env.pop(ENV_WATCHDOG_PID, None)
    return notifier, interval


async def run_plan(
    plan: Plan,
    *,
    build: Callable[[], Plan] | None = None,
    netns: str | None = None,
    notifier: Notifier | None = None,
    watchdog: float | None = None,
) -> list[GroupSnapshot]:
    """Run every group of `plan` in one loop until SIGTERM/SIGINT; on SIGHUP, `build()`
    (run in a thread: it reads files and may ask netlink) gives the new plan."""
    state = StateDir.open(plan.state_dir)
    locks = GroupLocks(state)
    current: dict[GroupKey, GroupDef] = plan.groups()
    busy = [problem for key in current if (problem := locks.take(key)) is not None]
    if busy:
        locks.release_all()
        raise ConfigProblems(busy)
    try:
        return await _run_locked(plan, state, locks, current, build, netns, notifier, watchdog)
    finally:
        locks.release_all()


class GroupLocks:
    """The instance lock of every running group (StateDir.lock_group)."""

    def __init__(self, state: StateDir) -> None:
        self.state = state
        self.held: dict[GroupKey, int] = {}

    def take(self, key: GroupKey) -> str | None:
        """None once held, else the sentence that refuses the group."""
        protocol, interface, number = key
        name = f"{'vhid' if protocol == 'carp' else 'vrid'} {number} on {interface}"
        try:
            self.held[key] = self.state.lock_group(f"{protocol}.{netns_id()}.{interface}.{number}")
        except GroupBusy as busy:
            return (
                f"{name} is run by another ifvip (pid {busy.pid}) with state dir "
                f"{self.state.path}: a second one would fight it for the VIP"
            )
        return None

    def release(self, key: GroupKey) -> None:
        fd = self.held.pop(key, None)
        if fd is not None:
            os.close(fd)

    def release_all(self) -> None:
        for key in list(self.held):
            self.release(key)


async def _run_locked(
    plan: Plan,
    state: StateDir,
    locks: GroupLocks,
    current: dict[GroupKey, GroupDef],
    build: Callable[[], Plan] | None,
    netns: str | None,
    notifier: Notifier | None,
    watchdog: float | None,
) -> list[GroupSnapshot]:
    async with Kernel(netns) as kernel:
        daemon = Daemon(kernel, netns=netns, notifier=notifier, watchdog=watchdog)
        builder = Builder(kernel, state, plan.engines, plan.script_timeout)
        running: dict[GroupKey, Group] = {
            key: builder.add(daemon, definition) for key, definition in current.items()
        }
        ops = Operations(plan.operations)
        await ops.start(daemon)

        async def reload(daemon: Daemon) -> None:
            nonlocal current
            assert build is not None
            try:
                new_plan = await asyncio.to_thread(build)
            except ConfigProblems as found:
                for problem in found.problems:
                    log.error("reload: %s", problem)
                log.error("reload: the configuration has problems; the running one is kept")
                return
            new = new_plan.groups()
            diff = diff_groups(current, new)
            log.info("reload: %s", diff.summary())
            builder.engines = new_plan.engines or builder.engines
            builder.script_timeout = new_plan.script_timeout
            await _retire(daemon, ops, [running.pop(k) for k in diff.changed + diff.removed])
            for key in diff.removed:
                locks.release(key)
            for key in diff.changed + diff.added:
                if daemon.stopping:
                    break
                if key not in locks.held and (refused := locks.take(key)) is not None:
                    log.error("reload: %s", refused)
                    continue
                group = builder.add(daemon, new[key])
                await daemon.launch(group)
                running[key] = group
                ops.add_group(group, new[key].checks)
            current = {k: new[k] for k in new if k in running}
            order = {id(running[k]): i for i, k in enumerate(current)}
            daemon.groups.sort(key=lambda g: order.get(id(g), len(order)))

        try:
            return await daemon.run(ready=ops.attach, reload=reload if build is not None else None)
        finally:
            await ops.close()
            for group in daemon.groups:
                flush = getattr(group.speaker, "flush_notifies", None)
                if flush is not None:
                    await flush()


async def _retire(daemon: Daemon, ops: Operations, groups: Sequence[Group]) -> None:
    """Retire these groups gracefully, all at once (each master bows out and releases)."""

    async def one(group: Group) -> None:
        await daemon.retire(group)
        await ops.remove_group(group.speaker.name)
        flush = getattr(group.speaker, "flush_notifies", None)
        if flush is not None:
            await flush()

    await asyncio.gather(*(one(g) for g in groups))
