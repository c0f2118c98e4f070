"""Turn validated group configurations into running groups: speaker + role, in one Daemon.

This is the glue between the protocols (carp/, vrrp/: each a config, a speaker and a role
behind speaker.py's seam), roles.py (what MASTER means) and runtime.py (the loop).
`protocols.PROTOCOLS` is the one registry of protocols: a group's configuration names its
protocol, and the entry's `start()` gives its speaker and role; nothing here knows CARP from
VRRP.

`build_plan()` makes the `RunPlan` of `ifvip run`'s options: the group of the options (the
--protocol's composer), or every group an --interfaces file declares (each protocol's
file composer, CARP and VRRP side by side), each named uniquely in the process.
`run_plan()` runs a `RunPlan` (every CARP and VRRP group of one `ifvip run`, with its checks,
status/metrics and policy routing) and, on SIGHUP, calls the CLI's `build` again (the same
command line and environment, the files read anew), validates it, and applies the
difference group by group (settings.diff_groups): unchanged groups keep running untouched,
changed ones are retired gracefully and started anew as BACKUP, removed ones are retired,
new ones started. A configuration with problems logs each one and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ifvip.daemon.ifup import EngineFactory, engine_factory
from ifvip.daemon.journal import GroupBusy, RunStateDir, netns_id
from ifvip.daemon.operations import Composed, Operations, OperationsConfig
from ifvip.daemon.protocols import PROTOCOLS
from ifvip.daemon.roles import SCRIPT_TIMEOUT, Roles
from ifvip.daemon.runtime import Daemon, Group, GroupSnapshot
from ifvip.daemon.sd_notify import ENV_WATCHDOG_PID, ENV_WATCHDOG_USEC, Notifier, watchdog_interval
from ifvip.daemon.settings import ConfigProblems, GroupSettings, diff_groups
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


class GroupKey(NamedTuple):
    """A group's identity: equal keys across a reload mean the same group."""

    protocol: str
    interface: str
    number: int  # vhid / vrid

    def __str__(self) -> str:
        return f"{PROTOCOLS[self.protocol].id_word} {self.number} on {self.interface}"


@dataclass(frozen=True)
class GroupDef:
    """Everything one group runs with; equal definitions mean an unchanged group."""

    config: GroupSettings  # carp.config.GroupConfig | vrrp.config.VrrpConfig: see PROTOCOLS
    checks: CheckConfig
    policy: PolicyRouting | None = None

    @property
    def protocol(self) -> str:
        return str(self.config.protocol)


@dataclass(frozen=True)
class RunPlan:
    """One validated `ifvip run` configuration: its groups and what runs beside them."""

    state_dir: str
    operations: OperationsConfig
    configs: tuple[GroupSettings, ...] = ()  # each group's configuration, of any protocol
    policy: PolicyRouting | None = None
    engines: EngineFactory | None = field(default=None, compare=False)
    script_timeout: float = SCRIPT_TIMEOUT  # seconds a -u/-d script may run

    def groups(self) -> dict[GroupKey, GroupDef]:
        found: dict[GroupKey, GroupDef] = {}
        per_group = self.operations.per_group
        for c in self.configs:
            checks = per_group.get(c.group_name, self.operations.checks)
            key = GroupKey(c.protocol, c.interface, c.number)
            found[key] = GroupDef(c, checks, self.policy)
        return found


class Builder:
    """Speaker + role of one group definition."""

    def __init__(
        self,
        kernel: Kernel,
        state: RunStateDir,
        engines: EngineFactory | None,
        script_timeout: float = SCRIPT_TIMEOUT,
    ) -> None:
        self.kernel = kernel
        self.state = state
        self.engines = engines
        self.script_timeout = script_timeout

    def add(self, daemon: Daemon, definition: GroupDef) -> Group:
        config = definition.config
        start = PROTOCOLS[definition.protocol].load()
        engines = self.engines or engine_factory(hook_timeout=self.script_timeout)
        started = start(config, self.kernel, self.state, engines, self.script_timeout)
        role = started.role
        if definition.policy is not None:
            from ifvip.daemon.policy import policy_role  # noqa: PLC0415 - see TYPE_CHECKING

            prefix = f"({config.group_name})"
            routes = policy_role(
                prefix, self.kernel, definition.policy, config.vips[0], config.interface
            )
            role = Roles([role, routes])
        return daemon.add(
            started.speaker,
            role,
            garp_repeat=started.garp_repeat,
            sync_group=config.sync_group,
        )


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
    plan: RunPlan,
    *,
    build: Callable[[], RunPlan] | None = None,
    netns: str | None = None,
    notifier: Notifier | None = None,
    watchdog: float | None = None,
) -> list[GroupSnapshot]:
    """Run every group of `plan` in one loop until SIGTERM/SIGINT; on SIGHUP, `build()`
    (run in a thread: it reads files and may ask netlink) gives the new plan."""
    state = RunStateDir.open(plan.state_dir)
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
    """The instance lock of every running group (RunStateDir.lock_group)."""

    def __init__(self, state: RunStateDir) -> None:
        self.state = state
        self.held: dict[GroupKey, int] = {}

    def take(self, key: GroupKey) -> str | None:
        """None once held, else the sentence that refuses the group."""
        protocol, interface, number = key
        try:
            self.held[key] = self.state.lock_group(f"{protocol}.{netns_id()}.{interface}.{number}")
        except GroupBusy as busy:
            return (
                f"{key} is run by another ifvip (pid {busy.pid}) with state dir "
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
    plan: RunPlan,
    state: RunStateDir,
    locks: GroupLocks,
    current: dict[GroupKey, GroupDef],
    build: Callable[[], RunPlan] | None,
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
                await group.speaker.drain()


async def _retire(daemon: Daemon, ops: Operations, groups: Sequence[Group]) -> None:
    """Retire these groups gracefully, all at once (each master bows out and releases)."""

    async def one(group: Group) -> None:
        await daemon.retire(group)
        await ops.remove_group(group.speaker.name)
        await group.speaker.drain()

    await asyncio.gather(*(one(g) for g in groups))


# The options that give a group on the command line: without any of them (and without
# --manage), `--interfaces FILE` means every group the file declares.
GROUP_FLAGS: Final = ("vhid", "addr", "vips")


def from_file_only(options: Mapping[str, Any]) -> bool:
    """Whether `ifvip run` runs the groups of its --interfaces file (and no group of flags)."""
    if not options["interfaces_file"] or options["manage"]:
        return False
    return not any(options.get(name) for name in GROUP_FLAGS)


def unique_names(configs: Sequence[GroupSettings]) -> tuple[GroupSettings, ...]:
    """The groups, each named uniquely in the process (status, metrics, logs and the checks
    know a group by its name): `vhid 1` stays `vhid 1` unless another group of the process
    is `vhid 1` too (on another interface), then each is `vhid 1 on eth0`."""
    import dataclasses  # noqa: PLC0415

    counts: dict[str, int] = {}
    for config in configs:
        counts[config.group_name] = counts.get(config.group_name, 0) + 1
    return tuple(
        dataclasses.replace(  # type: ignore[type-var]
            c, label=f"{c.group_name} on {c.interface}"
        )
        if counts[c.group_name] > 1
        else c
        for c in configs
    )


def read_up_list(path: str) -> list[str]:
    """The interface names of an --up-list file, one a line (none when it is missing)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()]
    except FileNotFoundError:
        return []


def compose_file(options: Mapping[str, Any], links: list[str]) -> Composed:
    """Every group the --interfaces file declares, of every protocol (each protocol's
    `from_file`, in PROTOCOLS' order), with what runs beside them; ConfigProblems. With
    --up-list, only the groups of the interfaces it lists (deploy/debian's hooks): the
    stanzas of the others are not even checked (their links may not exist yet)."""
    from ifvip.daemon.operations import operations_and_policy  # noqa: PLC0415
    from ifvip.daemon.settings import read_interfaces  # noqa: PLC0415

    path, state_dir = options["interfaces_file"], options["state_dir"]
    problems: list[str] = []
    if options.get("sync_group"):
        problems.append(
            "--sync-group: names the sync group of a group given by options; the groups of "
            f"{path} name theirs with ifvip-sync-group"
        )
    only: list[str] | None = None
    if options.get("up_list"):
        try:
            only = read_up_list(options["up_list"])
        except OSError as exc:
            raise ConfigProblems(
                [f"--up-list: cannot read {options['up_list']}: {exc.strerror}"]
            ) from None
    defn = read_interfaces(path)
    configs: list[GroupSettings] = []
    for entry in PROTOCOLS.values():
        try:
            configs += entry.file_composer()(defn, path, links, state_dir, only)
        except ConfigProblems as found:
            problems += found.problems
    if not configs and not problems:
        where = f" on {' '.join(only) or 'no interface'} (--up-list)" if only is not None else ""
        problems.append(f"--interfaces: no stanza in {path} has ucarp-vid or vrrp-id{where}")
    if problems:
        raise ConfigProblems(problems)
    engines = engine_factory(options["ifstate_dir"], options["script_timeout"])
    if any(c.needs_engine for c in configs):
        engines(path)  # a missing engine is a configuration problem, found up front
    protocols = {c.protocol for c in configs}
    ops, policy = operations_and_policy(
        options,
        "vrrp" if protocols == {"vrrp"} else "carp",  # --check-weight: VRRP's priorities
        state_dir,
        links,
        [c.vips for c in configs],
    )
    return Composed(tuple(configs), ops, policy, engines)


def present_links() -> list[str]:
    """The names of the namespace's interfaces."""
    return os.listdir("/sys/class/net")


def build_plan(options: Mapping[str, Any]) -> RunPlan:
    """`ifvip run`'s options (every one, by keyword, as the CLI parsed them) as a validated
    RunPlan; ConfigProblems lists what is wrong. SIGHUP calls it again with the same
    options: the passfile and the interfaces file are read anew.

    `--interfaces FILE` without a group given by options (and without --manage) runs every
    group the file declares, CARP and VRRP side by side (compose_file); otherwise the
    --protocol's composer makes the group of the options."""
    links = present_links()
    if from_file_only(options):
        composed = compose_file(options, links)
    elif options.get("up_list"):
        raise ConfigProblems(
            ["--up-list: only with --interfaces FILE and no group given by options"]
        )
    else:
        composed = PROTOCOLS[options["protocol"]].composer()(options, links)
    state_dir = options["state_dir"]
    RunStateDir.open(state_dir)  # unusable (read-only, not a directory): refuse up front
    return RunPlan(
        state_dir,
        composed.operations,
        unique_names(composed.configs),
        policy=composed.policy,
        engines=composed.engines,
        script_timeout=options["script_timeout"],
    )
